"""Create or update staff members and their dosimeters from a roster CSV (before importing their readings).

    python manage.py import_staff_roster FILE

One row per dosimeter: ``name,staff_number,dosimeter_id,position,source`` and optionally ``role,username,room``
(example: docs/examples/staff-roster.csv).  A roster with a bad row stores nothing and exits 1; re-importing the same
roster changes nothing.
"""

from __future__ import annotations

from pathlib import Path

from dosereg.registry.management.base import DoseRegCommand, InputFailed, UsageError
from dosereg.registry.services.staff import StaffImportError, staff_roster_import


class Command(DoseRegCommand):
    help = "Create or update staff members and dosimeters from a roster CSV (one row per dosimeter)."

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help="CSV file (UTF-8; comma, semicolon or tab separated)")

    def handle(self, *args, **options):
        path = Path(options["file"])
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise InputFailed(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        try:
            summary = staff_roster_import(text)
        except StaffImportError as exc:
            raise InputFailed(f"{path}: {exc}") from exc
        for error in summary.errors:
            self.stderr.write(f"{path.name} {error}")
        for line in summary.lines():
            self.stdout.write(line)
        if summary.errors:
            raise InputFailed(f"{len(summary.errors)} bad row(s) in {path.name}; nothing stored")
