"""Read-side queries of the triggers app: the inbox, alert lists, tuning figures, export rows."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When

from triggers.models import Alert, TriggerRule

# most severe first: what needs acting on first
SEVERITY_ORDER = ("significant_event", "alert", "notification")
_SEVERITY_RANK = Case(*[When(severity=s, then=Value(i)) for i, s in enumerate(SEVERITY_ORDER)],
                      default=Value(len(SEVERITY_ORDER)), output_field=IntegerField())


def _rank(severity: str) -> int:
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)


def alert_inbox_count(user) -> int:
    """Alerts waiting for someone (state ``new``), for the navigation badge; 0 for users who may not see alerts."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.has_perm("triggers.view_alert"):
        return 0
    return Alert.objects.filter(state="new").count()


def study_alerts(study_id: int) -> list[Alert]:
    """A study's alerts (for the study and patient pages), most severe first."""
    alerts = list(Alert.objects.filter(study_id=study_id).select_related("rule"))
    return sorted(alerts, key=lambda a: (_rank(a.severity), a.pk))


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
    """Alerts waiting for someone (new, acknowledged, follow-up), what needs acting on first: significant events,
    then alerts, then notifications, newest first within each; study, patient and rule joined (one query).  With a
    ``user`` who may not see alerts: none."""
    if user is not None and not user.has_perm("triggers.view_alert"):
        return Alert.objects.none()
    qs = (Alert.objects.filter(state__in=Alert.OPEN_STATES).select_related("study", "patient", "rule")
          .annotate(severity_rank=_SEVERITY_RANK).order_by("severity_rank", "-created_at", "-id"))
    return qs[:limit] if limit is not None else qs


def open_alert_count() -> int:
    """How many alerts are open (new, acknowledged or with follow-up scheduled)."""
    return Alert.objects.filter(state__in=Alert.OPEN_STATES).count()


def alert_list(*, state: str | None = None, severity: str | None = None, rule_id: int | None = None,
               include_demo: bool = True, open_only: bool = False, since: dt.date | None = None,
               until: dt.date | None = None) -> QuerySet[Alert]:
    qs = Alert.objects.select_related("rule", "study", "study__equipment", "patient")
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
    return qs.order_by("-created_at", "-id")


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
