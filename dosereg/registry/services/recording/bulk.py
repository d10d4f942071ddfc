"""The batch path of recording: many parsed objects in one transaction, with the same row builders, border checks,
version rules and totals as :func:`~.service.record_report` (an object is a batch of one).

- ``record_batch(items)``: objects that were received and stored (``ReceivedObject`` rows exist): the ingest worker's
  batches, ``import_dose``, ``reprocess``.  A bad object is refused alone (its savepoint is rolled back), the others
  are recorded.
- ``record_reports_bulk(reports)``: objects that come without files (``generate_demo_data --bulk``).

Objects of studies not yet in the registry (and not met earlier in the batch) are written together: patients and units
resolved once per batch, rows built as plain attribute rows (``rows.row_class``, not model instances), the study's
totals computed from the rows just built by the one totals implementation (``totals.study_apply_totals``) and
written with the study, every table written with one multi-row insert for the whole batch (PostgreSQL: COPY from
200 rows on, ids drawn from the sequence first): a few dozen queries per batch, not per object.
An object of a known study, a replay, or one whose SOP Instance UID is already recorded goes through
``record_report`` itself, in arrival order after the new studies of the batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from django.db import DataError, IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from dosereg.core import dose_report as dr
from dosereg.core import effective_dose as ed
from dosereg.core.sanity import Finding, device_total_findings
from dosereg.core.versions import ALREADY_PRESENT, IMPORTED, REPORT_KINDS, dose_digest
from dosereg.registry.fields import TextFitter
from dosereg.registry.fixed_queries import rows_in
from dosereg.registry.models import (
    AccumulatedDose,
    DoseCheckOverride,
    DoseReport,
    Equipment,
    IrradiationEvent,
    Patient,
    ReceivedObject,
    StandardExam,
    Study,
)
from dosereg.registry.services import effective_dose, skin_dose
from dosereg.registry.services.recording.bulk_sql import insert_rows, update_rows, widen_sqlite_batches
from dosereg.registry.services.recording.identity import (
    aware,
    equipment_for,
    identity_key,
    patient_fill_in,
    patient_identity,
    study_values,
)
from dosereg.registry.services.recording.rows import (
    ReceivedRow,
    ReportMemo,
    ReportRow,
    StudyRow,
    accumulated_row,
    dose_check_row,
    event_row,
    jsonable,
)
from dosereg.registry.services.recording.service import (
    RecordOutcome,
    bulk_sha256,
    plane_sums,
    record_report,
    study_findings_merge,
)
from dosereg.registry.services.recording.totals import new_report_facts, set_event_effective_dose, study_apply_totals

# content the registry cannot hold (a garbled value that parsed): the object is refused, nothing of it half-written
RECORD_ERRORS = (DataError, IntegrityError, ValueError, TypeError, OverflowError)


def equipment_differs(unit: Equipment, report: dr.DoseReport) -> bool:
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


# --- received objects (ingest) ---------------------------------------------------------------------------------------
def record_batch(items: list[tuple[dr.DoseReport, ReceivedObject]], *, demo: bool = False,
                 replay: bool = False, exam_of: ExamOf | None = None) -> list[RecordOutcome | Exception]:
    """Record parsed objects of stored ReceivedObject rows, in the caller's transaction.  Returns, per item in order,
    its RecordOutcome, or the exception that refused it (one of RECORD_ERRORS; nothing of it was written).  Other
    errors (the database unavailable) propagate: the whole batch is tried again later.  ``replay``: the objects
    were recorded before (``reprocess``), their earlier rows are replaced.  ``exam_of``: the studies the batch
    opens are written with their mapping settled (:func:`_settle_exam`; their outcomes say ``exam_settled``)."""
    outcomes: list[RecordOutcome | Exception | None] = [None] * len(items)
    if not items:
        return []
    fit = TextFitter()
    sops = [fit(DoseReport, "sop_instance_uid", r.sop_instance_uid) for r, _ in items]
    uids = [fit(Study, "study_instance_uid", r.study.study_instance_uid) for r, _ in items]
    recorded = set(rows_in(_recorded_sops, set(sops)))
    met = set(rows_in(_met_study_uids, set(uids)))
    fresh, later = [], []
    for i in range(len(items)):
        (fresh if not replay and sops[i] not in recorded and uids[i] not in met else later).append(i)
        met.add(uids[i])
        recorded.add(sops[i])
    if fresh:
        try:
            with transaction.atomic():  # a savepoint: a bad object among them sends them all the per-object way
                _record_new_studies([r for r, _ in items], fresh, outcomes, demo=demo, fit=fit,
                                    received={i: items[i][1] for i in fresh}, exam_of=exam_of)
        except RECORD_ERRORS:
            later = sorted(fresh + later)
    for i in later:
        outcomes[i] = _record_one(*items[i], demo=demo)
    if later:
        _skin_dose_after_known_studies(outcomes)
        _unsettle_touched(outcomes)
    return outcomes


def _recorded_sops(sops) -> QuerySet:
    return DoseReport.objects.filter(sop_instance_uid__in=sops).values_list("sop_instance_uid", flat=True)


def _met_study_uids(uids) -> QuerySet:
    return Study.objects.filter(study_instance_uid__in=uids).values_list("study_instance_uid", flat=True)


def _patients_by_id(patient_ids) -> QuerySet:
    return Patient.objects.filter(patient_id__in=patient_ids)


def _units_by_key(keys) -> QuerySet:
    return Equipment.objects.filter(identity_key__in=keys)


def _unsettle_touched(outcomes: list) -> None:
    """A study the batch opened with its exam settled, which another object of the batch then recorded into (one by
    one, after it), is not settled: that object can add the protocols a mapping rule reads or the KAP an estimate
    sums, so the post-commit steps map and estimate the study as before."""
    recorded = Counter(o.study_id for o in outcomes
                       if isinstance(o, RecordOutcome) and o.study_id and o.status != ALREADY_PRESENT)
    for o in outcomes:
        if isinstance(o, RecordOutcome) and o.exam_settled and recorded[o.study_id] > 1:
            o.exam_settled = False


def _skin_dose_after_known_studies(outcomes: list) -> None:
    """Once objects of known studies were recorded one by one, the skin dose of every study of the batch is
    computed from the database at the end: a later object may have filled in its unit's manufacturer or model,
    which the skin dose reads (the studies the batch opened had theirs from memory, written with them)."""
    skin_dose.studies_update_skin_dose([o.study_id for o in outcomes if isinstance(o, RecordOutcome)
                                        and o.study_id and o.status != ALREADY_PRESENT])


def _record_one(report: dr.DoseReport, received: ReceivedObject, *, demo: bool) -> RecordOutcome | Exception:
    """``record_report`` in its own savepoint; a conflict with a concurrent writer of the same study or unit is
    tried once more on fresh rows."""
    for attempt in (1, 2):
        try:
            return record_report(report, received, demo=demo, update_skin_dose=False)
        except IntegrityError as exc:
            if attempt == 2:
                return exc
        except RECORD_ERRORS as exc:
            return exc
    raise AssertionError("not reached")


# --- objects without files (generate_demo_data --bulk) ---------------------------------------------------------------
@transaction.atomic
def record_reports_bulk(reports: list[dr.DoseReport], *, demo: bool = False, source: str = "demo",
                        exam_of: ExamOf | None = None) -> list[RecordOutcome]:
    """Record a batch of parsed dose objects that come without files (``generate_demo_data --bulk``): one
    ReceivedObject row each (``source``, no file), then the batch path of the module docstring.  Objects already
    recorded (same SOP Instance UID and hash) are left alone (status ``already_present``).  Returns one outcome
    per report, in order.  ``exam_of``: see :func:`_settle_exam` (the outcomes of the studies it settled say
    ``exam_settled``)."""
    outcomes: list[RecordOutcome | None] = [None] * len(reports)
    if not reports:
        return []
    fit = TextFitter()
    hashes = [bulk_sha256(r) for r in reports]
    sops = [fit(DoseReport, "sop_instance_uid", r.sop_instance_uid) for r in reports]
    known = {(sop, sha): (sid, rid) for sop, sha, sid, rid in ReceivedObject.objects.filter(
        sop_instance_uid__in=set(sops)).values_list("sop_instance_uid", "sha256", "report__study_id", "report__id")}
    uids = [fit(Study, "study_instance_uid", r.study.study_instance_uid) for r in reports]
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
            outcomes[i] = RecordOutcome(status=ALREADY_PRESENT, study_id=sid or 0, report_id=rid or 0)
            continue
        met_objects.add(key)
        if uids[i] in existing or uids[i] in met or r.source_kind not in REPORT_KINDS:
            later.append(i)
        else:
            fresh.append(i)
        met.add(uids[i])

    if fresh:
        _record_new_studies(reports, fresh, outcomes, demo=demo, fit=fit, hashes=hashes, source=source,
                            exam_of=exam_of)
    for i in later:  # the per-object path, in arrival order after the new studies of the batch
        r = reports[i]
        received = ReceivedObject.objects.create(
            sop_instance_uid=sops[i], sop_class_uid=fit(ReceivedObject, "sop_class_uid", r.sop_class_uid),
            sha256=hashes[i], study_instance_uid=fit(ReceivedObject, "study_instance_uid", r.study.study_instance_uid),
            modality=fit(ReceivedObject, "modality", r.study.header_modality), source=source)
        outcomes[i] = record_report(r, received, demo=demo, update_skin_dose=False)
    if later:
        _skin_dose_after_known_studies(outcomes)
        _unsettle_touched(outcomes)
    return outcomes


# --- the mapping settled before the study is written ------------------------------------------------------------
# (a study's columns by attname, its current events' protocols on demand) -> its standard exam; the registry imports
# no drl: the caller passes drl's matcher (``drl.services.study_exam_matcher``), which reads the columns it maps by
ExamOf = Callable[[dict, Callable[[], list[str]]], StandardExam | None]


def _settle_exam(study: StudyRow, rep: ReportRow, acc_rows: list, rows: list, exam_of: ExamOf,
                 kap_exams: set[int]) -> None:
    """What the post-commit mapping and effective-dose steps would do to a study this batch opens, done on its rows
    in memory before they are written: its standard exam (``exam_of``); the CT acquisitions that take the exam's
    body region (no Target Region the factors know) estimated again with it; the totals again where that or the
    exam's KAP coefficient can change them (``studies_update_effective_dose``'s selection; ``kap_exams``: the exams
    with a KAP coefficient)."""
    exam = exam_of(vars(study), lambda: list(dict.fromkeys(r.protocol for r in rows if r.is_current and r.protocol)))
    if exam is None:
        return
    study.standard_exam_id, study.standard_exam = exam.pk, exam
    moved = False
    if exam.body_region:
        for row in rows:
            if (row.dlp_mgycm is not None and row.target_region_code not in ed.REGION_BY_SCT
                    and effective_dose.region_for(row.target_region_code) is None):
                set_event_effective_dose(row, age=study.age_years, exam_region=exam.body_region)
                moved = True
    kap_moved = study.kap_total_gycm2 is not None and (
        exam.pk in kap_exams or ed.KAP_METHOD in (study.effective_dose_method or ""))
    if moved or kap_moved:
        study_apply_totals(study, new_report_facts(rep, acc_rows, rows))


# --- new studies, written together -----------------------------------------------------------------------------------
def _new_study_events(r: dr.DoseReport, rep: DoseReport, age: float | None, fit: TextFitter,
                      findings: list[Finding]) -> list[IrradiationEvent]:
    """The events of an object that opens its study: what ``record_report`` does for a study with nothing stored
    (an event UID twice in one object counts once; an image header's exposure sent twice counts once)."""
    is_report = r.source_kind in REPORT_KINDS
    rows, taken, seen_keys = [], set(), set()
    memo = ReportMemo(r.study.timezone_offset)
    for seq, ev in enumerate(r.events):
        row = event_row(ev, study=None, rep=rep, seq=seq, memo=memo, fit=fit, findings=findings)
        if not is_report and row.exposure_key:
            if row.exposure_key in seen_keys:
                row.is_current = False
            seen_keys.add(row.exposure_key)
        if row.irradiation_event_uid and row.is_current:
            if row.irradiation_event_uid in taken:
                row.is_current = False  # the same UID twice in one object: keep the first
            taken.add(row.irradiation_event_uid)
        set_event_effective_dose(row, age=age, exam_region="")
        rows.append(row)
    return rows


def _insert_new_patients(new_patients: list[Patient], patients: dict[tuple[str, str], Patient]) -> None:
    """One multi-row insert; when another worker has just created one of these patients (a unique violation), each
    is taken or created on its own instead, so concurrent workers never fail on the same new patient."""
    try:
        with transaction.atomic():
            insert_rows(Patient, new_patients, returning=True)
    except IntegrityError:
        for patient in new_patients:
            fields = {f.attname: getattr(patient, f.attname) for f in Patient._meta.concrete_fields
                      if not f.primary_key and f.attname not in ("issuer", "patient_id")}
            row, _ = Patient.objects.get_or_create(issuer=patient.issuer, patient_id=patient.patient_id,
                                                   defaults=fields)
            patient.pk, patient._state.adding = row.pk, False
            patients[(patient.issuer, patient.patient_id)] = row


def _batch_patients(reports: list[dr.DoseReport], fresh: list[int], fit: TextFitter):
    """The batch's patients: one query for the known ones, one multi-row insert for the new ones."""
    identities = {i: patient_identity(reports[i], fit) for i in fresh}
    keys = {(issuer, pid) for issuer, pid, _, _ in identities.values()}
    patients: dict[tuple[str, str], Patient] = {
        (p.issuer, p.patient_id): p for p in rows_in(_patients_by_id, {pid for _, pid in keys})
        if (p.issuer, p.patient_id) in keys}
    new_patients: list[Patient] = []
    fill_ins: dict[int, set[str]] = {}
    for i in fresh:
        issuer, pid, defaults, _ = identities[i]
        patient = patients.get((issuer, pid))
        if patient is None:
            patient = patients[(issuer, pid)] = Patient(issuer=issuer, patient_id=pid, **defaults)
            new_patients.append(patient)
            continue
        changed = patient_fill_in(patient, reports[i].patient, fit)
        if changed and patient.pk is not None:
            fill_ins.setdefault(patient.pk, set()).update(changed)
    _insert_new_patients(new_patients, patients)
    by_pk = {p.pk: p for p in patients.values()}
    for pk, changed in fill_ins.items():
        by_pk[pk].save(update_fields=sorted(changed))
    return identities, patients


# pg_advisory_xact_lock key ("Unit"): a batch takes it before it writes equipment rows, so concurrent batch writers
# (generate_demo_data --jobs) hold unit rows one transaction at a time, whatever order their units come in
UNITS_LOCK = 0x556E6974


def _lock_units() -> None:
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [UNITS_LOCK])


