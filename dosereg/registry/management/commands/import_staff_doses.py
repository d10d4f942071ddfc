"""Import staff dosimeter readings from CSV (electronic dosimeters or the approved dosimetry service).

    python manage.py import_staff_doses FILE [--mapping FILE] [--source epd|approved_service] [--skip-bad-rows]

The summary goes to stdout, one line per bad row to stderr.  A file with a bad row stores nothing and exits 1, unless
--skip-bad-rows is given (the good rows are stored; the exit status is still 1 so scripts notice).  Re-importing the
same file changes nothing.  Columns: see docs/examples/staff-doses-epd.csv and docs/euratom.md.
"""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from dosereg.registry.management.base import DoseRegCommand, InputFailed, UsageError
from dosereg.registry.services.staff import SOURCES, StaffImportError, staff_import, staff_mapping_load


class Command(DoseRegCommand):
    help = "Import staff dosimeter readings (CSV); EPD readings are matched to interventional procedures."

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help="CSV file (UTF-8; comma, semicolon or tab separated)")
        parser.add_argument("--mapping", metavar="FILE", help="JSON or CSV renaming the file's columns to ours")
        parser.add_argument("--source", choices=SOURCES, default="epd",
                            help="epd (electronic dosimeters, default) or approved_service (the legal record)")
        parser.add_argument("--skip-bad-rows", action="store_true", help="store the good rows of a file with bad ones")

    def handle(self, *args, **options):
        path = Path(options["file"])
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise InputFailed(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        try:
            mapping = staff_mapping_load(options["mapping"]) if options["mapping"] else None
            summary = staff_import(text, source=options["source"], mapping=mapping,
                                   skip_bad_rows=options["skip_bad_rows"])
        except StaffImportError as exc:
            raise InputFailed(f"{path}: {exc}") from exc
        except ImproperlyConfigured as exc:
            raise UsageError(f"configuration: {exc}") from exc
        for error in summary.errors:
            self.stderr.write(f"{path.name} {error}")
        for line in summary.lines():
            self.stdout.write(line)
        if summary.errors:
            raise InputFailed(f"{len(summary.errors)} bad row(s) in {path.name}"
                              + ("; the good rows were stored" if not summary.refused else "; nothing stored"))
