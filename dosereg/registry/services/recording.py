"""Recording a parsed dose object in the registry: one transaction, bulk inserts, idempotent and version-aware.

``record_report(report, received)`` stores one :class:`dosereg.core.dose_report.DoseReport` (the parser's output) for the
stored :class:`~dosereg.registry.models.ReceivedObject` it came from.  A handful of queries per object, not per event.

Versions (issue 3, design §4): identical bytes again never reach this function (the ReceivedObject already exists and
is processed).  Otherwise the Irradiation Event UID sets of the study's current reports decide:

* the new set is the same as, or a subset of, a current report's set -> the new report is superseded (kept, its events
  not current);
* it is a superset of a current report's set -> it replaces that report (the old one is superseded);
* disjoint -> another report of the study (a continued report; totals add up);
* partial overlap -> union by event UID, the newer report's values win for the shared events, both flagged.

The same SOP Instance UID with other content is recorded and flagged, as a report of the study it names.  Image
headers are one event per image; the same exposure sent twice (``exposure_key``) counts once.  Study totals are the
sums over the current reports' totals as written (RDSR, RRDSR, private summary), quantity by quantity; a quantity no
current report carries comes from the image headers (each exposure once).

``record_reports_bulk(reports)`` is the batch path of the same service for objects that come without files
(``generate_demo_data --bulk``, benchmark scale): the same row builders, patients and units resolved once per batch,
rows written with multi-row inserts (PostgreSQL: COPY), totals computed as ``study_update_totals`` would; a report
of a study already in the registry goes through ``record_report``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import sqlite3
import zoneinfo
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from dosereg.core import dose_report as dr
from dosereg.registry.models import (
    AccumulatedDose,
    DoseCheckOverride,
    DoseReport,
    Equipment,
    EquipmentChange,
    IrradiationEvent,
    Patient,
    ReceivedObject,
    Study,
)
from dosereg.registry.services import effective_dose
from dosereg.registry.services.pseudonyms import patient_pseudonym, pseudonym_enabled

log = logging.getLogger(__name__)

REPORT_KINDS = (dr.SOURCE_RDSR, dr.SOURCE_RRDSR, dr.SOURCE_PRIVATE_SUMMARY)  # sources of study totals
EVENT_COLUMNS = tuple(f.name for f in IrradiationEvent._meta.get_fields() if getattr(f, "attname", None))
ACCUMULATED_COLUMNS = {f.name for f in AccumulatedDose._meta.get_fields() if getattr(f, "attname", None)}
# study total column <- accumulated column(s), as written
TOTALS = {
    "dlp_total_mgycm": "dlp_total_mgycm",
    "kap_total_gycm2": "kap_total_gycm2",
    "ka_r_total_mgy": "ka_r_total_mgy",
    "fluoro_time_total_s": "fluoro_time_total_s",
    "agd_left_mgy": "agd_left_mgy",
    "agd_right_mgy": "agd_right_mgy",
    "activity_mbq": "activity_mbq",
}


@dataclass
class RecordOutcome:
    """What recording one object did.  ``status``: imported, superseded (nothing new), or replaced."""

    status: str
    study_id: int
    report_id: int
    equipment_change_ids: list[int] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


# --- time ------------------------------------------------------------------------------------------------------------
def _zone(offset: str = ""):
    """The zone of DICOM dates/times: (0008,0201) Timezone Offset From UTC when sent, else settings.TIME_ZONE."""
    if offset and len(offset) == 5 and offset[0] in "+-" and offset[1:].isdigit():
        minutes = int(offset[1:3]) * 60 + int(offset[3:5])
        return dt.timezone(dt.timedelta(minutes=minutes if offset[0] == "+" else -minutes))
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def _aware(value: dt.datetime | None, offset: str = "") -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_zone(offset))
    return value.astimezone(dt.UTC)


# --- patient ---------------------------------------------------------------------------------------------------------
def _age_years(info: dr.PatientInfo, study_date: dt.date | None) -> float | None:
    """Decimal years from a valid birth date to the study date, else Patient's Age, else null."""
    birth = info.birth_date
    if birth is not None and study_date is not None and birth <= study_date:
        return round((study_date - birth).days / 365.2425, 2)
    return info.age_years


def _patient_identity(report: dr.DoseReport) -> tuple[str, str, dict, list[str]]:
    """(issuer, patient id or its pseudonym, defaults for a new row, flags) of the report's patient."""
    info = report.patient
    flags: list[str] = []
    pid = (info.patient_id or "").strip()
    issuer = (info.issuer_of_patient_id or "").strip()
    if not pid:
        pid = f"unknown:{report.study.study_instance_uid}"
        flags.append("patient_id_missing")
    pseudo = pseudonym_enabled()
    if pseudo:
        pid = patient_pseudonym(pid, issuer)
    defaults = {"sex": info.sex or "", "pseudonymised": pseudo}
    if not pseudo:
        defaults.update(name=(info.name or "")[:200], birth_date=info.birth_date)
    return issuer[:128], pid[:128], defaults, flags


def _patient_fill_in(patient: Patient, info: dr.PatientInfo) -> list[str]:
    """Fill in what an earlier object of a known patient did not carry; returns the changed field names."""
    pseudo = pseudonym_enabled()
    changed = []
    if not patient.sex and info.sex:
        patient.sex, changed = info.sex, changed + ["sex"]
    if not pseudo and not patient.name and info.name:
        patient.name, changed = info.name[:200], changed + ["name"]
    if not pseudo and patient.birth_date is None and info.birth_date:
        patient.birth_date, changed = info.birth_date, changed + ["birth_date"]
    return changed


def _patient(report: dr.DoseReport) -> tuple[Patient, list[str]]:
    issuer, pid, defaults, flags = _patient_identity(report)
    patient, created = Patient.objects.get_or_create(issuer=issuer, patient_id=pid, defaults=defaults)
    if not created:
        changed = _patient_fill_in(patient, report.patient)
        if changed:
            patient.save(update_fields=changed)
    return patient, flags


