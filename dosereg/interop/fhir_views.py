"""The read-only FHIR R4 API under /fhir/: the capability statement, Observation search, and reads.

Same authentication and roles as the REST API (token or session; the study views' permissions).  Answers
``application/fhir+json`` (``application/json`` when that is what the client accepts, or ``_format=json``).  Bad
input gets an OperationOutcome with 400, an unknown id 404; unknown search parameters are ignored (FHIR R4 §3.1.1.5.7
lenient handling).  Demo studies are never served.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlencode

from django.db.models import Q, QuerySet
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from dosereg.interop import fhir
from dosereg.registry.models import Equipment, Patient, SiteSettings, Study
from dosereg.registry.services.audit import audit_record
from dosereg.registry.services.pseudonyms import patient_pseudonym, pseudonym_enabled

FHIR_JSON = "application/fhir+json"
DEFAULT_COUNT, MAX_COUNT = 20, 200
_DATE = re.compile(r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)?(\d{4})(-\d{2})?(-\d{2})?(T[0-9:.+\-Z]*)?$")


class FhirError(exceptions.APIException):
    """A bad request: answered as an OperationOutcome with 400."""

    status_code = 400


class FhirJSONRenderer(JSONRenderer):
    media_type = FHIR_JSON
    format = "fhir"


class CanViewStudies(BasePermission):
    """The API's study-detail permissions (registry.view_study and registry.view_study_detail)."""

    def has_permission(self, request, view) -> bool:
        return request.user.has_perms(["registry.view_study", "registry.view_study_detail"])


def operation_outcome(code: str, diagnostics: str, severity: str = "error") -> dict:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}]}


_ISSUE_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
                406: "not-supported"}


@extend_schema(exclude=True)  # FHIR resources are described by the CapabilityStatement (/fhir/metadata), not OpenAPI
class FhirView(APIView):
    permission_classes = [IsAuthenticated, CanViewStudies]
    renderer_classes = [FhirJSONRenderer, JSONRenderer]

    def perform_content_negotiation(self, request, force=False):
        """application/fhir+json unless the client asks for plain JSON (Accept or _format); never a 406."""
        wanted = request.query_params.get("_format", "") or request.META.get("HTTP_ACCEPT", "")
        if "application/json" in wanted and FHIR_JSON not in wanted or wanted == "json":
            return JSONRenderer(), "application/json"
        return FhirJSONRenderer(), FHIR_JSON

    def handle_exception(self, exc):
        if isinstance(exc, Http404):
            exc = exceptions.NotFound(str(exc) or "no such resource")
        response = super().handle_exception(exc)
        detail = response.data.get("detail", response.data) if isinstance(response.data, dict) else response.data
        response.data = operation_outcome(_ISSUE_CODES.get(response.status_code, "processing"), str(detail))
        return response

    def base(self, request) -> str:
        return request.build_absolute_uri("/fhir/")


def _studies() -> QuerySet[Study]:
    return Study.objects.filter(demo=False).select_related("patient", "equipment")


def _study(pk: str) -> Study:
    if not pk.isdigit():
        raise Http404(f"no resource with id {pk!r}")
    study = _studies().filter(pk=int(pk)).first()
    if study is None:
        raise Http404(f"no resource with id {pk!r}")
    return study


# --- search parameters -------------------------------------------------------------------------------------------
def _token(value: str) -> tuple[str | None, str]:
    """A token parameter: (system or None, code)."""
    if "|" in value:
        system, _, code = value.partition("|")
        return system, code
    return None, value


