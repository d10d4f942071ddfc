"""Ingest benchmark: per-file parse time, and end-to-end import time with query counts, for the corpus.

usage: python bench/ingest.py [CORPUS]      (default ../shared/rdsr)
SQLite by default (a fresh temporary data folder); PostgreSQL when DATABASE_URL is set (a scratch database
``bench_ingest`` is created on that server and dropped afterwards).  Prints a table; asserts nothing.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dosereg.settings")
os.environ.pop("CELERY_BROKER_URL", None)
if not os.environ.get("DATABASE_URL"):
    os.environ["DOSEREG_DATA_DIR"] = tempfile.mkdtemp(prefix="bench-ingest-")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

BIG = "rf/RF-Pat-Orientation-Modifier-Missing.dcm"


def main() -> int:
    import logging

    logging.disable(logging.WARNING)
    corpus = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / ".." / "shared" / "rdsr").resolve()
    if not corpus.is_dir():
        print(f"corpus {corpus} is absent")
        return 1
    from django.test.utils import setup_databases, teardown_databases

    settings.INBOX_DIR = Path(tempfile.mkdtemp(prefix="bench-inbox-"))
    old = setup_databases(verbosity=0, interactive=False, aliases=["default"]) if os.environ.get("DATABASE_URL") \
        else None
    if old is None:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    try:
        run(corpus)
    finally:
        if old is not None:
            teardown_databases(old, verbosity=0)
    return 0


def run(corpus: Path) -> None:
    from dicomrx import pipeline
    from dicomrx.ingest import import_file
    from dicomrx.parse import parse_dose_object
    from dosereg.core.dose_report import DoseParseError, NotADoseObject

    post = {"ms": 0.0, "queries": 0}
    original = pipeline.after_study_recorded

    def timed(study_id, change_ids=()):  # the other apps' post-commit steps (mapping, triggers), timed apart
        with CaptureQueriesContext(connection) as c:
            t0 = time.perf_counter()
            original(study_id, change_ids)
            post["ms"] += (time.perf_counter() - t0) * 1000
        post["queries"] += len(c.captured_queries)

    pipeline.after_study_recorded = timed
    files = sorted(p for p in corpus.rglob("*.dcm"))
    print(f"database: {connection.vendor}; {len(files)} files; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")
    print(f"{'file':58} {'events':>6} {'parse ms':>9} {'import ms':>10} {'cpu ms':>8} {'queries':>8} {'of which post-commit':>21}"
          "  status")
    parse_total = import_total = 0.0
    queries_total = 0
    rows = []
    for path in files:
        data = path.read_bytes()
        t = time.perf_counter()
        try:
            report = parse_dose_object(data)
            events = len(report.events)
        except (NotADoseObject, DoseParseError):
            events = 0
        parse_ms = (time.perf_counter() - t) * 1000
        post.update(ms=0.0, queries=0)
        with CaptureQueriesContext(connection) as ctx:
            t, c0 = time.perf_counter(), time.process_time()
            outcome = import_file(path)
            import_ms = (time.perf_counter() - t) * 1000
            cpu_ms = (time.process_time() - c0) * 1000
        rel = str(path.relative_to(corpus))
        rows.append((rel, events, parse_ms, import_ms, len(ctx.captured_queries), outcome.status, post["ms"],
                     post["queries"], cpu_ms))
        parse_total += parse_ms
        import_total += import_ms
        queries_total += len(ctx.captured_queries)
    for rel, events, p, i, q, status, pm, pq, cpu in rows:
        print(f"{rel[:58]:58} {events:6d} {p:9.1f} {i:10.1f} {cpu:8.1f} {q:8d} {pm:11.1f} ms {pq:4d} q  {status}")
    print(f"{'TOTAL':58} {sum(r[1] for r in rows):6d} {parse_total:9.1f} {import_total:10.1f} {sum(r[8] for r in rows):8.1f} {queries_total:8d} "
          f"{sum(r[6] for r in rows):11.1f} ms {sum(r[7] for r in rows):4d} q")
    print(f"median import per file: {statistics.median(r[3] for r in rows):.1f} ms")
    big = next((r for r in rows if r[0] == BIG), None)
    if big:
        print(f"{BIG}: {big[1]} events, parse {big[2]:.0f} ms, end-to-end import {big[3]:.0f} ms "
              f"(CPU {big[8]:.0f} ms), {big[4]} queries "
              f"(of which post-commit mapping/triggers {big[6]:.0f} ms, {big[7]} queries)")


if __name__ == "__main__":
    sys.exit(main())