# --- equipment -------------------------------------------------------------------------------------------------------
def _identity_key(eq: dr.EquipmentInfo) -> str:
    if eq.device_observer_uid:
        return f"uid:{eq.device_observer_uid}"[:400]
    return "hdr:" + "|".join(p.strip().lower() for p in (eq.manufacturer, eq.model, eq.serial_number,
                                                            eq.station_name))[:396]


def _new_unit(key: str, eq: dr.EquipmentInfo, is_report: bool, now, demo: bool) -> Equipment:
    return Equipment.objects.create(
        identity_key=key, device_observer_uid=eq.device_observer_uid[:64], manufacturer=eq.manufacturer[:128],
        model=eq.model[:128], serial_number=eq.serial_number[:128], station_name=eq.station_name[:64],
        institution=eq.institution[:128], department=eq.department[:128],
        software_versions=eq.software_versions[:255], detector_id=eq.detector_id[:128],
        sends_dose_reports=is_report, last_object_at=now, last_report_at=now if is_report else None, demo=demo)


def _equipment(report: dr.DoseReport, study_date: dt.date | None, demo: bool) -> tuple[Equipment, list[int]]:
    eq = report.equipment
    key = _identity_key(eq)
    now = timezone.now()
    is_report = report.source_kind in REPORT_KINDS
    unit = Equipment.objects.filter(identity_key=key).first()
    changes: list[EquipmentChange] = []
    if unit is None:
        try:
            with transaction.atomic():  # another worker may meet the same new unit at the same moment
                unit = _new_unit(key, eq, is_report, now, demo)
        except IntegrityError:
            unit = Equipment.objects.get(identity_key=key)
            is_new = False
        else:
            is_new = True
    else:
        is_new = False
    if is_new:
        changes.append(EquipmentChange(equipment=unit, kind="new_unit", new_value=unit.display_name[:255],
                                       effective_date=study_date, source_sop_instance_uid=report.sop_instance_uid[:64]))
    else:
        update = {"last_object_at": now}
        if is_report:
            update.update(sends_dose_reports=True, last_report_at=now)
        for kind, attr, value in (("software", "software_versions", eq.software_versions),
                                  ("serial", "serial_number", eq.serial_number),
                                  ("detector", "detector_id", eq.detector_id)):
            old = getattr(unit, attr)
            if value and value != old:
                if old:  # a value on a known unit changed (an empty one being filled in is no change)
                    changes.append(EquipmentChange(equipment=unit, kind=kind, old_value=old[:255],
                                                   new_value=value[:255], effective_date=study_date,
                                                   source_sop_instance_uid=report.sop_instance_uid[:64]))
                update[attr] = value[:255]
        for attr in ("manufacturer", "model", "station_name", "institution", "department"):
            value = getattr(eq, attr)
            if value and not getattr(unit, attr):
                update[attr] = value[:128]
        Equipment.objects.filter(pk=unit.pk).update(**update)
        for k, v in update.items():
            setattr(unit, k, v)
    if changes:
        changes = EquipmentChange.objects.bulk_create(changes)
    return unit, [c.pk for c in changes if c.pk is not None]


# --- study -----------------------------------------------------------------------------------------------------------
def _study_values(report: dr.DoseReport) -> dict:
    """The study's columns from one object (a new study takes them all; a known one fills in its blanks)."""
    s = report.study
    study_dt = None
    if s.study_date is not None:
        study_dt = _aware(dt.datetime.combine(s.study_date, s.study_time or dt.time(0)), s.timezone_offset)
    age = _age_years(report.patient, s.study_date)
    code = s.requested_procedure_code
    values = {
        "accession_number": s.accession_number[:64], "study_datetime": study_dt, "study_date": s.study_date,
        "study_description": s.study_description[:255],
        "requested_procedure_description": s.requested_procedure_description[:255],
        "requested_procedure_code": (code.value if code else "")[:64],
        "requested_procedure_scheme": (code.scheme if code else "")[:32],
        "performed_procedure_description": s.performed_procedure_description[:255],
        "referring_physician": s.referring_physician[:200], "performing_physician": s.performing_physician[:200],
        "operators": s.operators[:255], "age_years": age, "sex": report.patient.sex or "",
        "weight_kg": report.patient.weight_kg, "height_m": report.patient.height_m,
    }
    return values


def _study(report: dr.DoseReport, patient: Patient, unit: Equipment, demo: bool, flags: list[str]) -> Study:
    s = report.study
    values = _study_values(report)
    study = Study.objects.select_for_update().filter(study_instance_uid=s.study_instance_uid[:64]).first()
    if study is None:
        study_flags = list(flags)
        if s.study_date is None:
            study_flags.append("study_date_unknown")
        try:
            with transaction.atomic():  # another worker may create the same study at the same moment
                return Study.objects.create(study_instance_uid=s.study_instance_uid[:64], patient=patient,
                                            equipment=unit, demo=demo, flags=study_flags, **values)
        except IntegrityError:
            study = Study.objects.select_for_update().get(study_instance_uid=s.study_instance_uid[:64])
    changed: list[str] = []
    for name, value in values.items():  # fill in what earlier objects of the study did not carry
        if value not in (None, "") and getattr(study, name) in (None, ""):
            setattr(study, name, value)
            changed.append(name)
    if study.equipment_id is None:
        study.equipment, changed = unit, changed + ["equipment"]
    new_flags = list(flags)
    if study.patient_id != patient.pk:
        new_flags.append("patient_mismatch")
    if s.study_date is not None and "study_date_unknown" in study.flags:
        study.flags = [f for f in study.flags if f != "study_date_unknown"]
        changed.append("flags")
    for f in new_flags:
        if f not in study.flags:
            study.flags = study.flags + [f]
            changed.append("flags")
    if changed:
        study.save(update_fields=sorted(set(changed)) + ["updated_at"])
    return study


