"""Registry pages: thin views that validate input, call one selector or service, render.

Every view of a patient's record (history, study, sheet) and every export or change writes an audit row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.core.paginator import Paginator
from django.db import connection, transaction
from django.http import FileResponse, Http404, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from dosereg.core import procedure_chart
from dosereg.core.quantities import STUDY_TOTALS
from dosereg.core.skin_map import SkinMapUnavailable
from dosereg.registry.models import AuditLog, Equipment, Patient, ReceivedObject, Room, SiteSettings, Study
from dosereg.registry.services import studies as study_services
from dosereg.registry.services.audit import audit_record
from dosereg.registry.services.dose_text import effective_dose_partial_note
from dosereg.registry.services.pseudonyms import pseudonym_enabled
from dosereg.web import charts, euratom, exports, selectors
from dosereg.web.dose_text import study_dose_text
from dosereg.web.findings import study_findings
from dosereg.web.forms import PatientSearchForm, StudyFilterForm, UnitRoomForm
from dosereg.web.params import page_param
from dosereg.web.skin_map import skin_map_bytes
from drl import selectors as drl_selectors
from triggers import selectors as alert_selectors

PAGE_SIZE = 50


@login_required
@permission_required("registry.view_study", raise_exception=True)  # the dashboard shows doses and open alerts
def home(request):
    if selectors.is_empty_registry():
        return render(request, "web/home.html", {"empty_registry": True, "info": selectors.first_run_info(request),
                                                 "can_load_demo": request.user.has_perm(
                                                     "registry.manage_site_settings")})
    data = selectors.dashboard(user=request.user)
    if not request.user.has_perm("registry.view_receivedobject"):
        data["refused"] = []
    worklist = alert_selectors.follow_up_worklist(user=request.user)
    data["follow_ups"], data["overdue_count"] = worklist[:10], sum(1 for a in worklist if a.overdue)
    data["chart"] = charts.weekly_bars_svg(data["per_week"], weeks=data["weeks"])
    return render(request, "web/home.html", {"empty_registry": False, **data})


@require_POST
@permission_required("registry.manage_site_settings", raise_exception=True)
def load_demo_data(request):
    try:
        call_command("generate_demo_data", studies=200)
    except CommandError as exc:
        messages.error(request, _("Demo data could not be loaded: %(reason)s") % {"reason": exc})
    else:
        audit_record(action="load_demo_data", object_type="registry", detail={"studies": 200}, request=request)
        messages.success(request, _("Demo data loaded: 200 studies, marked as demo."))
    return redirect("home")


def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


# --- patients ------------------------------------------------------------------------------------------------------
@permission_required("registry.view_patient_history", raise_exception=True)
def patient_search(request):
    form = PatientSearchForm(request.GET or None)
    results, searched = [], False
    if form.is_bound and form.is_valid() and (form.cleaned_data["q"] or form.cleaned_data["date"]):
        searched = True
        results = selectors.patient_search(query=form.cleaned_data["q"], date=form.cleaned_data["date"])
        audit_record(action="search_patients", object_type="patient", detail={"results": len(results)},
                     request=request)
    return render(request, "web/patient_search.html", {"form": form, "results": results, "searched": searched,
                                                       "pseudonymised": pseudonym_enabled()})


@permission_required("registry.view_patient_history", raise_exception=True)
def patient_history(request, pk: int):
    patient = get_object_or_404(Patient, pk=pk)
    data = selectors.patient_history(patient)
    points = {f: [(s.study_date, getattr(s, f)) for s in data["studies"] if s.study_date and getattr(s, f)]
              for f in STUDY_TOTALS if f not in ("effective_dose_msv",)}
    marks = [(s.study_date, "; ".join(a["text"] for a in s.alert_badges)) for s in data["studies"]
             if s.alert_badges and s.study_date]
    data["chart"] = charts.timeline_svg(points, alerts=marks)
    audit_record(action="view_patient_history", object_type="patient", object_id=patient.pk, request=request)
    data["total_fields"] = [f for f in STUDY_TOTALS if data["totals"].get(f) is not None]
    return render(request, "web/patient_history.html", data)


SHEET_LANGUAGES = ("en", "de", "fr")  # the patient sheet's translations (locale/); the staff pages are English


@permission_required("registry.view_patient_sheet", raise_exception=True)
def patient_sheet(request, pk: int):
    patient = get_object_or_404(Patient, pk=pk)
    studies = Study.objects.filter(patient=patient).select_related("equipment")
    study_id = request.GET.get("study")
    if study_id:
        if not study_id.isdigit():
            return HttpResponseBadRequest("study must be a number")
        studies = studies.filter(pk=int(study_id))
    language = request.GET.get("lang") or translation.get_language()
    if language not in SHEET_LANGUAGES:
        return HttpResponseBadRequest(f"lang must be one of {', '.join(SHEET_LANGUAGES)}")
    audit_record(action="print_patient_sheet", object_type="patient", object_id=patient.pk,
                 detail={"study": int(study_id)} if study_id else {}, request=request)
    with translation.override(language):  # the language the patient reads, whatever the staff member's
        rows = selectors.patient_sheet_rows(list(studies.order_by("study_date", "id")))
        return render(request, "web/patient_sheet.html", {
            "patient": patient, "rows": rows, "glossary": selectors.sheet_glossary(rows), "printed": dt.date.today(),
            "languages": [(code, name, code == language) for code, name in settings.LANGUAGES
                          if code in SHEET_LANGUAGES], "study_id": study_id or ""})


# --- studies -------------------------------------------------------------------------------------------------------
@permission_required("registry.view_study", raise_exception=True)
def study_list(request):
    form = StudyFilterForm(request.GET or None).with_choices()
    if form.is_bound and not form.is_valid():
        return render(request, "web/study_list.html", {"form": form, "page": None}, status=400)
    filters = form.cleaned_data if form.is_bound else {}
    qs = selectors.study_queryset(filters)
    export_format = request.GET.get("format")
    if export_format in ("csv", "xlsx"):
        if not request.user.has_perm("registry.export_studies"):
            raise PermissionDenied
        audit_record(action="export_studies", object_type="study", detail={
            "format": export_format, "filters": {k: str(v) for k, v in filters.items() if v not in (None, "", [])}},
            request=request)
        name = f"dosereg-studies-{dt.date.today().isoformat()}"
        return exports.csv_response(qs, name) if export_format == "csv" else exports.xlsx_response(qs, name)
    page_number = page_param(request.GET)  # 400 past any real page (the count cap below is an SQL LIMIT)
    count, capped = selectors.capped_count(qs, cap=page_number * PAGE_SIZE + selectors.LIST_CAP)
    paginator = Paginator(selectors.study_rows(qs), PAGE_SIZE)
    paginator.count = count  # capped: a page always knows of the next 1,000 rows, never counts millions
    page = paginator.get_page(page_number)
    query = request.GET.copy()
    query.pop("page", None)
    sort_query = request.GET.copy()
    sort_query.pop("sort", None)
    sort_query.pop("page", None)
    return render(request, "web/study_list.html", {
        "form": form, "page": page, "count": count, "capped": capped, "query": query.urlencode(),
        "sort_query": sort_query.urlencode(), "sort": filters.get("sort") or "-study_date",
        "can_export": request.user.has_perm("registry.export_studies")})


@permission_required("registry.view_study_detail", raise_exception=True)
def study_detail(request, pk: int):
    study = get_object_or_404(Study.objects.select_related("patient", "equipment__room", "standard_exam"), pk=pk)
    data = selectors.study_detail(study)
    data["dose_text"] = study_dose_text(study)
    data["totals"] = [(name, getattr(study, name)) for name in STUDY_TOTALS if getattr(study, name) is not None]
    data["findings"] = study_findings(study)
    data["alert_banner"] = alert_selectors.study_alerts(study.pk)
    data["can_confirm"] = _may_confirm_values(request.user)
    data["site"] = SiteSettings.load()
    data["can_download"] = request.user.has_perm("registry.download_dicom")
    data["can_sheet"] = request.user.has_perm("registry.view_patient_sheet")
    data["can_history"] = request.user.has_perm("registry.view_patient_history")
    data["partial_note"] = effective_dose_partial_note(study)
    if data["events_by_kind"].get("projection"):
        data.update(_fluoroscopy_pictures(study, [e for e in data["events_by_kind"]["projection"] if e.is_current]))
    if data["events_by_kind"].get("ct"):
        data.update(_ct_pictures(study, [e for e in data["events_by_kind"]["ct"] if e.is_current]))
    audit_record(action="view_study", object_type="study", object_id=study.pk, request=request)
    return render(request, "web/study_detail.html", data)


def _fluoroscopy_pictures(study: Study, events: list) -> dict:
    """The skin dose (map, PSD, method) or the geometry notice, and the procedure's cumulative chart."""
    chart = procedure_chart.procedure_chart(procedure_chart.ChartEvent.of(e) for e in events)
    skin = dict(study.skin_dose or {})
    skin_map = ""
    if skin.get("geometry_complete"):
        try:
            skin_map = skin_map_bytes(study, "svg")[0].decode()  # our own SVG (core.skin_map), texts escaped there
        except SkinMapUnavailable as exc:
            skin["geometry_complete"], skin["reasons"] = False, list(exc.reasons)
    return {"skin": skin or None, "skin_map_svg": skin_map,
            "psd_by_plane": sorted((skin.get("psd_mgy_by_plane") or {}).items()),
            "procedure_chart": charts.procedure_chart_svg(chart),
            "chart_timed": bool(chart and chart.timed),
            "chart_marks": procedure_chart.time_marks(chart) if chart else [],
            "chart_planes": [t.plane for t in chart.traces] if chart else [],
            "angle_rows": procedure_chart.angle_sectors(chart)[:15] if chart else []}


