"""The registry in Django's admin: units and rooms (map new units to rooms), site settings, standard examinations,
received objects, and a read-only audit trail for users with ``registry.view_audit_trail``."""

from __future__ import annotations

from django.contrib import admin

from dosereg.registry.models import (
    AuditLog,
    Dosimeter,
    Equipment,
    EquipmentChange,
    Patient,
    ReceivedObject,
    Room,
    SiteSettings,
    StaffMember,
    StandardExam,
    Study,
)
from dosereg.registry.services.audit import audit_record


class AuditedAdmin(admin.ModelAdmin):
    """Every change made through the admin also goes to the audit trail."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit_record(action="admin_change" if change else "admin_add", object_type=obj._meta.model_name,
                     object_id=obj.pk, detail={"fields": sorted(form.changed_data)}, request=request)

    def delete_model(self, request, obj):
        audit_record(action="admin_delete", object_type=obj._meta.model_name, object_id=obj.pk, request=request)
        super().delete_model(request, obj)


@admin.register(Room)
class RoomAdmin(AuditedAdmin):
    list_display = ["name", "description", "created_at"]
    search_fields = ["name"]


class EquipmentChangeInline(admin.TabularInline):
    model = EquipmentChange
    extra = 0
    can_delete = False
    readonly_fields = ["kind", "old_value", "new_value", "detected_at", "effective_date", "source_sop_instance_uid"]
    fields = readonly_fields + ["handled"]


@admin.register(Equipment)
class EquipmentAdmin(AuditedAdmin):
    list_display = ["display_name", "room", "institution", "software_versions", "sends_dose_reports",
                    "last_object_at", "demo"]
    list_editable = ["room"]  # map units to rooms straight from the list
    list_filter = ["room", "sends_dose_reports", "demo", "manufacturer"]
    search_fields = ["manufacturer", "model", "station_name", "serial_number", "device_observer_uid"]
    readonly_fields = ["identity_key", "device_observer_uid", "first_seen", "last_object_at", "last_report_at",
                       "sends_dose_reports"]
    inlines = [EquipmentChangeInline]


@admin.register(SiteSettings)
class SiteSettingsAdmin(AuditedAdmin):
    list_display = ["__str__", "referrer_summary", "drl_standard_size", "drl_min_patients"]

    def has_add_permission(self, request):
        return not SiteSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(StandardExam)
class StandardExamAdmin(AuditedAdmin):
    list_display = ["code", "name", "modality_type", "body_region"]
    list_filter = ["modality_type"]
    search_fields = ["code", "name"]


@admin.register(ReceivedObject)
class ReceivedObjectAdmin(admin.ModelAdmin):
    list_display = ["sop_instance_uid", "state", "source", "calling_ae", "received_at", "reason"]
    list_filter = ["state", "source"]
    search_fields = ["sop_instance_uid", "study_instance_uid", "calling_ae"]
    readonly_fields = [f.name for f in ReceivedObject._meta.fields]
    date_hierarchy = "received_at"

    def has_add_permission(self, request):
        return False


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    """Read-only: studies change only through the recording service."""

    list_display = ["study_instance_uid", "study_date", "modality_type", "equipment", "standard_exam", "demo"]
    list_filter = ["modality_type", "demo"]
    search_fields = ["study_instance_uid", "accession_number"]
    show_full_result_count = False
    raw_id_fields = ["patient", "equipment", "standard_exam"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    """Identity only through the pages (audited); the admin shows no names or IDs in lists."""

    list_display = ["pk", "sex", "pseudonymised"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("registry.view_audit_trail")


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """The audit trail, read-only, for users who may view it."""

    list_display = ["at", "username", "action", "object_type", "object_id", "ip_address"]
    list_filter = ["action", "object_type"]
    search_fields = ["username", "object_id", "action"]
    date_hierarchy = "at"
    readonly_fields = ["at", "user", "username", "action", "object_type", "object_id", "detail", "ip_address"]
    show_full_result_count = False

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("registry.view_audit_trail")

    def has_module_permission(self, request):
        return request.user.has_perm("registry.view_audit_trail")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DosimeterInline(admin.TabularInline):
    model = Dosimeter
    extra = 1
    fields = ["dosimeter_id", "position", "source", "room"]


@admin.register(StaffMember)
class StaffMemberAdmin(AuditedAdmin):
    """Staff members, their dosimeters and their user accounts (the roster import, /staff/roster/, does many)."""

    list_display = ["name", "role", "user", "pregnancy_declared"]
    search_fields = ["name", "role", "user__username", "dosimeters__dosimeter_id"]
    autocomplete_fields = ["user"]
    inlines = [DosimeterInline]


@admin.register(Dosimeter)
class DosimeterAdmin(AuditedAdmin):
    list_display = ["dosimeter_id", "staff_member", "position", "source", "room"]
    list_filter = ["source", "position", "room"]
    search_fields = ["dosimeter_id", "staff_member__name"]
    autocomplete_fields = ["staff_member"]
