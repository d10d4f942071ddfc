from django.contrib import admin

from dosereg.interop.models import Delivery


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["pk", "kind", "key", "state", "attempts", "destination", "created_at", "sent_at"]
    list_filter = ["kind", "state"]
    search_fields = ["key", "study__study_instance_uid", "study__accession_number"]
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