def _batch_units(reports: list[dr.DoseReport], fresh: list[int], demo: bool, fit: TextFitter):
    """The per-object unit service once per unit, again only when a report would change the unit.  A known unit
    the batch does not change is read, not locked: its last-seen times are written by :func:`_touch_units` at the
    end of the batch, so concurrent writers (``generate_demo_data --jobs``) hold its row for the final writes only,
    not for the whole batch; every unit write is under ``UNITS_LOCK`` (no deadlock between writers).  Units are
    taken in identity-key order; a unit's reports keep their batch order."""
    keys = {i: identity_key(reports[i].equipment) for i in fresh}
    known = {u.identity_key: u for u in rows_in(_units_by_key, set(keys.values()))}
    units: dict[str, Equipment] = {}
    change_ids: dict[int, list[int]] = {}
    touch: dict[str, bool] = {}  # key -> is its first report of the batch a dose report (sets last_report_at)
    for i in sorted(fresh, key=keys.__getitem__):
        r, key = reports[i], keys[i]
        unit = units.get(key)
        if unit is None and key in known and not equipment_differs(known[key], r):
            units[key] = known[key]
            touch[key] = r.source_kind in REPORT_KINDS
        elif unit is None or equipment_differs(unit, r):
            _lock_units()  # a new or changed unit: written now, held to the end of the batch
            units[key], change_ids[i] = equipment_for(r, r.study.study_date, demo, fit)
            touch.pop(key, None)  # written by equipment_for
    return units, change_ids, touch


