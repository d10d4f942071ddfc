"""Recording parsed dose objects: one transaction, bulk inserts, idempotent and version-aware (design §4).

``record_report(report, received)`` stores one :class:`dosereg.core.dose_report.DoseReport` for the stored
ReceivedObject it came from; ``record_reports_bulk(reports)`` records a batch that comes without files
(``generate_demo_data --bulk``), with the same row builders, border checks, version rules and totals.

What a report is to the study's stored reports is decided by the pure plan of ``dosereg.core.versions``; its values
pass the border checks of ``dosereg.core.sanity`` (findings become the study's ``flags`` and ``flag_details``).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from dosereg.core import dose_report as dr
from dosereg.core.quantities import QUANTITIES
from dosereg.core.sanity import (
    CORRECTED,
    DEVICE_TOTAL_MISMATCH,
    IMPLAUSIBLE_VALUE,
    INVALID_VALUE,
    SUMMED_BY_EVENTS,
    TEXT_TRUNCATED,
    Finding,
    PlaneSums,
    device_total_findings,
)
from dosereg.core.versions import (
    ALREADY_PRESENT,
    IMPORTED,
    REPORT_KINDS,
    SOP_INSTANCE_UID_REUSED,
    SUPERSEDED,
    VersionPlan,
    dose_digest,
    event_digest,
    report_version_plan,
)
from dosereg.registry.fields import TextFitter
from dosereg.registry.models import (
    AccumulatedDose,
    DoseCheckOverride,
    DoseReport,
    IrradiationEvent,
    ReceivedObject,
    Study,
)
from dosereg.registry.services import skin_dose
from dosereg.registry.services.recording import versions as stored_versions
from dosereg.registry.services.recording.bulk_sql import insert_rows, widen_sqlite_batches
from dosereg.registry.services.recording.identity import aware, equipment_for, patient_for, study_for
from dosereg.registry.services.recording.rows import (
    ReportMemo,
    accumulated_row,
    dose_check_row,
    event_row,
    jsonable,
)
from dosereg.registry.services.recording.totals import set_event_effective_dose, studies_update_totals

log = logging.getLogger(__name__)

FINDING_FLAGS = frozenset({INVALID_VALUE, IMPLAUSIBLE_VALUE, DEVICE_TOTAL_MISMATCH, TEXT_TRUNCATED, CORRECTED})
VALUE_FLAGS = frozenset({INVALID_VALUE, IMPLAUSIBLE_VALUE, DEVICE_TOTAL_MISMATCH})  # go with their report


@dataclass
class RecordOutcome:
    """What recording one object did.  ``status``: one of ``dosereg.core.versions.OUTCOMES``."""

    status: str
    study_id: int
    report_id: int
    equipment_change_ids: list[int] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    exam_settled: bool = False  # its standard exam and the effective dose that follows it written with it


# --- findings on the study -------------------------------------------------------------------------------------------
def reported_resolution(value: float | None, raw: list | None) -> float:
    """Half the last digit of a value as the unit wrote it, in the canonical unit ("0.1" Gy.m2 -> 0.05 x 1e4): a
    device total rounded to one decimal is not a mismatch with its events' unrounded sum."""
    if value is None or not raw or not raw[0]:
        return 0.0
    text = str(raw[0]).strip().lower()
    mantissa, _, exponent = text.partition("e")
    decimals = len(mantissa.partition(".")[2])
    try:
        sent = float(text)
        shift = int(exponent) if exponent else 0
    except ValueError:
        return 0.0
    if sent == 0:
        return 0.0
    return 0.5 * 10.0 ** (shift - decimals) * abs(value / sent)


def plane_sums(acc_rows: list[AccumulatedDose], events: list[IrradiationEvent]) -> list[PlaneSums]:
    """Each accumulated row's totals beside the sums of the report's current events in its plane."""
    out = []
    for acc in acc_rows:
        same_plane = [e for e in events if e.is_current and (
            e.plane == acc.plane or (acc.plane in ("", "single") and e.plane in ("", "single")))]
        totals, sums, resolution = {}, {}, {}
        for total_name, event_name in SUMMED_BY_EVENTS.items():
            values = [getattr(e, event_name) for e in same_plane if getattr(e, event_name) is not None]
            totals[total_name] = getattr(acc, total_name)
            sums[total_name] = sum(values) if values else None
            resolution[total_name] = reported_resolution(totals[total_name], (acc.raw or {}).get(total_name))
        out.append(PlaneSums(acc.plane or "", totals, sums, resolution))
    return out