# --- rows ------------------------------------------------------------------------------------------------------------
def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.time, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dr.Code):
        return [value.scheme, value.value, value.meaning]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _shallow_jsonable(d: dict) -> dict:
    """The parser's attributes are JSON-able by contract; convert only top-level codes and dates (fast path for
    reports with hundreds of events)."""
    plain = (str, int, float, bool, list, dict, type(None))
    if all(isinstance(v, plain) for v in d.values()):
        return d
    return {k: (v if isinstance(v, plain) else _jsonable(v)) for k, v in d.items()}


def _code_list(code: dr.Code | None):
    return [code.scheme, code.value, code.meaning] if code else None


def _event_row(ev: dr.IrradiationEventData, *, study: Study, rep: DoseReport, seq: int, offset: str,
               age: float | None) -> IrradiationEvent:
    row = IrradiationEvent(
        study=study, report=rep, irradiation_event_uid=(ev.irradiation_event_uid or None),
        source_sop_instance_uid=rep.sop_instance_uid, sequence=seq, event_type=ev.event_type[:40],
        datetime=_aware(ev.datetime, offset), protocol=(ev.protocol or "")[:255],
        target_region=(ev.target_region.meaning if ev.target_region else "")[:128],
        target_region_code=(ev.target_region.value if ev.target_region else "")[:64],
        plane=ev.plane or "", is_localizer=ev.is_localizer, exposure_key=(ev.exposure_key or "")[:255])
    attrs = dict(ev.attributes)
    row.ctdi_phantom = str(attrs.get("ctdi_phantom") or "")[:16]
    row.laterality = str(attrs.get("laterality") or "")[:8]
    row.view = str(attrs.get("view") or "")[:64]
    raw = {}
    for name, q in ev.quantities.items():
        if name in EVENT_COLUMNS and name not in ("effective_dose_estimate_msv",):
            setattr(row, name, q.value)
        else:
            attrs.setdefault("quantities", {})[name] = q.value
        raw[name] = [q.raw_value, q.raw_unit]
    if ev.event_type_code is not None:
        attrs["event_type_code"] = _code_list(ev.event_type_code)
    if ev.target_region is not None:
        attrs["target_region_code"] = _code_list(ev.target_region)
    row.raw = raw
    row.attributes = _shallow_jsonable(attrs)
    row.content = ev.content  # JSON-able by the parser's contract (dicts, lists, strings, numbers)
    return row


def _accumulated_row(acc: dr.AccumulatedDoseData, rep: DoseReport) -> AccumulatedDose:
    row = AccumulatedDose(report=rep, plane=acc.plane or "")
    raw, attrs = {}, dict(acc.attributes)
    for name, q in acc.quantities.items():
        if name in ACCUMULATED_COLUMNS and name not in ("id", "report", "plane", "raw", "attributes"):
            setattr(row, name, q.value)
        else:
            attrs.setdefault("quantities", {})[name] = q.value
        raw[name] = [q.raw_value, q.raw_unit]
    row.raw = raw
    row.attributes = _jsonable(attrs)
    return row


def _dose_check_row(chk: dr.DoseCheckData, rep: DoseReport) -> DoseCheckOverride:
    return DoseCheckOverride(
        report=rep, irradiation_event_uid=(chk.irradiation_event_uid or "")[:128], kind=chk.kind[:12],
        dlp_configured=chk.dlp_configured, ctdivol_configured=chk.ctdivol_configured,
        dlp_value_mgycm=chk.dlp_value_mgycm, ctdivol_value_mgy=chk.ctdivol_value_mgy,
        dlp_forward_estimate_mgycm=chk.dlp_forward_estimate_mgycm,
        ctdivol_forward_estimate_mgy=chk.ctdivol_forward_estimate_mgy,
        reason_for_proceeding=chk.reason_for_proceeding, person_name=chk.person_name[:200])


# --- the service -----------------------------------------------------------------------------------------------------
def _newer(a: dr.DoseReport, b: DoseReport) -> bool:
    """Is the incoming report ``a`` newer than the stored ``b``?  By content date/time; arrival breaks ties."""
    a_dt = _aware(a.content_datetime, a.study.timezone_offset)
    if a_dt is None or b.content_datetime is None:
        return True
    return a_dt >= b.content_datetime


