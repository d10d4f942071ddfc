"""The admin site, open to DoseReg administrators as well as staff users.

Members of the admin role hold ``registry.manage_site_settings`` but are not Django "staff"; they manage the
calling-AE allowlist, site settings and sign-in locks here.  What each may see and change is still decided by model
permissions, as for staff users.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


class DoseRegAdminSite(admin.AdminSite):
    site_header = "DoseReg administration"

    def has_permission(self, request):
        user = request.user
        return user.is_active and (user.is_staff or user.has_perm("registry.manage_site_settings"))


class DoseRegAdminConfig(AdminConfig):
    """Installed in place of django.contrib.admin (settings, "security")."""

    default_site = "dosereg.web.admin_site.DoseRegAdminSite"
