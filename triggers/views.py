"""Thin views: validate input, call one service or selector, render.  Every change goes to the audit trail (in the
services); viewing an alert (a patient's record) is audited here."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from dosereg.core.display import format_quantity
from dosereg.registry.services.audit import audit_record
from triggers import services
from triggers.forms import AcknowledgeForm, AlertFilterForm, CloseForm, FollowUpForm, TriggerRuleForm
from triggers.incidents.services import IncidentError
from triggers.models import Alert, TriggerRule
from triggers.selectors import alert_guidance, alert_list, follow_up_worklist, rule_tuning

KAR_NOTE = ("Ka,r (air kerma at the interventional reference point) is a surrogate for skin dose, not a skin-dose "
            "estimate: it can under- or overestimate peak skin dose.")


@permission_required("triggers.view_alert", raise_exception=True)
def alert_inbox(request):
    form = AlertFilterForm(request.GET or None)
    state = severity = rule = None
    include_demo = True
    open_only = True
    if form.is_valid():
        state = form.cleaned_data["state"] or None
        if state == "all":
            state, open_only = None, False
        elif state:
            open_only = False
        severity = form.cleaned_data["severity"] or None
        rule = form.cleaned_data["rule"]
        include_demo = form.cleaned_data["include_demo"] if "include_demo" in request.GET else True
    qs = alert_list(state=state, severity=severity, rule_id=rule.pk if rule else None, include_demo=include_demo,
                    open_only=open_only)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "triggers/alert_inbox.html", {
        "page": page, "form": form, "kar_note": KAR_NOTE, "query": query.urlencode(),
        "new_count": Alert.objects.filter(state="new").count(),
        "follow_up_count": Alert.objects.filter(state="follow_up").count()})


@permission_required("triggers.view_alert", raise_exception=True)
def follow_up_list(request):
    """The "needs follow-up" worklist: scheduled checks, the earliest due first, overdue marked."""
    return render(request, "triggers/follow_up_list.html", {"follow_ups": follow_up_worklist(user=request.user)})


@permission_required("triggers.view_alert", raise_exception=True)
def alert_detail(request, pk: int):
    alert = get_object_or_404(Alert.objects.select_related("rule", "study", "study__equipment__room",
                                                           "study__standard_exam", "patient", "acknowledged_by"),
                              pk=pk)
    audit_record(action="view_alert", object_type="alert", object_id=alert.pk, request=request,
                 detail={"study_id": alert.study_id})
    window_days = alert.rule.window_days or 84
    context = {
        "alert": alert, "rule": alert.rule, "kar_note": KAR_NOTE, "guidance": alert_guidance(alert),
        "history": [{"event": h, "detail": _detail_text(alert.quantity, h.detail or {})}
                    for h in alert.history.select_related("user")],
        "window_days": window_days,
        "window_studies": services.alerts_for_patient_window(alert, window_days),
        "ack_form": AcknowledgeForm(), "follow_form": FollowUpForm(), "close_form": CloseForm(),
        "incidents": list(alert.incident_reports.all()),
    }
    return render(request, "triggers/alert_detail.html", context)


_VALUE_KEYS = ("value", "previous_value", "threshold")


def _detail_order(key: str) -> tuple[int, str]:
    """Values first, in a fixed order, then the rest by name: PostgreSQL's jsonb does not keep the keys' order."""
    return (_VALUE_KEYS.index(key), "") if key in _VALUE_KEYS else (len(_VALUE_KEYS), key)


def _detail_text(quantity: str, detail: dict) -> str:
    """An alert history entry's detail in words, its values with their units ("value: 4.1 Gy")."""
    parts = []
    for key, value in sorted(detail.items(), key=lambda kv: _detail_order(kv[0])):
        if key == "unit":
            continue  # the values below carry it
        if key in _VALUE_KEYS:
            value = format_quantity(quantity, value)
        elif isinstance(value, dict):
            value = f"({_detail_text(quantity, value)})"
        parts.append(f"{key.replace('_', ' ')}: {value}")
    return "; ".join(parts)


