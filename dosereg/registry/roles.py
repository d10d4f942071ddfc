"""The six roles and what they may do, as Django groups carrying permissions.

Access checks everywhere test permissions (``user.has_perm``), never group names, so a superuser passes and a site
can re-shape roles in the admin.  Each app's data migration calls :func:`grant` for its own permissions.
"""

from __future__ import annotations

from django.contrib.auth.management import create_permissions

ROLES = ("radiographer", "practitioner", "physicist", "qa_committee", "admin", "api_client")

# registry permissions per role (app label "registry"); triggers and drl grant theirs in their own migrations.
REGISTRY_PERMISSIONS = {
    "radiographer": ["view_patient", "view_study", "view_patient_history", "view_study_detail", "view_patient_sheet",
                     "view_equipment", "view_room"],
    "practitioner": ["view_patient", "view_study", "view_patient_history", "view_study_detail", "view_patient_sheet",
                     "download_dicom", "view_equipment", "view_room"],
    "physicist": ["view_patient", "view_study", "view_patient_history", "view_study_detail", "view_patient_sheet",
                  "download_dicom", "export_studies", "import_dose", "view_equipment", "change_equipment",
                  "manage_equipment", "view_room", "add_room", "change_room", "view_all_staff_doses",
                  "view_standardexam", "add_standardexam", "change_standardexam", "view_receivedobject"],
    "qa_committee": ["view_patient", "view_study", "view_study_detail", "view_equipment", "view_room"],
    "admin": ["view_patient", "view_study", "view_patient_history", "view_study_detail", "view_patient_sheet",
              "download_dicom", "export_studies", "import_dose", "view_equipment", "change_equipment",
              "manage_equipment", "view_room", "add_room", "change_room", "delete_room", "view_audit_trail",
              "view_auditlog", "manage_site_settings", "change_sitesettings", "view_sitesettings",
              "view_all_staff_doses", "view_receivedobject", "change_receivedobject",
              "view_staffmember", "add_staffmember", "change_staffmember", "view_dosimeter", "add_dosimeter",
              "change_dosimeter", "view_standardexam", "add_standardexam", "change_standardexam"],
    "api_client": ["view_patient", "view_study", "view_patient_history", "view_study_detail", "export_studies"],
}

# Granted by later migrations (a permission must exist in the historical models when its migration grants it).
LATER_REGISTRY_PERMISSIONS = {
    "0008_view_metrics_permission": {"admin": ["view_metrics"], "physicist": ["view_metrics"]},  # /metrics token
}


def create_all_permissions(apps) -> None:
    """Create the permission rows now (Django normally does it after all migrations, too late for a grant)."""
    for app_config in apps.get_app_configs():
        original = getattr(app_config, "models_module", None)
        app_config.models_module = original or True  # historical app configs have none; create_permissions wants one
        try:
            create_permissions(app_config, apps=apps, verbosity=0)
        finally:
            app_config.models_module = original


def grant(apps, app_label: str, mapping: dict[str, list[str]]) -> None:
    """Give each role group the named permissions of ``app_label`` (creating groups and permissions as needed)."""
    create_all_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in mapping.items():
        group, _ = Group.objects.get_or_create(name=role)
        perms = list(Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames))
        missing = set(codenames) - {p.codename for p in perms}
        if missing:
            raise RuntimeError(f"unknown permissions for {role}: {sorted(missing)}")
        group.permissions.add(*perms)