def _date_filter(value: str) -> Q:
    """``date`` on the study date: a prefix and a date of year, month or day precision (FHIR R4 §3.1.1.4.2)."""
    match = _DATE.match(value.strip())
    if not match:
        raise FhirError(f"date={value!r} is not a FHIR date (e.g. ge2024-01-01)")
    prefix, year, month, day = match.group(1) or "eq", int(match.group(2)), match.group(3), match.group(4)
    try:
        if day:
            lo = dt.date(year, int(month[1:]), int(day[1:]))
            hi = lo
        elif month:
            lo = dt.date(year, int(month[1:]), 1)
            hi = (lo.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        else:
            lo, hi = dt.date(year, 1, 1), dt.date(year, 12, 31)
    except ValueError as exc:
        raise FhirError(f"date={value!r}: {exc}") from exc
    return {"eq": Q(study_date__range=(lo, hi)), "ap": Q(study_date__range=(lo, hi)),
            "ne": ~Q(study_date__range=(lo, hi)) & Q(study_date__isnull=False),
            "gt": Q(study_date__gt=hi), "sa": Q(study_date__gt=hi), "ge": Q(study_date__gte=lo),
            "lt": Q(study_date__lt=lo), "eb": Q(study_date__lt=lo), "le": Q(study_date__lte=hi)}[prefix]


def _patient_ids(value: str) -> list[str]:
    """``patient.identifier``: the registry's IDs it may name (a hospital ID is hashed on a pseudonymised site)."""
    system, code = _token(value)
    if system == fhir.PSEUDONYM_SYSTEM or not pseudonym_enabled():
        return [code]
    issuer = system.removeprefix("urn:oid:").removeprefix(f"{fhir.PATIENT_ID_SYSTEM}:") if system else ""
    issuer = "" if issuer == fhir.PATIENT_ID_SYSTEM else issuer
    return [code, patient_pseudonym(code, issuer)]


def _reference_pk(value: str, kind: str) -> int:
    tail = value.rsplit("/", 1)[-1] if value.startswith((f"{kind}/", "http")) else value
    if not tail.isdigit() or int(tail) > 2**63 - 1:  # past BIGINT: no row has it, and SQLite would overflow
        raise FhirError(f"{value!r} is not a {kind} reference ({kind}/<id>)")
    return int(tail)


def _part_of(value: str) -> Q:
    """``part-of``: ImagingStudy/<id>, or the Study Instance UID (with or without urn:oid:)."""
    if value.startswith("ImagingStudy/") or value.isdigit():
        return Q(pk=_reference_pk(value, "ImagingStudy"))
    _, uid = _token(value)
    return Q(study_instance_uid=uid.removeprefix("urn:oid:"))


def _code(value: str) -> bool:
    return any(_token(v) in ((None, "73569-6"), (fhir.LOINC, "73569-6")) for v in value.split(","))


def _identifier(value: str) -> Q:
    q = Q()
    for item in value.split(","):
        _, code = _token(item)
        q |= Q(reports__sop_instance_uid=code.removeprefix("urn:oid:"))
    return q


def search_observations(params) -> QuerySet[Study]:
    """The studies whose Observation matches every parameter (each parameter's values: any)."""
    qs = _studies()
    for value in params.getlist("code"):
        if not _code(value):
            return qs.none()
    for name in ("patient", "subject"):
        for value in params.getlist(name):
            qs = qs.filter(patient_id__in=[_reference_pk(v, "Patient") for v in value.split(",")])
    for value in params.getlist("patient.identifier") + params.getlist("subject.identifier"):
        ids = [i for v in value.split(",") for i in _patient_ids(v)]
        qs = qs.filter(patient__patient_id__in=ids)
    for value in params.getlist("date"):
        qs = qs.filter(_date_filter(value))
    for value in params.getlist("part-of"):
        q = Q()
        for item in value.split(","):
            q |= _part_of(item)
        qs = qs.filter(q)
    for value in params.getlist("_id"):
        ids = [v for v in value.split(",") if v.isdigit() and int(v) <= 2**63 - 1]  # past BIGINT: no such row
        qs = qs.filter(pk__in=ids)
    for value in params.getlist("identifier"):
        qs = qs.filter(_identifier(value))
    return qs.distinct().order_by("-study_date", "-pk")


def _int_param(params, name: str, default: int, maximum: int) -> int:
    raw = params.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit():
        raise FhirError(f"{name}={raw!r} is not a whole number")
    return min(int(raw), maximum)


# --- views -------------------------------------------------------------------------------------------------------
class MetadataView(FhirView):
    """The CapabilityStatement: a FHIR server for the RDSP's resources (no authentication needed to read it)."""

    permission_classes = []

    def get(self, request):
        return Response(capability_statement(self.base(request)))


def capability_statement(base: str) -> dict:
    search = [("code", "token"), ("patient", "reference"), ("subject", "reference"), ("patient.identifier", "token"),
              ("date", "date"), ("part-of", "reference"), ("identifier", "token"), ("_id", "token")]
    read = [{"code": "read"}]
    return {
        "resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
        "date": "2026-01-01", "fhirVersion": "4.0.1", "format": ["json"],
        "name": "DoseRegRadiationDoseSummaryServer",
        "description": "DoseReg as Radiation Dose Summary Producer (IHE/HL7 RDSP): radiation dose summaries of the "
                       "registry's studies, read-only.",
        "instantiates": [fhir.IG_CAPABILITY_RDSP],
        "implementation": {"description": "DoseReg", "url": base},
        "software": {"name": "DoseReg"},
        "rest": [{"mode": "server", "resource": [
            {"type": "Observation", "supportedProfile": [fhir.PROFILE_DOSE_SUMMARY],
             "interaction": read + [{"code": "search-type"}],
             "searchParam": [{"name": n, "type": t} for n, t in search]},
            {"type": "Patient", "interaction": read},
            {"type": "ImagingStudy", "interaction": read},
            {"type": "Device", "supportedProfile": [fhir.PROFILE_MODALITY_DEVICE], "interaction": read},
        ]}],
    }


class ObservationSearchView(FhirView):
    def get(self, request):
        params = request.query_params
        count = _int_param(params, "_count", DEFAULT_COUNT, MAX_COUNT)
        offset = _int_param(params, "_offset", 0, 10 ** 9)
        qs = search_observations(params)
        total = qs.count()
        site = SiteSettings.load()
        base = self.base(request)
        studies = list(qs[offset:offset + count]) if count else []
        entries = [{"fullUrl": f"{base}Observation/{s.pk}",
                    "resource": fhir.observation_resource(fhir.dose_summary(s, site=site)),
                    "search": {"mode": "match"}} for s in studies]
        kept = [(k, v) for k in params for v in params.getlist(k) if k not in ("_offset",)]
        links = [{"relation": "self", "url": f"{base}Observation?{urlencode(kept + [('_offset', offset)])}"}]
        if offset + count < total and count:
            links.append({"relation": "next",
                          "url": f"{base}Observation?{urlencode(kept + [('_offset', offset + count)])}"})
        audit_record(action="fhir_search", object_type="study", request=request,
                     detail={"resource": "Observation", "total": total,
                             "parameters": sorted({k for k, _ in kept})})
        return Response({"resourceType": "Bundle", "type": "searchset", "total": total, "link": links,
                         "entry": entries})


class ObservationReadView(FhirView):
    def get(self, request, pk: str):
        study = _study(pk)
        audit_record(action="fhir_read", object_type="study", object_id=study.pk, request=request,
                     detail={"resource": "Observation"})
        return Response(fhir.observation_resource(fhir.dose_summary(study)))


class ImagingStudyReadView(FhirView):
    def get(self, request, pk: str):
        study = _study(pk)
        return Response(fhir.imaging_study_resource(fhir.dose_summary(study)))


class PatientReadView(FhirView):
    def get(self, request, pk: str):
        patient = Patient.objects.filter(pk=int(pk)).first() if pk.isdigit() else None
        if patient is None or not patient.studies.filter(demo=False).exists():
            raise Http404(f"no Patient with id {pk!r}")
        audit_record(action="fhir_read", object_type="patient", object_id=patient.pk, request=request,
                     detail={"resource": "Patient"})
        return Response(fhir.patient_resource(fhir.PatientFacts(
            pk=patient.pk, patient_id=patient.patient_id, issuer=patient.issuer, pseudonymised=patient.pseudonymised,
            name=patient.name, sex=patient.sex, birth_date=patient.birth_date)))


class DeviceReadView(FhirView):
    def get(self, request, pk: str):
        equipment = Equipment.objects.filter(pk=int(pk), demo=False).first() if pk.isdigit() else None
        study = _studies().filter(equipment=equipment).order_by("-pk").first() if equipment else None
        if study is None:
            raise Http404(f"no Device with id {pk!r}")
        return Response(fhir.device_resource(fhir.device_facts(study, list(study.reports.all()))))


class UnknownView(FhirView):
    """Any other path under /fhir/: a 404 OperationOutcome (never an HTML page)."""

    permission_classes = []

    def get(self, request, rest: str = ""):
        raise Http404(f"{rest or '/'} is not a resource DoseReg serves (see {self.base(request)}metadata)")