def _is_dose(name: str | None) -> bool:
    q = QUANTITIES.get(name or "")
    return bool(q and q.is_dose)


def study_findings_merge(study: Study, findings: list[Finding], *, sop_instance_uid: str,
                         dropped_sops: set[str] = frozenset()) -> dict:
    """The study's ``flags``, ``flag_details`` and ``values_unconfirmed`` with this report's findings in place of
    any earlier ones of the same object (a replay), without the value findings of reports that stopped counting."""
    details = [d for d in (study.flag_details or [])
               if d.get("sop_instance_uid") != sop_instance_uid
               and not (d.get("flag") in VALUE_FLAGS and d.get("sop_instance_uid") in dropped_sops)]
    for finding in findings:
        details.append({**finding.as_dict(), "sop_instance_uid": sop_instance_uid})
    flags = [f for f in (study.flags or []) if f not in FINDING_FLAGS]
    for d in details:
        if d["flag"] not in flags:
            flags.append(d["flag"])
    # only an implausible dose (what DRLs and trigger levels compare) keeps the study out of DRL medians; an
    # implausible technique value (an exposure time in ms sent as s) is flagged for the physicist all the same
    unconfirmed = any(d["flag"] == IMPLAUSIBLE_VALUE and not d.get("confirmed") and _is_dose(d.get("quantity"))
                      for d in details)
    return {"flags": flags, "flag_details": details, "values_unconfirmed": unconfirmed}


def _study_apply_findings(study: Study, findings: list[Finding], *, sop: str, dropped_sops: set[str]) -> None:
    if not findings and not dropped_sops and not any(d.get("sop_instance_uid") == sop
                                                      for d in study.flag_details or []):
        return
    values = study_findings_merge(study, findings, sop_instance_uid=sop, dropped_sops=dropped_sops)
    Study.objects.filter(pk=study.pk).update(**values)
    for name, value in values.items():
        setattr(study, name, value)


# --- one object ------------------------------------------------------------------------------------------------------
def _forget_replayed(received: ReceivedObject) -> None:
    """Replaying an object (reprocess) first removes what it recorded before; the reports it had superseded are
    current again until the versions are compared anew."""
    old_id = DoseReport.objects.filter(received_object=received).values_list("id", flat=True).first()
    if old_id is None:
        return
    revived = list(DoseReport.objects.filter(superseded_by_id=old_id).values_list("id", flat=True))
    IrradiationEvent.objects.filter(report_id=old_id).delete()
    DoseReport.objects.filter(pk=old_id).delete()
    if revived:
        DoseReport.objects.filter(pk__in=revived).update(state=DoseReport.STATE_CURRENT)
        IrradiationEvent.objects.filter(report_id__in=revived).update(is_current=True)


def _already_present(received: ReceivedObject, study_id: int, report_id: int, report: dr.DoseReport,
                     other_received_id: int | None) -> RecordOutcome:
    ReceivedObject.objects.filter(pk=received.pk).update(
        state=ReceivedObject.STATE_DUPLICATE, processed_at=timezone.now(),
        study_instance_uid=TextFitter()(ReceivedObject, "study_instance_uid", report.study.study_instance_uid),
        reason=f"the same object as received object {other_received_id} (same SOP Instance UID and dose content)")
    return RecordOutcome(status=ALREADY_PRESENT, study_id=study_id, report_id=report_id)


def _counted_keys(study: Study) -> tuple[set[str], dict[str, int]]:
    """Exposure keys of the study's counted image headers (the same exposure counts once), and the Irradiation
    Event UIDs of all its counted events (a header carrying a report's event UID is that event)."""
    keys, uids = set(), {}
    for ev_id, key, uid, kind in IrradiationEvent.objects.filter(study=study, is_current=True).values_list(
            "id", "exposure_key", "irradiation_event_uid", "report__source_kind"):
        if key and kind not in REPORT_KINDS:
            keys.add(key)
        if uid:
            uids[uid] = ev_id
    return keys, uids


