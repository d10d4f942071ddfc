"""Durable keeping of received objects: the original bytes in the inbox, then a ReceivedObject row.

The listener answers Success only after :func:`store_received_object` returns: the file is written to a temporary
name, fsync'ed, linked into place and the directory fsync'ed, and only then the row is committed: one INSERT ... ON
CONFLICT DO NOTHING in autocommit, the one query a new object costs.  A crash at any point before that leaves no row
(the sender retries); after it, the object is never lost and can be (re)processed.  Identical bytes again (same SOP
Instance UID and SHA-256) find the existing row and leave its file alone: re-sending is idempotent.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import logging
import os
import stat
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import OperationalError, connections, router
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


def write_durably(data: bytes, target: Path, *, replace: bool = True) -> bool:
    """Write, fsync, rename, fsync the directory: after this returns the bytes survive a crash or power cut.

    With ``replace=False`` a file already at ``target`` is kept as it is (returns False): the inbox is content
    addressed, so it holds these very bytes, or their de-identified rewrite that a re-send must not undo."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not replace and target.exists():
        _fsync_dir(target.parent)  # its name may not be durable yet if an earlier write failed at the last step
        return False
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with open(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        placed = _place(tmp, target, replace=replace)
        _fsync_dir(target.parent)
    except OSError as exc:
        raise StorageError(f"cannot write {target.name}: {exc.strerror or exc}") from exc
    finally:
        try:
            tmp.unlink(missing_ok=True)  # linked into place, or a failed write
        except OSError:
            pass
    return placed


def _place(source: Path, target: Path, *, replace: bool) -> bool:
    """Give ``source`` the name ``target`` (atomically).  Without ``replace`` an existing target wins and ``source``
    stays where it is: a hard link never clobbers (a plain rename where the file system has no hard links)."""
    if replace:
        os.replace(source, target)
        return True
    try:
        os.link(source, target)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        if target.exists():
            return False
        os.replace(source, target)
        return True
    source.unlink()
    return True


def move_durably(source: Path, target: Path, *, replace: bool = False) -> bool | None:
    """Move a received file into the inbox without copying it: fsync, rename, fsync the directory.  Without
    ``replace`` a file already at ``target`` is kept and ``source`` left where it is (as :func:`write_durably`).

    True when moved, False when ``target`` was there already, None when the two are on different file systems (the
    caller then writes a copy)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        if not replace and target.exists():
            _fsync_dir(target.parent)
            return False
        fd = os.open(source, os.O_RDONLY)
        try:
            os.fchmod(fd, FILE_MODE)
            os.fsync(fd)
        finally:
            os.close(fd)
        moved = _place(source, target, replace=replace)
        _fsync_dir(target.parent)
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            return None
        raise StorageError(f"cannot keep {target.name}: {exc.strerror or exc}") from exc
    return moved


def store_received_object(data: bytes, top: TopLevel, *, source: str, calling_ae: str = "",
                          peer_address: str = "", together: StoreTogether | None = None) -> tuple[ReceivedObject, bool]:
    """Keep the bytes and record them.  Returns (row, created); created is False for identical bytes again.  With
    ``together`` the object is made durable with the others being stored at the same time."""
    sha = hashlib.sha256(data).hexdigest()
    return _keep_and_record(top, sha, len(data), lambda target, replace: write_durably(data, target, replace=replace),
                            lambda target: _write_unflushed(data, target), together,
                            source=source, calling_ae=calling_ae, peer_address=peer_address)


def store_received_file(path: Path, top: TopLevel, *, source: str, calling_ae: str = "",
                        peer_address: str = "", together: StoreTogether | None = None) -> tuple[ReceivedObject, bool]:
    """As :func:`store_received_object` for an object that arrived as a whole file (the listener's streamed
    receive): the file itself is moved into the inbox, so its bytes are written once.  Identical bytes again the
    same day leave ``path`` where it is (the inbox has them)."""
    try:
        with open(path, "rb") as fh:
            sha = hashlib.file_digest(fh, "sha256").hexdigest()
            size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise StorageError(f"cannot read the received file: {exc.strerror or exc}") from exc

    def keep(target: Path, replace: bool) -> bool:
        moved = move_durably(path, target, replace=replace)
        return write_durably(Path(path).read_bytes(), target, replace=replace) if moved is None else moved

    return _keep_and_record(top, sha, size, keep, lambda target: _move_unflushed(Path(path), target), together,
                            source=source, calling_ae=calling_ae, peer_address=peer_address)


class InboxGroup:
    """Objects kept together (an import batch): their files written, then one durability barrier for all of them and
    one INSERT for all their rows.  The promise per object is that of :func:`store_received_object` (a row is
    committed only after its bytes are durable; identical bytes again find their row), at a fraction of its cost: an
    object kept alone pays three flushes to disk (its file, its directory, its row's commit), a group one barrier.

    Objects whose identity (SOP Instance UID and SHA-256) is recorded already, with its file in place, are found
    with one query per group and never written again: an interrupted import run again skips what it kept, without
    parsing.  The bytes are held only until ``HELD_BYTES`` of them wait (then written and dropped), so a group of
    large reports is never held in memory whole.  ``commit`` returns, per object in the order added, ``(row,
    created)`` or the ``StorageError`` that object met.  An object whose content-addressed file is in the inbox
    without a row it can take (a leftover, or the same bytes twice in the group) takes the one-object path at
    commit, which knows how to treat an existing file."""

    MAX_OPEN = 200  # files held open until the barrier: a large batch is kept as several groups
    HELD_BYTES = 64 * 1024 * 1024

    def __init__(self, *, source: str):
        self.source = source
        self._pending: list[_Pending] = []
        self._held: list[_Pending] = []  # added, not yet looked up and written
        self._held_bytes = 0
        self._targets: set[Path] = set()

    def __len__(self) -> int:
        return len(self._pending) + len(self._held)

    def add(self, data: bytes, top: TopLevel) -> None:
        sha = hashlib.sha256(data).hexdigest()
        target = inbox_path(sha)
        row = _new_row(top, sha, len(data), target, source=self.source, calling_ae="", peer_address="")
        self._held.append(_Pending(top, row, target, data=data))
        self._held_bytes += len(data)
        if self._held_bytes >= self.HELD_BYTES:
            self._place_held()

    def _place_held(self) -> None:
        known = _recorded_with_file(self._held)  # before anything moves: a failed look-up leaves them held
        held, self._held, self._held_bytes = self._held, [], 0
        for p in held:
            self._pending.append(p)
            existing = known.get((p.row.sop_instance_uid, p.row.sha256))
            if existing is not None:
                p.result, p.data = (existing, False), None
                continue
            if p.target in self._targets:
                continue  # the same bytes twice: the second is kept alone at commit, after the first
            self._targets.add(p.target)
            try:
                p.fd = _write_unflushed(p.data, p.target)  # None: the file is there already
            except OSError as exc:
                p.result, p.data = StorageError(f"cannot write {p.target.name}: {exc.strerror or exc}"), None
                continue
            if p.fd is not None:
                p.data = None

    def commit(self) -> list[tuple[ReceivedObject, bool] | StorageError]:
        try:
            self._place_held()
        except Exception as exc:  # noqa: BLE001 - the look-up failed (database down): nothing of the group is kept
            log.error("looking up received objects failed: %s", type(exc).__name__)
            failed = StorageError("cannot record the objects: the database is unavailable; the sender keeps them "
                                  "and retries")
            for p in self._held:
                p.result = failed
            self._pending += self._held
            self._held = []
        pending, self._pending, self._targets = self._pending, [], set()
        written = [p for p in pending if p.fd is not None]
        try:
            for p, result in zip(written, _make_durable(written), strict=True):
                p.result = result
        finally:
            for p in written:
                os.close(p.fd)
        for p in pending:
            if p.result is None:  # its file was there already: the one-object path decides
                try:
                    p.result = store_received_object(p.data, p.top, source=self.source)
                except StorageError as exc:
                    p.result = exc
        return [p.result for p in pending]


def _recorded_with_file(objects: list[_Pending]) -> dict[tuple[str, str], ReceivedObject]:
    """The rows recorded already for these identities whose file is in place (one query): (SOP Instance UID,
    SHA-256) -> row.  A row whose file was lost is left out: the one-object path restores its file."""
    if not objects:
        return {}
    wanted = {(p.row.sop_instance_uid, p.row.sha256) for p in objects}
    rows = ReceivedObject.objects.filter(sop_instance_uid__in={uid for uid, _ in wanted},
                                         sha256__in={sha for _, sha in wanted})
    return {(r.sop_instance_uid, r.sha256): r for r in rows
            if (r.sop_instance_uid, r.sha256) in wanted and r.file_path and Path(r.file_path).exists()}


class StoreTogether:
    """Concurrent stores made durable together (the listener's associations, each in its own thread): a store
    places its file and waits; the first waiting thread leads, taking every store waiting at that moment through
    one barrier and one INSERT, while the stores arriving meanwhile wait for the next leader.  Each association is
    answered only after its own row is committed, as when kept alone; one sender alone is a group of one."""

    def __init__(self):
        self._cond = threading.Condition()
        self._waiting: list[_Pending] = []
        self._leading = False
        self.groups = self.objects = 0  # how many barriers for how many objects (the listener's bench reads them)

    def keep(self, pending: _Pending) -> tuple[ReceivedObject, bool]:
        with self._cond:
            self._waiting.append(pending)
            while pending.result is None and self._leading:
                self._cond.wait()
            if pending.result is None:  # not taken by a leader yet: lead
                self._leading = True
                group, self._waiting = self._waiting, []
                self.groups, self.objects = self.groups + 1, self.objects + len(group)
        if pending.result is None:
            results: list = [StorageError("cannot record the object: storing was interrupted; the sender retries")]
            results *= len(group)
            try:
                results = _make_durable(group)
            finally:
                with self._cond:
                    for member, result in zip(group, results, strict=True):
                        member.result = result
                    self._leading = False
                    self._cond.notify_all()
        if isinstance(pending.result, StorageError):
            raise pending.result
        return pending.result


def _make_durable(written: list[_Pending]) -> list[tuple[ReceivedObject, bool] | StorageError]:
    """The barrier for files placed unflushed, then their rows: per object ``(row, created)`` or its error."""
    if not written:
        return []
    try:
        _flush_to_disk([p.fd for p in written], {p.target.parent for p in written})
    except OSError as exc:  # nothing of the group is durable: no row, the senders retry
        return [StorageError(f"cannot write the received objects to disk: {exc.strerror or exc}")] * len(written)
    return _record_group(written)


@dataclass(eq=False)
class _Pending:
    top: TopLevel
    row: ReceivedObject
    target: Path
    data: bytes | None = None  # only for an object kept alone at commit
    fd: int | None = None  # its file placed, not yet flushed
    result: tuple[ReceivedObject, bool] | StorageError | None = None


def _write_unflushed(data: bytes, target: Path) -> int | None:
    """Write ``data`` under a temporary name and link it to ``target``; returns the open file descriptor for the
    group's flush, or None when ``target`` exists (the one-object path knows what to do with it).  The temporary
    name goes at once: the link is the file's only name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        return None
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.link(tmp, target)
    except FileExistsError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    return fd


def _move_unflushed(source: Path, target: Path) -> int | None:
    """Give the received file ``source`` the name ``target`` without copying or flushing it; returns its open file
    descriptor for the group's flush, or None when that cannot be done this way (``target`` exists, another file
    system, no hard links): the one-object path then keeps it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        return None
    fd = os.open(source, os.O_RDONLY)
    try:
        os.fchmod(fd, FILE_MODE)
        os.link(source, target)
    except OSError:
        os.close(fd)
        return None
    try:
        source.unlink()
    except OSError:
        pass  # a second name of the same bytes in the temporary folder, never a lost object
    return fd


def _flush_to_disk(fds: list[int], directories: set[Path]) -> None:
    """The group's barrier: every file's bytes and every directory's new names on disk.  On Linux one ``syncfs`` per
    file system does it for a group of several (it reports write-back errors since 5.8): under load each ``fsync`` waits for a journal
    commit of its own, so fifty of them cost ten times one.  Elsewhere every file is flushed after all are written,
    then every directory once."""
    if _SYNCFS is not None and len(fds) > 1:  # one object: its own two flushes cost less than the file system's
        for fd in {os.fstat(fd).st_dev: fd for fd in fds}.values():
            if _SYNCFS(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
        return
    for fd in fds:
        os.fsync(fd)
    for directory in sorted(directories):
        _fsync_dir(directory)


def _find_syncfs():
    """libc's ``syncfs`` where it reports write-back errors (Linux 5.8 and later), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        release = tuple(int(part) for part in os.uname().release.split("-")[0].split(".")[:2])
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (ValueError, OSError, AttributeError):
        return None
    if release < (5, 8):
        return None
    syncfs.argtypes, syncfs.restype = [ctypes.c_int], ctypes.c_int
    return syncfs


_SYNCFS = _find_syncfs()


def _record_group(group: list[_Pending]) -> list[tuple[ReceivedObject, bool] | StorageError]:
    """One multi-row INSERT for the group's rows (in chunks the database takes); a row whose identity is recorded
    already (a re-send that raced this group) goes the one-object way.  Returns, per object in order,
    ``(row, created)`` or its StorageError."""
    for attempt in range(_LOCK_RETRIES):
        try:
            _insert_many([p.row for p in group])
            break
        except OperationalError as exc:  # SQLite: another writer held the lock past the busy timeout
            if "locked" not in str(exc) or attempt == _LOCK_RETRIES - 1:
                return [StorageError("cannot record the objects: the database stayed locked by another writer; "
                                     "the sender keeps them and retries")] * len(group)
            time.sleep(0.05 * (attempt + 1))
        except Exception as exc:  # noqa: BLE001 - database down, disk full in the WAL: every sender retries
            log.error("recording received objects failed: %s", type(exc).__name__)
            return [StorageError("cannot record the objects: the database is unavailable or full; the sender "
                                 "keeps them and retries")] * len(group)
    out: list[tuple[ReceivedObject, bool] | StorageError] = []
    for p in group:
        if p.row.pk is not None:
            out.append((p.row, True))
            continue
        try:
            out.append(_record(p.row, p.row.sop_instance_uid, p.target))
        except StorageError as exc:
            out.append(exc)
        except OperationalError:
            out.append(StorageError(
                "cannot record the object: the database stayed locked by another writer; the sender retries"))
    return out


def _new_row(top: TopLevel, sha: str, size: int, target: Path, *, source: str, calling_ae: str,
             peer_address: str) -> ReceivedObject:
    return ReceivedObject(
        sop_instance_uid=fit_field(ReceivedObject, "sop_instance_uid", top.sop_instance_uid),
        sop_class_uid=fit_field(ReceivedObject, "sop_class_uid", top.sop_class_uid), sha256=sha,
        study_instance_uid=fit_field(ReceivedObject, "study_instance_uid", top.study_instance_uid),
        modality=fit_field(ReceivedObject, "modality", top.modality), source=source,
        calling_ae=fit_field(ReceivedObject, "calling_ae", calling_ae),
        peer_address=fit_field(ReceivedObject, "peer_address", peer_address), file_path=str(target), size=size)


def _keep_and_record(top: TopLevel, sha: str, size: int, keep, place, together: StoreTogether | None, *, source: str,
                     calling_ae: str, peer_address: str) -> tuple[ReceivedObject, bool]:
    """The bytes first (durable), then the row: one INSERT for a new object, no look-up before it (a re-send, the
    rare case, costs a second query to find its row).  ``keep(target, replace)`` places the bytes durably and says
    whether it did; ``place(target)`` places them unflushed for ``together`` (None when the target exists)."""
    target = inbox_path(sha)
    row = _new_row(top, sha, size, target, source=source, calling_ae=calling_ae, peer_address=peer_address)
    if together is not None:
        try:
            fd = place(target)
        except OSError as exc:
            raise StorageError(f"cannot write {target.name}: {exc.strerror or exc}") from exc
        if fd is not None:
            try:
                return together.keep(_Pending(top, row, target, fd=fd))
            finally:
                os.close(fd)
    placed = keep(target, False)
    for attempt in range(_LOCK_RETRIES):
        try:
            return _record(row, top.sop_instance_uid, target, None if placed else keep)
        except OperationalError as exc:  # SQLite: another writer held the lock past the busy timeout
            if "locked" not in str(exc) or attempt == _LOCK_RETRIES - 1:
                raise StorageError("cannot record the object: the database stayed locked by another writer; "
                                   "the sender keeps the object and retries") from exc
            time.sleep(0.05 * (attempt + 1))
    raise StorageError("cannot record the object")  # not reached


_LOCK_RETRIES = 5


def _record(row: ReceivedObject, sop_instance_uid: str, target: Path, keep=None) -> tuple[ReceivedObject, bool]:
    """``keep``: given when a file of these bytes was in the inbox already, to replace it if no row has them."""
    try:
        if keep is not None:
            existing = ReceivedObject.objects.filter(sop_instance_uid=sop_instance_uid, sha256=row.sha256).first()
            if existing is not None:  # a re-send: its row keeps its file (maybe de-identified by now)
                return _resent(existing, target), False
            # No row has these bytes: the file is a leftover (a crash before its row was committed, or the
            # de-identified rewrite of a purged row).  The bytes received now replace it, so that ingest never
            # takes a rewrite for the original.
            keep(target, True)
        for _ in range(2):  # the existing row deleted between the two queries (a purge): insert again
            if _insert_new(row):
                return row, True
            existing = ReceivedObject.objects.filter(sop_instance_uid=sop_instance_uid, sha256=row.sha256).first()
            if existing is not None:
                return _resent(existing, target), False
        raise StorageError("cannot record the object: its row was being deleted; the sender retries")
    except (OperationalError, StorageError):
        raise
    except Exception as exc:  # database down, disk full in the WAL...: the sender must retry
        log.error("recording a received object failed: %s", type(exc).__name__)
        raise StorageError("cannot record the object: the database is unavailable or full; the sender keeps the "
                           "object and retries") from exc


def _insert_new(row: ReceivedObject) -> bool:
    """INSERT the row unless its identity (SOP Instance UID + SHA-256) is recorded already: one statement, in
    autocommit (no transaction of its own: a single statement is atomic).  Sets ``row.pk``; False when it existed."""
    return bool(_insert_many([row]))


def _insert_many(rows: list[ReceivedObject]) -> int:
    """INSERT the rows whose identity is not recorded yet, as few statements as the database's parameter limit
    allows, each atomic in autocommit; sets ``pk`` on each row inserted and returns how many were.  The rows must
    have distinct contents (SHA-256): that is how the returned keys find their rows."""
    using = router.db_for_write(ReceivedObject)
    conn = connections[using]
    opts = ReceivedObject._meta
    fields = [f for f in opts.concrete_fields if not f.primary_key]
    quote = conn.ops.quote_name
    identity = next(c for c in opts.constraints if c.name == "received_object_identity")
    by_sha = {row.sha256: row for row in rows}
    inserted = 0
    size = max(1, conn.ops.bulk_batch_size(fields, rows))
    for start in range(0, len(rows), size):
        chunk = rows[start:start + size]
        values = [f.get_db_prep_save(f.pre_save(row, True), conn) for row in chunk for f in fields]
        one = f"({', '.join(['%s'] * len(fields))})"
        sql = (f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
               f"VALUES {', '.join([one] * len(chunk))} "
               f"ON CONFLICT ({', '.join(quote(opts.get_field(n).column) for n in identity.fields)}) DO NOTHING "
               f"RETURNING {quote(opts.pk.column)}, {quote(opts.get_field('sha256').column)}")
        with conn.cursor() as cursor:
            cursor.execute(sql, values)
            returned = cursor.fetchall()
        for pk, sha in returned:
            row = by_sha[sha]
            row.pk = pk
            row._state.adding, row._state.db = False, using
        inserted += len(returned)
    return inserted


def _resent(existing: ReceivedObject, target: Path) -> ReceivedObject:
    """Identical bytes again: the row keeps its own file (the same one when re-sent the same day; it may hold the
    de-identified rewrite by now) and the copy just kept on another day's path goes; a row whose file was lost gets
    this one."""
    kept = Path(existing.file_path) if existing.file_path else None
    if kept is None or not kept.exists():
        existing.file_path = str(target)
        existing.save(update_fields=["file_path"])
    elif not _same_file(kept, target):
        try:
            target.unlink(missing_ok=True)
        except OSError as exc:  # a stray duplicate in the inbox, never a lost object
            log.warning("could not remove a re-sent duplicate from the inbox: %s", exc.strerror or exc)
    return existing


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


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