@transaction.atomic
def record_report(report: dr.DoseReport, received: ReceivedObject, *, demo: bool = False) -> RecordOutcome:
    """Store one parsed dose object of ``received`` (see the module docstring).  Replaying an object (reprocess)
    first removes what it recorded before."""
    old_id = DoseReport.objects.filter(received_object=received).values_list("id", flat=True).first()
    if old_id is not None:  # replay through the current parser: the new result replaces the old one
        revived = list(DoseReport.objects.filter(superseded_by_id=old_id).values_list("id", flat=True))
        IrradiationEvent.objects.filter(report_id=old_id).delete()
        DoseReport.objects.filter(pk=old_id).delete()
        if revived:  # the reports it had superseded are current again until the versions are compared anew
            DoseReport.objects.filter(pk__in=revived).update(state=DoseReport.STATE_CURRENT)
            IrradiationEvent.objects.filter(report_id__in=revived).update(is_current=True)

    study_date = report.study.study_date
    patient, flags = _patient(report)
    unit, change_ids = _equipment(report, study_date, demo)
    study = _study(report, patient, unit, demo, flags)
    offset = report.study.timezone_offset

    report_flags = list(report.flags)
    if DoseReport.objects.filter(sop_instance_uid=report.sop_instance_uid[:128]).exclude(
            received_object=received).exists():
        report_flags.append("sop_instance_uid_reused")  # same SOP Instance UID, other content
    is_report = report.source_kind in REPORT_KINDS
    new_uids = {e.irradiation_event_uid for e in report.events if e.irradiation_event_uid}

    # the study's current events with a UID, by report (one query)
    current: dict[int, set[str]] = {}
    image_uid_events: dict[str, int] = {}
    image_keys: set[str] = set()
    for ev_id, rep_id, uid, kind, key in IrradiationEvent.objects.filter(study=study, is_current=True).values_list(
            "id", "report_id", "irradiation_event_uid", "report__source_kind", "exposure_key"):
        if kind in REPORT_KINDS:
            if uid:
                current.setdefault(rep_id, set()).add(uid)
        else:
            if uid:
                image_uid_events[uid] = ev_id
            if key:
                image_keys.add(key)
    reports_by_id = {r.pk: r for r in DoseReport.objects.filter(pk__in=list(current))}

    status = "imported"
    superseded_by: DoseReport | None = None
    to_supersede: list[int] = []
    overlap_lose: dict[int, set[str]] = {}  # stored report -> its event UIDs the new report takes over
    new_lose: set[str] = set()  # new report's event UIDs the stored (newer) report keeps
    if is_report and new_uids:
        for rep_id, uids in current.items():
            if new_uids <= uids:
                superseded_by = reports_by_id[rep_id]
                break
            if uids < new_uids:
                to_supersede.append(rep_id)
            elif uids & new_uids:
                report_flags.append("partial_overlap")
                if _newer(report, reports_by_id[rep_id]):
                    overlap_lose[rep_id] = uids & new_uids
                else:
                    new_lose |= uids & new_uids
    elif is_report and report.sop_instance_uid:
        # no event UIDs (a summary-only report): a re-issue under the same SOP Instance UID replaces the old one
        to_supersede = list(DoseReport.objects.filter(
            study=study, state=DoseReport.STATE_CURRENT, sop_instance_uid=report.sop_instance_uid[:128],
            source_kind=report.source_kind).values_list("id", flat=True))
    if superseded_by is not None:
        status = "superseded"
    elif to_supersede:
        status = "replaced"

    rep = DoseReport.objects.create(
        received_object=received, study=study, sop_instance_uid=report.sop_instance_uid[:128],
        sop_class_uid=report.sop_class_uid[:64], source_kind=report.source_kind, template=report.template[:40],
        state=DoseReport.STATE_SUPERSEDED if superseded_by else DoseReport.STATE_CURRENT,
        superseded_by=superseded_by, modality_types=list(report.modality_types),
        content_datetime=_aware(report.content_datetime, offset),
        scope_of_accumulation=report.scope_of_accumulation[:40], scope_uid=report.scope_uid[:128],
        event_uid_count=len(new_uids), flags=report_flags, warnings=list(report.warnings),
        content=_jsonable(report.content))

    if to_supersede:
        DoseReport.objects.filter(pk__in=to_supersede).update(state=DoseReport.STATE_SUPERSEDED, superseded_by=rep)
        IrradiationEvent.objects.filter(report_id__in=to_supersede).update(is_current=False)
    for rep_id, uids in overlap_lose.items():
        IrradiationEvent.objects.filter(report_id=rep_id, irradiation_event_uid__in=uids).update(is_current=False)
        DoseReport.objects.filter(pk=rep_id).update(flags=reports_by_id[rep_id].flags + ["partial_overlap"])
    if is_report and superseded_by is None and new_uids & set(image_uid_events):
        # an image header carried the same Irradiation Event UID: the report's event is the one that counts
        IrradiationEvent.objects.filter(pk__in=[image_uid_events[u] for u in new_uids & set(image_uid_events)]
                                        ).update(is_current=False)

    age = study.age_years
    rows = []
    seen_keys = set(image_keys)
    seen_uids = set().union(*current.values()) if current else set()
    taken: set[str] = set()
    for seq, ev in enumerate(report.events):
        row = _event_row(ev, study=study, rep=rep, seq=seq, offset=offset, age=age)
        if superseded_by is not None:
            row.is_current = False
        elif is_report:
            row.is_current = row.irradiation_event_uid not in new_lose
        else:  # an image header: the same exposure (or a report's event) counts once
            if row.exposure_key and row.exposure_key in seen_keys:
                row.is_current = False
            elif row.irradiation_event_uid and row.irradiation_event_uid in (seen_uids | set(image_uid_events)):
                row.is_current = False
            if row.exposure_key:
                seen_keys.add(row.exposure_key)
        if row.irradiation_event_uid and row.is_current:
            if row.irradiation_event_uid in taken:
                row.is_current = False  # the same UID twice in one object: keep the first
            taken.add(row.irradiation_event_uid)
        _set_effective_dose(row, age=age, exam_region="")
        rows.append(row)
    _insert_rows(IrradiationEvent, rows)
    _widen_sqlite_batches()
    AccumulatedDose.objects.bulk_create([_accumulated_row(a, rep) for a in report.accumulated])
    if report.dose_checks:
        DoseCheckOverride.objects.bulk_create([_dose_check_row(c, rep) for c in report.dose_checks])

    study_update_totals(study)
    ReceivedObject.objects.filter(pk=received.pk).update(
        state=ReceivedObject.STATE_SUPERSEDED if superseded_by else ReceivedObject.STATE_INGESTED,
        study_instance_uid=report.study.study_instance_uid[:128], processed_at=timezone.now(), reason="",
        warnings=list(report.warnings))
    log.info("recorded %s %s of study %s: %s, %d events", report.source_kind, report.sop_instance_uid,
             report.study.study_instance_uid, status, len(rows))
    return RecordOutcome(status=status, study_id=study.pk, report_id=rep.pk, equipment_change_ids=change_ids,
                         flags=report_flags)


# --- the batch path (generate_demo_data --bulk, benchmark scale) ------------------------------------------------------
def _equipment_differs(unit: Equipment, report: dr.DoseReport) -> bool:
    """Would :func:`_equipment` change anything on this known unit for this report (besides the last-seen times)?"""
    eq = report.equipment
    if report.source_kind in REPORT_KINDS and not unit.sends_dose_reports:
        return True
    for attr, value in (("software_versions", eq.software_versions), ("serial_number", eq.serial_number),
                        ("detector_id", eq.detector_id)):
        if value and value != getattr(unit, attr):
            return True
    return any(getattr(eq, attr) and not getattr(unit, attr)
               for attr in ("manufacturer", "model", "station_name", "institution", "department"))


