"""The six role groups and their registry permissions (see dosereg/registry/roles.py and the README matrix)."""

from django.db import migrations

from dosereg.registry.roles import REGISTRY_PERMISSIONS, ROLES, grant


def forwards(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for role in ROLES:
        Group.objects.get_or_create(name=role)
    grant(apps, "registry", REGISTRY_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
