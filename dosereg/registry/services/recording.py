"""Recording a parsed dose object in the registry: one transaction, bulk inserts, idempotent and version-aware.

``record_report(report, received)`` stores one :class:`dicomrx.dose_report.DoseReport` (the parser's output) for the
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
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import zoneinfo
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from dicomrx import dose_report as dr
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


def _patient(report: dr.DoseReport) -> tuple[Patient, list[str]]:
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
    patient, created = Patient.objects.get_or_create(issuer=issuer[:128], patient_id=pid[:128], defaults=defaults)
    if not created:
        changed = []
        if not patient.sex and info.sex:
            patient.sex, changed = info.sex, changed + ["sex"]
        if not pseudo and not patient.name and info.name:
            patient.name, changed = info.name[:200], changed + ["name"]
        if not pseudo and patient.birth_date is None and info.birth_date:
            patient.birth_date, changed = info.birth_date, changed + ["birth_date"]
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
def _study(report: dr.DoseReport, patient: Patient, unit: Equipment, demo: bool, flags: list[str]) -> Study:
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


def _insert_rows(model, objs: list) -> None:
    """Insert many rows in one statement (PostgreSQL: execute_values; SQLite: executemany of one prepared
    statement).  Django's bulk_create spends most of its time compiling one giant SQL text of 20,000 placeholders
    for a 300-event report; the ids of the new rows are not needed here."""
    if not objs:
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    for f in fields:  # auto_now_add and defaults, as Model.save would
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            for obj in objs:
                f.pre_save(obj, add=True)
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
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            from psycopg2.extras import execute_values

            execute_values(cursor.cursor, head + "%s", params, page_size=1000)
        else:
            cursor.executemany(head + "(" + ", ".join(["%s"] * len(fields)) + ")", params)


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
    # two aggregate queries: accumulated totals (reports as written; image-header DLP), current events
    is_rep = Q(report__state=DoseReport.STATE_CURRENT, report__source_kind__in=REPORT_KINDS)
    acc = AccumulatedDose.objects.filter(report__study=study).aggregate(
        **{f"t_{k}": Sum(v, filter=is_rep) for k, v in TOTALS.items()}, report_ed=Sum("effective_dose_msv", filter=is_rep),
        img_dlp=Sum("dlp_total_mgycm", filter=Q(report__source_kind=dr.SOURCE_IMAGE_HEADER)))
    img = ~Q(report__source_kind__in=REPORT_KINDS)
    ev = IrradiationEvent.objects.filter(study=study, is_current=True).aggregate(
        n=Count("id"), max_ctdivol=Max("ctdivol_mgy"), kap=Sum("kap_gycm2", filter=img),
        ka_r=Sum("ka_r_mgy", filter=img), activity=Sum("activity_mbq", filter=img),
        agd_left=Sum("agd_mgy", filter=img & Q(laterality="left")),
        agd_right=Sum("agd_mgy", filter=img & Q(laterality="right")),
        ct_ed=Sum("effective_dose_estimate_msv", filter=Q(effective_dose_msv__isnull=True)),
        nm_ed=Sum("effective_dose_msv"))
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
    parts, labels = [], []
    if ct is not None:
        parts.append(ct)
        labels.append(effective_dose.method_label())
    if nm is not None:
        parts.append(nm)
        labels.append("NM: as reported in the RRDSR")
    study.effective_dose_msv = sum(parts) if parts else None
    study.effective_dose_method = " + ".join(labels)[:200]
    study.max_ctdivol_mgy = ev["max_ctdivol"]
    study.event_count = ev["n"]
    kinds: set[str] = set()
    for mts in DoseReport.objects.filter(study=study, state=DoseReport.STATE_CURRENT).values_list(
            "modality_types", flat=True):
        kinds.update(mts or [])
    study.modality_types = [m for m in dr.MODALITY_TYPES if m in kinds]
    study.modality_type = study.modality_types[0] if study.modality_types else ""
    study.save(update_fields=[*TOTALS, "effective_dose_msv", "effective_dose_method", "max_ctdivol_mgy",
                              "event_count", "modality_types", "modality_type", "updated_at"])
