"""Incident report services: creation (blank, from a study, from an alert, automatic), the dose-parameter snapshot,
the significance check against the active ``significant_event`` rules, the workflow, and the periodic summary.

Every change is written to the audit trail (``audit_record``) with what changed.  Free-text fields are recorded as
changed (with their length), never copied into the audit log, so patient details typed into a description stay out.
"""

from __future__ import annotations

import datetime as dt
import logging
import os

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from dosereg.core.display import format_number, format_quantity, show
from dosereg.core.quantities import PLANE_QUANTITIES, QUANTITIES, STUDY_TOTALS
from dosereg.registry.models import AuditLog, Study
from dosereg.registry.selectors import study_export_dict
from dosereg.registry.services.audit import audit_record
from dosereg.registry.services.notifications import notification_send
from drl import selectors as drl_selectors
from triggers import services as trigger_services
from triggers.incidents.models import CATEGORY_CHOICES, IncidentAction, IncidentComment, IncidentReport
from triggers.models import Alert

log = logging.getLogger(__name__)

OBJECT_TYPE = "incident_report"

# Quantities of the snapshot, by their catalogue names (labels and units come from dosereg.core.quantities): the
# study totals, the per-plane totals (biplane units), and the irradiation event columns.
TOTAL_QUANTITIES: tuple[str, ...] = STUDY_TOTALS
SNAPSHOT_EVENT_QUANTITIES: tuple[str, ...] = ("ctdivol_mgy", "dlp_mgycm", "kap_gycm2", "ka_r_mgy",
                                              "irradiation_duration_s", "agd_mgy", "activity_mbq")
EVENT_TEXT = ("irradiation_event_uid", "event_type", "protocol", "target_region", "plane", "laterality", "view")

KA_R_NOTE = ("Ka,r (air kerma at the interventional reference point) is shown as a surrogate for skin dose. It is "
             "not a skin-dose estimate: it can under- or overestimate the peak skin dose.")
EFFECTIVE_DOSE_NOTE = ("Effective dose is an estimate for comparing procedures, not a personal risk figure "
                       "(ICRP 103).")
DEFAULT_NOTIFICATION_DAYS = 30

TEXT_FIELDS = {"title", "description", "drl_comparison", "trigger_level_comparison", "skin_dose_note", "root_cause",
               "analysis_notes", "notification_notes"}
BASIC_FIELDS = ("kind", "category", "incident_date", "discovered_date", "room", "equipment", "title", "description")
ANALYSIS_FIELDS = ("drl_comparison", "trigger_level_comparison", "skin_dose_note", "effective_dose_estimate_msv",
                   "effective_dose_method", "root_cause", "analysis_notes", "patient_informed",
                   "patient_informed_date", "referrer_informed", "referrer_informed_date")
NOTIFICATION_FIELDS = ("notified_date", "notified_authority", "notification_reference", "notification_notes")


class IncidentError(ValueError):
    """A refused incident operation; the message is shown to the user as it is."""


# --- permissions and visibility -------------------------------------------------------------------------------------
def incidents_visible_to(user):
    """QA committee (and physicists, administrators) read all; anyone else only what they reported."""
    qs = IncidentReport.objects.all()
    if user is None or not user.is_authenticated or not user.has_perm("triggers.view_incidentreport"):
        return qs.none()
    if user.has_perm("triggers.view_all_incidents"):
        return qs
    return qs.filter(reporter=user)


def user_may_see_study(user, study: Study) -> bool:
    if user is None:  # a system action (automatic draft)
        return True
    return bool(user.is_authenticated and user.has_perm("registry.view_study"))


def may_edit_basic(user, incident: IncidentReport) -> bool:
    if incident.state == IncidentReport.STATE_CLOSED:
        return False
    if user.has_perm("triggers.review_incident"):
        return True
    return (incident.state == IncidentReport.STATE_DRAFT and user.has_perm("triggers.change_incidentreport")
            and (incident.reporter_id == user.pk or user.has_perm("triggers.view_all_incidents")))


def may_edit_analysis(user, incident: IncidentReport) -> bool:
    return incident.state != IncidentReport.STATE_CLOSED and user.has_perm("triggers.edit_incident_analysis")


def may_record_notification(user, incident: IncidentReport) -> bool:
    return incident.state != IncidentReport.STATE_CLOSED and (
        user.has_perm("triggers.review_incident") or user.has_perm("triggers.edit_incident_analysis"))


