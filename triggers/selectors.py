"""Read-side queries of the triggers app: the inbox, alert lists, tuning figures, export rows."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Value, When

from triggers.models import Alert, TriggerRule

# most severe first: what needs acting on first
SEVERITY_ORDER = ("significant_event", "alert", "notification")
_SEVERITY_RANK = Case(*[When(severity=s, then=Value(i)) for i, s in enumerate(SEVERITY_ORDER)],
                      default=Value(len(SEVERITY_ORDER)), output_field=IntegerField())


# within a severity, what nobody has looked at yet first, what is settled last
STATE_ORDER = ("new", "acknowledged", "follow_up", "escalated", "closed")
_STATE_RANK = Case(*[When(state=s, then=Value(i)) for i, s in enumerate(STATE_ORDER)],
                   default=Value(len(STATE_ORDER)), output_field=IntegerField())
# the triage order of the inbox and the dashboard: real studies before demo ones, then severity, state, newest first
TRIAGE_ORDER = ("demo", "severity_rank", "state_rank", "-created_at", "-id")
_JOINED = ("rule", "study", "study__equipment__room", "patient")


def _rank(severity: str) -> int:
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)


def _triaged(qs: QuerySet[Alert]) -> QuerySet[Alert]:
    return qs.annotate(severity_rank=_SEVERITY_RANK, state_rank=_STATE_RANK).order_by(*TRIAGE_ORDER)


def alert_inbox_count(user) -> int:
    """Alerts waiting for someone (state ``new``), for the navigation badge; 0 for users who may not see alerts."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.has_perm("triggers.view_alert"):
        return 0
    return Alert.objects.filter(state="new").count()


def study_alerts(study_id: int) -> list[Alert]:
    """A study's alerts (for the study and patient pages), most severe first, open before settled; each with its
    ``guidance`` (what to do, see ``alert_guidance``)."""
    alerts = list(_triaged(Alert.objects.filter(study_id=study_id).select_related("rule")))
    for a in alerts:
        a.guidance = alert_guidance(a)
    return alerts


