"""Report versions in the registry: the stored facts the pure plan needs (``dosereg.core.versions``), and carrying
the plan out (reports and events that stop being current, the corrections a re-issue made)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from dosereg.core import dose_report as dr
from dosereg.core.quantities import STUDY_TOTALS
from dosereg.core.sanity import CORRECTED, Finding
from dosereg.core.versions import (
    REPORT_KINDS,
    EventStamp,
    ReportFacts,
    VersionPlan,
    event_digest,
    header_counts,
    match_header_event,
)
from dosereg.registry.models import DoseReport, IrradiationEvent, Study


def incoming_facts(report: dr.DoseReport, *, digest: str, content_datetime: dt.datetime | None,
                   event_digests: list[str] | None = None) -> ReportFacts:
    digests = event_digests if event_digests is not None else [event_digest(e) for e in report.events]
    return ReportFacts(
        sop_instance_uid=report.sop_instance_uid, source_kind=report.source_kind, dose_digest=digest,
        events={e.irradiation_event_uid: d for e, d in zip(report.events, digests, strict=True)
                if e.irradiation_event_uid},
        content_datetime=content_datetime, predecessors=frozenset(report.predecessor_sop_uids))


def stored_facts(study: Study, incoming: ReportFacts) -> list[ReportFacts]:
    """The study's stored reports as facts (two queries).  Reports recorded before digests were kept have none:
    their values count as unknown, never as changed (no false corrections after an upgrade)."""
    reports = list(DoseReport.objects.filter(study=study).values(
        "id", "sop_instance_uid", "source_kind", "dose_digest", "content_datetime", "predecessor_sop_uids", "state"))
    current_ids = [r["id"] for r in reports if r["state"] == DoseReport.STATE_CURRENT and r["source_kind"] in
                   REPORT_KINDS]
    events: dict[int, dict[str, str]] = defaultdict(dict)
    for rep_id, uid, digest in IrradiationEvent.objects.filter(
            report_id__in=current_ids, irradiation_event_uid__isnull=False).values_list(
            "report_id", "irradiation_event_uid", "value_digest"):
        events[rep_id][uid] = digest or incoming.events.get(uid, "")
    out = []
    for r in reports:
        evs = events.get(r["id"], {})
        digest = r["dose_digest"]
        if not digest and all(incoming.events.get(u) == d for u, d in evs.items()):
            digest = incoming.dose_digest
        out.append(ReportFacts(
            sop_instance_uid=r["sop_instance_uid"], source_kind=r["source_kind"], dose_digest=digest, events=evs,
            content_datetime=r["content_datetime"], predecessors=frozenset(r["predecessor_sop_uids"] or ()),
            report_id=r["id"], current=r["state"] == DoseReport.STATE_CURRENT))
    return out


def plan_apply_to_stored(plan: VersionPlan, rep: DoseReport) -> None:
    """Stored reports the incoming one supersedes or takes events from stop being (wholly or partly) current."""
    if plan.supersede:
        DoseReport.objects.filter(pk__in=plan.supersede).update(state=DoseReport.STATE_SUPERSEDED, superseded_by=rep)
        IrradiationEvent.objects.filter(report_id__in=plan.supersede).update(is_current=False)
    for rep_id, uids in plan.take_over:
        IrradiationEvent.objects.filter(report_id=rep_id, irradiation_event_uid__in=list(uids)).update(
            is_current=False)
        old = DoseReport.objects.get(pk=rep_id)
        if "partial_overlap" not in old.flags:
            DoseReport.objects.filter(pk=rep_id).update(flags=[*old.flags, "partial_overlap"])


def headers_stop_counting(study: Study, report_modalities: list[str], report_event_uids: set[str]) -> None:
    """A report arrived: the study's image headers of the modalities it covers, or carrying one of its Irradiation
    Event UIDs, no longer count (the report's events, totals and maxima do)."""
    header_reports = DoseReport.objects.filter(study=study, state=DoseReport.STATE_CURRENT).exclude(
        source_kind__in=REPORT_KINDS).values_list("id", "modality_types")
    covered = [rep_id for rep_id, kinds in header_reports if not header_counts(kinds or [], report_modalities)]
    if covered:
        IrradiationEvent.objects.filter(report_id__in=covered, is_current=True).update(is_current=False)
    if report_event_uids:
        IrradiationEvent.objects.filter(study=study, is_current=True, irradiation_event_uid__in=report_event_uids
                                        ).exclude(report__source_kind__in=REPORT_KINDS).update(is_current=False)


def header_placement(study: Study, report: dr.DoseReport) -> tuple[bool, list[EventStamp]]:
    """Whether an incoming image header counts in its study, and the report events it may describe."""
    kinds: set[str] = set()
    for mts in DoseReport.objects.filter(study=study, state=DoseReport.STATE_CURRENT,
                                         source_kind__in=REPORT_KINDS).values_list("modality_types", flat=True):
        kinds.update(mts or [])
    if header_counts(report.modality_types, sorted(kinds)):
        return True, []
    stamps = [EventStamp(uid, when, key) for key, uid, when in IrradiationEvent.objects.filter(
        study=study, is_current=True, report__source_kind__in=REPORT_KINDS).values_list(
        "id", "irradiation_event_uid", "datetime")]
    return False, stamps


def header_match(header_event: IrradiationEvent, stamps: list[EventStamp]) -> int | None:
    return match_header_event(EventStamp(header_event.irradiation_event_uid, header_event.datetime), stamps)


def totals_snapshot(study: Study) -> dict[str, float | None]:
    return {name: getattr(study, name) for name in STUDY_TOTALS}


def corrections_between(before: dict[str, float | None], after: dict[str, float | None]) -> list[dict]:
    """The study totals a correction changed: ``[{"quantity", "old", "new"}]`` in catalogue order."""
    out = []
    for name in STUDY_TOTALS:
        old, new = before.get(name), after.get(name)
        if old != new and not (old is not None and new is not None and abs(old - new) <= 1e-9 * max(abs(old), 1)):
            out.append({"quantity": name, "old": old, "new": new})
    return out


def correction_findings(changes: list[dict], *, rep: DoseReport, when: dt.date) -> list[Finding]:
    if not changes:
        return [Finding(CORRECTED, "", "a re-issued report with other event values replaced the earlier one",
                        {"date": when.isoformat(), "report_id": rep.pk, "sop_instance_uid": rep.sop_instance_uid})]
    return [Finding(CORRECTED, c["quantity"], "re-issued report", {
        "old": c["old"], "new": c["new"], "date": when.isoformat(), "report_id": rep.pk,
        "sop_instance_uid": rep.sop_instance_uid}) for c in changes]
