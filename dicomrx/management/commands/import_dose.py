"""manage.py import_dose PATH [PATH ...] - import dose objects from files and folders (recursive), in batches."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from django.conf import settings

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

    def handle(self, *args, paths, batch_size: int | None, **options):
        for p in paths:
            if not Path(p).exists():
                raise UsageError(f"no such file or folder: {p}")
        if batch_size is not None and batch_size < 1:
            raise UsageError("--batch-size must be at least 1")
        files = list(iter_files(paths))
        counts = Counter(dict.fromkeys(STATUSES, 0))
        failures = []
        if files:  # the ingest stack (parser, registry services, post-commit steps) only when there is work
            from dicomrx import ingest

            results = ingest.import_files(files, batch_size=batch_size or settings.INGEST_BATCH_SIZE)
            for path, outcome in self.progress(results, total=len(files), label="import"):
                counts[outcome.status] += 1
                if outcome.status == FAILED:
                    failures.append((path, outcome.reason))
                elif outcome.status == SKIPPED:
                    sys.stderr.write(f"skipped {path}: {outcome.reason}\n")
                for warning in outcome.warnings:
                    sys.stderr.write(f"warning {path}: {warning}\n")
        for path, reason in failures:
            self.stdout.write(f"failed {path}: {reason}")
        self.stdout.write(" ".join(f"{k}={counts[k]}" for k in STATUSES))
        if failures:
            raise InputFailed(f"{len(failures)} file(s) failed")

