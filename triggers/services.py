"""Trigger services: evaluate studies against the active rules, keep one alert per (study, rule), move alerts through
their lifecycle, notify subscribers, edit rules (versioned).

``check_study`` is called by ``dicomrx.pipeline.after_study_recorded`` after every ingest, supersede or correction:
an alert whose rule no longer fires is kept and marked (``still_exceeds`` false, with the new value), never deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections import defaultdict

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from dosereg.core.display import format_quantity
from dosereg.core.quantities import PLANE_QUANTITIES, QUANTITIES, RULE_QUANTITIES, input_units, unit_factor
from dosereg.registry.fixed_queries import rows_in
from dosereg.registry.models import (
    AccumulatedDose,
    DoseCheckOverride,
    IrradiationEvent,
    NotificationSubscription,
    Study,
)
from dosereg.registry.services.audit import audit_record
from dosereg.registry.services.notifications import notification_send
from dosereg.registry.services.recording.bulk_sql import insert_rows
from triggers import rules
from triggers.incidents import services as incident_services
from triggers.models import (
    SCOPE_CHOICES,
    SEVERITY_CHOICES,
    Alert,
    AlertEvent,
    TriggerRule,
    TriggerRuleVersion,
)

log = logging.getLogger(__name__)

# the irradiation event columns per-event rules read (catalogue: QuantityDef.event_column of each rule quantity)
RULE_EVENT_COLUMNS = tuple(dict.fromkeys(rules.EVENT_FIELD.values()))
RULE_FIELDS = ("key", "name", "pack", "kind", "modality_type", "room_id", "equipment_id", "standard_exam_id",
               "protocol_pattern", "protocol_exclude_pattern", "body_region", "ctdi_phantom", "procedure_kind",
               "age_min_years", "age_max_years", "quantity", "plane_mode", "threshold", "unit", "step", "scope",
               "window_days", "window_basis", "min_procedures", "severity", "source", "verify", "note", "active")


class TriggerError(Exception):
    """Base of the triggers app's errors."""


class AlertStateError(TriggerError):
    """The requested lifecycle step is not allowed from the alert's state, or its input is incomplete."""