def _event_rows(report: dr.DoseReport, *, study: Study, rep: DoseReport, plan: VersionPlan, fit: TextFitter,
                findings: list[Finding], digests: list[str]) -> list[IrradiationEvent]:
    is_report = report.source_kind in REPORT_KINDS
    counts, stamps = (True, []) if is_report else stored_versions.header_placement(study, report)
    seen_keys, seen_uids = _counted_keys(study) if not is_report and counts else (set(), {})
    rows, taken = [], set()
    memo = ReportMemo(report.study.timezone_offset)
    for seq, ev in enumerate(report.events):
        row = event_row(ev, study=study, rep=rep, seq=seq, memo=memo, fit=fit, findings=findings, digest=digests[seq])
        uid = row.irradiation_event_uid
        if not plan.incoming_current:
            row.is_current = False
        elif is_report:
            row.is_current = uid not in plan.keep_stored
        elif not counts:  # a header of a study whose report covers it: kept, matched, not counted
            row.is_current = False
            matched = stored_versions.header_match(row, stamps)
            if matched is not None:
                row.attributes = {**row.attributes, "matched_event_id": matched}
        elif uid and uid in seen_uids:  # the header of an event already counted
            row.is_current = False
            row.attributes = {**row.attributes, "matched_event_id": seen_uids[uid]}
        elif row.exposure_key and row.exposure_key in seen_keys:
            row.is_current = False  # the same exposure sent for processing and for presentation counts once
        if row.exposure_key:
            seen_keys.add(row.exposure_key)
        if uid and row.is_current:
            if uid in taken:
                row.is_current = False  # the same UID twice in one object: keep the first
            taken.add(uid)
        set_event_effective_dose(row, age=study.age_years, exam_region="")
        rows.append(row)
    return rows


def _report_row(report: dr.DoseReport, *, study: Study | None, received: ReceivedObject | None, plan: VersionPlan,
                digest: str, fit: TextFitter) -> DoseReport:
    offset = report.study.timezone_offset
    return DoseReport(
        received_object=received, study=study, sop_instance_uid=fit(DoseReport, "sop_instance_uid",
                                                                    report.sop_instance_uid),
        sop_class_uid=fit(DoseReport, "sop_class_uid", report.sop_class_uid),
        source_kind=fit(DoseReport, "source_kind", report.source_kind),
        template=fit(DoseReport, "template", report.template),
        state=DoseReport.STATE_CURRENT if plan.incoming_current else DoseReport.STATE_SUPERSEDED,
        superseded_by_id=plan.superseded_by, modality_types=list(report.modality_types),
        content_datetime=aware(report.content_datetime, offset),
        scope_of_accumulation=fit(DoseReport, "scope_of_accumulation", report.scope_of_accumulation),
        scope_uid=fit(DoseReport, "scope_uid", report.scope_uid),
        event_uid_count=len({e.irradiation_event_uid for e in report.events if e.irradiation_event_uid}),
        dose_digest=digest, predecessor_sop_uids=jsonable(list(report.predecessor_sop_uids)),
        flags=[*report.flags, *plan.flags], warnings=jsonable(list(report.warnings)),
        content=jsonable(report.content))