def _ct_pictures(study: Study, events: list) -> dict:
    """CTDIvol and DLP per acquisition against the study's DRL (per examination) where one applies."""
    position = drl_selectors.drl_position(study.pk) or {}
    drl = {}
    for p in position.get("positions", []):
        if p["quantity"] in ("ctdivol_mgy", "max_ctdivol_mgy"):
            drl["ctdivol_mgy"] = p["drl"]
        elif p["quantity"] == "dlp_total_mgycm":
            drl["dlp_mgycm"] = p["drl"]
    rows = [(f"#{i} {e.protocol or e.target_region or ''}".strip(), e.ctdivol_mgy, e.dlp_mgycm)
            for i, e in enumerate(events, 1) if not e.is_localizer]
    return {"ct_chart": charts.ct_bars_svg(rows, dlp_total=study.dlp_total_mgycm, drl=drl), "ct_rows": rows,
            "ct_drl": drl, "ct_drl_position": position}


def _may_confirm_values(user) -> bool:
    """Physicists confirm implausible values: those who map examinations or manage units."""
    return user.has_perm("drl.manage_mapping") or user.has_perm("registry.manage_equipment")


@require_POST
@login_required
def study_confirm_values(request, pk: int):
    study = get_object_or_404(Study, pk=pk)
    if not _may_confirm_values(request.user):
        raise PermissionDenied
    try:
        study_services.study_confirm_values(study_id=study.pk, user=request.user)
    except study_services.NothingToConfirm:
        messages.info(request, _("No value of this study awaits confirmation."))
    else:
        messages.success(request, _("Values confirmed: the study counts in DRL medians again."))
    return redirect("study_detail", pk=study.pk)