class RuleValidationError(TriggerError):
    """A rule's fields are refused; ``errors`` maps field names to messages."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


# --- facts from the registry ---------------------------------------------------------------------------------------
# The Study columns (and related rows) ``_studies_facts`` and a new alert read: a batch's checks load only these (a
# study is 48 columns and two related rows otherwise, and building those objects was most of a batch's check time).
FACT_FIELDS = (
    "patient_id", "study_date", "modality_type", "modality_types", "study_description",
    "requested_procedure_description", "performed_procedure_description", "age_years", "demo", "pregnancy_status",
    "ka_r_total_mgy", "kap_total_gycm2", "fluoro_time_total_s", "dlp_total_mgycm", "max_ctdivol_mgy",
    "agd_left_mgy", "agd_right_mgy", "activity_mbq", "effective_dose_msv", "psd_mgy",
    "equipment__room_id", "standard_exam__code", "standard_exam__body_region", "standard_exam__name",
)


# the batch's look-ups of its studies' rows (compiled once: dosereg.registry.fixed_queries)
def _plane_totals(ids: list[int]) -> QuerySet:
    return (AccumulatedDose.objects.filter(report__study_id__in=ids, report__state="current")
            .exclude(plane="").values("report__study_id", "plane", *PLANE_QUANTITIES))


def _event_facts(ids: list[int]) -> QuerySet:
    return (IrradiationEvent.objects.filter(study_id__in=ids, is_current=True)
            .values("study_id", "irradiation_event_uid", "sequence", "event_type", "protocol", "target_region",
                    "target_region_code", "plane", "is_localizer", "ctdi_phantom", *RULE_EVENT_COLUMNS))


def _dose_check_facts(ids: list[int]) -> QuerySet:
    return DoseCheckOverride.objects.filter(report__study_id__in=ids, report__state="current").values(
        "report__study_id", "irradiation_event_uid", "kind", "dlp_configured", "ctdivol_configured",
        "dlp_value_mgycm", "ctdivol_value_mgy", "dlp_forward_estimate_mgycm", "ctdivol_forward_estimate_mgy",
        "reason_for_proceeding", "person_name")


def _studies_facts(studies: list[Study], *, with_events: bool) -> dict[int, rules.StudyFacts]:
    ids = [s.pk for s in studies]
    planes: dict[int, dict[str, dict[str, float]]] = defaultdict(dict)
    for row in rows_in(_plane_totals, ids):
        acc = planes[row["report__study_id"]].setdefault(row["plane"], {})
        for q in PLANE_QUANTITIES:
            if row[q] is not None:
                acc[q] = acc.get(q, 0.0) + row[q]
    events: dict[int, list[rules.EventFacts]] = defaultdict(list)
    protocols: dict[tuple[int, str], str] = {}
    if with_events:
        for e in rows_in(_event_facts, ids):
            events[e["study_id"]].append(rules.EventFacts(
                uid=e["irradiation_event_uid"], sequence=e["sequence"], event_type=e["event_type"],
                protocol=e["protocol"], target_region=e["target_region"], target_region_code=e["target_region_code"],
                plane=e["plane"], is_localizer=e["is_localizer"], ctdi_phantom=e["ctdi_phantom"],
                values={c: e[c] for c in RULE_EVENT_COLUMNS}))
            if e["irradiation_event_uid"]:
                protocols[(e["study_id"], e["irradiation_event_uid"])] = e["protocol"]
    checks: dict[int, list[rules.DoseCheckFacts]] = defaultdict(list)
    if with_events:
        for d in rows_in(_dose_check_facts, ids):
            sid = d["report__study_id"]
            checks[sid].append(rules.DoseCheckFacts(
                uid=d["irradiation_event_uid"] or None, kind=d["kind"],
                protocol=protocols.get((sid, d["irradiation_event_uid"]), ""),
                dlp_configured=d["dlp_configured"], ctdivol_configured=d["ctdivol_configured"],
                dlp_value_mgycm=d["dlp_value_mgycm"], ctdivol_value_mgy=d["ctdivol_value_mgy"],
                dlp_forward_estimate_mgycm=d["dlp_forward_estimate_mgycm"],
                ctdivol_forward_estimate_mgy=d["ctdivol_forward_estimate_mgy"],
                reason_for_proceeding=d["reason_for_proceeding"], authorised_by=d["person_name"]))
    out = {}
    for s in studies:
        exam = s.standard_exam
        agd = [v for v in (s.agd_left_mgy, s.agd_right_mgy) if v is not None]
        totals = {"ka_r_total_mgy": s.ka_r_total_mgy, "kap_total_gycm2": s.kap_total_gycm2,
                  "fluoro_time_total_s": s.fluoro_time_total_s, "dlp_total_mgycm": s.dlp_total_mgycm,
                  "ctdivol_mgy": s.max_ctdivol_mgy, "agd_mgy": max(agd) if agd else None,
                  "activity_mbq": s.activity_mbq, "effective_dose_msv": s.effective_dose_msv, "psd_mgy": s.psd_mgy}
        out[s.pk] = rules.StudyFacts(
            study_id=s.pk, patient_id=s.patient_id, study_date=s.study_date,
            modality_types=tuple(s.modality_types or ([s.modality_type] if s.modality_type else [])),
            room_id=s.equipment.room_id if s.equipment_id else None, equipment_id=s.equipment_id,
            standard_exam_id=s.standard_exam_id, exam_code=exam.code if exam else "",
            exam_body_region=exam.body_region if exam else "",
            texts=tuple(t for t in (s.study_description, s.requested_procedure_description,
                                    s.performed_procedure_description, exam.name if exam else "") if t),
            age_years=s.age_years, demo=s.demo, totals=totals,
            planes=tuple(rules.PlaneTotals(p, v.get("ka_r_total_mgy"), v.get("kap_total_gycm2"),
                                       v.get("fluoro_time_total_s")) for p, v in sorted(planes[s.pk].items())),
            events=tuple(events[s.pk]), dose_checks=tuple(checks[s.pk]), pregnancy_status=s.pregnancy_status,
            label=f"{s.study_date or 'undated'} {s.study_description or s.modality_type}".strip())
    return out


def rule_spec(rule: TriggerRule) -> rules.RuleSpec:
    """The rule for the pure evaluator, its threshold and step converted to the quantity's canonical unit."""
    factor = unit_factor(rule.quantity, rule.unit) if rule.quantity in RULE_QUANTITIES else None
    if factor is None:  # rule_save refuses these; a row edited around it must not be compared in the wrong unit
        raise RuleValidationError({"unit": f"rule {rule.key}: unit {rule.unit!r} does not fit {rule.quantity!r}"})
    return rules.RuleSpec(
        id=rule.pk, name=rule.name, quantity=rule.quantity, threshold=rule.threshold * factor, scope=rule.scope,
        severity=rule.severity, kind=rule.kind, plane_mode=rule.plane_mode,
        step=rule.step * factor if rule.step else None, window_days=rule.window_days,
        min_procedures=rule.min_procedures, modality_type=rule.modality_type, room_id=rule.room_id,
        equipment_id=rule.equipment_id, standard_exam_id=rule.standard_exam_id,
        protocol_pattern=rule.protocol_pattern, protocol_exclude_pattern=rule.protocol_exclude_pattern,
        body_region=rule.body_region, ctdi_phantom=rule.ctdi_phantom, procedure_kind=rule.procedure_kind,
        age_min_years=rule.age_min_years, age_max_years=rule.age_max_years, version=rule.version)


