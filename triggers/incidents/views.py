"""Incident report pages: thin views that validate input, call one service, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from dosereg.registry.models import Study
from dosereg.registry.services.audit import audit_record
from triggers.incidents import services
from triggers.incidents.document import document_context
from triggers.incidents.forms import (
    ActionForm,
    AnalysisForm,
    CommentForm,
    IncidentForm,
    NotificationForm,
    SignificanceForm,
    TransitionForm,
)
from triggers.incidents.models import CATEGORY_CHOICES, IncidentAction, IncidentReport
from triggers.incidents.pdf import incident_pdf_bytes, summary_pdf_bytes
from triggers.incidents.services import IncidentError
from triggers.models import Alert

VIEW = "triggers.view_incidentreport"


def _visible(request, pk: int) -> IncidentReport:
    incident = services.incidents_visible_to(request.user).filter(pk=pk).first()
    if incident is None:
        raise Http404("No such incident report, or you may not see it.")
    return incident


def _error(request, exc: Exception) -> None:
    messages.error(request, str(exc))


@login_required
@permission_required(VIEW, raise_exception=True)
def incident_list(request):
    qs = services.incidents_visible_to(request.user).select_related("room", "reporter")
    state, category = request.GET.get("state", ""), request.GET.get("category", "")
    if state:
        qs = qs.filter(state=state)
    if category:
        qs = qs.filter(category=category)
    if request.GET.get("significant"):
        qs = qs.filter(is_significant=True)
    return render(request, "triggers/incidents/list.html", {
        "incidents": qs[:500], "states": IncidentReport.STATE_CHOICES, "categories": CATEGORY_CHOICES,
        "state": state, "category": category, "today": timezone.now().date(),
        "year": timezone.now().year})


@login_required
@permission_required("triggers.report_exposure", raise_exception=True)
def report_exposure_lookup(request):
    """'Report an exposure': find the study by Study Instance UID or accession number, then open the form."""
    ref = (request.GET.get("study") or "").strip()
    study = None
    if ref and request.user.has_perm("registry.view_study"):
        study = Study.objects.filter(Q(study_instance_uid=ref) | Q(accession_number=ref)).order_by("id").first()
    if study is None:
        messages.error(request, f"Study {ref or '(none given)'} was not found or you may not see it.")
        return redirect("incidents:list")
    return redirect("incidents:from_study", study_id=study.pk)


@login_required
@permission_required("triggers.add_incidentreport", raise_exception=True)
def incident_new(request):
    form = IncidentForm(request.POST or None, user=request.user,
                        initial={"incident_date": timezone.now().date()})
    if request.method == "POST" and form.is_valid():
        try:
            incident = services.incident_create(user=request.user, data=form.service_data(),
                                                studies=form.cleaned_data["studies"], origin="blank",
                                                request=request)
        except IncidentError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Incident report {incident.pk} saved as a draft.")
            return redirect(incident)
    return render(request, "triggers/incidents/form.html", {"form": form, "heading": "New incident report"})


@login_required
@permission_required("triggers.report_exposure", raise_exception=True)
def incident_new_from_study(request, study_id: int):
    study = get_object_or_404(Study.objects.select_related("equipment__room"), pk=study_id)
    if not services.user_may_see_study(request.user, study):
        raise Http404("No such study, or you may not see it.")
    initial = {"incident_date": study.study_date or timezone.now().date(), "discovered_date": timezone.now().date(),
               "equipment": study.equipment_id,
               "room": study.equipment.room_id if study.equipment_id else None}
    form = IncidentForm(request.POST or None, user=request.user, with_studies=False, initial=initial)
    parameters = services.study_dose_parameters(study)
    if request.method == "POST" and form.is_valid():
        try:
            incident = services.incident_from_study(study.pk, user=request.user, data=form.service_data(),
                                                    request=request)
        except IncidentError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Exposure reported: incident report {incident.pk} (draft).")
            return redirect(incident)
    return render(request, "triggers/incidents/form.html", {
        "form": form, "heading": "Report an exposure", "study": study,
        "parameters": parameters, "parameter_rows": services.total_rows(parameters)})


@login_required
@permission_required("triggers.escalate_alert", raise_exception=True)
def incident_escalate(request, alert_id: int):
    alert = get_object_or_404(Alert.objects.select_related("rule", "study"), pk=alert_id)
    if request.method == "POST":
        try:
            incident = services.incident_from_alert(alert.pk, user=request.user, request=request)
        except IncidentError as exc:
            _error(request, exc)
        else:
            messages.success(request, f"Alert {alert.pk} escalated to incident report {incident.pk}.")
            return redirect(incident)
    return render(request, "triggers/incidents/escalate.html", {"alert": alert,
                                                                "existing": alert.incident_reports.first()})


@login_required
@permission_required(VIEW, raise_exception=True)
def incident_detail(request, pk: int):
    incident = _visible(request, pk)
    audit_record(user=request.user, action="incident_view", object_type=services.OBJECT_TYPE, object_id=incident.pk,
                 request=request)
    user = request.user
    ctx = document_context(incident)
    ctx.update({
        "may_edit": services.may_edit_basic(user, incident),
        "may_analyse": services.may_edit_analysis(user, incident),
        "may_notify": services.may_record_notification(user, incident),
        "may_review": user.has_perm("triggers.review_incident"),
        "may_act": services.may_edit_analysis(user, incident) or (
            incident.state != "closed" and user.has_perm("triggers.review_incident")),
        "transitions": services.allowed_transitions(user, incident),
        "action_form": ActionForm(),
        "notification_form": NotificationForm(initial={
            "notified_date": incident.notified_date, "notified_authority": incident.notified_authority,
            "notification_reference": incident.notification_reference,
            "notification_notes": incident.notification_notes}),
        "comment_form": CommentForm(),
        "history": _history_rows(incident) if user.has_perm("registry.view_audit_trail") else None,
    })
    return render(request, "triggers/incidents/detail.html", ctx)


def _history_rows(incident: IncidentReport) -> list[dict]:
    """The audit trail of one report, each change as 'field: old → new'."""
    rows = []
    for entry in services.incident_history(incident):
        changes = (entry.detail or {}).get("changes") or {}
        parts = []
        for name, change in changes.items():
            if isinstance(change, list) and len(change) == 2:
                parts.append(f"{name}: {change[0]} → {change[1]}")
            elif isinstance(change, dict) and change.get("changed"):
                parts.append(f"{name}: text changed ({change.get('length', 0)} characters)")
            else:
                parts.append(f"{name}: {change}")
        rows.append({"at": entry.at, "who": entry.username or "system", "action": entry.action,
                     "what": "; ".join(parts)})
    return rows


@login_required
@permission_required(VIEW, raise_exception=True)
def incident_print(request, pk: int):
    incident = _visible(request, pk)
    audit_record(user=request.user, action="incident_print", object_type=services.OBJECT_TYPE,
                 object_id=incident.pk, request=request)
    return render(request, "triggers/incidents/print.html", document_context(incident))


@login_required
@permission_required(VIEW, raise_exception=True)
def incident_pdf(request, pk: int):
    incident = _visible(request, pk)
    audit_record(user=request.user, action="incident_pdf", object_type=services.OBJECT_TYPE, object_id=incident.pk,
                 request=request)
    response = HttpResponse(incident_pdf_bytes(incident), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="incident-{incident.pk}.pdf"'
    return response


@login_required
@permission_required(VIEW, raise_exception=True)
def incident_edit(request, pk: int):
    incident = _visible(request, pk)
    if not services.may_edit_basic(request.user, incident):
        messages.error(request, "You may not change this report now.")
        return redirect(incident)
    initial = {f: getattr(incident, f) for f in services.BASIC_FIELDS}
    initial["study_refs"] = "\n".join(incident.studies.values_list("study_instance_uid", flat=True))
    form = IncidentForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.incident_update(incident, user=request.user, data=form.service_data(),
                                     studies=form.cleaned_data["studies"], request=request)
        except IncidentError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Report updated.")
            return redirect(incident)
    return render(request, "triggers/incidents/form.html", {"form": form, "incident": incident,
                                                            "heading": f"Edit incident report {incident.pk}"})


@login_required
@permission_required("triggers.edit_incident_analysis", raise_exception=True)
def incident_analysis(request, pk: int):
    incident = _visible(request, pk)
    initial = {f: getattr(incident, f) for f in services.ANALYSIS_FIELDS}
    for f in ("patient_informed", "referrer_informed"):
        initial[f] = "" if initial[f] is None else ("true" if initial[f] else "false")
    form = AnalysisForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.incident_update_analysis(incident, user=request.user, data=form.cleaned_data, request=request)
        except IncidentError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Analysis saved.")
            return redirect(incident)
    ctx = document_context(incident)
    ctx.update({"form": form, "heading": f"Analysis of incident report {incident.pk}"})
    return render(request, "triggers/incidents/analysis.html", ctx)


@login_required
@require_POST
def incident_action_add(request, pk: int):
    incident = _visible(request, pk)
    form = ActionForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for e in errors:
                messages.error(request, f"Action not added: {e}")
        return redirect(incident)
    try:
        services.incident_add_action(incident, user=request.user, request=request, **form.cleaned_data)
    except IncidentError as exc:
        _error(request, exc)
    else:
        messages.success(request, "Action added.")
    return redirect(incident)


@login_required
@require_POST
def incident_action_done(request, pk: int, action_id: int):
    incident = _visible(request, pk)
    action = get_object_or_404(IncidentAction, pk=action_id, incident=incident)
    try:
        services.incident_action_done(action, user=request.user, request=request)
    except IncidentError as exc:
        _error(request, exc)
    return redirect(incident)


@login_required
@require_POST
def incident_transition(request, pk: int):
    incident = _visible(request, pk)
    form = TransitionForm(request.POST)
    if form.is_valid():
        try:
            services.incident_transition(incident, user=request.user, to_state=form.cleaned_data["to_state"],
                                         comment=form.cleaned_data["comment"], request=request)
        except IncidentError as exc:
            _error(request, exc)
        else:
            messages.success(request, f"Report is now {incident.get_state_display().lower()}.")
    return redirect(incident)


@login_required
@require_POST
def incident_notification(request, pk: int):
    incident = _visible(request, pk)
    form = NotificationForm(request.POST)
    if form.is_valid():
        try:
            services.incident_record_notification(incident, user=request.user, data=form.cleaned_data,
                                                  request=request)
        except IncidentError as exc:
            _error(request, exc)
        else:
            messages.success(request, "Notification record saved.")
    return redirect(incident)


@login_required
@require_POST
def incident_significance(request, pk: int):
    incident = _visible(request, pk)
    if request.POST.get("recheck"):
        services.incident_recheck_significance(incident, user=request.user, request=request)
        messages.success(request, "Significance checked against the active significant-event rules.")
        return redirect(incident)
    form = SignificanceForm(request.POST)
    if form.is_valid():
        try:
            services.incident_mark_significant(incident, user=request.user,
                                               significant=form.cleaned_data["significant"],
                                               reason=form.cleaned_data["reason"], request=request)
        except IncidentError as exc:
            _error(request, exc)
    return redirect(incident)


@login_required
@require_POST
def incident_comment(request, pk: int):
    incident = _visible(request, pk)
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            services.incident_comment(incident, user=request.user, text=form.cleaned_data["text"], request=request)
        except IncidentError as exc:
            _error(request, exc)
    else:
        messages.error(request, "A comment cannot be empty.")
    return redirect(incident)


@login_required
@permission_required("triggers.view_all_incidents", raise_exception=True)
def incident_summary(request):
    period = request.GET.get("period") or str(timezone.now().year)
    try:
        summary = services.period_summary(period)
    except IncidentError as exc:
        _error(request, exc)
        summary = services.period_summary(str(timezone.now().year))
    if request.GET.get("format") == "pdf":
        response = HttpResponse(summary_pdf_bytes(summary), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="incidents-{summary["period"]}.pdf"'
        return response
    return render(request, "triggers/incidents/summary.html", {"summary": summary, "standalone": False})
