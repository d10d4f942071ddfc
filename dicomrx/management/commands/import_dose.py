"""manage.py import_dose PATH [PATH ...] - import dose objects from files and folders (recursive), in batches.

Resumable: a file already stored and processed is recognised by its SOP Instance UID and content hash (the top level
is read, never the content tree) and counted ``already_present``; one stored but not yet ingested is ingested.
``--jobs N`` (PostgreSQL) imports in N processes, each recording its own batches.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from django.conf import settings
from django.db import connection, connections

from dicomrx.outcomes import FAILED, SKIPPED, STATUSES
from dicomrx.storage import iter_files
from dosereg.registry.management.base import DoseRegCommand, InputFailed, UsageError


class Command(DoseRegCommand):
    help = ("Import DICOM dose objects (RDSR, RRDSR, dose-carrying images) from files and folders. The last line "
            "is 'imported=N corrected=N already_present=N superseded=N skipped=N failed=N'; each failure is listed "
            "above it.")

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--batch-size", type=int, default=None, metavar="N",
                            help="objects recorded per transaction (default: DOSEREG_INGEST_BATCH_SIZE)")
        parser.add_argument("--jobs", type=int, default=1, metavar="N",
                            help="import in N processes (PostgreSQL; SQLite takes one writer at a time)")

    def handle(self, *args, paths, batch_size: int | None, jobs: int, **options):
        for p in paths:
            if not Path(p).exists():
                raise UsageError(f"no such file or folder: {p}")
        if batch_size is not None and batch_size < 1:
            raise UsageError("--batch-size must be at least 1")
        if jobs < 1:
            raise UsageError("--jobs must be at least 1")
        if jobs > 1 and connection.vendor != "postgresql":
            raise UsageError("--jobs needs PostgreSQL (DATABASE_URL); SQLite takes one writer at a time")
        files = list(iter_files(paths))
        counts = Counter(dict.fromkeys(STATUSES, 0))
        failures = []
        if files:  # the ingest stack (parser, registry services, post-commit steps) only when there is work
            size = batch_size or settings.INGEST_BATCH_SIZE
            results = _in_processes(files, size, jobs) if jobs > 1 else _here(files, size)
            for path, outcome in self.progress(results, total=len(files), label="import"):
                counts[outcome.status] += 1
                if outcome.status == FAILED:
                    failures.append((path, outcome.reason))
                elif outcome.status == SKIPPED:
                    self.stderr.write(f"skipped {path}: {outcome.reason}")
                for warning in outcome.warnings:
                    self.stderr.write(f"warning {path}: {warning}")
        for path, reason in failures:
            self.stdout.write(f"failed {path}: {reason}")
        self.stdout.write(" ".join(f"{k}={counts[k]}" for k in STATUSES))
        if failures:
            raise InputFailed(f"{len(failures)} file(s) failed")


def _here(files: list[Path], batch_size: int):
    from dicomrx import ingest

    yield from ingest.import_files(files, batch_size=batch_size)


def _import_chunk(chunk: tuple[list[Path], int]) -> list:
    """One worker process's share: a few batches of files, imported in order."""
    from dicomrx import ingest

    files, batch_size = chunk
    return list(ingest.import_files(files, batch_size=batch_size))


def _in_processes(files: list[Path], batch_size: int, jobs: int):
    """The files in chunks of a few batches over ``jobs`` processes (forked: settings and apps loaded once); outcomes
    come back per chunk, as chunks finish."""
    import multiprocessing

    step = batch_size * 4
    chunks = [(files[i:i + step], batch_size) for i in range(0, len(files), step)]
    connections.close_all()  # each process opens its own connection
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        for done in pool.imap_unordered(_import_chunk, chunks):
            yield from done
