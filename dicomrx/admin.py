from django.contrib import admin

from dicomrx.models import AllowedCallingAE, ListenerStatus, RefusedObject


@admin.register(AllowedCallingAE)
class AllowedCallingAEAdmin(admin.ModelAdmin):
    list_display = ("ae_title", "host", "active", "note", "created_at")
    list_filter = ("active",)
    search_fields = ("ae_title", "host", "note")


@admin.register(RefusedObject)
class RefusedObjectAdmin(admin.ModelAdmin):
    list_display = ("at", "kind", "calling_ae", "peer_address", "sop_instance_uid", "status_hex", "reason")
    list_filter = ("kind",)
    search_fields = ("calling_ae", "sop_instance_uid")
    readonly_fields = [f.name for f in RefusedObject._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(ListenerStatus)
class ListenerStatusAdmin(admin.ModelAdmin):
    list_display = ("name", "heartbeat_at", "stopped_at", "stored_count", "refused_count")
    readonly_fields = [f.name for f in ListenerStatus._meta.fields]

    def has_add_permission(self, request):
        return False
