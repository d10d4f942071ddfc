from django.contrib import admin, messages

from dosereg.web import signin
from dosereg.web.models import LoginFailure


@admin.register(LoginFailure)
class LoginFailureAdmin(admin.ModelAdmin):
    """Failed sign-ins; "Unlock" removes all failures of the selected user names (they may sign in again)."""

    list_display = ("username", "address", "at")
    list_filter = ("address",)
    search_fields = ("username",)
    readonly_fields = ("username", "address", "at")
    actions = ["unlock_user_names"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Unlock the selected user names", permissions=["delete"])
    def unlock_user_names(self, request, queryset):
        names = set(queryset.values_list("username", flat=True))
        removed = sum(signin.unlock(name) for name in names)
        messages.success(request, f"Unlocked {', '.join(sorted(names))} ({removed} failures removed).")
