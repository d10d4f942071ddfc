"""Free space on the inbox's file system, checked before an object is accepted.

A full disk must answer 0xA700 (Out of Resources, PS3.4 Annex B.2.3) for the object concerned, never abort the
association: the sender then keeps the object and retries, and the listener stays up.  The check keeps a reserve
(DOSEREG_DICOM_MIN_FREE_MB) free: pynetdicom streams each incoming object into DATA_DIR/tmp before the C-STORE
handler runs, so the reserve must exceed the largest object times the concurrent associations, or that write
itself can still fail with ENOSPC.  No state is kept: space that returns is used by the next object.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from dicomrx.storage import StorageError

MB = 1024 * 1024


@dataclass(frozen=True)
class Space:
    free_bytes: int
    reserve_bytes: int

    def room_for(self, size: int) -> bool:
        """Whether ``size`` more bytes leave the reserve untouched (pure)."""
        return self.free_bytes - size >= self.reserve_bytes


def inbox_space(inbox: Path | None = None) -> Space:
    """Free bytes for an unprivileged writer (f_bavail, not root's f_bfree) and the configured reserve."""
    stat = os.statvfs(inbox or settings.INBOX_DIR)
    return Space(stat.f_bavail * stat.f_frsize, settings.DICOM_MIN_FREE_MB * MB)


def ensure_room(incoming: Path, inbox: Path | None = None) -> None:
    """Raise StorageError (answered 0xA700) when storing ``incoming`` would eat into the reserve."""
    space = inbox_space(inbox)
    size = incoming.stat().st_size
    if not space.room_for(size):
        raise StorageError(f"not enough free space for the inbox: {space.free_bytes // MB} MB free, "
                           f"{size / MB:.1f} MB needed, {space.reserve_bytes // MB} MB kept in reserve "
                           f"(DOSEREG_DICOM_MIN_FREE_MB)")
