"""Operations: health and readiness probes, Prometheus metrics, backup/restore and the move to PostgreSQL."""