def _study_qs():
    return Study.objects.select_related("equipment", "standard_exam")


def study_facts_qs():
    """Studies with only what their facts and new alerts read (``FACT_FIELDS``)."""
    return _study_qs().only(*FACT_FIELDS)


def patient_window_facts(study: Study, days: int) -> list[rules.StudyFacts]:
    """The patient's other studies within ``days`` before and after this one (totals only)."""
    if study.study_date is None:
        return []
    lo, hi = study.study_date - dt.timedelta(days=days), study.study_date + dt.timedelta(days=days)
    others = list(_study_qs().filter(patient_id=study.patient_id, study_date__range=(lo, hi)).exclude(pk=study.pk))
    return list(_studies_facts(others, with_events=False).values())


# --- evaluation and alert rows -------------------------------------------------------------------------------------
def check_study(study_id: int) -> list[int]:
    """Evaluate one study (and, for window rules, the patient's later studies whose window now holds it) against the
    active rules; create or update one alert per (study, rule).  Returns the ids of this study's current alerts."""
    study = _study_qs().filter(pk=study_id).first()
    if study is None:
        log.warning("check_study: study %s does not exist", study_id)
        return []
    active_rules = list(TriggerRule.objects.filter(active=True))
    kinds = set(study.modality_types or ([study.modality_type] if study.modality_type else []))
    window_rules = [r for r in active_rules if r.scope == "patient_window" and r.kind == "threshold"
                    and (not r.modality_type or r.modality_type in kinds)]
    max_window = max((r.window_days or 0 for r in window_rules), default=0)
    history = patient_window_facts(study, max_window) if window_rules else []
    facts = _studies_facts([study], with_events=True)[study.pk]
    ids = _apply(study, facts, history, active_rules)
    # a study dated earlier than the patient's other studies can complete their windows
    if window_rules and study.study_date:
        later = [h for h in history if h.study_date and h.study_date > study.study_date]
        for h in later:
            later_study = _study_qs().get(pk=h.study_id)
            h_history = [x for x in history if x.study_id != h.study_id] + [facts]
            _apply(later_study, h, h_history, window_rules, only_rules=True)
    return ids


def _apply(study: Study, facts: rules.StudyFacts, history, active_rules: list[TriggerRule],
           only_rules: bool = False) -> list[int]:
    by_id = {r.pk: r for r in active_rules}
    hits = rules.evaluate(facts, history, [rule_spec(r) for r in active_rules])
    hit_ids = set()
    alert_ids = []
    with transaction.atomic():
        for hit in hits:
            rule = by_id[hit.rule_id]
            hit_ids.add(rule.pk)
            alert_ids.append(_upsert_alert(study, rule, hit).pk)
        stale = Alert.objects.filter(study=study, rule_id__in=list(by_id), still_exceeds=True).exclude(
            rule_id__in=hit_ids)
        for alert in stale:
            _withdraw_alert(alert, by_id[alert.rule_id], facts, corrected="corrected" in (study.flags or []))
    if only_rules:
        return alert_ids
    return list(Alert.objects.filter(study=study).values_list("pk", flat=True))


