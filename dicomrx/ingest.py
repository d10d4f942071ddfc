"""Ingest: read stored objects, parse them (pure), record them in the registry, run the post-commit steps.

``ingest_batch(ids)`` is what the listener's ingest thread, the Celery task, ``import_dose`` and ``reprocess`` call:
the objects are parsed one by one, recorded in one transaction (``record_batch``: a bad object is refused alone, the
others commit) and the post-commit steps run once for the batch (``dicomrx.pipeline.after_studies_recorded``).
``ingest_received_object(id)`` is a batch of one; ``import_file(path)`` stores a file from disk first.  Refused
objects keep their original file and their ReceivedObject row (state ``skipped`` or ``rejected`` with the reason)
and get no study, report or event rows.  An object whose ingest raised (unreadable file, parser error) stays
``received`` with its attempt counted: ``dicomrx.tasks.RetryPolicy`` decides when it is tried again.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pydicom
from django.conf import settings
from django.db import OperationalError, connections, transaction
from django.db.models import F, Q
from django.utils import timezone
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_partial

from dicomrx import deidentify, pipeline
from dicomrx.errors import IngestError
from dicomrx.outcomes import (
    ALREADY_PRESENT,
    CORRECTED,
    FAILED,
    IMPORTED,
    SKIPPED,
    STATUSES,
    SUPERSEDED,
    IngestOutcome,
)
from dicomrx.parse import identity_elements, parse_dose_object
from dicomrx.storage import (
    InboxGroup,
    StorageError,
    TopLevel,
    iter_files,
    not_a_regular_file,
    store_received_object,
    write_durably,
)
from dosereg.core import versions
from dosereg.core.dose_report import DoseParseError, NotADoseObject
from dosereg.core.gc_pause import collector_paused
from dosereg.registry.fields import fit_field
from dosereg.registry.models import ReceivedObject
from dosereg.registry.services.pseudonyms import patient_pseudonym, pseudonym_enabled
from dosereg.registry.services.recording import RecordOutcome, record_batch
from drl.services import study_exam_matcher

log = logging.getLogger(__name__)

__all__ = ["STATUSES", "IngestError", "IngestOutcome", "import_file", "import_files", "import_path", "ingest_batch",
           "ingest_received_object", "iter_files", "read_top_level", "store_file"]

_FROM_RECORDING = {versions.IMPORTED: IMPORTED, versions.REPLACED: IMPORTED, versions.CORRECTED: CORRECTED,
                   versions.SUPERSEDED: SUPERSEDED, versions.ALREADY_PRESENT: ALREADY_PRESENT}
SR_SOP_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.88."


def _refuse(row: ReceivedObject, state: str, reason: str) -> None:
    ReceivedObject.objects.filter(pk=row.pk).update(state=state, reason=fit_field(ReceivedObject, "reason", reason),
                                                    processed_at=timezone.now())


def _attempt_failed(row: ReceivedObject, reason: str) -> IngestOutcome:
    """An error, not the object's fault as far as we know: counted (the attempt), kept 'received', retried."""
    ReceivedObject.objects.filter(pk=row.pk).update(reason=fit_field(ReceivedObject, "reason", reason))
    log.error("ingest of received object %s failed: %s", row.pk, reason)
    return IngestOutcome(FAILED, reason=reason, received_object_id=row.pk, retry=True)


def _refuse_not_dose(row: ReceivedObject, data: bytes, exc: NotADoseObject) -> IngestOutcome:
    """A non-dose SR is refused as a dose report that is not one; an image without dose is simply skipped."""
    sop_class = row.sop_class_uid
    if not sop_class:
        try:
            sop_class = (read_top_level(data) or TopLevel("")).sop_class_uid
        except Exception:  # noqa: BLE001 - the class only chooses between two refusal states
            sop_class = ""
    state = ReceivedObject.STATE_REJECTED if sop_class.startswith(SR_SOP_CLASS_PREFIX) else \
        ReceivedObject.STATE_SKIPPED
    _refuse(row, state, f"not a dose object: {exc}")
    log.info("object %s %s: not a dose object", row.sop_instance_uid, state)
    return IngestOutcome(SKIPPED, reason=f"not a dose object: {exc}", received_object_id=row.pk)


