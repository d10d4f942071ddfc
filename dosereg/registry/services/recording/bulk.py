"""The batch path of recording, for objects that come without files (``generate_demo_data --bulk``, benchmark
scale): the same row builders, border checks and totals as :func:`~.service.record_report`; patients and units
resolved once per batch and every row written with multi-row inserts (a few dozen queries per batch, not per study).
A report of a study already in the registry (or met earlier in the batch), and an image header, go through
``record_report`` itself."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from dosereg.core import dose_report as dr
from dosereg.core.sanity import Finding, device_total_findings
from dosereg.core.versions import ALREADY_PRESENT, IMPORTED, REPORT_KINDS, dose_digest
from dosereg.registry.fields import TextFitter
from dosereg.registry.models import (
    AccumulatedDose,
    DoseCheckOverride,
    DoseReport,
    Equipment,
    IrradiationEvent,
    Patient,
    ReceivedObject,
    Study,
)
from dosereg.registry.services.recording.bulk_sql import insert_rows
from dosereg.registry.services.recording.identity import (
    aware,
    equipment_for,
    identity_key,
    patient_fill_in,
    patient_identity,
    study_values,
)
from dosereg.registry.services.recording.rows import accumulated_row, dose_check_row, event_row, jsonable
from dosereg.registry.services.recording.service import (
    RecordOutcome,
    bulk_sha256,
    plane_sums,
    record_report,
    study_findings_merge,
)
from dosereg.registry.services.recording.totals import set_event_effective_dose, studies_update_totals


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
        _record_new_studies(reports, fresh, hashes, outcomes, demo=demo, source=source, now=now, fit=fit)
    for i in later:  # the per-object path, in arrival order after the new studies of the batch
        r = reports[i]
        received = ReceivedObject.objects.create(
            sop_instance_uid=sops[i], sop_class_uid=fit(ReceivedObject, "sop_class_uid", r.sop_class_uid),
            sha256=hashes[i], study_instance_uid=fit(ReceivedObject, "study_instance_uid", r.study.study_instance_uid),
            modality=fit(ReceivedObject, "modality", r.study.header_modality), source=source)
        outcomes[i] = record_report(r, received, demo=demo)
    return outcomes


def _new_study_events(r: dr.DoseReport, study: Study, rep: DoseReport, fit: TextFitter,
                      findings: list[Finding]) -> list[IrradiationEvent]:
    rows, taken = [], set()
    for seq, ev in enumerate(r.events):
        row = event_row(ev, study=None, rep=rep, seq=seq, offset=r.study.timezone_offset, fit=fit, findings=findings)
        if row.irradiation_event_uid:
            if row.irradiation_event_uid in taken:
                row.is_current = False  # the same UID twice in one object: keep the first
            taken.add(row.irradiation_event_uid)
        set_event_effective_dose(row, age=study.age_years, exam_region="")
        rows.append(row)
    return rows


def _batch_patients(reports: list[dr.DoseReport], fresh: list[int], fit: TextFitter):
    """The batch's patients: one query for the known ones, one multi-row insert for the new ones."""
    identities = {i: patient_identity(reports[i], fit) for i in fresh}
    keys = {(issuer, pid) for issuer, pid, _, _ in identities.values()}
    patients: dict[tuple[str, str], Patient] = {
        (p.issuer, p.patient_id): p for p in Patient.objects.filter(patient_id__in={pid for _, pid in keys})
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
    insert_rows(Patient, new_patients, returning=True)
    by_pk = {p.pk: p for p in patients.values()}
    for pk, changed in fill_ins.items():
        by_pk[pk].save(update_fields=sorted(changed))
    return identities, patients


def _batch_units(reports: list[dr.DoseReport], fresh: list[int], demo: bool, fit: TextFitter):
    """The per-object unit service once per unit, again only when a report would change the unit."""
    units: dict[str, Equipment] = {}
    change_ids: dict[int, list[int]] = {}
    for i in fresh:
        r = reports[i]
        key = identity_key(r.equipment)
        unit = units.get(key)
        if unit is None or equipment_differs(unit, r):
            units[key], change_ids[i] = equipment_for(r, r.study.study_date, demo, fit)
    return units, change_ids


def _record_new_studies(reports: list[dr.DoseReport], fresh: list[int], hashes: list[str],
                        outcomes: list, *, demo: bool, source: str, now, fit: TextFitter) -> None:
    identities, patients = _batch_patients(reports, fresh, fit)
    units, change_ids = _batch_units(reports, fresh, demo, fit)
    # report flags: a SOP Instance UID already recorded with other content
    sops = [fit(DoseReport, "sop_instance_uid", reports[i].sop_instance_uid) for i in fresh]
    reused = set(DoseReport.objects.filter(sop_instance_uid__in=set(sops)).values_list("sop_instance_uid",
                                                                                     flat=True))
    studies, received, reps, events, accs, checks = [], [], [], [], [], []
    per_report = []
    for i in fresh:
        r = reports[i]
        issuer, pid, _, flags = identities[i]
        study_flags = list(flags)
        if r.study.study_date is None:
            study_flags.append("study_date_unknown")
        study = Study(study_instance_uid=fit(Study, "study_instance_uid", r.study.study_instance_uid),
                      patient=patients[(issuer, pid)], equipment=units[identity_key(r.equipment)], demo=demo,
                      flags=study_flags, **study_values(r, fit))
        sop = fit(DoseReport, "sop_instance_uid", r.sop_instance_uid)
        report_flags = list(r.flags)
        if sop in reused:
            report_flags.append("sop_instance_uid_reused")
        reused.add(sop)
        rep = DoseReport(
            sop_instance_uid=sop, sop_class_uid=fit(DoseReport, "sop_class_uid", r.sop_class_uid),
            source_kind=r.source_kind, template=fit(DoseReport, "template", r.template),
            state=DoseReport.STATE_CURRENT, modality_types=list(r.modality_types),
            content_datetime=aware(r.content_datetime, r.study.timezone_offset),
            scope_of_accumulation=fit(DoseReport, "scope_of_accumulation", r.scope_of_accumulation),
            scope_uid=fit(DoseReport, "scope_uid", r.scope_uid),
            event_uid_count=len({e.irradiation_event_uid for e in r.events if e.irradiation_event_uid}),
            dose_digest=dose_digest(r), predecessor_sop_uids=jsonable(list(r.predecessor_sop_uids)),
            flags=report_flags, warnings=jsonable(list(r.warnings)), content=jsonable(r.content))
        findings: list[Finding] = []
        rows = _new_study_events(r, study, rep, fit, findings)
        acc_rows = [accumulated_row(a, None, findings) for a in r.accumulated]
        findings += device_total_findings(plane_sums(acc_rows, rows))
        if findings:
            for name, value in study_findings_merge(study, findings, sop_instance_uid=sop).items():
                setattr(study, name, value)
        studies.append(study)
        received.append(ReceivedObject(
            sop_instance_uid=sop, sop_class_uid=fit(ReceivedObject, "sop_class_uid", r.sop_class_uid),
            sha256=hashes[i], study_instance_uid=fit(ReceivedObject, "study_instance_uid", r.study.study_instance_uid),
            modality=fit(ReceivedObject, "modality", r.study.header_modality), source=source,
            state=ReceivedObject.STATE_INGESTED, processed_at=now, warnings=jsonable(list(r.warnings))))
        reps.append(rep)
        per_report.append((i, rows, acc_rows, report_flags))

    insert_rows(Study, studies, returning=True)
    insert_rows(ReceivedObject, received, returning=True)
    for study, obj, rep in zip(studies, received, reps, strict=True):
        rep.study_id, rep.received_object_id = study.pk, obj.pk
    insert_rows(DoseReport, reps, returning=True)
    for study, rep, (i, rows, acc_rows, report_flags) in zip(studies, reps, per_report, strict=True):
        for row in rows:
            row.study_id, row.report_id = study.pk, rep.pk
        for a in acc_rows:
            a.report_id = rep.pk
        events.extend(rows)
        accs.extend(acc_rows)
        checks.extend(dose_check_row(c, rep, fit) for c in reports[i].dose_checks)
        outcomes[i] = RecordOutcome(status=IMPORTED, study_id=study.pk, report_id=rep.pk,
                                    equipment_change_ids=change_ids.get(i, []), flags=report_flags)
    insert_rows(IrradiationEvent, events)
    insert_rows(AccumulatedDose, accs)
    insert_rows(DoseCheckOverride, checks)
    studies_update_totals(studies)  # the one totals implementation, a few grouped queries for the batch