def _withdraw_alert(alert: Alert, rule: TriggerRule, facts: rules.StudyFacts, *, corrected: bool) -> None:
    """A rule that no longer fires for the study (its values were corrected, or the rule changed): the alert is kept
    with its history, marked as no longer exceeding, with the value the study shows now (never deleted)."""
    now_value = rules.current_value(rule_spec(rule), facts)
    withdrawn = {"value": now_value, "previous_value": alert.value, "rule_version": rule.version,
                 "after_correction": corrected, "at": timezone.now().isoformat()}
    alert.still_exceeds = False
    alert.details = {**(alert.details or {}), "no_longer_exceeds": withdrawn}
    alert.save(update_fields=["still_exceeds", "details", "updated_at"])
    AlertEvent.objects.create(alert=alert, action="no_longer_exceeds", from_state=alert.state, to_state=alert.state,
                              detail=withdrawn)


def _alert_fields(study: Study, rule: TriggerRule, hit: rules.Exceedance) -> dict:
    return {"rule_version": rule.version, "severity": rule.severity, "scope": rule.scope, "quantity": hit.quantity,
            "quantity_label": QUANTITIES[hit.quantity].label, "value": hit.value, "unit": hit.unit,
            "threshold": hit.threshold, "details": hit.details, "summary": hit.summary[:400],
            "demo": study.demo, "still_exceeds": True, "patient_id": study.patient_id}


def alerts_raise(found: list[tuple[Study, list[rules.Exceedance]]],
                 rules_by_id: dict[int, TriggerRule]) -> list[tuple[int, int]]:
    """The alerts of studies that have none yet, created in bulk: what ``_upsert_alert``'s creation branch does for
    each hit (the row, its 'raised' event, the notification), in a few queries for the batch; returns (study id,
    alert id) of each.  Raises IntegrityError when one of them exists after all (a concurrent check); nothing is
    then created.

    The rows go through the recording's multi-row insert, not bulk_create: at an alert per study (a batch of
    phantom scans) Django's compiling of each object's values cost about a tenth of the batch's ingest.  An alert
    nobody is subscribed to and without a draft incident report to open is written notified, as ``alert_notify``
    would leave it."""
    alerts = [Alert(study=study, rule=rules_by_id[hit.rule_id], **_alert_fields(study, rules_by_id[hit.rule_id], hit))
              for study, hits in found for hit in hits]
    if not alerts:
        return []
    subscribed = NotificationSubscription.objects.filter(topic="alert", active=True).exists()
    for alert in alerts:
        alert.notified = not subscribed and alert.severity != "significant_event"
    with transaction.atomic():
        insert_rows(Alert, alerts, returning=True)
        insert_rows(AlertEvent, [
            AlertEvent(alert=a, action="raised", to_state="new",
                       detail={"value": a.value, "unit": a.unit, "rule_version": a.rule_version}) for a in alerts])
        for alert in alerts:
            if not alert.notified:
                alert_notify(alert.pk)
    return [(a.study_id, a.pk) for a in alerts]


def _upsert_alert(study: Study, rule: TriggerRule, hit: rules.Exceedance) -> Alert:
    fields = _alert_fields(study, rule, hit)
    alert = Alert.objects.select_for_update().filter(study=study, rule=rule).first()
    if alert is None:
        try:
            with transaction.atomic():
                alert = Alert.objects.create(study=study, rule=rule, **fields)
        except IntegrityError:  # a concurrent check of the same study created it first: update that one
            alert = Alert.objects.select_for_update().get(study=study, rule=rule)
            return _update_alert(alert, rule, hit, fields)
        AlertEvent.objects.create(alert=alert, action="raised", to_state="new",
                                  detail={"value": hit.value, "unit": hit.unit, "rule_version": rule.version})
        alert_notify(alert.pk)  # delivery rows now, in this transaction; sending is scheduled on commit
        return alert
    return _update_alert(alert, rule, hit, fields)


