"""manage.py import_dose PATH [PATH ...] - import dose objects from files and folders (recursive)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from dicomrx import ingest
from dosereg.registry.management.base import DoseRegCommand, InputFailed, UsageError


class Command(DoseRegCommand):
    help = ("Import DICOM dose objects (RDSR, RRDSR, dose-carrying images) from files and folders. The last line "
            "is 'imported=N already_present=N superseded=N skipped=N failed=N'; each failure is listed above it.")

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH")

    def handle(self, *args, paths, **options):
        for p in paths:
            if not Path(p).exists():
                raise UsageError(f"no such file or folder: {p}")
        files = list(ingest.iter_files(paths))
        counts = Counter(dict.fromkeys(ingest.STATUSES, 0))
        failures = []
        for path in self.progress(files, total=len(files), label="import"):
            try:
                outcome = ingest.import_file(path)
            except ingest.IngestError as exc:
                outcome = ingest.IngestOutcome(ingest.FAILED, reason=str(exc))
            counts[outcome.status] += 1
            if outcome.status == ingest.FAILED:
                failures.append((path, outcome.reason))
            elif outcome.status == ingest.SKIPPED:
                sys.stderr.write(f"skipped {path}: {outcome.reason}\n")
            for warning in outcome.warnings:
                sys.stderr.write(f"warning {path}: {warning}\n")
        for path, reason in failures:
            self.stdout.write(f"failed {path}: {reason}")
        summary = " ".join(f"{k}={counts[k]}" for k in ingest.STATUSES)
        self.stdout.write(summary)
        if failures:
            raise InputFailed(f"{len(failures)} file(s) failed")