def _touch_units(units: dict[str, Equipment], touch: dict[str, bool], now) -> None:
    """What ``equipment_for`` writes on a known unit that nothing changed on: its last-seen times (one UPDATE per
    kind, in primary-key order)."""
    if touch:
        _lock_units()
    for is_report in (False, True):
        pks = sorted(units[key].pk for key, rep in touch.items() if rep is is_report)
        if not pks:
            continue
        update = {"last_object_at": now}
        if is_report:
            update.update(sends_dose_reports=True, last_report_at=now)
        Equipment.objects.filter(pk__in=pks).update(**update)
        for key, rep in touch.items():
            if rep is is_report:
                for name, value in update.items():
                    setattr(units[key], name, value)


def _report_row(r: dr.DoseReport, sop: str, flags: list[str], fit: TextFitter):
    return ReportRow(
        sop_instance_uid=sop, sop_class_uid=fit(DoseReport, "sop_class_uid", r.sop_class_uid),
        source_kind=fit(DoseReport, "source_kind", r.source_kind), template=fit(DoseReport, "template", r.template),
        state=DoseReport.STATE_CURRENT, modality_types=list(r.modality_types),
        content_datetime=aware(r.content_datetime, r.study.timezone_offset),
        scope_of_accumulation=fit(DoseReport, "scope_of_accumulation", r.scope_of_accumulation),
        scope_uid=fit(DoseReport, "scope_uid", r.scope_uid),
        event_uid_count=len({e.irradiation_event_uid for e in r.events if e.irradiation_event_uid}),
        dose_digest="", predecessor_sop_uids=jsonable(list(r.predecessor_sop_uids)),
        flags=flags, warnings=jsonable(list(r.warnings)), content=jsonable(r.content))


