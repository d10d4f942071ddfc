"""REST API of the registry (mounted under /api/v1/): token authentication, permissions mapped to model
permissions, DRF's {count, next, previous, results} envelope, 400 with a message for invalid filters."""

from __future__ import annotations

import math

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from dosereg.core.quantities import MODALITY_CHOICES, MODALITY_TYPES, STUDY_TOTALS
from dosereg.registry.models import Patient, Study
from dosereg.registry.services.audit import audit_record
from dosereg.web import selectors
from dosereg.web.forms import StudyFilterForm
from dosereg.web.study_object import study_object, study_objects


def _finite(value):
    """JSON has no inf or NaN: a stored non-finite number is answered as null (not a value anyone reported)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def require_perms(*perms: str) -> type[BasePermission]:
    """A DRF permission class requiring these model permissions (e.g. 'registry.view_study')."""

    class _HasPerms(BasePermission):
        message = "You do not have permission for this resource."

        def has_permission(self, request, view):
            return bool(request.user and request.user.is_authenticated and request.user.has_perms(perms))

    _HasPerms.__name__ = "Has_" + "_".join(p.split(".")[-1] for p in perms)
    return _HasPerms


class StudyPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def _filter_parameters() -> list[OpenApiParameter]:
    form = StudyFilterForm()
    params = []
    for name, field in form.fields.items():
        kind = OpenApiTypes.STR
        if name.startswith(("date_",)):
            kind = OpenApiTypes.DATE
        elif name in ("room", "unit"):
            kind = OpenApiTypes.INT
        elif name.endswith(("_min", "_max")):
            kind = OpenApiTypes.DOUBLE
        enum = None
        if name in ("modality", "sort", "demo"):
            enum = [c[0] for c in field.choices if c[0] != ""]
        params.append(OpenApiParameter(name, kind, OpenApiParameter.QUERY, required=False, enum=enum,
                                       many=name == "modality", description=str(field.label or "")))
    return params


class StudyObjectSerializer(serializers.Serializer):
    """The ``export_doses`` study object plus the referrer's dose text (documentation of the response)."""

    study_instance_uid = serializers.CharField()
    accession_number = serializers.CharField()
    study_date = serializers.DateField(allow_null=True)
    modality_type = serializers.ChoiceField(choices=MODALITY_CHOICES, allow_blank=True)
    modality_types = serializers.ListField(child=serializers.CharField(), help_text=(
        "every modality type of the study, in classification order: " + ", ".join(MODALITY_TYPES)))
    equipment_id = serializers.IntegerField(allow_null=True)
    standard_exam = serializers.CharField(allow_null=True)
    demo = serializers.BooleanField()
    patient = serializers.DictField()
    totals = serializers.DictField(help_text=(
        "the study totals in their canonical units (export names: " + ", ".join(STUDY_TOTALS)
        + "; AGD as agd_total_mgy {left, right}), event_count and per-plane totals (planes)"))
    flags = serializers.ListField(child=serializers.CharField(), help_text=(
        "findings about the values: invalid_value, implausible_value, device_total_mismatch, text_truncated, "
        "corrected, ..."))
    flag_details = serializers.ListField(child=serializers.DictField(), help_text=(
        'one entry per finding: {"flag", "quantity", "reason", ...}; corrected: old, new, date; '
        "device_total_mismatch: reported, events_sum, unit, plane"))
    values_unconfirmed = serializers.BooleanField(required=False)
    events = serializers.ListField(child=serializers.DictField(), required=False)
    dose_text = serializers.CharField()


class StudyListView(APIView):
    """Studies, filtered (date range, modality type, room, unit, standard examination, protocol, dose ranges)."""

    permission_classes = [IsAuthenticated, require_perms("registry.view_study")]

    @extend_schema(parameters=_filter_parameters(), responses=StudyObjectSerializer(many=True))
    def get(self, request):
        data = request.query_params.copy()
        data.pop("page", None)
        data.pop("page_size", None)
        form = StudyFilterForm(data)
        if not form.is_valid():
            raise ValidationError({k: [str(m) for m in v] for k, v in form.errors.items()})
        qs = selectors.study_queryset(form.cleaned_data)
        paginator = StudyPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        audit_record(action="api_list_studies", object_type="study", detail={
            "filters": {k: str(v) for k, v in form.cleaned_data.items() if v not in (None, "", [])},
            "count": paginator.page.paginator.count}, request=request)
        return paginator.get_paginated_response(study_objects(page, events=False))


class StudyDetailView(APIView):
    """One study: the ``export_doses`` study object (with events) plus ``dose_text`` (Art. 58(b))."""

    permission_classes = [IsAuthenticated, require_perms("registry.view_study", "registry.view_study_detail")]

    @extend_schema(responses=StudyObjectSerializer)
    def get(self, request, study_instance_uid: str):
        study = get_object_or_404(Study.objects.select_related("equipment", "standard_exam", "patient"),
                                  study_instance_uid=study_instance_uid)
        audit_record(action="api_view_study", object_type="study", object_id=study.pk, request=request)
        return Response(study_object(study))


class PatientHistoryView(APIView):
    """A patient's studies in time order with totals per quantity type.  ``id`` is the patient ID as shown
    (the pseudonym when pseudonymisation is on), URL-encoded; ``issuer`` narrows it when IDs repeat."""

    permission_classes = [IsAuthenticated, require_perms("registry.view_patient_history")]

    @extend_schema(
        parameters=[OpenApiParameter("issuer", OpenApiTypes.STR, OpenApiParameter.QUERY, required=False)],
        responses=inline_serializer("PatientHistory", fields={
            "patient": serializers.DictField(), "totals": serializers.DictField(),
            "studies": serializers.ListField(child=serializers.DictField())}))
    def get(self, request, patient_id: str):
        patients = Patient.objects.filter(patient_id=patient_id)
        if "issuer" in request.query_params:
            patients = patients.filter(issuer=request.query_params["issuer"])
        patients = list(patients[:2])
        if not patients:
            return Response({"detail": "No patient with this ID."}, status=404)
        if len(patients) > 1:
            raise ValidationError({"issuer": ["Several patients share this ID; give their issuer."]})
        patient = patients[0]
        data = selectors.patient_history(patient)
        audit_record(action="api_view_patient_history", object_type="patient", object_id=patient.pk,
                     request=request)
        totals = {k: _finite(v) for k, v in data["totals"].items() if k != "n"}
        return Response({
            "patient": {"id": patient.patient_id, "issuer": patient.issuer, "sex": patient.sex or None,
                        "pseudonymised": patient.pseudonymised, "study_count": data["totals"]["n"]},
            "totals": totals,
            "studies": [{"study_instance_uid": s.study_instance_uid, "accession_number": s.accession_number,
                         "study_date": s.study_date.isoformat() if s.study_date else None,
                         "modality_type": s.modality_type, "modality_types": s.modality_types,
                         "study_description": s.study_description, "equipment_id": s.equipment_id,
                         "standard_exam": s.standard_exam.code if s.standard_exam_id else None, "demo": s.demo,
                         "quantities": {f: _finite(v) for f, v in s.shown_totals},
                         "alerts": [a["severity"] for a in s.alert_badges]}
                        for s in data["studies"]],
        })
