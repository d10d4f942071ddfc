"""manage.py restore PATH: put a backup back (checksums first), then bring the schema up to this version."""

from __future__ import annotations

from pathlib import Path

from django.core.management import call_command

from dosereg.ops.backup import BackupError, restore_backup
from dosereg.registry.management.base import DoseRegCommand, InputFailed


class Command(DoseRegCommand):
    help = ("Restore a backup made by 'manage.py backup' over this registry's database and inbox. "
            "Stop the listener, workers and web first.")

    def add_arguments(self, parser):
        parser.add_argument("path", metavar="PATH")

    def handle(self, *args, **o):
        try:
            result = restore_backup(Path(o["path"]))
        except BackupError as exc:
            raise InputFailed(str(exc)) from exc
        call_command("migrate", interactive=False, verbosity=0)  # a backup of an older version
        for warning in result.warnings:
            self.stderr.write(f"warning: {warning}")
        moved = f"; inbox paths moved from {result.inbox_moved_from}" if result.inbox_moved_from else ""
        self.stderr.write(f"restored {result.vendor} database and {result.files} files from {o['path']}{moved}")