@transaction.atomic
def record_report(report: dr.DoseReport, received: ReceivedObject, *, demo: bool = False,
                  update_skin_dose: bool = True) -> RecordOutcome:
    """Store one parsed dose object of ``received`` (see the module docstring).  ``update_skin_dose``: recompute
    the study's skin dose with its totals (the batch path does it once for the batch instead)."""
    _forget_replayed(received)
    fit = TextFitter()
    memo: dict = {}  # the texts of the quantities its events repeat (versions.quantities_digest)
    event_digests = [event_digest(e, memo) for e in report.events]  # once: its digest, facts and rows
    digest = dose_digest(report, event_digests)
    sop = fit(DoseReport, "sop_instance_uid", report.sop_instance_uid)
    namesakes = list(DoseReport.objects.filter(sop_instance_uid=sop).values(
        "id", "study_id", "received_object_id", "dose_digest"))
    for same in namesakes:
        if same["dose_digest"] == digest:
            return _already_present(received, same["study_id"], same["id"], report, same["received_object_id"])

    patient, flags = patient_for(report, fit)
    unit, change_ids = equipment_for(report, report.study.study_date, demo, fit)
    study = study_for(report, patient, unit, demo, flags, fit)
    content_dt = aware(report.content_datetime, report.study.timezone_offset)
    incoming = stored_versions.incoming_facts(report, digest=digest, content_datetime=content_dt,
                                              event_digests=event_digests)
    stored = stored_versions.stored_facts(study, incoming)
    plan = report_version_plan(incoming, stored)
    before = stored_versions.totals_snapshot(study)

    rep = _report_row(report, study=study, received=received, plan=plan, digest=digest, fit=fit)
    if namesakes and SOP_INSTANCE_UID_REUSED not in rep.flags:  # also when the namesake is in another study
        rep.flags.append(SOP_INSTANCE_UID_REUSED)
    rep.save(force_insert=True)
    stored_versions.plan_apply_to_stored(plan, rep)
    is_report = report.source_kind in REPORT_KINDS
    if is_report and plan.incoming_current:
        stored_versions.headers_stop_counting(study, list(report.modality_types), set(incoming.events))

    findings: list[Finding] = []
    rows = _event_rows(report, study=study, rep=rep, plan=plan, fit=fit, findings=findings, digests=event_digests)
    insert_rows(IrradiationEvent, rows)
    widen_sqlite_batches()
    acc_rows = [accumulated_row(a, rep, findings) for a in report.accumulated]
    AccumulatedDose.objects.bulk_create(acc_rows)
    if report.dose_checks:
        DoseCheckOverride.objects.bulk_create([dose_check_row(c, rep, fit) for c in report.dose_checks])
    if is_report:
        findings += device_total_findings(plane_sums(acc_rows, rows))

    studies_update_totals([study])
    if update_skin_dose and "fluoroscopy" in study.modality_types:
        skin_dose.studies_update_skin_dose([study.pk])
    if plan.corrects:
        changes = stored_versions.corrections_between(before, stored_versions.totals_snapshot(study))
        DoseReport.objects.filter(pk=rep.pk).update(corrections=jsonable(changes))
        when = (content_dt or timezone.now()).date()
        findings += stored_versions.correction_findings(changes, rep=rep, when=when)
    dropped = {s.sop_instance_uid for s in stored if s.report_id in set(plan.supersede)}
    _study_apply_findings(study, (findings + fit.findings()) if plan.incoming_current else [], sop=sop,
                          dropped_sops=dropped)

    ReceivedObject.objects.filter(pk=received.pk).update(
        state=ReceivedObject.STATE_INGESTED if plan.incoming_current else ReceivedObject.STATE_SUPERSEDED,
        study_instance_uid=fit(ReceivedObject, "study_instance_uid", report.study.study_instance_uid),
        processed_at=timezone.now(), reason="", warnings=jsonable(list(report.warnings)))
    log.info("recorded %s %s of study %s: %s, %d events", report.source_kind, report.sop_instance_uid,
             report.study.study_instance_uid, plan.outcome, len(rows))
    return RecordOutcome(status=plan.outcome, study_id=study.pk, report_id=rep.pk, equipment_change_ids=change_ids,
                         flags=list(rep.flags))


# --- the batch path (generate_demo_data --bulk, benchmark scale) ------------------------------------------------------
def bulk_sha256(report: dr.DoseReport) -> str:
    """The identity hash of an object recorded without bytes (the SOP Instance UID's SHA-256)."""
    return hashlib.sha256(report.sop_instance_uid.encode()).hexdigest()


__all__ = ["IMPORTED", "SUPERSEDED", "RecordOutcome", "bulk_sha256", "plane_sums", "record_report",
           "study_findings_merge"]