def _parse(row: ReceivedObject):
    """The parsed report of a stored object, or the outcome that ends its ingest here."""
    try:
        data = Path(row.file_path).read_bytes()
    except OSError as exc:
        return _attempt_failed(row, f"cannot read the stored object: {exc.strerror or exc}")
    try:
        data, pseudonymised = _deidentify_stored(row, data)
    except Exception as exc:  # noqa: BLE001 - unreadable: the parser below says why; the file stays 0600
        log.warning("object %s could not be de-identified: %s", row.pk, type(exc).__name__)
        pseudonymised = False
    try:
        report = parse_dose_object(data, filename=Path(row.file_path).name)
    except NotADoseObject as exc:
        return _refuse_not_dose(row, data, exc)
    except DoseParseError as exc:
        _refuse(row, ReceivedObject.STATE_REJECTED, str(exc))
        log.warning("object %s rejected: %s", row.sop_instance_uid, exc)
        return IngestOutcome(FAILED, reason=str(exc), received_object_id=row.pk)
    except Exception as exc:  # noqa: BLE001 - a parser fault on one object never stops its batch
        log.error("parser fault on received object %s: %s", row.pk, type(exc).__name__)
        return _attempt_failed(row, "the parser met a case it does not handle (logged for the developers); the object "
                                    "is kept and tried again, then waits for reprocess")
    if pseudonymised:  # the registry takes the Patient ID as it is: the pseudonym
        report = replace(report, patient=replace(report.patient, pseudonymised=True))
    return report


def _deidentify_stored(row: ReceivedObject, data: bytes) -> tuple[bytes, bool]:
    """With pseudonymisation on, the stored original is de-identified first thing in ingest, right after the durable
    acknowledgement (dicomrx.deidentify; until now it lived only in the 0600 inbox file), and the registry reads the
    de-identified object, so no text of the original reaches the database.  Returns (the bytes to parse, whether
    their Patient ID is the pseudonym)."""
    if not pseudonym_enabled():
        return data, False
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    if not deidentify.is_deidentified(ds):
        pid = str(ds.get("PatientID", "") or "").strip() or f"unknown:{ds.get('StudyInstanceUID', '')}"
        issuer = str(ds.get("IssuerOfPatientID", "") or "").strip()
        deidentify.deidentify(ds, pseudonym=patient_pseudonym(pid, issuer))
        out = io.BytesIO()
        pydicom.dcmwrite(out, ds, enforce_file_format=False)
        data = out.getvalue()
        write_durably(data, Path(row.file_path))
    return data, True


def _recorded(row: ReceivedObject, report, result: RecordOutcome | Exception) -> IngestOutcome:
    if isinstance(result, Exception):  # content the registry cannot hold: refused, nothing half-written
        reason = f"cannot record the object: {type(result).__name__}: {str(result)[:300]}"
        _refuse(row, ReceivedObject.STATE_REJECTED, reason)
        log.warning("object %s rejected: %s", row.sop_instance_uid, reason)
        return IngestOutcome(FAILED, reason=reason, received_object_id=row.pk)
    return IngestOutcome(_FROM_RECORDING[result.status], received_object_id=row.pk, study_id=result.study_id,
                         warnings=list(report.warnings), equipment_change_ids=result.equipment_change_ids)


def ingest_batch(received_object_ids: list[int], *, demo: bool = False, force: bool = False) -> list[IngestOutcome]:
    """Parse and record these stored objects (see the module docstring); one outcome per id, in order.  An object
    already processed is left alone unless ``force`` (replay).  Raises IngestError when the database is unavailable
    (nothing of the batch is recorded; the objects are tried again)."""
    with collector_paused():  # rows, JSON and content trees without cycles: collections would find nothing to free
        return _ingest_batch(received_object_ids, demo=demo, force=force)


