from django.contrib import admin

from drl.models import DrlComparison, DrlComparisonRow, DrlEntry, DrlSet, DueComparison, MappingRule


class DrlEntryInline(admin.TabularInline):
    model = DrlEntry
    extra = 0


@admin.register(DrlSet)
class DrlSetAdmin(admin.ModelAdmin):
    list_display = ["name", "issuing_body", "country", "year", "verify", "active", "priority"]
    inlines = [DrlEntryInline]


@admin.register(MappingRule)
class MappingRuleAdmin(admin.ModelAdmin):
    list_display = ["priority", "field", "match", "pattern", "modality_type", "equipment", "standard_exam", "active"]
    list_filter = ["active", "shipped", "modality_type"]


class RowInline(admin.TabularInline):
    model = DrlComparisonRow
    extra = 0
    can_delete = False

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(DrlComparison)
class DrlComparisonAdmin(admin.ModelAdmin):
    """Snapshots are read-only: a re-run is a new snapshot."""

    list_display = ["id", "period_start", "period_end", "trigger", "equipment", "created_at"]
    inlines = [RowInline]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(DueComparison)
class DueComparisonAdmin(admin.ModelAdmin):
    list_display = ["equipment", "kind", "reason", "since", "resolved_by"]
