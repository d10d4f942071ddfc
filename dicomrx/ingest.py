"""Ingest: read a stored object, parse it (pure), record it in the registry, schedule the post-commit steps.

``ingest_received_object(id)`` is what the listener's ingest thread, the Celery task and ``reprocess`` call;
``import_path(path)`` stores a file from disk first (``import_dose``).  Refused objects keep their original file and
their ReceivedObject row (state ``skipped`` or ``rejected`` with the reason) and get no study, report or event rows.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

from django.db import DataError, IntegrityError, OperationalError, transaction
from django.utils import timezone
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_partial

from dicomrx import tasks
from dicomrx.errors import IngestError
from dicomrx.parse import parse_dose_object
from dicomrx.storage import StorageError, TopLevel, store_received_object
from dosereg.core import versions
from dosereg.core.dose_report import DoseParseError, NotADoseObject
from dosereg.registry.fields import fit_field
from dosereg.registry.models import ReceivedObject
from dosereg.registry.services.recording import record_report

log = logging.getLogger(__name__)

# IngestOutcome.status values (import_dose counts them); recording's outcomes map onto them (replaced -> imported)
IMPORTED, ALREADY_PRESENT, SUPERSEDED, SKIPPED, FAILED = "imported", "already_present", "superseded", "skipped", "failed"
CORRECTED = "corrected"
STATUSES = (IMPORTED, CORRECTED, ALREADY_PRESENT, SUPERSEDED, SKIPPED, FAILED)
_FROM_RECORDING = {versions.IMPORTED: IMPORTED, versions.REPLACED: IMPORTED, versions.CORRECTED: CORRECTED,
                   versions.SUPERSEDED: SUPERSEDED, versions.ALREADY_PRESENT: ALREADY_PRESENT}
SR_SOP_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.88."


@dataclass
class IngestOutcome:
    status: str  # one of STATUSES
    reason: str = ""
    received_object_id: int | None = None
    study_id: int | None = None
    warnings: list[str] = field(default_factory=list)
    equipment_change_ids: list[int] = field(default_factory=list)


def _refuse(row: ReceivedObject, state: str, reason: str) -> None:
    ReceivedObject.objects.filter(pk=row.pk).update(state=state, reason=fit_field(ReceivedObject, "reason", reason), processed_at=timezone.now())


def _schedule_after_record(study_id: int, change_ids: list[int]) -> None:
    transaction.on_commit(lambda: tasks.after_record.delay([study_id], list(change_ids)))


def _record(record_report, report, row: ReceivedObject, demo: bool):
    with transaction.atomic():
        outcome = record_report(report, row, demo=demo)
        _schedule_after_record(outcome.study_id, outcome.equipment_change_ids)
    return outcome


def ingest_received_object(received_object_id: int, *, demo: bool = False, force: bool = False) -> IngestOutcome:
    """Parse and record one stored object.  An object already processed is left alone unless ``force`` (replay)."""
    row = ReceivedObject.objects.get(pk=received_object_id)
    if row.state != ReceivedObject.STATE_RECEIVED and not force:
        return IngestOutcome(ALREADY_PRESENT, received_object_id=row.pk, reason=row.reason)
    try:
        data = Path(row.file_path).read_bytes()
    except OSError as exc:
        raise IngestError(f"cannot read the stored object: {exc.strerror or exc}") from exc
    ReceivedObject.objects.filter(pk=row.pk).update(attempts=row.attempts + 1)
    try:
        report = parse_dose_object(data, filename=Path(row.file_path).name)
    except NotADoseObject as exc:
        # a non-dose SR is refused as a dose report that is not one; an image without dose is simply skipped
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
    except DoseParseError as exc:
        _refuse(row, ReceivedObject.STATE_REJECTED, str(exc))
        log.warning("object %s rejected: %s", row.sop_instance_uid, exc)
        return IngestOutcome(FAILED, reason=str(exc), received_object_id=row.pk)
    try:
        try:
            outcome = _record(record_report, report, row, demo)
        except IntegrityError:  # a concurrent writer of the same study or unit: once more, on fresh rows
            outcome = _record(record_report, report, row, demo)
    except (DataError, IntegrityError, ValueError, TypeError, OverflowError) as exc:
        # content the registry cannot hold (a garbled value that parsed): refused, nothing half-written
        reason = f"cannot record the object: {type(exc).__name__}: {str(exc)[:300]}"
        _refuse(row, ReceivedObject.STATE_REJECTED, reason)
        log.warning("object %s rejected: %s", row.sop_instance_uid, reason)
        return IngestOutcome(FAILED, reason=reason, received_object_id=row.pk)
    except OperationalError as exc:  # database unavailable or locked: not the object's fault, retry later
        raise IngestError(f"database unavailable: {exc}") from exc
    status = _FROM_RECORDING[outcome.status]
    return IngestOutcome(status, received_object_id=row.pk, study_id=outcome.study_id,
                         warnings=list(report.warnings), equipment_change_ids=outcome.equipment_change_ids)


def _stop_after_study_uid(tag, vr, length) -> bool:
    return tag > 0x0020000D  # SOP class/instance, Modality and Study UID all come before the content tree


def read_top_level(data: bytes) -> TopLevel | None:
    """SOP class/instance, Study UID and modality, without the content tree; None when it is not DICOM at all."""
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


def import_file(path: Path, *, source: str = "import", demo: bool = False) -> IngestOutcome:
    """Store one file from disk (idempotent) and ingest it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return IngestOutcome(FAILED, reason=f"cannot read the file: {exc.strerror or exc}")
    is_dicom_file = len(data) >= 132 and data[128:132] == b"DICM"
    try:
        top = read_top_level(data)
    except Exception as exc:  # noqa: BLE001 - a DICOM file whose top level cannot be read
        if is_dicom_file:
            return IngestOutcome(FAILED, reason=f"unreadable DICOM: {type(exc).__name__}: {exc}")
        return IngestOutcome(SKIPPED, reason="not a DICOM file")
    if top is None:
        return IngestOutcome(SKIPPED, reason="not a DICOM file")
    if not top.sop_instance_uid:
        return IngestOutcome(FAILED, reason="no SOP Instance UID")
    try:
        row, created = store_received_object(data, top, source=source)
    except StorageError as exc:
        return IngestOutcome(FAILED, reason=str(exc))
    if not created and row.state != ReceivedObject.STATE_RECEIVED:
        return IngestOutcome(ALREADY_PRESENT, received_object_id=row.pk, reason=row.reason)
    return ingest_received_object(row.pk, demo=demo)


def iter_files(paths):
    for p in paths:
        p = Path(p)
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.is_file())
        else:
            yield p


def import_path(path, *, source: str = "import") -> list[tuple[Path, IngestOutcome]]:
    """Import a file or a folder (recursive); one outcome per file, the batch carries on after a failure."""
    return [(f, import_file(f, source=source)) for f in iter_files([path])]