def _update_alert(alert: Alert, rule: TriggerRule, hit: rules.Exceedance, fields: dict) -> Alert:
    changed = {k: v for k, v in fields.items() if getattr(alert, k) != v}
    if changed:
        before = {"value": alert.value, "threshold": alert.threshold, "rule_version": alert.rule_version,
                  "still_exceeds": alert.still_exceeds}
        for k, v in changed.items():
            setattr(alert, k, v)
        alert.save()
        AlertEvent.objects.create(alert=alert, action="updated", from_state=alert.state, to_state=alert.state,
                                  detail={"before": before, "value": hit.value, "rule_version": rule.version})
    return alert


def check_triggers_period(since: dt.date | None = None, until: dt.date | None = None) -> dict[str, int]:
    """Re-evaluate every study dated in [since, until] (all studies without bounds), e.g. after a rule change."""
    qs = Study.objects.all()
    if since:
        qs = qs.filter(study_date__gte=since)
    if until:
        qs = qs.filter(study_date__lte=until)
    before = Alert.objects.count()
    studies = 0
    for pk in qs.order_by("study_date", "pk").values_list("pk", flat=True).iterator(chunk_size=500):
        check_study(pk)
        studies += 1
    return {"studies": studies, "alerts_created": Alert.objects.count() - before}


# --- notifications ------------------------------------------------------------------------------------------------
def alert_notify(alert_id: int) -> int:
    """Queue the alert's e-mail to its subscribers (once: the registry's dedupe key) and, for a significant event,
    open the draft incident report.  Returns the number of deliveries queued."""
    alert = Alert.objects.select_related("rule", "study__equipment").filter(pk=alert_id).first()
    if alert is None:
        return 0
    study = alert.study
    subject = (f"[DoseReg] {alert.get_severity_display()}{' (demo)' if alert.demo else ''}: {alert.rule.name} — "
               f"{alert.quantity_label} {format_quantity(alert.quantity, alert.value)}")
    lines = [
        f"Rule: {alert.rule.name} (version {alert.rule_version})",
        f"Source: {alert.rule.source}" + (" — verify against the primary publication" if alert.rule.verify else ""),
        f"Study: {study.study_instance_uid} on {study.study_date or 'unknown date'}",
        f"Unit: {study.equipment.display_name if study.equipment_id else 'unknown'}",
        f"{alert.summary}",
    ]
    if alert.quantity == "ka_r_total_mgy":
        lines.append("Ka,r is a surrogate for skin dose, not a skin-dose estimate (it can under- or overestimate "
                     "peak skin dose).")
    lines.append(f"Open the alert: /alerts/{alert.pk}/")
    deliveries = notification_send(
        topic="alert", subject=subject, body="\n".join(lines), object_type="alert", object_id=str(alert.pk),
        room_id=study.equipment.room_id if study.equipment_id else None, modality_type=study.modality_type,
        severity=alert.severity, version="raised")
    Alert.objects.filter(pk=alert.pk).update(notified=True)
    if alert.severity == "significant_event":
        try:
            with transaction.atomic():
                _incident_hook(alert.pk, automatic=True)
        except Exception:  # noqa: BLE001 - the alert must stand even if the draft report fails; logged, visible
            log.exception("alert %s: the automatic draft incident report could not be opened", alert.pk)
            AlertEvent.objects.create(alert=alert, action="draft_incident_failed", from_state=alert.state,
                                      to_state=alert.state)
    return len(deliveries)


def _incident_hook(alert_id: int, *, automatic: bool, user=None, request=None):
    if automatic:
        return incident_services.incident_from_alert(alert_id, automatic=True)
    return incident_services.incident_from_alert(alert_id, automatic=False, user=user, request=request)


# --- lifecycle ----------------------------------------------------------------------------------------------------
def _transition(alert: Alert, user, action: str, to_state: str, detail: dict, request=None) -> Alert:
    from_state = alert.state
    alert.state = to_state
    alert.save()
    AlertEvent.objects.create(alert=alert, user=user if getattr(user, "is_authenticated", False) else None,
                              action=action, from_state=from_state, to_state=to_state, detail=detail)
    audit_record(user=user, action=f"alert_{action}", object_type="alert", object_id=alert.pk,
                 detail={"from": from_state, "to": to_state, **detail}, request=request)
    return alert