# --- the dose-parameter snapshot ------------------------------------------------------------------------------------
def _num(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def study_dose_parameters(study: Study) -> dict:
    """The physical quantities of one study as the registry holds them now (its ``export_doses`` object), in the
    catalogue's canonical units, per plane and per irradiation event."""
    study = Study.objects.select_related("equipment__room", "standard_exam", "patient").get(pk=study.pk)
    export = study_export_dict(study, events=True)
    totals = export.get("totals") or {}
    agd = totals.get("agd_total_mgy") or {}
    values = {**{k: totals.get(k) for k in TOTAL_QUANTITIES},
              "agd_left_mgy": agd.get("left"), "agd_right_mgy": agd.get("right")}
    events = [{**{k: (e.get(k) or "") for k in EVENT_TEXT if k != "irradiation_event_uid"},
               "irradiation_event_uid": e.get("irradiation_event_uid"),
               **{k: _num(e.get(k)) for k in SNAPSHOT_EVENT_QUANTITIES}}
              for e in export.get("events") or []]
    if values.get("max_ctdivol_mgy") is None:
        ctdis = [e["ctdivol_mgy"] for e in events if e.get("ctdivol_mgy") is not None]
        values["max_ctdivol_mgy"] = max(ctdis) if ctdis else None
    planes = [{"plane": p.get("plane") or "", **{k: _num(p.get(k)) for k in PLANE_QUANTITIES}}
              for p in totals.get("planes") or []]
    return {
        "study_id": study.pk,
        "study_instance_uid": study.study_instance_uid,
        "accession_number": study.accession_number,
        "study_date": study.study_date.isoformat() if study.study_date else None,
        "modality_type": study.modality_type,
        "study_description": study.study_description,
        "standard_exam": study.standard_exam.name if study.standard_exam_id else None,
        "unit": study.equipment.display_name if study.equipment_id else "",
        "room": study.equipment.room.name if study.equipment_id and study.equipment.room_id else "",
        "effective_dose_method": totals.get("effective_dose_method") or study.effective_dose_method,
        "source": "study_export_dict",
        "totals": {k: _num(values.get(k)) for k in TOTAL_QUANTITIES},
        # a plane table only says something when there are planes with values
        "planes": [p for p in planes if any(p[k] is not None for k in PLANE_QUANTITIES)],
        "events": events,
        "event_count": len(events),
    }


def dose_snapshot(studies) -> dict:
    """The snapshot kept in the report: each study's quantities, and its DRL position at that time."""
    out = []
    for study in studies:
        params = study_dose_parameters(study)
        params["drl"] = drl_position_text(study)
        out.append(params)
    return {"taken_at": timezone.now().isoformat(), "studies": out}


def _change(name: str | None, what: str, old, new) -> dict:
    """One difference between the snapshot and the registry, both values as people read them."""
    shown = (lambda v: format_quantity(name, v)) if name else format_number
    return {"what": what, "snapshot": shown(old), "current": shown(new)}


def _differences_one(old: dict, new: dict) -> list[dict]:
    diffs = []
    for key in TOTAL_QUANTITIES:
        a, b = old.get("totals", {}).get(key), new.get("totals", {}).get(key)
        if a != b:
            diffs.append(_change(key, QUANTITIES[key].label, a, b))
    old_planes = {p["plane"]: p for p in old.get("planes", [])}
    new_planes = {p["plane"]: p for p in new.get("planes", [])}
    for plane in sorted(set(old_planes) | set(new_planes)):
        for key in PLANE_QUANTITIES:
            a, b = old_planes.get(plane, {}).get(key), new_planes.get(plane, {}).get(key)
            if a != b:
                diffs.append(_change(key, f"{QUANTITIES[key].label}, plane {plane or 'single'}", a, b))
    if old.get("event_count") != new.get("event_count"):
        diffs.append(_change(None, "Number of irradiation events", old.get("event_count"), new.get("event_count")))
        return diffs
    for i, (ea, eb) in enumerate(zip(old.get("events", []), new.get("events", []), strict=False), 1):
        for key in SNAPSHOT_EVENT_QUANTITIES:
            if ea.get(key) != eb.get(key):
                diffs.append(_change(key, f"{QUANTITIES[key].label}, event {i}", ea.get(key), eb.get(key)))
    return diffs


def snapshot_differences(incident: IncidentReport) -> list[dict]:
    """What the registry holds now that differs from the snapshot (after a re-import or a correction), per study;
    [] when equal.  Values are shown with their units."""
    out = []
    snap = {s["study_id"]: s for s in (incident.dose_snapshot or {}).get("studies", [])}
    for study in incident.studies.all():
        old = snap.get(study.pk)
        if old is None:
            continue
        diffs = _differences_one(old, study_dose_parameters(study))
        if diffs:
            out.append({"study_instance_uid": study.study_instance_uid, "study_id": study.pk, "changes": diffs})
    return out


# --- analysis helpers -------------------------------------------------------------------------------------------------
def _position_text(p: dict) -> str:
    name = p.get("quantity")
    shown = (lambda v: format_quantity(name, v)) if name in QUANTITIES else (lambda v: format_number(v))
    label = QUANTITIES[name].label if name in QUANTITIES else (p.get("label") or name or "")
    ratio = p.get("ratio")
    text = (f"{p.get('exam_name', p.get('standard_exam', ''))} ({p.get('patient_group', '')}): {label} "
            f"{shown(p.get('value'))} against the DRL {shown(p.get('drl'))}")
    if isinstance(ratio, int | float):
        text += f" (ratio {format_number(ratio)}, {p.get('status')})"
    text += f", {p.get('drl_set', '')}"
    if p.get("verify"):
        text += " [verify against the primary publication]"
    return text


def drl_position_text(study: Study | None) -> str | None:
    """The study's position against the DRL of its mapped examination, in words (``drl.selectors.drl_position``);
    None when the study is unmapped or no DRL applies."""
    if study is None:
        return None
    try:
        result = drl_selectors.drl_position(study.pk)
    except Exception as exc:  # noqa: BLE001 - the report (an automatic draft on ingest, too) must stand; logged
        log.warning("DRL lookup failed for study %s: %s", study.pk, exc)
        return None
    if not result:
        return None
    note = result.get("note")
    return "; ".join(_position_text(p) for p in result.get("positions") or [result]) + (
        f". Note: {note}." if note else "")


def alert_summary(alert: Alert) -> dict:
    """An alert as the report shows it; ``value_text``/``threshold_text`` carry the unit (the catalogue's format)."""
    rule = alert.rule
    return {
        "alert_id": alert.pk,
        "study_id": alert.study_id,
        "rule": rule.name,
        "rule_key": rule.key,
        "source": rule.source,
        "verify": bool(rule.verify),
        "severity": alert.severity,
        "severity_label": alert.get_severity_display(),
        "quantity": alert.quantity_label or alert.quantity,
        "value": _num(alert.value),
        "threshold": _num(alert.threshold),
        "unit": alert.unit,
        "value_text": _alert_value_text(alert.quantity, alert.value),
        "threshold_text": _alert_value_text(alert.quantity, alert.threshold),
        "still_exceeds": alert.still_exceeds,
        "summary": alert.summary,
    }


def _alert_value_text(name: str, value) -> str:
    return format_quantity(name, value) if name in QUANTITIES else format_number(value)


def trigger_level_rows(incident: IncidentReport) -> list[dict]:
    """Alerts raised on the linked studies (linked or not): the trigger levels their quantities reached."""
    study_ids = list(incident.studies.values_list("pk", flat=True))
    qs = Alert.objects.filter(Q(pk__in=incident.alerts.values("pk")) | Q(study_id__in=study_ids)).select_related("rule")
    return [alert_summary(a) for a in qs.order_by("study_id", "id").distinct()]


# --- significance ----------------------------------------------------------------------------------------------------
def notification_days() -> int:
    """Days from the exposure to the notification due date: settings.INCIDENT_NOTIFICATION_DAYS, else the environment
    variable DOSEREG_INCIDENT_NOTIFICATION_DAYS, else 30.  The Directive says "as soon as possible"; set your
    competent authority's deadline."""
    value = getattr(settings, "INCIDENT_NOTIFICATION_DAYS", None)
    if value is None:
        raw = os.environ.get("DOSEREG_INCIDENT_NOTIFICATION_DAYS", "").strip()
        value = int(raw) if raw.isdigit() else DEFAULT_NOTIFICATION_DAYS
    return int(value)


def significance_check(incident: IncidentReport) -> list[dict]:
    """Reasons the incident is significant: the significant_event alerts of its studies (raised by the active
    significant_event rules, e.g. StrlSchV Anlage 14) and of its linked alerts, plus any manual mark kept."""
    study_ids = list(incident.studies.values_list("pk", flat=True))
    qs = (Alert.objects.filter(Q(pk__in=incident.alerts.values("pk")) | Q(study_id__in=study_ids))
          .filter(severity="significant_event", rule__active=True).select_related("rule").order_by("id").distinct())
    reasons = [{"kind": "rule", **alert_summary(a)} for a in qs]
    reasons += [r for r in incident.significance_reasons or [] if r.get("kind") == "manual"]
    return reasons


def _apply_significance(incident: IncidentReport) -> None:
    reasons = significance_check(incident)
    incident.significance_reasons = reasons
    incident.is_significant = bool(reasons)
    if incident.is_significant and incident.notification_due_date is None:
        incident.notification_due_date = incident.incident_date + dt.timedelta(days=notification_days())
    if not incident.is_significant:
        incident.notification_due_date = None


def incident_recheck_significance(incident: IncidentReport, *, user=None, request=None) -> IncidentReport:
    before = (incident.is_significant, incident.notification_due_date)
    with transaction.atomic():
        _apply_significance(incident)
        incident.save()
        if before != (incident.is_significant, incident.notification_due_date):
            _audit(user, "incident_significance", incident, request=request, changes={
                "is_significant": [before[0], incident.is_significant],
                "notification_due_date": [_jsonable(before[1]), _jsonable(incident.notification_due_date)]})
    return incident


def incident_mark_significant(incident: IncidentReport, *, user, significant: bool, reason: str = "",
                              request=None) -> IncidentReport:
    """The QA committee marks an incident significant on criteria that are not dose rules (or removes its mark)."""
    if not user.has_perm("triggers.review_incident"):
        raise IncidentError("Only the QA committee can mark an incident as significant.")
    if significant and not reason.strip():
        raise IncidentError("Give the reason the incident is significant.")
    reasons = [r for r in incident.significance_reasons or [] if r.get("kind") != "manual"]
    if significant:
        reasons.append({"kind": "manual", "rule": "Marked significant by the QA committee", "source": reason.strip(),
                        "by": user.username, "at": timezone.now().date().isoformat()})
    incident.significance_reasons = reasons
    return incident_recheck_significance(incident, user=user, request=request)


# --- audit -----------------------------------------------------------------------------------------------------------
def _jsonable(value):
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if hasattr(value, "pk"):
        return value.pk
    return value


def _audit(user, action: str, incident: IncidentReport, *, request=None, changes: dict | None = None, **extra):
    detail = {"state": incident.state, **extra}
    if changes:
        detail["changes"] = changes
    audit_record(user=user, action=action, object_type=OBJECT_TYPE, object_id=incident.pk, detail=detail,
                 request=request)


def _set_fields(incident: IncidentReport, data: dict, fields) -> dict:
    """Set the given fields from data; return {field: [old, new]} (text fields: only that they changed)."""
    changes = {}
    for name in fields:
        if name not in data:
            continue
        old, new = getattr(incident, name), data[name]
        if old == new:
            continue
        setattr(incident, name, new)
        if name in TEXT_FIELDS:
            changes[name] = {"changed": True, "length": len(new or "")}
        else:
            changes[name] = [_jsonable(old), _jsonable(new)]
    return changes


def incident_history(incident: IncidentReport):
    return AuditLog.objects.filter(object_type=OBJECT_TYPE, object_id=str(incident.pk)).order_by("at", "id")


# --- messages to subscribers (topic "incident") ----------------------------------------------------------------------
def _notify(incident: IncidentReport, *, event: str, version: str) -> None:
    """Queue an e-mail to the users subscribed to incident reports (rows first; the registry's service sends them
    after commit, once).  No patient details: the message names the report, its category, date and room."""
    what = {"opened": "opened automatically as a draft (significant-event criterion)",
            "submitted": "submitted for QA review"}[event]
    lines = [f"Incident report {incident.pk} was {what}.",
             f"Category: {incident.get_category_display()}",
             f"Date of the exposure: {incident.incident_date.isoformat()}",
             f"Room: {incident.room.name if incident.room_id else 'not recorded'}"]
    if incident.is_significant:
        lines.append(f"Significant event: to be notified to the competent authority by "
                     f"{incident.notification_due_date.isoformat() if incident.notification_due_date else '-'}"
                     + (" (OVERDUE)" if incident.notification_overdue else "") + ".")
    lines.append(f"Open the report: /incidents/{incident.pk}/")
    notification_send(topic="incident", subject=f"[DoseReg] Incident report {incident.pk} {event}"
                                                + (" (significant event)" if incident.is_significant else ""),
                      body="\n".join(lines), object_type=OBJECT_TYPE, object_id=str(incident.pk),
                      room_id=incident.room_id, modality_type="",
                      severity="significant_event" if incident.is_significant else "alert", version=version)


# --- creation --------------------------------------------------------------------------------------------------------
def _validate_basic(data: dict) -> None:
    if not data.get("category"):
        raise IncidentError("Choose a category.")
    if dict(CATEGORY_CHOICES).get(data["category"]) is None:
        raise IncidentError(f"Unknown category {data['category']!r}.")
    if not data.get("incident_date"):
        raise IncidentError("Give the date of the exposure.")
    if data.get("discovered_date") and data["discovered_date"] < data["incident_date"]:
        raise IncidentError("The discovery date cannot be before the exposure date.")


def _check_studies(user, studies) -> list[Study]:
    studies = list(studies)
    for study in studies:
        if not user_may_see_study(user, study):
            raise IncidentError(f"You may not link study {study.study_instance_uid}: you cannot see it.")
    return studies


def incident_create(*, user, data: dict, studies=(), alerts=(), origin: str = "blank", request=None,
                    automatic: bool = False) -> IncidentReport:
    """Create an incident report (state draft) with the dose snapshot of its studies and its significance."""
    if not automatic and (user is None or not user.has_perm("triggers.add_incidentreport")):
        raise IncidentError("You may not create incident reports.")
    _validate_basic(data)
    studies = _check_studies(user, studies)
    alerts = list(alerts)
    with transaction.atomic():
        incident = IncidentReport(reporter=user if user is not None and user.is_authenticated else None,
                                  origin=origin)
        _set_fields(incident, data, BASIC_FIELDS)
        if incident.equipment_id is None and studies and studies[0].equipment_id:
            incident.equipment_id = studies[0].equipment_id
        if incident.room_id is None and incident.equipment_id:
            incident.room_id = incident.equipment.room_id
        incident.dose_snapshot = dose_snapshot(studies)
        incident.snapshot_taken_at = timezone.now()
        eff = [s.effective_dose_msv for s in studies if s.effective_dose_msv is not None]
        if eff:
            incident.effective_dose_estimate_msv = sum(eff)
            incident.effective_dose_method = "; ".join(sorted({s.effective_dose_method for s in studies
                                                               if s.effective_dose_method})) or "as recorded"
        if any(s.ka_r_total_mgy is not None for s in studies):
            incident.skin_dose_note = KA_R_NOTE
        incident.save()
        incident.studies.set(studies)
        incident.alerts.set(alerts)
        _apply_significance(incident)
        incident.save()
        _audit(user, "incident_create", incident, request=request, origin=origin, automatic=automatic,
               changes={"category": incident.category, "kind": incident.kind,
                        "incident_date": incident.incident_date.isoformat(),
                        "studies": [s.pk for s in studies], "alerts": [a.pk for a in alerts],
                        "is_significant": incident.is_significant,
                        "notification_due_date": _jsonable(incident.notification_due_date)})
    return incident


def _escalate_alert(alert, *, user, request=None) -> None:
    """Alert state -> escalated through the triggers app's lifecycle service (history row and audit)."""
    if alert.state == "escalated":
        return
    try:
        trigger_services.alert_escalate(alert, user, request=request)
    except trigger_services.AlertStateError as exc:
        raise IncidentError(f"Alert {alert.pk} cannot be escalated: {exc}") from exc


def incident_from_alert(alert_id: int, *, automatic: bool = False, user=None, data: dict | None = None,
                        request=None) -> IncidentReport:
    """Escalate an alert to an incident report (alert state -> escalated), or, with ``automatic=True`` (a
    significant_event alert raised on ingest), open a draft report for it; the alert's state is then left as it is,
    so it stays in the inbox.  Idempotent: an alert already linked to a report returns that report.  ``user=None``
    with ``automatic=False`` is a system call whose caller checked the permission."""
    alert = Alert.objects.select_related("rule", "study__equipment").get(pk=alert_id)
    if not automatic and user is not None and not user.has_perm("triggers.escalate_alert"):
        raise IncidentError("You may not escalate alerts.")
    existing = alert.incident_reports.order_by("id").first()
    if existing is not None:
        if not automatic:
            _escalate_alert(alert, user=user, request=request)
        return existing
    open_report = (IncidentReport.objects.filter(studies=alert.study_id)
                   .exclude(state=IncidentReport.STATE_CLOSED).order_by("id").first())
    if automatic and open_report is not None:
        # the study already has an open report (e.g. a rule pack was activated later): link the alert to it and
        # check its significance again, rather than opening a second report of the same exposure
        with transaction.atomic():
            open_report.alerts.add(alert)
            _audit(None, "incident_link_alert", open_report, changes={"alerts_added": [alert.pk]}, automatic=True)
            incident_recheck_significance(open_report)
        return open_report
    study = alert.study
    base = {
        "kind": "unintended",
        "category": "dose_higher_than_intended",
        "incident_date": (study.study_date or (study.study_datetime.date() if study.study_datetime else None)
                          or timezone.now().date()),
        "discovered_date": timezone.now().date(),
        "title": f"{alert.rule.name}"[:200],
        "description": (f"{'Opened automatically from' if automatic else 'Escalated from'} alert {alert.pk}: "
                        f"{alert.summary or alert.rule.name}"),
    }
    base.update({k: v for k, v in (data or {}).items() if v not in (None, "")})
    with transaction.atomic():
        if not automatic:
            _escalate_alert(alert, user=user, request=request)
        # user None: a system call (the triggers app checked the permission, or an automatic draft)
        incident = incident_create(user=user, data=base, studies=[study], alerts=[alert],
                                   origin="automatic" if automatic else "alert", request=request,
                                   automatic=automatic or user is None)
        if automatic:
            _notify(incident, event="opened", version="opened")
    return incident


def incident_from_study(study_id: int, *, user, data: dict, request=None) -> IncidentReport:
    """A radiographer (or anyone allowed) reports an exposure from a study."""
    if user is None or not (user.has_perm("triggers.report_exposure") and user.has_perm("triggers.add_incidentreport")):
        raise IncidentError("You may not report an exposure.")
    study = Study.objects.select_related("equipment").get(pk=study_id)
    if not user_may_see_study(user, study):
        raise IncidentError("You may not link this study: you cannot see it.")
    alerts = list(Alert.objects.filter(study=study, severity="significant_event"))
    return incident_create(user=user, data=data, studies=[study], alerts=alerts, origin="study", request=request)


# --- changes ---------------------------------------------------------------------------------------------------------
def incident_update(incident: IncidentReport, *, user, data: dict, studies=None, request=None) -> IncidentReport:
    """Change the report's facts (category, dates, room/unit, description) and, optionally, its linked studies (new
    studies get their snapshot taken now; removed ones lose theirs)."""
    if not may_edit_basic(user, incident):
        raise IncidentError("You may not change this report now.")
    merged = {f: getattr(incident, f) for f in BASIC_FIELDS} | data
    _validate_basic(merged)
    with transaction.atomic():
        changes = _set_fields(incident, data, BASIC_FIELDS)
        if studies is not None:
            studies = _check_studies(user, studies)
            old_ids = set(incident.studies.values_list("pk", flat=True))
            new_ids = {s.pk for s in studies}
            if old_ids != new_ids:
                snap = incident.dose_snapshot or {"studies": []}
                kept = [s for s in snap.get("studies", []) if s["study_id"] in new_ids]
                added = dose_snapshot([s for s in studies if s.pk not in old_ids])["studies"]
                incident.dose_snapshot = {**snap, "studies": kept + added}
                incident.studies.set(studies)
                changes["studies"] = [sorted(old_ids), sorted(new_ids)]
        if "incident_date" in changes:
            incident.notification_due_date = None  # recomputed from the new exposure date
        _apply_significance(incident)
        incident.save()
        if changes:
            _audit(user, "incident_update", incident, request=request, changes=changes)
    return incident


def incident_update_analysis(incident: IncidentReport, *, user, data: dict, request=None) -> IncidentReport:
    if not may_edit_analysis(user, incident):
        raise IncidentError("Only a medical physicist can edit the analysis of an open report.")
    with transaction.atomic():
        changes = _set_fields(incident, data, ANALYSIS_FIELDS)
        incident.save()
        if changes:
            _audit(user, "incident_analysis", incident, request=request, changes=changes)
    return incident


def incident_record_notification(incident: IncidentReport, *, user, data: dict, request=None) -> IncidentReport:
    """Keep the notification record: when it was sent to the competent authority, to whom, its reference."""
    if not may_record_notification(user, incident):
        raise IncidentError("You may not record the notification of this report.")
    if data.get("notified_date") and data["notified_date"] > timezone.now().date():
        raise IncidentError("The notification date cannot be in the future.")
    with transaction.atomic():
        changes = _set_fields(incident, data, NOTIFICATION_FIELDS)
        if "notified_date" in changes:
            incident.notified_by = user
        incident.save()
        if changes:
            _audit(user, "incident_notification", incident, request=request, changes=changes)
    return incident


def incident_add_action(incident: IncidentReport, *, user, kind: str, description: str, owner: str,
                        due_date: dt.date, request=None) -> IncidentAction:
    if not (may_edit_analysis(user, incident) or (incident.state != IncidentReport.STATE_CLOSED
                                                  and user.has_perm("triggers.review_incident"))):
        raise IncidentError("You may not add actions to this report.")
    if kind not in dict(IncidentAction.KIND_CHOICES):
        raise IncidentError("Choose corrective or preventive.")
    if not description.strip() or not owner.strip():
        raise IncidentError("An action needs a description and an owner.")
    if due_date is None:
        raise IncidentError("An action needs a due date.")
    if due_date < timezone.now().date():
        raise IncidentError("The due date of an action cannot be in the past.")
    with transaction.atomic():
        action = IncidentAction.objects.create(incident=incident, kind=kind, description=description.strip(),
                                               owner=owner.strip(), due_date=due_date, created_by=user)
        _audit(user, "incident_action_add", incident, request=request,
               changes={"action": action.pk, "kind": kind, "owner": action.owner, "due_date": due_date.isoformat()})
    return action


def incident_action_done(action: IncidentAction, *, user, done_date: dt.date | None = None,
                         request=None) -> IncidentAction:
    incident = action.incident
    if not (may_edit_analysis(user, incident) or (incident.state != IncidentReport.STATE_CLOSED
                                                  and user.has_perm("triggers.review_incident"))):
        raise IncidentError("You may not change the actions of this report.")
    done_date = done_date or timezone.now().date()
    with transaction.atomic():
        action.done_date = done_date
        action.save(update_fields=["done_date"])
        _audit(user, "incident_action_done", incident, request=request,
               changes={"action": action.pk, "done_date": done_date.isoformat()})
    return action


def incident_comment(incident: IncidentReport, *, user, text: str, request=None) -> IncidentComment:
    if not text.strip():
        raise IncidentError("A comment cannot be empty.")
    with transaction.atomic():
        comment = IncidentComment.objects.create(incident=incident, author=user, text=text.strip())
        _audit(user, "incident_comment", incident, request=request, changes={"comment": comment.pk})
    return comment


# --- workflow --------------------------------------------------------------------------------------------------------
# (from, to) -> the permission needed; the reporter may submit their own draft.
TRANSITIONS = {
    ("draft", "submitted"): "triggers.change_incidentreport",
    ("submitted", "under_review"): "triggers.review_incident",
    ("submitted", "draft"): "triggers.review_incident",
    ("under_review", "draft"): "triggers.review_incident",
    ("under_review", "closed"): "triggers.review_incident",
    ("closed", "under_review"): "triggers.review_incident",
}
TRANSITION_LABELS = {
    ("draft", "submitted"): "Submit",
    ("submitted", "under_review"): "Start QA review",
    ("submitted", "draft"): "Return to the reporter",
    ("under_review", "draft"): "Return to the reporter",
    ("under_review", "closed"): "Close",
    ("closed", "under_review"): "Reopen",
}


def allowed_transitions(user, incident: IncidentReport) -> list[tuple[str, str]]:
    out = []
    for (src, dst), perm in TRANSITIONS.items():
        if src != incident.state or not user.has_perm(perm):
            continue
        if (src, dst) == ("draft", "submitted") and not (incident.reporter_id == user.pk
                                                         or user.has_perm("triggers.view_all_incidents")):
            continue
        out.append((dst, TRANSITION_LABELS[(src, dst)]))
    return out


def incident_transition(incident: IncidentReport, *, user, to_state: str, comment: str = "",
                        request=None) -> IncidentReport:
    """Move the report along draft -> submitted -> under_review -> closed (comment kept).  Reopening a closed report
    is for the QA committee only, with a reason."""
    src = incident.state
    if (src, to_state) not in TRANSITIONS:
        raise IncidentError(f"A {incident.get_state_display().lower()} report cannot go to {to_state!r}.")
    if to_state not in {dst for dst, _label in allowed_transitions(user, incident)}:
        if src == IncidentReport.STATE_CLOSED:
            raise IncidentError("Only the QA committee can reopen a closed report.")
        raise IncidentError("You may not make this change.")
    comment = (comment or "").strip()
    if src == IncidentReport.STATE_CLOSED and not comment:
        raise IncidentError("Give the reason for reopening the report.")
    if to_state == "draft" and not comment:
        raise IncidentError("Say why the report goes back to the reporter.")
    if to_state == IncidentReport.STATE_SUBMITTED and not incident.description.strip():
        raise IncidentError("Describe what happened before submitting.")
    if to_state == IncidentReport.STATE_CLOSED and incident.is_significant and not incident.notified_date:
        raise IncidentError("A significant event cannot be closed before its notification to the competent "
                            "authority is recorded.")
    now = timezone.now()
    with transaction.atomic():
        incident.state = to_state
        if to_state == IncidentReport.STATE_SUBMITTED:
            incident.submitted_at = now
        incident.closed_at = now if to_state == IncidentReport.STATE_CLOSED else None
        incident.save()
        note = IncidentComment.objects.create(incident=incident, author=user, text=comment, from_state=src,
                                              to_state=to_state)
        if to_state == IncidentReport.STATE_SUBMITTED:
            _notify(incident, event="submitted", version=f"submitted-{note.pk}")
        _audit(user, "incident_reopen" if src == "closed" else "incident_transition", incident, request=request,
               changes={"state": [src, to_state]}, comment_length=len(comment))
    return incident


def incident_reopen(incident: IncidentReport, *, user, reason: str, request=None) -> IncidentReport:
    return incident_transition(incident, user=user, to_state=IncidentReport.STATE_UNDER_REVIEW, comment=reason,
                               request=request)


# --- periodic summary ------------------------------------------------------------------------------------------------
def parse_period(value: str) -> tuple[dt.date, dt.date, str]:
    """'2026' -> the year; '2026-Q3' -> that quarter.  Returns (first day, last day, label)."""
    value = (value or "").strip().upper()
    try:
        if len(value) == 4 and value.isdigit():
            year = int(value)
            return dt.date(year, 1, 1), dt.date(year, 12, 31), value
        if len(value) == 7 and value[4:6] == "-Q" and value[:4].isdigit() and value[6] in "1234":
            year, q = int(value[:4]), int(value[6])
            start = dt.date(year, 3 * q - 2, 1)
            end = (dt.date(year + 1, 1, 1) if q == 4 else dt.date(year, 3 * q + 1, 1)) - dt.timedelta(days=1)
            return start, end, f"{year}-Q{q}"
    except ValueError:
        pass
    raise IncidentError(f"{value!r} is not a period (use YYYY or YYYY-Qn, e.g. 2026-Q3)")


def period_summary(period: str, *, queryset=None) -> dict:
    """Counts by category and room, significant events and open actions of the incidents dated in the period.
    Renders (with zeros) when there were none."""
    start, end, label = parse_period(period)
    qs = (queryset if queryset is not None else IncidentReport.objects.all()).filter(
        incident_date__gte=start, incident_date__lte=end)
    by_cat = dict(qs.values_list("category").annotate(n=Count("id")).order_by())
    by_room = {r["room__name"] or "No room recorded": r["n"]
               for r in qs.values("room__name").annotate(n=Count("id")).order_by("room__name")}
    by_state = dict(qs.values_list("state").annotate(n=Count("id")).order_by())
    significant = list(qs.filter(is_significant=True).select_related("room").order_by("incident_date", "id"))
    today = timezone.now().date()
    open_actions = list(IncidentAction.objects.filter(incident__in=qs, done_date__isnull=True)
                        .select_related("incident").order_by("due_date", "id"))
    return {
        "period": label, "start": start, "end": end,
        "total": qs.count(),
        "by_category": [(code, name, by_cat.get(code, 0)) for code, name in CATEGORY_CHOICES],
        "by_room": sorted(by_room.items()),
        "by_state": [(code, name, by_state.get(code, 0)) for code, name in IncidentReport.STATE_CHOICES],
        "significant": [{"id": i.pk, "date": i.incident_date, "category": i.get_category_display(),
                         "room": i.room.name if i.room_id else "", "due": i.notification_due_date,
                         "notified": i.notified_date, "overdue": i.notification_overdue} for i in significant],
        "open_actions": [{"incident_id": a.incident_id, "kind": a.get_kind_display(), "description": a.description,
                          "owner": a.owner, "due": a.due_date, "overdue": a.due_date < today} for a in open_actions],
        "generated_at": timezone.now(),
    }


def total_rows(parameters: dict) -> list[tuple[str, str, str]]:
    """(label, number, unit) for the study totals that have a value, as the catalogue's formatter shows them (the
    unit may be switched, e.g. 7.69 Gy; a clock time such as 47:07 min carries its unit in the number)."""
    totals = parameters.get("totals") or {}
    rows = []
    for name in TOTAL_QUANTITIES:
        if totals.get(name) is not None:
            shown = show(name, totals[name])
            rows.append((QUANTITIES[name].label, shown.number, shown.unit))
    return rows


def column_values(names, row: dict) -> list[str]:
    """Numbers of a table row whose column headers name the unit (``column_label``): canonical unit, no switching."""
    return [show(name, row.get(name), switch=False).number for name in names]


def reason_text(reason: dict) -> str:
    """A significance reason in words: 'Rule: Ka,r total 5.1 Gy (criterion 5 Gy) - source'."""
    text = reason.get("rule", "")
    if reason.get("quantity"):
        value = reason.get("value_text") or f"{format_number(reason.get('value'))} {reason.get('unit', '')}".strip()
        limit = (reason.get("threshold_text")
                 or f"{format_number(reason.get('threshold'))} {reason.get('unit', '')}".strip())
        text += f": {reason['quantity']} {value} (criterion {limit})"
    return text


def event_type_words(event_type: str) -> str:
    """'stationary_acquisition' -> 'Stationary acquisition' (an identifier is not a word a PDF line can wrap)."""
    return (event_type or "").replace("_", " ").strip().capitalize()