def _ingest_batch(received_object_ids: list[int], *, demo: bool, force: bool) -> list[IngestOutcome]:
    rows = ReceivedObject.objects.in_bulk(list(received_object_ids))
    outcomes: dict[int, IngestOutcome | None] = {}
    repeats: dict[int, IngestOutcome] = {}  # position -> outcome of an id met earlier in the batch
    todo: list[ReceivedObject] = []
    for position, pk in enumerate(received_object_ids):
        row = rows.get(pk)
        if pk in outcomes:
            repeats[position] = IngestOutcome(ALREADY_PRESENT, received_object_id=pk)
        elif row is None:
            outcomes[pk] = IngestOutcome(FAILED, reason="no such received object", received_object_id=pk)
        elif row.state != ReceivedObject.STATE_RECEIVED and not force:
            outcomes[pk] = IngestOutcome(ALREADY_PRESENT, received_object_id=pk, reason=row.reason)
        else:
            todo.append(row)
            outcomes[pk] = None
    todo = _claim(todo, outcomes, force=force)
    parsed = []
    for row in todo:
        result = _parse(row)
        if isinstance(result, IngestOutcome):
            outcomes[row.pk] = result
        else:
            parsed.append((result, row))
    for attempt in (1, 2, 3) if parsed else ():
        try:
            outcomes.update(_record_parsed(parsed, demo=demo, force=force))
            break
        except OperationalError as exc:  # database unavailable or locked: not the objects' fault, retry later
            if attempt < 3 and _conflict(exc):  # a deadlock with another worker's batch: the claims hold, go again
                log.warning("a batch of %d objects was rolled back by a deadlock with a concurrent batch; "
                            "recording it again", len(parsed))
                continue
            _give_back_attempts([row.pk for _, row in parsed])
            raise IngestError(f"database unavailable: {exc}") from exc
    return [repeats.get(position) or outcomes[pk] for position, pk in enumerate(received_object_ids)]


def _claim(rows: list[ReceivedObject], outcomes: dict, *, force: bool) -> list[ReceivedObject]:
    """The rows this process may ingest.  The attempt is counted first (an object that crashes its worker is not
    tried for ever) by an update that is also a claim: conditional on the attempts read and, unless ``force``, on
    no attempt in the last INGEST_RETRY_DELAY_S (a lease: the retry policy waits as long before it calls an attempt
    lost).  Of two processes on the same object (a second ``import_dose``, a message queued twice by the sweeper)
    one updates it; the other leaves it to that one."""
    now, claimed = timezone.now(), set()
    lease_start = now - dt.timedelta(seconds=settings.INGEST_RETRY_DELAY_S)

    def claim(pks: list[int], attempts: int) -> int:
        mine = ReceivedObject.objects.filter(pk__in=pks, attempts=attempts)
        if not force:
            mine = mine.filter(Q(processed_at__isnull=True) | Q(processed_at__lte=lease_start),
                               state=ReceivedObject.STATE_RECEIVED)
        return mine.update(attempts=F("attempts") + 1, processed_at=now)

    by_attempts: dict[int, list[int]] = {}
    for row in rows:
        by_attempts.setdefault(row.attempts, []).append(row.pk)
    for attempts, pks in by_attempts.items():
        got = claim(pks, attempts)  # one UPDATE for the group: usually it claims them all
        if got == len(pks):
            claimed.update(pks)
        elif got:  # contested: ours are those stamped with this very attempt
            claimed.update(ReceivedObject.objects.filter(pk__in=pks, attempts=attempts + 1, processed_at=now)
                           .values_list("pk", flat=True))
    for row in rows:
        if row.pk not in claimed:
            outcomes[row.pk] = IngestOutcome(ALREADY_PRESENT, received_object_id=row.pk,
                                             reason="being ingested by another process")
    return [row for row in rows if row.pk in claimed]


