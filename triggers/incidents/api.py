"""Incident reports in the API (/api/v1/incidents/): list and read what the user may see; create a report."""

from __future__ import annotations

from django.db.models import Q
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response

from dosereg.registry.models import Study
from triggers.incidents import services
from triggers.incidents.models import CATEGORY_CHOICES, KIND_CHOICES, IncidentAction, IncidentReport


class CanViewIncidents(BasePermission):
    def has_permission(self, request, view):
        if request.method == "POST":
            return request.user.has_perm("triggers.add_incidentreport")
        return request.user.has_perm("triggers.view_incidentreport")


class ActionSerializer(serializers.ModelSerializer):
    class Meta:
        model = IncidentAction
        fields = ["id", "kind", "description", "owner", "due_date", "done_date"]


class IncidentSerializer(serializers.ModelSerializer):
    studies = serializers.SerializerMethodField()
    alerts = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    reporter = serializers.SlugRelatedField(slug_field="username", read_only=True)
    actions = ActionSerializer(many=True, read_only=True)
    notification_overdue = serializers.BooleanField(read_only=True)

    class Meta:
        model = IncidentReport
        fields = ["id", "kind", "category", "incident_date", "discovered_date", "room", "equipment", "studies",
                  "alerts", "reporter", "origin", "title", "description", "state", "dose_snapshot",
                  "snapshot_taken_at", "is_significant", "significance_reasons", "notification_due_date",
                  "notification_overdue", "notified_date", "notified_authority", "notification_reference",
                  "root_cause", "effective_dose_estimate_msv", "effective_dose_method", "patient_informed",
                  "referrer_informed", "actions", "created_at", "updated_at", "closed_at"]
        read_only_fields = fields

    def get_studies(self, obj) -> list[str]:
        return list(obj.studies.values_list("study_instance_uid", flat=True))


class IncidentCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=KIND_CHOICES, default="unintended")
    category = serializers.ChoiceField(choices=CATEGORY_CHOICES,
                                       error_messages={"required": "Choose a category."})
    incident_date = serializers.DateField(error_messages={"required": "Give the date of the exposure."})
    discovered_date = serializers.DateField(required=False, allow_null=True)
    title = serializers.CharField(required=False, allow_blank=True, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    studies = serializers.ListField(child=serializers.CharField(), required=False,
                                    help_text="Study Instance UIDs or accession numbers")


@extend_schema_view(post=extend_schema(request=IncidentCreateSerializer, responses={201: IncidentSerializer}))
class IncidentList(generics.ListCreateAPIView):
    permission_classes = [IsAuthenticated, CanViewIncidents]
    serializer_class = IncidentSerializer

    def get_queryset(self):
        qs = services.incidents_visible_to(self.request.user).select_related("reporter")
        state = self.request.query_params.get("state")
        return qs.filter(state=state) if state else qs

    def create(self, request, *args, **kwargs):
        ser = IncidentCreateSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        refs = data.pop("studies", [])
        if refs and not request.user.has_perm("triggers.report_exposure"):
            # as on the pages: an incident about a study is "report an exposure" (README, roles table)
            raise PermissionDenied("Reporting an exposure of a study needs triggers.report_exposure.")
        studies = []
        for ref in refs:
            study = Study.objects.filter(Q(study_instance_uid=ref) | Q(accession_number=ref)).order_by("id").first()
            if study is None or not services.user_may_see_study(request.user, study):
                return Response({"studies": [f"Study {ref} was not found or you may not see it."]},
                                status=status.HTTP_400_BAD_REQUEST)
            studies.append(study)
        try:
            incident = services.incident_create(user=request.user, data=data, studies=studies, request=request)
        except services.IncidentError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(IncidentSerializer(incident).data, status=status.HTTP_201_CREATED)


class IncidentDetail(generics.RetrieveAPIView):
    permission_classes = [IsAuthenticated, CanViewIncidents]
    serializer_class = IncidentSerializer

    def get_queryset(self):
        return services.incidents_visible_to(self.request.user)
