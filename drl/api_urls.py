"""API endpoints of the drl app (mounted under /api/v1/): comparison snapshots with their rows."""

from django.urls import path
from rest_framework import generics, serializers
from rest_framework.permissions import BasePermission

from drl.models import DrlComparison, DrlComparisonRow


class CanViewDrl(BasePermission):
    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.has_perm("drl.view_drlcomparison"))


class RowSerializer(serializers.ModelSerializer):
    equipment = serializers.CharField(source="equipment_name")
    standard_exam = serializers.CharField(source="exam_code")

    class Meta:
        model = DrlComparisonRow
        fields = ["equipment", "equipment_id", "room_name", "standard_exam", "exam_name", "patient_group", "quantity",
                  "unit", "per", "view", "thickness_min_mm", "thickness_max_mm", "n", "n_studies", "n_unconfirmed",
                  "median", "p25", "p75", "mean", "minimum", "maximum", "drl", "drl_set_name", "drl_source", "ratio",
                  "status", "size_filter", "verify", "previous_median", "trend"]


class ComparisonSerializer(serializers.ModelSerializer):
    class Meta:
        model = DrlComparison
        fields = ["id", "period_start", "period_end", "trigger", "equipment_id", "include_demo", "standard_size",
                  "weight_min_kg", "weight_max_kg", "min_patients", "created_at", "note"]


class ComparisonDetailSerializer(ComparisonSerializer):
    rows = RowSerializer(many=True, read_only=True)

    class Meta(ComparisonSerializer.Meta):
        fields = [*ComparisonSerializer.Meta.fields, "rows"]


class ComparisonList(generics.ListAPIView):
    """DRL comparison snapshots, newest first (paginated envelope: count, next, previous, results)."""

    serializer_class = ComparisonSerializer
    permission_classes = [CanViewDrl]
    queryset = DrlComparison.objects.all()


class ComparisonDetail(generics.RetrieveAPIView):
    """One snapshot with its rows (same row fields as ``drl_report`` JSON, plus quartiles and trend)."""

    serializer_class = ComparisonDetailSerializer
    permission_classes = [CanViewDrl]
    queryset = DrlComparison.objects.prefetch_related("rows")


urlpatterns = [
    path("drl/comparisons/", ComparisonList.as_view(), name="drl-comparisons"),
    path("drl/comparisons/<int:pk>/", ComparisonDetail.as_view(), name="drl-comparison"),
]