def _conflict(exc: OperationalError) -> bool:
    """PostgreSQL chose this transaction as a deadlock's or a serialization conflict's victim (SQLSTATE 40P01,
    40001): it is rolled back whole and may simply run again (not inside a caller's transaction, which is lost)."""
    return getattr(exc.__cause__, "pgcode", None) in ("40P01", "40001") and \
        not transaction.get_connection().in_atomic_block


def _give_back_attempts(ids: list[int]) -> None:
    """The database was away: the attempt does not count against the objects (when it can be said at all)."""
    try:
        ReceivedObject.objects.filter(pk__in=ids, attempts__gt=0).update(attempts=F("attempts") - 1)
    except OperationalError:
        pass


# pg_advisory_xact_lock key ("Dose") under which the recording transactions of concurrent batches take turns
RECORDING_LOCK = 0x446F7365


def _take_turn() -> None:
    """On PostgreSQL the recording transactions of concurrent batches (Celery worker processes) take turns, as
    SQLite's IMMEDIATE transactions make them do: batches from the same units update the same equipment rows in
    different orders, and with four worker processes most batches deadlocked, were rolled back three times and left
    for the retry policy (minutes).  Parsing and the post-commit steps, outside the transaction, still run side by
    side."""
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RECORDING_LOCK])


def _record_parsed(parsed: list, *, demo: bool, force: bool) -> dict[int, IngestOutcome]:
    with transaction.atomic():
        _take_turn()
        # the studies the batch opens are written already mapped (drl's rules, the post-commit step's own match),
        # with the effective dose that follows: no UPDATE of each new study and its indexes after the commit
        results = record_batch(parsed, demo=demo, replay=force, exam_of=None if force else study_exam_matcher())
        outcomes = {row.pk: _recorded(row, report, result)
                    for (report, row), result in zip(parsed, results, strict=True)}
        recorded = [o for o in outcomes.values() if o.study_id and o.status != ALREADY_PRESENT]
        study_ids = [o.study_id for o in recorded]
        change_ids = [c for o in recorded for c in o.equipment_change_ids]
        settled = frozenset(r.study_id for r in results if isinstance(r, RecordOutcome) and r.exam_settled)
        if study_ids or change_ids:  # mapping, effective dose, triggers, DRL changes: once for the batch
            transaction.on_commit(lambda: pipeline.after_studies_recorded(study_ids, change_ids,
                                                                          exam_settled=settled), robust=True)
    log.info("ingested a batch of %d objects", len(parsed))
    return outcomes


def ingest_received_object(received_object_id: int, *, demo: bool = False, force: bool = False) -> IngestOutcome:
    """Parse and record one stored object: a batch of one."""
    return ingest_batch([received_object_id], demo=demo, force=force)[0]


def _stop_after_study_uid(tag, vr, length) -> bool:
    return tag > 0x0020000D  # SOP class/instance, Modality and Study UID all come before the content tree