def alert_acknowledge(*, alert: Alert, user, reason: str, comment: str = "", request=None) -> Alert:
    if alert.state != "new":
        raise AlertStateError(f"only a new alert can be acknowledged (this one is {alert.get_state_display()})")
    if reason not in dict(Alert.REASONS):
        raise AlertStateError("choose a reason from the list")
    if reason == "other" and not comment.strip():
        raise AlertStateError("a comment is required when the reason is 'Other'")
    alert.reason, alert.comment = reason, comment.strip()
    alert.acknowledged_at, alert.acknowledged_by = timezone.now(), user
    return _transition(alert, user, "acknowledged", "acknowledged", {"reason": reason, "comment": comment.strip()},
                       request)


def alert_schedule_follow_up(*, alert: Alert, user, follow_up_date: dt.date, check: str, request=None) -> Alert:
    if alert.state not in ("acknowledged", "follow_up"):
        raise AlertStateError("acknowledge the alert before scheduling follow-up")
    if follow_up_date is None:
        raise AlertStateError("a follow-up date is required")
    if alert.study.study_date and follow_up_date < alert.study.study_date:
        raise AlertStateError("the follow-up date cannot be before the study date")
    if not (check or "").strip():
        raise AlertStateError("describe the check to be done (e.g. skin inspection of the irradiated area)")
    alert.follow_up_date, alert.follow_up_check = follow_up_date, check.strip()
    return _transition(alert, user, "follow_up", "follow_up",
                       {"follow_up_date": follow_up_date.isoformat(), "check": check.strip()}, request)


def alert_close(*, alert: Alert, user, reason: str = "", comment: str = "", request=None) -> Alert:
    if alert.state not in ("acknowledged", "follow_up"):
        raise AlertStateError("acknowledge the alert before closing it")
    reason = reason or alert.reason
    if reason not in dict(Alert.REASONS):
        raise AlertStateError("choose a closing reason from the list")
    alert.close_reason, alert.closed_at = reason, timezone.now()
    if comment.strip():
        alert.comment = (alert.comment + "\n" + comment.strip()).strip()
    return _transition(alert, user, "closed", "closed", {"reason": reason, "comment": comment.strip()}, request)


def alert_escalate(alert: Alert, user, *, create_incident: bool = False, request=None):
    """Mark the alert escalated to an incident report (idempotent).  With ``create_incident`` the incident service
    opens (or returns) the report; returns it, or None."""
    if alert.state != "escalated":
        if alert.state == "closed":
            raise AlertStateError("a closed alert cannot be escalated")
        alert.escalated_at = timezone.now()
        _transition(alert, user, "escalated", "escalated", {}, request)
    if create_incident:
        return _incident_hook(alert.pk, automatic=False, user=user, request=request)
    return None


# --- rules --------------------------------------------------------------------------------------------------------
def rule_validate(data: dict) -> dict[str, str]:
    """Messages for refused fields (empty when the rule is acceptable)."""
    errors: dict[str, str] = {}
    for check in (_check_quantity_and_unit, _check_numbers, _check_scope, _check_texts):
        errors.update(check(data))
    return errors


def _check_quantity_and_unit(data: dict) -> dict[str, str]:
    errors = {}
    quantity = data.get("quantity") or ""
    if quantity not in RULE_QUANTITIES:
        errors["quantity"] = (f"unknown quantity {quantity!r}; use one of {', '.join(RULE_QUANTITIES)}" if quantity
                              else "choose a quantity")
    unit = data.get("unit") or ""
    if quantity in RULE_QUANTITIES and unit not in input_units(quantity):
        errors["unit"] = (f"unit {unit!r} does not fit {QUANTITIES[quantity].label}; use one of "
                          f"{', '.join(input_units(quantity))}")
    if data.get("plane_mode") and data["plane_mode"] not in ("each", "sum"):
        errors["plane_mode"] = "plane mode is 'each' or 'sum'"
    return errors


def _number_error(value, *, positive: bool, what: str) -> str | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"the {what} must be a number"
    if not math.isfinite(number):
        return f"the {what} must be a number"
    if positive and number <= 0:
        return f"a {what} must be positive"
    if number < 0:
        return f"the {what} cannot be negative"
    return None


