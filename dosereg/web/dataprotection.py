"""The data-protection report: who viewed or exported which patient's data, per patient and per user, for a period
(GDPR Art. 15 and Art. 33 questions after a complaint), read from the audit trail.  Administrators
(registry.view_audit_trail).  Page and CSV.

Views of one patient's record (history, sheet, API, FHIR) name the patient; views of one study or the download of
its original name the study and so its patient; list exports and searches concern many patients and are listed per
user only ("bulk"), with their filters.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django import forms
from django.contrib.auth.decorators import permission_required
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from dosereg.registry import spreadsheet
from dosereg.registry.models import AuditLog, Patient, ReceivedObject, Study
from dosereg.registry.services.audit import audit_record

BULK_ACTIONS = ("export_studies", "api_list_studies", "fhir_search", "export_euratom", "search_patients")
DETAIL_CAP = 2000  # rows on the page; the CSV has them all
CSV_HEADER = ["at", "username", "ip_address", "action", "patient", "patient_id", "study", "detail"]


@dataclass(frozen=True)
class Access:
    at: dt.datetime
    username: str
    ip_address: str
    action: str
    patient_pk: int | None  # None: a bulk action (many patients)
    study_pk: int | None
    detail: str


class ReportForm(forms.Form):
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    patient = forms.CharField(required=False, max_length=128, label="Patient ID (as shown) or #internal id")
    user = forms.CharField(required=False, max_length=150, label="User name")


def _ids(values) -> list[int]:
    return [int(v) for v in values if str(v).isdigit() and int(v) <= 2**63 - 1]


def patient_pks(text: str) -> list[int]:
    """The patients a search names: '#12' (internal id) or the Patient ID as shown (the pseudonym when on)."""
    text = text.strip()
    if text.startswith("#"):
        return _ids([text[1:]])
    return list(Patient.objects.filter(patient_id=text).values_list("pk", flat=True))


def accesses(*, date_from: dt.date | None = None, date_to: dt.date | None = None, patients: list[int] | None = None,
             username: str = "") -> list[Access]:
    """Every audited access to patient data in the period (oldest first), narrowed to these patients and user."""
    qs = AuditLog.objects.filter(object_type__in=("patient", "study", "received_object")).order_by("at", "id")
    tz = timezone.get_current_timezone()
    if date_from:
        qs = qs.filter(at__gte=dt.datetime.combine(date_from, dt.time.min, tz))
    if date_to:
        qs = qs.filter(at__lt=dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, tz))
    if username:
        qs = qs.filter(username=username)
    rows = list(qs.values_list("at", "username", "ip_address", "action", "object_type", "object_id", "detail"))
    objects = dict(ReceivedObject.objects.filter(pk__in=_ids(r[5] for r in rows if r[4] == "received_object"))
                   .values_list("pk", "study_instance_uid"))
    by_uid = dict(Study.objects.filter(study_instance_uid__in=[u for u in objects.values() if u])
                  .values_list("study_instance_uid", "pk"))
    studies = dict(Study.objects.filter(pk__in=[*_ids(r[5] for r in rows if r[4] == "study"), *by_uid.values()])
                   .values_list("pk", "patient_id"))
    out = []
    for at, user, ip, action, kind, object_id, detail in rows:
        patient = study = None
        if action not in BULK_ACTIONS and str(object_id).isdigit():
            if kind == "patient":
                patient = int(object_id)
            elif kind == "study":
                study = int(object_id)
                patient = studies.get(study)
            else:  # the download of a stored original
                study = by_uid.get(objects.get(int(object_id), ""))
                patient = studies.get(study)
        elif action not in BULK_ACTIONS:
            continue  # a change without an object (none of them reads patient data)
        if patients is not None and patient not in patients:
            continue
        out.append(Access(at, user or "", ip or "", action, patient, study,
                          "; ".join(f"{k}={v}" for k, v in (detail or {}).items())[:300]))
    return out


def per_patient(rows: list[Access]) -> list[dict]:
    """Patient -> who accessed it: [{patient, users: [{username, actions, count, first, last}]}]."""
    groups: dict[int, dict[str, list[Access]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.patient_pk is not None:
            groups[r.patient_pk][r.username].append(r)
    ids = dict(Patient.objects.filter(pk__in=list(groups)).values_list("pk", "patient_id"))
    return [{"patient_pk": pk, "patient_id": ids.get(pk, "(deleted)"), "users": [
        {"username": user, "actions": sorted({a.action for a in acc}), "count": len(acc), "first": acc[0].at,
         "last": acc[-1].at} for user, acc in sorted(users.items())]} for pk, users in sorted(groups.items())]


def per_user(rows: list[Access]) -> list[dict]:
    """User -> how many patients, how many accesses, and their bulk exports and searches."""
    groups: dict[str, list[Access]] = defaultdict(list)
    for r in rows:
        groups[r.username].append(r)
    return [{"username": user, "patients": len({a.patient_pk for a in acc if a.patient_pk is not None}),
             "count": len(acc), "bulk": [a for a in acc if a.patient_pk is None]}
            for user, acc in sorted(groups.items())]


@permission_required("registry.view_audit_trail", raise_exception=True)
def data_protection_report(request):
    form = ReportForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return render(request, "web/data_protection.html", {"form": form}, status=400)
    # unfiltered, the last 30 days (the audit trail of years would be a long page)
    f = form.cleaned_data if form.is_bound else {"date_from": timezone.localdate() - dt.timedelta(days=30)}
    patients = patient_pks(f["patient"]) if f.get("patient") else None
    rows = accesses(date_from=f.get("date_from"), date_to=f.get("date_to"), patients=patients,
                    username=f.get("user") or "")
    audit_record(action="data_protection_report", object_type="audit", request=request, detail={
        "format": request.GET.get("format") or "html", "rows": len(rows),
        "filters": {k: str(v) for k, v in f.items() if v not in (None, "")}})
    if request.GET.get("format") == "csv":
        ids = dict(Patient.objects.filter(pk__in={r.patient_pk for r in rows if r.patient_pk})
                   .values_list("pk", "patient_id"))
        lines = spreadsheet.csv_lines(CSV_HEADER, ([r.at.isoformat(), r.username, r.ip_address, r.action,
                                                    r.patient_pk, ids.get(r.patient_pk, ""), r.study_pk, r.detail]
                                                   for r in rows))
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="dosereg-data-protection.csv"'
        return response
    return render(request, "web/data_protection.html", {
        "form": form, "rows": rows[-DETAIL_CAP:], "capped": len(rows) > DETAIL_CAP, "count": len(rows),
        "per_patient": per_patient(rows), "per_user": per_user(rows), "query": request.GET.urlencode()})