def alert_badges(study_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Badges for study lists and the patient history, in one query: study id -> its alerts (open and closed), most
    severe first, each {"id", "severity", "state", "rule_name", "quantity", "text", "still_exceeds", "demo"};
    ``text`` is the alert's summary with its values and units.  Studies without alerts are left out."""
    ids = list(dict.fromkeys(study_ids))
    if not ids:
        return {}
    out: dict[int, list[dict]] = defaultdict(list)
    rows = (Alert.objects.filter(study_id__in=ids)
            .values("id", "study_id", "severity", "state", "rule__name", "quantity", "summary", "still_exceeds",
                    "demo"))
    for r in sorted(rows, key=lambda r: (_rank(r["severity"]), r["id"])):
        text = r["summary"] + ("" if r["still_exceeds"] else " (no longer exceeded)")
        out[r["study_id"]].append({"id": r["id"], "severity": r["severity"], "state": r["state"],
                                   "rule_name": r["rule__name"], "quantity": r["quantity"], "text": text,
                                   "still_exceeds": r["still_exceeds"], "demo": r["demo"]})
    return dict(out)


def open_alerts(*, limit: int | None = None, user=None) -> QuerySet[Alert]:
    """Alerts waiting for someone (new, acknowledged, follow-up), what needs acting on first: real studies before
    demo ones, then significant events, alerts, notifications; within a severity new before acknowledged before
    follow-up, newest first; study, unit, room, patient and rule joined (one query).  With a ``user`` who may not
    see alerts: none."""
    if user is not None and not user.has_perm("triggers.view_alert"):
        return Alert.objects.none()
    qs = _triaged(Alert.objects.filter(state__in=Alert.OPEN_STATES).select_related(*_JOINED))
    return qs[:limit] if limit is not None else qs


def follow_up_worklist(*, user=None, today: dt.date | None = None) -> list[Alert]:
    """Alerts with a follow-up scheduled (a skin check, a call), the earliest due first, each marked ``overdue``
    when its date has passed; real studies before demo ones.  Empty for a ``user`` who may not see alerts."""
    if user is not None and not user.has_perm("triggers.view_alert"):
        return []
    today = today or dt.date.today()
    rows = list(Alert.objects.filter(state="follow_up").select_related(*_JOINED)
                .order_by("demo", F("follow_up_date").asc(nulls_last=True), "id"))
    for a in rows:
        a.overdue = a.follow_up_date is not None and a.follow_up_date < today
    return rows


# What the people at the unit do about an alert, by the quantity that raised it.  Skin: NCRP Report No. 168 (2010),
# at its substantial radiation dose level (Ka,r 5 Gy, peak skin dose 3 Gy, KAP 500 Gy·cm²): tell the patient and
# the referring physician, record it in the patient's record, and contact the patient about 30 days later.
_SKIN_QUANTITIES = {"ka_r_total_mgy", "ka_r_mgy", "psd_mgy", "kap_total_gycm2", "kap_gycm2"}
_GUIDANCE_SKIN = ("Tell the patient and the referring physician, note the dose in the report, and arrange a skin "
                  "check: contact the patient about 30 days after the procedure (NCRP Report No. 168, 2010).")
_GUIDANCE_CT = ("Check the protocol and the reason for the dose (patient size, repeated scans, a Dose Check "
                "override); a physicist reviews the acquisition.")
_GUIDANCE_OTHER = "Review the study and acknowledge the alert with a reason; escalate if the exposure was not intended."


def alert_guidance(alert: Alert) -> str:
    """What to do about an alert, in words (the rule's note follows where the rule has one)."""
    if alert.quantity in _SKIN_QUANTITIES:
        text = _GUIDANCE_SKIN
    elif alert.quantity in {"ctdivol_mgy", "max_ctdivol_mgy", "dlp_mgycm", "dlp_total_mgycm", "ssde_mgy"}:
        text = _GUIDANCE_CT
    else:
        text = _GUIDANCE_OTHER
    note = (alert.rule.note or "").strip() if alert.rule_id else ""
    return f"{text} {note}".strip()


def incident_alerts(incident) -> list[Alert]:
    """The alerts an incident report concerns: those linked to it and those of its studies, triage order."""
    qs = Alert.objects.filter(Q(incident_reports=incident) | Q(study__in=incident.studies.all())).distinct()
    return list(_triaged(qs.select_related(*_JOINED)))


def open_alert_count() -> int:
    """How many alerts are open (new, acknowledged or with follow-up scheduled)."""
    return Alert.objects.filter(state__in=Alert.OPEN_STATES).count()


def alert_list(*, state: str | None = None, severity: str | None = None, rule_id: int | None = None,
               include_demo: bool = True, open_only: bool = False, since: dt.date | None = None,
               until: dt.date | None = None) -> QuerySet[Alert]:
    """Alerts in triage order (see ``TRIAGE_ORDER``), filtered as the inbox and the API ask."""
    qs = Alert.objects.select_related(*_JOINED)
    if open_only:
        qs = qs.filter(state__in=Alert.OPEN_STATES)
    if state:
        qs = qs.filter(state=state)
    if severity:
        qs = qs.filter(severity=severity)
    if rule_id:
        qs = qs.filter(rule_id=rule_id)
    if not include_demo:
        qs = qs.filter(demo=False)
    if since:
        qs = qs.filter(created_at__date__gte=since)
    if until:
        qs = qs.filter(created_at__date__lte=until)
    return _triaged(qs)


def rule_tuning(*, include_demo: bool = False) -> list[dict]:
    """Per rule: alerts raised, open, closed, and the shares of closed alerts closed as justified, false or
    documentation error (so physicists can set levels staff trust).  Demo alerts are left out unless asked."""
    base = Q() if include_demo else Q(alerts__demo=False)
    closed = base & Q(alerts__state="closed")
    rows = (TriggerRule.objects.annotate(
        raised=Count("alerts", filter=base),
        open=Count("alerts", filter=base & Q(alerts__state__in=Alert.OPEN_STATES)),
        escalated=Count("alerts", filter=base & Q(alerts__state="escalated")),
        closed=Count("alerts", filter=closed),
        justified=Count("alerts", filter=closed & Q(alerts__close_reason__in=["justified_clinical", "patient_size"])),
        false=Count("alerts", filter=closed & Q(alerts__close_reason__in=["false_alert", "equipment_fault"])),
        documentation=Count("alerts", filter=closed & Q(alerts__close_reason="documentation_error")),
    ).order_by("pack", "name"))
    out = []
    for r in rows:
        def share(n, r=r):
            return round(100.0 * n / r.closed, 1) if r.closed else None
        out.append({"rule": r, "raised": r.raised, "open": r.open, "escalated": r.escalated, "closed": r.closed,
                    "justified_pct": share(r.justified), "false_pct": share(r.false),
                    "documentation_error_pct": share(r.documentation)})
    return out


def alert_export_dict(alert: Alert) -> dict:
    """One alert as ``export_alerts`` writes it (and the API lists it)."""
    return {
        "study_instance_uid": alert.study.study_instance_uid,
        "patient_id": alert.patient.patient_id,  # the keyed pseudonym when pseudonymisation is enabled
        "rule": alert.rule.name,
        "rule_source": alert.rule.source,
        "scope": alert.scope,
        "quantity": alert.quantity,
        "quantity_label": alert.quantity_label,
        "value": alert.value,
        "unit": alert.unit,
        "threshold": alert.threshold,
        "severity": alert.severity,
        "state": alert.state,
        "created_at": alert.created_at.isoformat(),
    }


EXPORT_FIELDS = ["study_instance_uid", "patient_id", "rule", "rule_source", "scope", "quantity", "quantity_label",
                 "value", "unit", "threshold", "severity", "state", "created_at"]
