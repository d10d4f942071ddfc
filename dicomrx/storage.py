"""Durable keeping of received objects: the original bytes in the inbox, then a ReceivedObject row.

The listener answers Success only after :func:`store_received_object` returns: the file is written to a temporary
name, fsync'ed, renamed into place and the directory fsync'ed, and the row is committed.  A crash at any point
before that leaves no row (the sender retries); after it, the object is never lost and can be (re)processed.
Identical bytes again (same SOP Instance UID and SHA-256) find the existing row: re-sending is idempotent.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from dosereg.registry.fields import fit_field
from dosereg.registry.models import ReceivedObject

log = logging.getLogger(__name__)


class StorageError(Exception):
    """The object could not be written or recorded (disk full, database down): the sender should retry."""


@dataclass(frozen=True)
class TopLevel:
    """What is decoded of an object before it is stored: never the content tree."""

    sop_instance_uid: str
    sop_class_uid: str = ""
    study_instance_uid: str = ""
    modality: str = ""


FILE_MODE = 0o600  # health data: the service user only (the inbox directory is 0700 too)


def inbox_path(sha256: str) -> Path:
    now = timezone.now()
    return settings.INBOX_DIR / f"{now:%Y}" / f"{now:%m}" / f"{now:%d}" / f"{sha256}.dcm"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(data: bytes, target: Path) -> None:
    """Write, fsync, rename, fsync the directory: after this returns the bytes survive a crash or power cut."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with open(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise StorageError(f"cannot write {target.name}: {exc.strerror or exc}") from exc


def move_durably(source: Path, target: Path) -> bool:
    """Move a received file into the inbox without copying it: fsync, rename, fsync the directory.

    False when the two are on different file systems (the caller then writes a copy)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(source, os.O_RDONLY)
        try:
            os.fchmod(fd, FILE_MODE)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(source, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            return False
        raise StorageError(f"cannot keep {target.name}: {exc.strerror or exc}") from exc
    return True


def store_received_object(data: bytes, top: TopLevel, *, source: str, calling_ae: str = "",
                          peer_address: str = "") -> tuple[ReceivedObject, bool]:
    """Keep the bytes and record them.  Returns (row, created); created is False for identical bytes again."""
    sha = hashlib.sha256(data).hexdigest()
    return _keep_and_record(top, sha, len(data), lambda target: write_durably(data, target), source=source,
                            calling_ae=calling_ae, peer_address=peer_address)


def store_received_file(path: Path, top: TopLevel, *, source: str, calling_ae: str = "",
                        peer_address: str = "") -> tuple[ReceivedObject, bool]:
    """As :func:`store_received_object` for an object that arrived as a whole file (the listener's streamed
    receive): the file itself is moved into the inbox, so its bytes are written once.  Identical bytes again leave
    ``path`` where it is."""
    try:
        with open(path, "rb") as fh:
            sha = hashlib.file_digest(fh, "sha256").hexdigest()
            size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise StorageError(f"cannot read the received file: {exc.strerror or exc}") from exc

    def keep(target: Path) -> None:
        if not move_durably(path, target):
            write_durably(Path(path).read_bytes(), target)

    return _keep_and_record(top, sha, size, keep, source=source, calling_ae=calling_ae, peer_address=peer_address)


def _keep_and_record(top: TopLevel, sha: str, size: int, keep, *, source: str, calling_ae: str,
                     peer_address: str) -> tuple[ReceivedObject, bool]:
    existing = ReceivedObject.objects.filter(sop_instance_uid=top.sop_instance_uid, sha256=sha).first()
    if existing is not None and existing.file_path and Path(existing.file_path).exists():
        return existing, False
    target = inbox_path(sha)
    keep(target)
    for attempt in range(_LOCK_RETRIES):
        try:
            return _record(size, top, sha, target, existing, source=source, calling_ae=calling_ae,
                           peer_address=peer_address)
        except OperationalError as exc:  # SQLite: another writer held the lock past the busy timeout
            if "locked" not in str(exc) or attempt == _LOCK_RETRIES - 1:
                raise StorageError("cannot record the object: the database stayed locked by another writer; "
                                   "the sender keeps the object and retries") from exc
            time.sleep(0.05 * (attempt + 1))
    raise StorageError("cannot record the object")  # not reached


_LOCK_RETRIES = 5


def _record(size: int, top: TopLevel, sha: str, target: Path, existing: ReceivedObject | None, *, source: str,
            calling_ae: str, peer_address: str) -> tuple[ReceivedObject, bool]:
    try:
        with transaction.atomic():
            if existing is not None:  # the row survived but its file did not: restore the file
                existing.file_path = str(target)
                existing.save(update_fields=["file_path"])
                return existing, False
            row = ReceivedObject.objects.create(
                sop_instance_uid=fit_field(ReceivedObject, "sop_instance_uid", top.sop_instance_uid),
                sop_class_uid=fit_field(ReceivedObject, "sop_class_uid", top.sop_class_uid), sha256=sha,
                study_instance_uid=fit_field(ReceivedObject, "study_instance_uid", top.study_instance_uid),
                modality=fit_field(ReceivedObject, "modality", top.modality), source=source,
                calling_ae=fit_field(ReceivedObject, "calling_ae", calling_ae),
                peer_address=fit_field(ReceivedObject, "peer_address", peer_address), file_path=str(target), size=size)
            return row, True
    except IntegrityError:
        row = ReceivedObject.objects.get(sop_instance_uid=top.sop_instance_uid, sha256=sha)
        return row, False
    except OperationalError:
        raise
    except Exception as exc:  # database down, disk full in the WAL...: the sender must retry
        log.error("recording a received object failed: %s", type(exc).__name__)
        raise StorageError("cannot record the object: the database is unavailable or full; the sender keeps the "
                           "object and retries") from exc


def iter_files(paths):
    """Every entry under these paths that is not a folder (folders recursively, in name order), for importing from
    disk: FIFOs, sockets and broken links are listed too, so the import can count them as skipped with their reason
    instead of leaving them out silently (``not_a_regular_file``)."""
    for p in paths:
        p = Path(p)
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if not f.is_dir())
        else:
            yield p


def not_a_regular_file(path: Path) -> str:
    """Why ``path`` cannot be imported as a file ('' when it is a regular file): never opened, so a FIFO cannot
    block the import."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "a broken symbolic link" if path.is_symlink() else "no such file"
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if stat.S_ISREG(mode):
        return ""
    kinds = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
             (stat.S_ISBLK, "a device"))
    return next((what for test, what in kinds if test(mode)), "not a regular file")