def _sum(values) -> float | None:
    """SQL SUM: None when no value is known, else the sum in row order."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _totals_of_new_study(study: Study, acc_rows: list[AccumulatedDose], events: list[IrradiationEvent],
                         modality_types) -> None:
    """What :func:`study_update_totals` computes for a study whose only report is the current report (RDSR, RRDSR
    or private summary) whose rows are given: the report's totals as written, the CT estimates of the current
    acquisitions plus the NM effective dose as reported."""
    for name, column in TOTALS.items():
        setattr(study, name, _sum(getattr(a, column) for a in acc_rows))
    current = [e for e in events if e.is_current]
    ct = _sum(e.effective_dose_estimate_msv for e in current if e.effective_dose_msv is None)
    report_ed = _sum(a.effective_dose_msv for a in acc_rows)
    nm = report_ed if report_ed is not None else _sum(e.effective_dose_msv for e in current)
    _set_study_effective_dose(study, ct=ct, nm=nm)
    ctdis = [e.ctdivol_mgy for e in current if e.ctdivol_mgy is not None]
    study.max_ctdivol_mgy = max(ctdis) if ctdis else None
    study.event_count = len(current)
    kinds = set(modality_types or [])
    study.modality_types = [m for m in dr.MODALITY_TYPES if m in kinds]
    study.modality_type = study.modality_types[0] if study.modality_types else ""


def bulk_sha256(report: dr.DoseReport) -> str:
    """The identity hash of an object recorded without bytes (the SOP Instance UID's SHA-256)."""
    return hashlib.sha256(report.sop_instance_uid.encode()).hexdigest()


@transaction.atomic
def record_reports_bulk(reports: list[dr.DoseReport], *, demo: bool = False,
                        source: str = "demo") -> list[RecordOutcome]:
    """Record a batch of parsed dose objects that come without files (``generate_demo_data --bulk``): one
    ReceivedObject row each (``source``, no file), then, for the reports of studies not yet in the registry,
    patients and units resolved once per batch and every row written with multi-row inserts (a few dozen queries
    per batch, not per study).  Study totals are computed from the rows in Python exactly as
    :func:`study_update_totals` would.  A report whose study is already in the registry (or met earlier in the
    batch), and an object that is not a report (image header), goes through :func:`record_report` unchanged.
    Objects already recorded (same SOP Instance UID and hash) are left alone (status ``already_present``).  The
    equipment change log is the one :func:`_equipment` keeps.  Returns one outcome per report, in order."""
    outcomes: list[RecordOutcome | None] = [None] * len(reports)
    if not reports:
        return []
    now = timezone.now()
    hashes = [bulk_sha256(r) for r in reports]
    sops = [r.sop_instance_uid[:128] for r in reports]
    known = {(sop, sha): (sid, rid) for sop, sha, sid, rid in ReceivedObject.objects.filter(
        sop_instance_uid__in=set(sops)).values_list("sop_instance_uid", "sha256", "report__study_id", "report__id")}
    uids = [r.study.study_instance_uid[:64] for r in reports]
    existing = set(Study.objects.filter(study_instance_uid__in=set(uids)).values_list("study_instance_uid",
                                                                                    flat=True))
    fresh: list[int] = []
    later: list[int] = []
    met: set[str] = set()
    met_objects: set[tuple[str, str]] = set()
    for i, r in enumerate(reports):
        key = (sops[i], hashes[i])
        if key in known or key in met_objects:
            sid, rid = known.get(key, (None, None))
            outcomes[i] = RecordOutcome(status="already_present", study_id=sid or 0, report_id=rid or 0)
            continue
        met_objects.add(key)
        if uids[i] in existing or uids[i] in met or r.source_kind not in REPORT_KINDS:
            later.append(i)
        else:
            fresh.append(i)
        met.add(uids[i])

    if fresh:
        _record_new_studies(reports, fresh, hashes, outcomes, demo=demo, source=source, now=now)
    for i in later:  # the per-object path, in arrival order after the new studies of the batch
        r = reports[i]
        received = ReceivedObject.objects.create(
            sop_instance_uid=sops[i], sop_class_uid=r.sop_class_uid[:64], sha256=hashes[i],
            study_instance_uid=r.study.study_instance_uid[:128], modality=r.study.header_modality[:16],
            source=source)
        outcomes[i] = record_report(r, received, demo=demo)
    return outcomes


def _record_new_studies(reports: list[dr.DoseReport], fresh: list[int], hashes: list[str],
                        outcomes: list, *, demo: bool, source: str, now) -> None:
    # patients: one query for the known ones, one multi-row insert for the new ones
    identities = {i: _patient_identity(reports[i]) for i in fresh}
    keys = {(issuer, pid) for issuer, pid, _, _ in identities.values()}
    patients: dict[tuple[str, str], Patient] = {}
    for p in Patient.objects.filter(patient_id__in={pid for _, pid in keys}):
        if (p.issuer, p.patient_id) in keys:
            patients[(p.issuer, p.patient_id)] = p
    new_patients: list[Patient] = []
    fill_ins: dict[int, set[str]] = {}
    for i in fresh:
        issuer, pid, defaults, _ = identities[i]
        patient = patients.get((issuer, pid))
        if patient is None:
            patient = patients[(issuer, pid)] = Patient(issuer=issuer, patient_id=pid, **defaults)
            new_patients.append(patient)
        else:
            changed = _patient_fill_in(patient, reports[i].patient)
            if changed and patient.pk is not None:
                fill_ins.setdefault(patient.pk, set()).update(changed)
    _insert_rows(Patient, new_patients, returning=True)
    by_pk = {p.pk: p for p in patients.values()}
    for pk, changed in fill_ins.items():
        by_pk[pk].save(update_fields=sorted(changed))

    # units: the per-object service once per unit, again only when a report would change the unit
    units: dict[str, Equipment] = {}
    change_ids: dict[int, list[int]] = {}
    for i in fresh:
        r = reports[i]
        key = _identity_key(r.equipment)
        unit = units.get(key)
        if unit is None or _equipment_differs(unit, r):
            units[key], change_ids[i] = _equipment(r, r.study.study_date, demo)

    # report flags: a SOP Instance UID already recorded with other content
    sops = [reports[i].sop_instance_uid[:128] for i in fresh]
    reused = set(DoseReport.objects.filter(sop_instance_uid__in=set(sops)).values_list("sop_instance_uid",
                                                                                     flat=True))
    studies, received, reps, events, accs, checks = [], [], [], [], [], []
    per_report = []
    for i in fresh:
        r = reports[i]
        issuer, pid, _, flags = identities[i]
        values = _study_values(r)
        study_flags = list(flags)
        if r.study.study_date is None:
            study_flags.append("study_date_unknown")
        study = Study(study_instance_uid=r.study.study_instance_uid[:64], patient=patients[(issuer, pid)],
                      equipment=units[_identity_key(r.equipment)], demo=demo, flags=study_flags, **values)
        offset = r.study.timezone_offset
        report_flags = list(r.flags)
        sop = r.sop_instance_uid[:128]
        if sop in reused:
            report_flags.append("sop_instance_uid_reused")
        reused.add(sop)
        new_uids = {e.irradiation_event_uid for e in r.events if e.irradiation_event_uid}
        rep = DoseReport(
            sop_instance_uid=sop, sop_class_uid=r.sop_class_uid[:64], source_kind=r.source_kind,
            template=r.template[:40], state=DoseReport.STATE_CURRENT, modality_types=list(r.modality_types),
            content_datetime=_aware(r.content_datetime, offset), scope_of_accumulation=r.scope_of_accumulation[:40],
            scope_uid=r.scope_uid[:128], event_uid_count=len(new_uids), flags=report_flags,
            warnings=list(r.warnings), content=_jsonable(r.content))
        rows, taken = [], set()
        for seq, ev in enumerate(r.events):
            row = _event_row(ev, study=None, rep=rep, seq=seq, offset=offset, age=study.age_years)
            if row.irradiation_event_uid:
                if row.irradiation_event_uid in taken:
                    row.is_current = False  # the same UID twice in one object: keep the first
                taken.add(row.irradiation_event_uid)
            _set_effective_dose(row, age=study.age_years, exam_region="")
            rows.append(row)
        acc_rows = [_accumulated_row(a, None) for a in r.accumulated]
        _totals_of_new_study(study, acc_rows, rows, r.modality_types)
        studies.append(study)
        received.append(ReceivedObject(
            sop_instance_uid=sop, sop_class_uid=r.sop_class_uid[:64], sha256=hashes[i],
            study_instance_uid=r.study.study_instance_uid[:128], modality=r.study.header_modality[:16],
            source=source, state=ReceivedObject.STATE_INGESTED, processed_at=now, warnings=list(r.warnings)))
        reps.append(rep)
        per_report.append((i, rows, acc_rows, report_flags))

    _insert_rows(Study, studies, returning=True)
    _insert_rows(ReceivedObject, received, returning=True)
    for study, obj, rep in zip(studies, received, reps, strict=True):
        rep.study_id, rep.received_object_id = study.pk, obj.pk
    _insert_rows(DoseReport, reps, returning=True)
    for study, rep, (i, rows, acc_rows, report_flags) in zip(studies, reps, per_report, strict=True):
        for row in rows:
            row.study_id, row.report_id = study.pk, rep.pk
        for a in acc_rows:
            a.report_id = rep.pk
        events.extend(rows)
        accs.extend(acc_rows)
        checks.extend(_dose_check_row(c, rep) for c in reports[i].dose_checks)
        outcomes[i] = RecordOutcome(status="imported", study_id=study.pk, report_id=rep.pk,
                                    equipment_change_ids=change_ids.get(i, []), flags=report_flags)
    _insert_rows(IrradiationEvent, events)
    _insert_rows(AccumulatedDose, accs)
    _insert_rows(DoseCheckOverride, checks)
    log.info("recorded %d new studies in bulk (%d events)", len(studies), len(events))


def studies_update_effective_dose(study_ids: list[int]) -> int:
    """:func:`study_update_effective_dose` for many studies, in a few queries: the CT acquisitions of studies whose
    mapped examination has a body region, and that take the exam's region, are re-estimated, and those studies'
    totals recomputed.  Returns how many studies changed."""
    studies = {s.pk: s for s in Study.objects.filter(pk__in=list(study_ids), standard_exam__isnull=False)
               .exclude(standard_exam__body_region="").select_related("standard_exam")}
    if not studies:
        return 0
    rows = [r for r in IrradiationEvent.objects.filter(study_id__in=list(studies), dlp_mgycm__isnull=False).only(
        "id", "study_id", "dlp_mgycm", "ctdivol_mgy", "target_region_code", "ctdi_phantom", "effective_dose_msv")
        if effective_dose.region_for(r.target_region_code) is None]  # only those that take the exam's region
    if not rows:
        return 0
    for row in rows:
        study = studies[row.study_id]
        _set_effective_dose(row, age=study.age_years, exam_region=study.standard_exam.body_region)
    _update_rows(IrradiationEvent, rows, ["effective_dose_estimate_msv", "effective_dose_method"])
    changed = sorted({r.study_id for r in rows})
    studies_update_totals([studies[sid] for sid in changed])
    return len(changed)


def _insert_rows(model, objs: list, *, returning: bool = False) -> None:
    """Insert many rows in one statement (PostgreSQL: COPY, or execute_values; SQLite: executemany of one prepared
    statement).  Django's bulk_create spends most of its time compiling one giant SQL text of 20,000 placeholders
    for a 300-event report.  With ``returning`` each object gets its new primary key (PostgreSQL: ``RETURNING id``,
    rows come back in the order of the VALUES list, as Django's bulk_create also relies on; SQLite: one execute per
    row and its lastrowid)."""
    if not objs:
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    for f in fields:  # auto_now_add and defaults, as Model.save would
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            for obj in objs:
                f.pre_save(obj, add=True)
    if connection.vendor == "postgresql" and not returning and len(objs) >= COPY_MIN_ROWS:
        with connection.cursor() as cursor:
            _copy_rows(cursor.cursor, connection.ops.quote_name(model._meta.db_table),
                       [connection.ops.quote_name(f.column) for f in fields], fields, objs)
        return
    plain = (models.FloatField, models.BooleanField, models.IntegerField, models.CharField, models.ForeignKey)
    convert = [None if isinstance(f, plain) else f for f in fields]
    attnames = [f.attname for f in fields]
    params = []
    for obj in objs:
        values = []
        for attname, conv in zip(attnames, convert, strict=True):
            value = getattr(obj, attname)
            values.append(value if conv is None else conv.get_db_prep_save(value, connection))
        params.append(values)
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    head = f"INSERT INTO {qn(model._meta.db_table)} ({columns}) VALUES "
    pk = model._meta.pk
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            from psycopg2.extras import execute_values

            if returning:
                ids = execute_values(cursor.cursor, head + "%s RETURNING " + qn(pk.column), params, page_size=1000,
                                     fetch=True)
                for obj, (new_id,) in zip(objs, ids, strict=True):
                    setattr(obj, pk.attname, new_id)
            else:
                execute_values(cursor.cursor, head + "%s", params, page_size=1000)
        elif returning:
            sql = head + "(" + ", ".join(["%s"] * len(fields)) + ")"
            for obj, values in zip(objs, params, strict=True):
                cursor.execute(sql, values)
                setattr(obj, pk.attname, cursor.lastrowid)
        else:
            cursor.executemany(head + "(" + ", ".join(["%s"] * len(fields)) + ")", params)
    if returning:
        for obj in objs:
            obj._state.adding, obj._state.db = False, connection.alias


def _update_rows(model, objs: list, field_names: list[str]) -> None:
    """Update these fields of many rows.  PostgreSQL: one ``UPDATE ... FROM (VALUES ...)`` per 1,000 rows (Django's
    bulk_update builds a CASE expression per field and row, which costs seconds for a few hundred rows); elsewhere
    bulk_update."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objs, field_names, batch_size=500)
        return
    from psycopg2.extras import execute_values

    qn = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in field_names]
    pk = model._meta.pk
    sets = ", ".join(f"{qn(f.column)} = v.{qn(f.column)}::{f.db_type(connection)}" for f in fields)
    names = ", ".join([qn(pk.column)] + [qn(f.column) for f in fields])
    sql = (f"UPDATE {qn(model._meta.db_table)} AS t SET {sets} FROM (VALUES %s) AS v ({names}) "
           f"WHERE t.{qn(pk.column)} = v.{qn(pk.column)}")
    params = [[obj.pk] + [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields] for obj in objs]
    with connection.cursor() as cursor:
        execute_values(cursor.cursor, sql, params, page_size=1000)


COPY_MIN_ROWS = 200  # below this a multi-row INSERT is as quick as COPY
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_rows(cursor, table: str, columns: list[str], fields: list, objs: list) -> None:
    """PostgreSQL COPY FROM STDIN in the text format: the fastest way to load many rows (no SQL to parse, no
    placeholders to bind).  Values are written as PostgreSQL's text input functions read them."""
    kinds = []
    for f in fields:
        if isinstance(f, models.JSONField):
            kinds.append("json")
        elif isinstance(f, models.BooleanField):
            kinds.append("bool")
        elif isinstance(f, (models.FloatField, models.IntegerField, models.ForeignKey)):
            kinds.append("num")
        elif isinstance(f, (models.DateTimeField, models.DateField)):
            kinds.append("date")
        else:
            kinds.append("text")
    attnames = [f.attname for f in fields]
    lines = []
    for obj in objs:
        out = []
        for attname, kind in zip(attnames, kinds, strict=True):
            value = getattr(obj, attname)
            if value is None:
                out.append("\\N")
            elif kind == "num":
                out.append(repr(value) if isinstance(value, float) else str(int(value)))
            elif kind == "bool":
                out.append("t" if value else "f")
            elif kind == "json":
                out.append(json.dumps(value).translate(_COPY_ESCAPES))
            elif kind == "date":
                out.append(value.isoformat())
            else:
                out.append(str(value).translate(_COPY_ESCAPES))
        lines.append("\t".join(out))
    data = io.StringIO("\n".join(lines) + "\n")
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", data)


def _widen_sqlite_batches() -> None:
    """Django 5.2 assumes SQLite's old limit of 999 bound parameters (a dozen events per INSERT); modern SQLite
    allows 32766: use the real limit, so a 300-event report is one INSERT, not 25."""
    if connection.vendor != "sqlite" or getattr(connection.features, "_dosereg_widened", False):
        return
    connection.ensure_connection()
    try:
        limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except (AttributeError, sqlite3.Error):
        return
    connection.features.max_query_params = max(999, limit)
    connection.features._dosereg_widened = True


def _set_effective_dose(row: IrradiationEvent, *, age: float | None, exam_region: str) -> None:
    """CT: DLP x k with a method label, or null with the reason; NM: as reported; projection: null."""
    if row.effective_dose_msv is not None:  # reported (RRDSR)
        row.effective_dose_estimate_msv = row.effective_dose_msv
        row.effective_dose_method = "as reported in the RRDSR"
        return
    if row.dlp_mgycm is None and row.ctdivol_mgy is None:
        row.effective_dose_estimate_msv, row.effective_dose_method = None, ""
        return
    region = effective_dose.region_for(row.target_region_code, exam_region)
    est = effective_dose.ct_effective_dose(dlp_mgycm=row.dlp_mgycm, region=region, age_years=age,
                                           phantom=row.ctdi_phantom)
    row.effective_dose_estimate_msv, row.effective_dose_method = est.value_msv, est.method[:200]


def study_update_effective_dose(study_id: int) -> None:
    """Recompute the CT estimates of a study (after its examination was mapped: the exam's body region is the
    fallback region) and its totals."""
    study = Study.objects.select_related("standard_exam").get(pk=study_id)
    region = study.standard_exam.body_region if study.standard_exam_id else ""
    if not region:
        return  # nothing to fall back on: the estimates made at recording stand
    rows = [r for r in IrradiationEvent.objects.filter(study=study, dlp_mgycm__isnull=False).only(
        "id", "dlp_mgycm", "ctdivol_mgy", "target_region_code", "ctdi_phantom", "effective_dose_msv")
        if effective_dose.region_for(r.target_region_code) is None]  # only those that take the exam's region
    if not rows:
        return
    for row in rows:
        _set_effective_dose(row, age=study.age_years, exam_region=region)
    IrradiationEvent.objects.bulk_update(rows, ["effective_dose_estimate_msv", "effective_dose_method"],
                                         batch_size=500)
    study_update_totals(study)


def study_update_totals(study: Study) -> None:
    """Current totals of the study: sums over current reports' totals as written, quantity by quantity; image
    header values (each exposure once) for a quantity no current report carries."""
    studies_update_totals([study])


def studies_update_totals(studies: list[Study]) -> None:
    """:func:`study_update_totals` for many studies: three grouped queries and one UPDATE per study."""
    if not studies:
        return
    ids = [s.pk for s in studies]
    # accumulated totals (reports as written; image-header DLP), current events, modality types
    is_rep = Q(report__state=DoseReport.STATE_CURRENT, report__source_kind__in=REPORT_KINDS)
    accs = {row["report__study_id"]: row for row in AccumulatedDose.objects.filter(report__study_id__in=ids).values(
        "report__study_id").order_by().annotate(
        **{f"t_{k}": Sum(v, filter=is_rep) for k, v in TOTALS.items()}, report_ed=Sum("effective_dose_msv", filter=is_rep),
        img_dlp=Sum("dlp_total_mgycm", filter=Q(report__source_kind=dr.SOURCE_IMAGE_HEADER)))}
    img = ~Q(report__source_kind__in=REPORT_KINDS)
    evs = {row["study_id"]: row for row in IrradiationEvent.objects.filter(study_id__in=ids, is_current=True).values(
        "study_id").order_by().annotate(
        n=Count("id"), max_ctdivol=Max("ctdivol_mgy"), kap=Sum("kap_gycm2", filter=img),
        ka_r=Sum("ka_r_mgy", filter=img), activity=Sum("activity_mbq", filter=img),
        agd_left=Sum("agd_mgy", filter=img & Q(laterality="left")),
        agd_right=Sum("agd_mgy", filter=img & Q(laterality="right")),
        ct_ed=Sum("effective_dose_estimate_msv", filter=Q(effective_dose_msv__isnull=True)),
        nm_ed=Sum("effective_dose_msv"))}
    kinds: dict[int, set[str]] = {}
    for sid, mts in DoseReport.objects.filter(study_id__in=ids, state=DoseReport.STATE_CURRENT).values_list(
            "study_id", "modality_types"):
        kinds.setdefault(sid, set()).update(mts or [])
    no_acc = {f"t_{k}": None for k in TOTALS} | {"report_ed": None, "img_dlp": None}
    no_ev = dict.fromkeys(("max_ctdivol", "kap", "ka_r", "activity", "agd_left", "agd_right", "ct_ed", "nm_ed"),
                          None) | {"n": 0}
    fields = [*TOTALS, "effective_dose_msv", "effective_dose_method", "max_ctdivol_mgy", "event_count",
              "modality_types", "modality_type", "updated_at"]
    now = timezone.now()
    for study in studies:
        _apply_totals(study, accs.get(study.pk, no_acc), evs.get(study.pk, no_ev), kinds.get(study.pk, set()))
        study.updated_at = now
    if len(studies) == 1:
        studies[0].save(update_fields=fields)
    else:
        _update_rows(Study, studies, fields)


def _apply_totals(study: Study, acc: dict, ev: dict, kinds: set[str]) -> None:
    image_totals = {
        "dlp_total_mgycm": acc["img_dlp"], "kap_total_gycm2": ev["kap"], "ka_r_total_mgy": ev["ka_r"],
        "fluoro_time_total_s": None, "agd_left_mgy": ev["agd_left"], "agd_right_mgy": ev["agd_right"],
        "activity_mbq": ev["activity"],
    }
    for name in TOTALS:
        setattr(study, name, acc[f"t_{name}"] if acc[f"t_{name}"] is not None else image_totals[name])
    # effective dose: CT estimates of current acquisitions (DLP x k) + NM as reported
    ct = ev["ct_ed"]
    nm = acc["report_ed"] if acc["report_ed"] is not None else ev["nm_ed"]
    _set_study_effective_dose(study, ct=ct, nm=nm)
    study.max_ctdivol_mgy = ev["max_ctdivol"]
    study.event_count = ev["n"]
    study.modality_types = [m for m in dr.MODALITY_TYPES if m in kinds]
    study.modality_type = study.modality_types[0] if study.modality_types else ""


def _set_study_effective_dose(study: Study, *, ct: float | None, nm: float | None) -> None:
    """The study's effective dose: CT estimates of its current acquisitions (DLP x k) plus NM as the RRDSR reports
    it, with the method of each part (an estimate for comparing procedures, not a personal risk figure)."""
    parts, labels = [], []
    if ct is not None:
        parts.append(ct)
        labels.append(effective_dose.method_label())
    if nm is not None:
        parts.append(nm)
        labels.append("NM: as reported in the RRDSR")
    study.effective_dose_msv = sum(parts) if parts else None
    study.effective_dose_method = " + ".join(labels)[:200]