@permission_required("registry.download_dicom", raise_exception=True)
def download_object(request, pk: int):
    obj = get_object_or_404(ReceivedObject, pk=pk)
    if not obj.file_path:
        raise Http404("the original object is not kept")
    path = Path(obj.file_path)
    if not path.is_absolute():
        path = settings.INBOX_DIR / path
    if not path.is_file():
        raise Http404("the original object is missing from the inbox")
    audit_record(action="download_dicom", object_type="received_object", object_id=obj.pk,
                 detail={"sop_instance_uid": obj.sop_instance_uid}, request=request)
    return FileResponse(path.open("rb"), as_attachment=True, filename=f"{obj.sop_instance_uid}.dcm",
                        content_type="application/dicom")


# --- units and rooms -----------------------------------------------------------------------------------------------
@permission_required("registry.view_equipment", raise_exception=True)
def unit_list(request):
    units = selectors.units_overview()
    rooms = Room.objects.order_by("name")
    return render(request, "web/unit_list.html", {"units": units, "rooms": rooms,
                                                  "unmapped": [u for u in units if u.room_id is None]})


@permission_required("registry.view_equipment", raise_exception=True)
def unit_detail(request, pk: int):
    unit = get_object_or_404(Equipment.objects.select_related("room"), pk=pk)
    can_map = request.user.has_perm("registry.manage_equipment")
    form = UnitRoomForm(initial={"room": unit.room_id})
    if request.method == "POST":
        if not can_map:
            raise PermissionDenied
        form = UnitRoomForm(request.POST)
        if form.is_valid():
            with transaction.atomic():
                room = form.cleaned_data["room"]
                if form.cleaned_data["new_room"]:
                    room, _created = Room.objects.get_or_create(name=form.cleaned_data["new_room"].strip())
                old = unit.room.name if unit.room else ""
                unit.room = room
                unit.save(update_fields=["room"])
                audit_record(action="map_unit_room", object_type="equipment", object_id=unit.pk,
                             detail={"old_room": old, "new_room": room.name if room else ""}, request=request)
            messages.success(request, _("Room saved."))
            return redirect("unit_detail", pk=unit.pk)
    data = selectors.unit_detail(unit)
    return render(request, "web/unit_detail.html", {**data, "form": form, "can_map": can_map})