def read_top_level(data: bytes) -> TopLevel | None:
    """SOP class/instance, Study UID and modality, without the content tree; None when it is not DICOM at all.

    A plain Part 10 file (Explicit or Implicit VR Little Endian, the elements before the Study UID of defined
    length) is read from its bytes directly (``identity_elements``: a few microseconds, where pydicom's partial
    read took a third of a millisecond, a tenth of importing an image header); anything else through pydicom."""
    found = identity_elements(data)
    if found is not None:
        return TopLevel(sop_instance_uid=found.get(0x00080018, ""), sop_class_uid=found.get(0x00080016, ""),
                        study_instance_uid=found.get(0x0020000D, ""), modality=found.get(0x00080060, ""))
    try:
        ds = read_partial(io.BytesIO(data), stop_when=_stop_after_study_uid)
    except InvalidDicomError:
        try:  # no preamble/file meta: accept it only if it really reads as a dataset with a SOP Instance UID
            ds = read_partial(io.BytesIO(data), stop_when=_stop_after_study_uid, force=True)
            if not str(ds.get("SOPInstanceUID", "") or ""):
                return None
        except Exception:  # noqa: BLE001 - whatever pydicom raises here, it is not DICOM
            return None
    file_meta = getattr(ds, "file_meta", None)
    sop = str(ds.get("SOPInstanceUID", "") or getattr(file_meta, "MediaStorageSOPInstanceUID", "") or "").strip()
    sop_class = str(ds.get("SOPClassUID", "") or getattr(file_meta, "MediaStorageSOPClassUID", "") or "").strip()
    return TopLevel(sop_instance_uid=sop, sop_class_uid=sop_class,
                    study_instance_uid=str(ds.get("StudyInstanceUID", "") or "").strip(),
                    modality=str(ds.get("Modality", "") or "").strip())


def store_file(path: Path, *, source: str = "import") -> IngestOutcome | ReceivedObject:
    """Store one file from disk (idempotent): its ReceivedObject row to ingest, or the outcome that ends it here."""
    item = _readable_object(Path(path))
    if isinstance(item, IngestOutcome):
        return item
    try:
        return _stored_outcome(store_received_object(*item, source=source))
    except StorageError as exc:
        return _stored_outcome(exc)


def store_files(paths, *, source: str = "import") -> list[IngestOutcome | ReceivedObject]:
    """Store files from disk together (idempotent): per file, in order, its ReceivedObject row to ingest or the
    outcome that ends it here.  The group is made durable at once (``InboxGroup``: one flush per file and directory
    and one INSERT), which is most of what keeping a small object costs when each is kept alone."""
    out: list[IngestOutcome | ReceivedObject] = []
    group = InboxGroup(source=source)
    slots: list[IngestOutcome | int] = []

    def commit():
        stored = group.commit() if len(group) else []
        out.extend(slot if isinstance(slot, IngestOutcome) else _stored_outcome(stored[slot]) for slot in slots)
        slots.clear()

    for path in paths:
        item = _readable_object(Path(path))  # written at once: a group of large files is never held in memory
        if isinstance(item, IngestOutcome):
            slots.append(item)
            continue
        slots.append(len(group))
        group.add(*item)
        if len(group) >= InboxGroup.MAX_OPEN:
            commit()
    commit()
    return out