def _lifecycle(request, pk: int, form_class, action):
    alert = get_object_or_404(Alert, pk=pk)
    form = form_class(request.POST)
    if not form.is_valid():
        for field, errs in form.errors.items():
            messages.error(request, f"{form.fields[field].label or field if field in form.fields else ''}: "
                                    f"{' '.join(errs)}".strip(": "))
        return redirect("triggers:alert_detail", pk=pk)
    try:
        action(alert, form.cleaned_data)
    except services.AlertStateError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Alert {alert.pk}: {alert.get_state_display()}.")
    return redirect("triggers:alert_detail", pk=pk)


@require_POST
@permission_required("triggers.acknowledge_alert", raise_exception=True)
def alert_acknowledge_view(request, pk: int):
    return _lifecycle(request, pk, AcknowledgeForm, lambda a, d: services.alert_acknowledge(
        alert=a, user=request.user, reason=d["reason"], comment=d["comment"], request=request))


@require_POST
@permission_required("triggers.follow_up_alert", raise_exception=True)
def alert_follow_up_view(request, pk: int):
    return _lifecycle(request, pk, FollowUpForm, lambda a, d: services.alert_schedule_follow_up(
        alert=a, user=request.user, follow_up_date=d["follow_up_date"], check=d["check"], request=request))


@require_POST
@permission_required("triggers.follow_up_alert", raise_exception=True)
def alert_close_view(request, pk: int):
    return _lifecycle(request, pk, CloseForm, lambda a, d: services.alert_close(
        alert=a, user=request.user, reason=d["reason"], comment=d["comment"], request=request))


@require_POST
@permission_required("triggers.escalate_alert", raise_exception=True)
def alert_escalate_view(request, pk: int):
    alert = get_object_or_404(Alert, pk=pk)
    try:
        incident = services.alert_escalate(alert, request.user, create_incident=True, request=request)
    except (services.AlertStateError, IncidentError) as exc:
        messages.error(request, str(exc))
        return redirect("triggers:alert_detail", pk=pk)
    messages.success(request, f"Alert {alert.pk} escalated to incident report {incident.pk}.")
    return redirect(incident)


@permission_required("triggers.view_triggerrule", raise_exception=True)
def rule_list(request):
    rules = TriggerRule.objects.select_related("room", "equipment", "standard_exam").order_by("pack", "name")
    return render(request, "triggers/rule_list.html", {"rules": rules, "kar_note": KAR_NOTE})


@permission_required("triggers.view_triggerrule", raise_exception=True)
def rule_detail(request, pk: int):
    rule = get_object_or_404(TriggerRule, pk=pk)
    return render(request, "triggers/rule_detail.html", {"rule": rule, "versions": rule.versions.all(),
                                                         "kar_note": KAR_NOTE,
                                                         "alert_count": rule.alerts.count()})


@permission_required("triggers.manage_rules", raise_exception=True)
def rule_edit(request, pk: int | None = None):
    rule = get_object_or_404(TriggerRule, pk=pk) if pk else None
    form = TriggerRuleForm(request.POST or None, instance=rule)
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "comment"}
        for fk in ("room", "equipment", "standard_exam"):
            obj = data.pop(fk, None)
            data[f"{fk}_id"] = obj.pk if obj else None
        try:
            saved = services.rule_save(rule=TriggerRule.objects.get(pk=pk) if pk else None, data=data,
                                       user=request.user, comment=form.cleaned_data.get("comment", ""),
                                       request=request)
        except services.RuleValidationError as exc:
            for field, message in exc.errors.items():
                form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, f"Rule saved as version {saved.version}. Existing alerts are kept; run "
                                      f"'manage.py check_triggers --since DATE' to re-evaluate past studies.")
            return redirect("triggers:rule_detail", pk=saved.pk)
    return render(request, "triggers/rule_form.html", {"form": form, "rule": rule})


@permission_required("triggers.export_alerts", raise_exception=True)
def rule_tuning_view(request):
    include_demo = request.GET.get("include_demo") == "1"
    return render(request, "triggers/rule_tuning.html", {"rows": rule_tuning(include_demo=include_demo),
                                                         "include_demo": include_demo})
