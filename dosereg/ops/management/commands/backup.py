"""manage.py backup PATH: the database, the DICOM inbox and the settings, with a manifest and SHA-256 checksums."""

from __future__ import annotations

from pathlib import Path

from dosereg.ops.backup import BackupError, create_backup
from dosereg.registry.management.base import DoseRegCommand, InputFailed


class Command(DoseRegCommand):
    help = "Write a complete backup to PATH (a new or empty directory); safe while DoseReg runs."

    def add_arguments(self, parser):
        parser.add_argument("path", metavar="PATH")

    def handle(self, *args, **o):
        try:
            result = create_backup(Path(o["path"]))
        except BackupError as exc:
            raise InputFailed(str(exc)) from exc
        self.stderr.write(f"backup written to {result.path}: {result.vendor} database, {result.files} files, "
                          f"{result.bytes / 1e6:.1f} MB")
