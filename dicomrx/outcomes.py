"""What ingesting one object came to: the statuses ``import_dose``, ``reprocess`` and the listener count, and the
outcome record.  A module of its own (no parser, no registry services) so a command can report without loading the
ingest stack."""

from __future__ import annotations

from dataclasses import dataclass, field

# IngestOutcome.status values; recording's outcomes map onto them (replaced -> imported)
IMPORTED, ALREADY_PRESENT, SUPERSEDED, SKIPPED, FAILED = "imported", "already_present", "superseded", "skipped", "failed"
CORRECTED = "corrected"
STATUSES = (IMPORTED, CORRECTED, ALREADY_PRESENT, SUPERSEDED, SKIPPED, FAILED)


@dataclass
class IngestOutcome:
    status: str  # one of STATUSES
    reason: str = ""
    received_object_id: int | None = None
    study_id: int | None = None
    warnings: list[str] = field(default_factory=list)
    equipment_change_ids: list[int] = field(default_factory=list)
    retry: bool = False  # FAILED by an error, not a refusal: the object stays 'received' and is tried again