# --- audit trail ---------------------------------------------------------------------------------------------------
@permission_required("registry.view_audit_trail", raise_exception=True)
def audit_trail(request):
    qs = AuditLog.objects.order_by("-at", "-id")
    action = request.GET.get("action", "")
    if action:
        qs = qs.filter(action=action)
    user = request.GET.get("user", "")
    if user:
        qs = qs.filter(username=user)
    page = Paginator(qs, 100).get_page(request.GET.get("page"))
    return render(request, "web/audit.html", {"page": page, "action": action, "username": user})


# --- Euratom duties ------------------------------------------------------------------------------------------------
def _euratom_allowed(user) -> bool:
    """Physicists and administrators: those who manage the units (the page lists every unit and incident deadline)."""
    return user.has_perm("registry.manage_equipment")


def _euratom_year(request) -> tuple[int, bool]:
    text = request.GET.get("year", "")
    year = int(text) if text.isdigit() and 1900 <= int(text) <= 2999 else dt.date.today().year - 1
    return year, request.GET.get("include_demo") == "1"


@login_required
def euratom_page(request):
    if not _euratom_allowed(request.user):
        raise PermissionDenied
    year, include_demo = _euratom_year(request)
    data = euratom.euratom_overview(year=year, include_demo=include_demo)
    data["chart"] = charts.modality_bars_svg(data["modality_totals"], label=f"Examinations per modality, {year}")
    data["years"] = range(dt.date.today().year, dt.date.today().year - 6, -1)
    data["today"] = dt.date.today()
    return render(request, "web/euratom.html", data)


@login_required
def euratom_csv(request, what: str):
    if not _euratom_allowed(request.user):
        raise PermissionDenied
    year, include_demo = _euratom_year(request)
    if what == "population":
        text, name = euratom.population_csv(year=year, include_demo=include_demo), f"dosereg-art64-{year}.csv"
    else:
        text, name = euratom.units_csv(include_demo=include_demo), f"dosereg-art60-units-{dt.date.today()}.csv"
    audit_record(action="export_euratom", object_type="registry", detail={"what": what, "year": year,
                                                                          "include_demo": include_demo},
                 request=request)
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