def _readable_object(path: Path) -> tuple[bytes, TopLevel] | IngestOutcome:
    """The file's bytes and top level, or why it is not stored."""
    irregular = not_a_regular_file(path)
    if irregular:
        return IngestOutcome(SKIPPED, reason=f"not a regular file: {irregular}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        return IngestOutcome(FAILED, reason=f"cannot read the file: {exc.strerror or exc}")
    is_dicom_file = len(data) >= 132 and data[128:132] == b"DICM"
    try:
        top = read_top_level(data)
    except Exception as exc:  # noqa: BLE001 - a DICOM file whose top level cannot be read
        if is_dicom_file:
            return IngestOutcome(FAILED, reason=f"unreadable DICOM: the top level cannot be decoded ({str(exc)[:120]})")
        return IngestOutcome(SKIPPED, reason="not a DICOM file")
    if top is None:
        return IngestOutcome(SKIPPED, reason="not a DICOM file")
    if not top.sop_instance_uid:
        return IngestOutcome(FAILED, reason="no SOP Instance UID")
    return data, top


def _stored_outcome(stored: tuple[ReceivedObject, bool] | StorageError) -> IngestOutcome | ReceivedObject:
    if isinstance(stored, StorageError):
        return IngestOutcome(FAILED, reason=str(stored))
    row, created = stored
    if not created and row.state != ReceivedObject.STATE_RECEIVED:
        return IngestOutcome(ALREADY_PRESENT, received_object_id=row.pk, reason=row.reason)
    return row


def import_files(paths, *, source: str = "import", demo: bool = False, batch_size: int = 50):
    """Store and ingest files from disk in batches (each batch stored together, then ingested in one transaction);
    yields (path, outcome) per file, in order.  On PostgreSQL, outside a caller's transaction, a next batch of large
    files (``STORE_AHEAD_MIN_BYTES``) is stored (read, written, flushed to disk, its rows committed: disk waits
    mostly) in a thread of its own while this one is ingested (parsed and recorded: CPU); the promise is unchanged,
    a batch is ingested only after it is stored."""
    batches = _batches(paths, batch_size)
    batch = next(batches, None)
    stored = store_files(batch, source=source) if batch else None
    ahead = None  # made for the first batch stored ahead: otherwise no thread and no second connection
    try:
        while batch is not None:
            following = next(batches, None)
            storing = None
            if following and _bytes(following) >= STORE_AHEAD_MIN_BYTES and (ahead or _may_store_ahead()):
                ahead = ahead or _StoringAhead(source)
                storing = ahead.store(following)
            yield from _ingested(batch, stored, demo=demo)
            if following:
                stored = storing.result() if storing else store_files(following, source=source)
            batch = following
    finally:
        if ahead:
            ahead.close()


def _batches(paths, size: int):
    batch: list[Path] = []
    for path in paths:
        batch.append(path)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _ingested(batch: list[Path], stored: list, *, demo: bool):
    ids = [r.pk for r in stored if isinstance(r, ReceivedObject)]
    done = dict(zip(ids, ingest_batch(ids, demo=demo), strict=True)) if ids else {}
    for path, r in zip(batch, stored, strict=True):
        yield path, done[r.pk] if isinstance(r, ReceivedObject) else r


# A batch of files this large is stored ahead: its store is mostly writing and flushing bytes, which a thread
# overlaps with the ingest of the batch before it (bench/ingest.py --many 40 --batch 10 --kind RF on PostgreSQL:
# 120 -> 95-104 ms per 3.3 MB report).  A batch of small files is mostly Python work, which a thread cannot overlap
# (one interpreter lock) and whose switching made small CT reports slower (3.0-3.2 -> 3.4-3.6 ms each).
STORE_AHEAD_MIN_BYTES = 16 * 1024 * 1024


def _bytes(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        try:
            total += os.stat(path).st_size
        except OSError:
            pass  # the store says what is wrong with it
    return total


def _may_store_ahead() -> bool:
    """Storing in a thread needs a database connection of its own whose commits others see: PostgreSQL, outside a
    caller's transaction (SQLite would make the two wait for each other's write lock)."""
    connection = transaction.get_connection()
    return connection.vendor == "postgresql" and not connection.in_atomic_block


class _StoringAhead:
    """One thread that stores the batch after the one being ingested (``store``: a future of ``store_files``'s
    list); its database connection is closed with it."""

    def __init__(self, source: str):
        self._source = source
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-ahead")

    def store(self, batch: list[Path]) -> Future:
        return self._pool.submit(store_files, batch, source=self._source)

    def close(self) -> None:
        """Waits for a store under way (what it stored is durable and recorded: ingested by the next import, or by
        the sweeper), then closes the thread's connection."""
        self._pool.submit(connections.close_all).result()
        self._pool.shutdown(wait=True)


def import_file(path: Path, *, source: str = "import", demo: bool = False) -> IngestOutcome:
    """Store one file from disk (idempotent) and ingest it."""
    [(_, outcome)] = import_files([path], source=source, demo=demo)
    return outcome


def import_path(path, *, source: str = "import") -> list[tuple[Path, IngestOutcome]]:
    """Import a file or a folder (recursive); one outcome per file, the batch carries on after a failure."""
    return list(import_files(iter_files([path]), source=source))
