"""Grant the DICOM listener status page and the allowlist to the administrator and physicist roles."""

from django.db import migrations

from dosereg.registry.roles import grant

DICOMRX_PERMISSIONS = {
    "admin": ["view_listener_status", "view_allowedcallingae", "add_allowedcallingae", "change_allowedcallingae",
              "delete_allowedcallingae", "view_refusedobject"],
    "physicist": ["view_listener_status", "view_allowedcallingae", "view_refusedobject"],
}


def forwards(apps, schema_editor):
    grant(apps, "dicomrx", DICOMRX_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("dicomrx", "0001_initial"),
        ("registry", "0002_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