def _check_numbers(data: dict) -> dict[str, str]:
    errors = {}
    threshold = data.get("threshold")
    message = ("a threshold is required" if threshold in (None, "")
               else _number_error(threshold, positive=False, what="threshold"))
    if message:
        errors["threshold"] = message
    step = data.get("step")
    if step not in (None, "") and (message := _number_error(step, positive=True, what="step")):
        errors["step"] = message
    amin, amax = data.get("age_min_years"), data.get("age_max_years")
    if amin not in (None, "") and amax not in (None, "") and float(amin) >= float(amax):
        errors["age_max_years"] = "the upper age must be above the lower age"
    return errors


def _check_scope(data: dict) -> dict[str, str]:
    scope = data.get("scope") or ""
    if scope not in dict(SCOPE_CHOICES):
        return {"scope": "choose a scope: event, study or patient_window" if not scope else
                f"unknown scope {scope!r}; use event, study or patient_window"}
    if scope == "event" and data.get("quantity") in RULE_QUANTITIES and data.get("quantity") not in rules.EVENT_FIELD:
        return {"scope": f"{QUANTITIES[data['quantity']].label} is a value of the whole study: use the study or "
                         "patient_window scope"}
    if scope != "patient_window":
        return {}
    errors = {}
    wd = data.get("window_days")
    try:
        if wd in (None, "") or int(wd) < 1:
            errors["window_days"] = "a cumulative window rule needs a window of at least 1 day"
    except (TypeError, ValueError):
        errors["window_days"] = "the window is a whole number of days"
    mp = data.get("min_procedures")
    if mp not in (None, "") and int(mp) < 2:
        errors["min_procedures"] = "a cumulative window needs at least 2 procedures (single ones are covered " \
                                   "by the study rules)"
    return errors


def _check_texts(data: dict) -> dict[str, str]:
    errors = {}
    if (data.get("severity") or "") not in dict(SEVERITY_CHOICES):
        errors["severity"] = "choose a severity: notification, alert or significant_event"
    if not (data.get("source") or "").strip():
        errors["source"] = "cite the source of the value"
    if not (data.get("name") or "").strip():
        errors["name"] = "a name is required"
    for f in ("protocol_pattern", "protocol_exclude_pattern"):
        if data.get(f):
            try:
                re.compile(data[f])
            except re.error as exc:
                errors[f] = f"not a valid regular expression: {exc}"
    return errors


def _snapshot(rule: TriggerRule) -> dict:
    return {f: getattr(rule, f) for f in RULE_FIELDS}


def rule_save(*, rule: TriggerRule | None, data: dict, user, comment: str = "", request=None) -> TriggerRule:
    """Create or change a rule (a new version).  Existing alerts are kept; run check_triggers to re-evaluate."""
    merged = _snapshot(rule) if rule else {}
    merged.update(data)
    errors = rule_validate(merged)
    if errors:
        raise RuleValidationError(errors)
    with transaction.atomic():
        if rule is None:
            rule = TriggerRule()
            if not merged.get("key"):
                base = re.sub(r"[^a-z0-9]+", "-", merged["name"].lower()).strip("-")[:60] or "rule"
                key, n = base, 1
                while TriggerRule.objects.filter(key=key).exists():
                    n += 1
                    key = f"{base}-{n}"
                merged["key"] = key
        else:
            rule.version += 1
        for f in RULE_FIELDS:
            if f in merged:
                setattr(rule, f, merged[f])
        rule.updated_by = user if getattr(user, "is_authenticated", False) else None
        rule.save()
        TriggerRuleVersion.objects.create(rule=rule, version=rule.version, data=_jsonable(_snapshot(rule)),
                                          changed_by=rule.updated_by, comment=comment[:255])
        audit_record(user=user, action="rule_saved", object_type="trigger_rule", object_id=rule.pk,
                     detail={"version": rule.version, "comment": comment[:255]}, request=request)
    return rule


def _jsonable(d: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v) for k, v in d.items()}


def alerts_for_patient_window(alert: Alert, days: int = 84) -> list[Study]:
    """The patient's other procedures within ``days`` of the alert's study (shown on the alert page)."""
    s = alert.study
    if s.study_date is None:
        return []
    lo, hi = s.study_date - dt.timedelta(days=days), s.study_date + dt.timedelta(days=days)
    return list(Study.objects.filter(Q(patient_id=s.patient_id) & Q(study_date__range=(lo, hi)))
                .exclude(pk=s.pk).order_by("study_date"))