def _received_done(obj: ReceivedObject, r: dr.DoseReport, now) -> ReceivedObject:
    obj.state, obj.processed_at, obj.reason = ReceivedObject.STATE_INGESTED, now, ""
    obj.study_instance_uid = TextFitter()(ReceivedObject, "study_instance_uid", r.study.study_instance_uid)
    obj.warnings = jsonable(list(r.warnings))
    return obj


def _new_received(r: dr.DoseReport, sha: str, source: str, fit: TextFitter):
    return ReceivedRow(
        sop_instance_uid=fit(ReceivedObject, "sop_instance_uid", r.sop_instance_uid),
        sop_class_uid=fit(ReceivedObject, "sop_class_uid", r.sop_class_uid), sha256=sha,
        modality=fit(ReceivedObject, "modality", r.study.header_modality), source=source)


def _record_new_studies(reports: list[dr.DoseReport], fresh: list[int], outcomes: list, *, demo: bool,
                        fit: TextFitter, received: dict[int, ReceivedObject] | None = None,
                        hashes: list[str] | None = None, source: str = "demo", exam_of: ExamOf | None = None) -> None:
    """Objects opening new studies, written together.  ``received``: their stored rows (ingest), updated; without
    it, rows are created (objects without files, ``hashes`` and ``source``)."""
    now = timezone.now()
    identities, patients = _batch_patients(reports, fresh, fit)
    units, change_ids, touch = _batch_units(reports, fresh, demo, fit)
    # report flags: a SOP Instance UID already recorded with other content
    sops = [fit(DoseReport, "sop_instance_uid", reports[i].sop_instance_uid) for i in fresh]
    reused = set(rows_in(_recorded_sops, set(sops)))
    studies, objs, reps, per_report = [], [], [], []
    kap_exams = set(effective_dose.exams_with_kap_coefficient()) if exam_of is not None else set()
    for i in fresh:
        r = reports[i]
        own = TextFitter()  # what this object's text lost, for its study's findings
        issuer, pid, _, flags = identities[i]
        study_flags = list(flags) + (["study_date_unknown"] if r.study.study_date is None else [])
        study = StudyRow(study_instance_uid=own(Study, "study_instance_uid", r.study.study_instance_uid),
                         patient_id=patients[(issuer, pid)].pk, equipment_id=units[identity_key(r.equipment)].pk,
                         demo=demo, flags=study_flags, **study_values(r, own))
        sop = own(DoseReport, "sop_instance_uid", r.sop_instance_uid)
        report_flags = list(r.flags) + (["sop_instance_uid_reused"] if sop in reused else [])
        reused.add(sop)
        rep = _report_row(r, sop, report_flags, own)
        findings: list[Finding] = []
        rows = _new_study_events(r, rep, study.age_years, own, findings)
        rep.dose_digest = dose_digest(r, [row.value_digest for row in rows])  # the events' digests, made once
        acc_rows = [accumulated_row(a, None, findings) for a in r.accumulated]
        if r.source_kind in REPORT_KINDS:
            findings += device_total_findings(plane_sums(acc_rows, rows))
        findings += own.findings()
        if findings:
            for name, value in study_findings_merge(study, findings, sop_instance_uid=sop).items():
                setattr(study, name, value)
        study_apply_totals(study, new_report_facts(rep, acc_rows, rows))  # written with the study: no UPDATE
        if exam_of is not None:
            _settle_exam(study, rep, acc_rows, rows, exam_of, kap_exams)
        if "fluoroscopy" in study.modality_types:  # from the rows in memory, with the batch's final units
            skin_dose.study_apply_skin_dose(study, skin_dose.skin_events_of_rows(rows),
                                            unit=units[identity_key(r.equipment)])
        studies.append(study)
        objs.append(_received_done(received[i], r, now) if received is not None else
                    _received_done(_new_received(r, hashes[i], source, fit), r, now))
        reps.append(rep)
        per_report.append((i, rows, acc_rows, report_flags))

    widen_sqlite_batches()
    insert_rows(Study, studies, returning=True)
    if received is not None:
        update_rows(ReceivedObject, objs, ["state", "processed_at", "reason", "study_instance_uid", "warnings"])
    else:
        insert_rows(ReceivedObject, objs, returning=True)
    for study, obj, rep in zip(studies, objs, reps, strict=True):
        rep.study_id, rep.received_object_id = study.pk, obj.pk
    insert_rows(DoseReport, reps, returning=True)
    events, accs, checks = [], [], []
    for study, rep, (i, rows, acc_rows, report_flags) in zip(studies, reps, per_report, strict=True):
        for row in rows:
            row.study_id, row.report_id = study.pk, rep.pk
        for a in acc_rows:
            a.report_id = rep.pk
        events.extend(rows)
        accs.extend(acc_rows)
        checks.extend(dose_check_row(c, rep, fit) for c in reports[i].dose_checks)
        outcomes[i] = RecordOutcome(status=IMPORTED, study_id=study.pk, report_id=rep.pk,
                                    equipment_change_ids=change_ids.get(i, []), flags=report_flags,
                                    exam_settled=exam_of is not None)
    insert_rows(IrradiationEvent, events)
    insert_rows(AccumulatedDose, accs)
    insert_rows(DoseCheckOverride, checks)
    _touch_units(units, touch, now)
