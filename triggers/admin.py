from django.contrib import admin

from triggers.models import Alert, AlertEvent, TriggerRule, TriggerRuleVersion


@admin.register(TriggerRule)
class TriggerRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "pack", "quantity", "threshold", "unit", "scope", "severity", "verify", "active",
                    "version"]
    list_filter = ["pack", "active", "severity", "scope"]
    readonly_fields = ["version"]


@admin.register(TriggerRuleVersion)
class TriggerRuleVersionAdmin(admin.ModelAdmin):
    list_display = ["rule", "version", "changed_at", "changed_by"]
    readonly_fields = ["rule", "version", "data", "changed_at", "changed_by", "comment"]


class AlertEventInline(admin.TabularInline):
    model = AlertEvent
    extra = 0
    readonly_fields = ["at", "user", "action", "from_state", "to_state", "detail"]


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["id", "rule", "severity", "value", "unit", "state", "demo", "created_at"]
    list_filter = ["state", "severity", "demo"]
    raw_id_fields = ["study", "patient"]
    inlines = [AlertEventInline]
