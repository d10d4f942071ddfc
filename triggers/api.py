"""REST API of the triggers app: alerts (read; lifecycle steps) and trigger rules (CRUD, validated, versioned)."""

from __future__ import annotations

import datetime as dt

from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from triggers import services
from triggers.models import SEVERITY_CHOICES, Alert, TriggerRule
from triggers.selectors import alert_export_dict, alert_list
from triggers.services import RULE_FIELDS


class ModelPerms(permissions.DjangoModelPermissions):
    """view_* for reads too (DRF's default lets any authenticated user read)."""

    perms_map = {**permissions.DjangoModelPermissions.perms_map,
                 "GET": ["%(app_label)s.view_%(model_name)s"], "HEAD": ["%(app_label)s.view_%(model_name)s"]}


class AlertPerms(ModelPerms):
    """Lifecycle steps are POSTs checked against their own permission (acknowledge_alert, follow_up_alert)."""

    perms_map = {**ModelPerms.perms_map, "POST": ["%(app_label)s.view_%(model_name)s"]}


class RulePerms(ModelPerms):
    perms_map = {**ModelPerms.perms_map, "POST": ["triggers.manage_rules"], "PUT": ["triggers.manage_rules"],
                 "PATCH": ["triggers.manage_rules"], "DELETE": ["triggers.manage_rules"]}


class AlertSerializer(serializers.ModelSerializer):
    class Meta:
        model = Alert
        fields = ["id"]

    def to_representation(self, instance):
        data = {"id": instance.pk, **alert_export_dict(instance)}
        data.update({"rule_id": instance.rule_id, "rule_version": instance.rule_version,
                     "rule_verify": instance.rule.verify, "summary": instance.summary, "details": instance.details,
                     "demo": instance.demo, "still_exceeds": instance.still_exceeds, "reason": instance.reason or None,
                     "comment": instance.comment, "follow_up_date": instance.follow_up_date.isoformat()
                     if instance.follow_up_date else None, "follow_up_check": instance.follow_up_check,
                     "close_reason": instance.close_reason or None})
        return data


class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AlertSerializer
    permission_classes = [permissions.IsAuthenticated, AlertPerms]
    queryset = Alert.objects.none()

    def get_queryset(self):
        p = self.request.query_params
        state = p.get("state") or None
        if state and state not in dict(Alert.STATES):
            raise ValidationError({"state": f"unknown state {state!r}; use one of {', '.join(dict(Alert.STATES))}"})
        severity = p.get("severity") or None
        if severity and severity not in dict(SEVERITY_CHOICES):
            raise ValidationError({"severity": f"unknown severity {severity!r}"})
        rule = p.get("rule")
        if rule and (not rule.isdigit() or int(rule) > 2**63 - 1):  # past BIGINT: no rule has it (SQLite overflows)
            raise ValidationError({"rule": "rule is a rule id (integer)"})
        demo = p.get("include_demo", "true").lower()
        if demo not in ("true", "false", "1", "0"):
            raise ValidationError({"include_demo": "use true or false"})
        return alert_list(state=state, severity=severity, rule_id=int(rule) if rule else None,
                          include_demo=demo in ("true", "1"))

    def _step(self, request, pk, perm, call):
        if not request.user.has_perm(perm):
            return Response({"detail": "You do not have permission to perform this action."},
                            status=status.HTTP_403_FORBIDDEN)
        alert = self.get_object()
        try:
            call(alert, request.data)
        except services.AlertStateError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        except (TypeError, ValueError) as exc:
            return Response({"detail": f"bad input: {exc}"}, status=status.HTTP_400_BAD_REQUEST)
        alert.refresh_from_db()
        return Response(self.get_serializer(alert).data)

    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        return self._step(request, pk, "triggers.acknowledge_alert", lambda a, d: services.alert_acknowledge(
            alert=a, user=request.user, reason=str(d.get("reason", "")), comment=str(d.get("comment", "")),
            request=request))

    @action(detail=True, methods=["post"], url_path="follow-up")
    def follow_up(self, request, pk=None):
        def call(a, d):
            raw = d.get("follow_up_date")
            if not raw:
                raise services.AlertStateError("follow_up_date is required (YYYY-MM-DD)")
            try:
                when = dt.date.fromisoformat(str(raw))
            except ValueError:
                raise services.AlertStateError(f"follow_up_date {raw!r} is not a date (use YYYY-MM-DD)") from None
            services.alert_schedule_follow_up(alert=a, user=request.user, follow_up_date=when,
                                              check=str(d.get("check", "")), request=request)
        return self._step(request, pk, "triggers.follow_up_alert", call)

    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        return self._step(request, pk, "triggers.follow_up_alert", lambda a, d: services.alert_close(
            alert=a, user=request.user, reason=str(d.get("reason", "")), comment=str(d.get("comment", "")),
            request=request))


class TriggerRuleSerializer(serializers.ModelSerializer):
    quantity = serializers.CharField()
    unit = serializers.CharField()
    scope = serializers.CharField(allow_blank=True)
    severity = serializers.CharField()
    comment = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=255)
    verify_flag = serializers.SerializerMethodField()

    class Meta:
        model = TriggerRule
        fields = ["id", "key", "name", "pack", "kind", "modality_type", "room", "equipment", "standard_exam",
                  "protocol_pattern", "protocol_exclude_pattern", "body_region", "ctdi_phantom", "procedure_kind",
                  "age_min_years", "age_max_years", "quantity", "plane_mode", "threshold", "unit", "step", "scope",
                  "window_days", "window_basis", "min_procedures", "severity", "source", "verify", "verify_flag",
                  "note", "active", "version", "updated_at", "comment"]
        read_only_fields = ["id", "version", "updated_at", "kind"]
        extra_kwargs = {"key": {"required": False}}

    def get_verify_flag(self, obj) -> str | None:
        return "verify against the primary publication" if obj.verify else None

    def validate(self, attrs):
        merged = {}
        if self.instance is not None:
            merged = {f: getattr(self.instance, f) for f in RULE_FIELDS}
        for k, v in attrs.items():
            if k in ("room", "equipment", "standard_exam"):
                merged[f"{k}_id"] = v.pk if v else None
            elif k != "comment":
                merged[k] = v
        errors = services.rule_validate(merged)
        if errors:
            raise ValidationError(errors)
        return attrs

    def _service_data(self, validated):
        data = {}
        for k, v in validated.items():
            if k in ("room", "equipment", "standard_exam"):
                data[f"{k}_id"] = v.pk if v else None
            elif k != "comment":
                data[k] = v
        return data

    def create(self, validated):
        req = self.context["request"]
        return services.rule_save(rule=None, data=self._service_data(validated), user=req.user,
                                  comment=validated.get("comment", ""), request=req)

    def update(self, instance, validated):
        req = self.context["request"]
        return services.rule_save(rule=instance, data=self._service_data(validated), user=req.user,
                                  comment=validated.get("comment", ""), request=req)


class TriggerRuleViewSet(viewsets.ModelViewSet):
    serializer_class = TriggerRuleSerializer
    permission_classes = [permissions.IsAuthenticated, RulePerms]
    queryset = TriggerRule.objects.all().order_by("pack", "name")

    def destroy(self, request, *args, **kwargs):
        rule = self.get_object()
        if rule.alerts.exists():
            return Response({"detail": "this rule has raised alerts and cannot be deleted (alerts are never "
                                       "dropped); set active to false instead"}, status=status.HTTP_409_CONFLICT)
        return super().destroy(request, *args, **kwargs)
