"""registry.view_metrics: reading /metrics with an API token (dosereg.ops); granted to admin and physicist."""

from django.db import migrations

from dosereg.registry.roles import LATER_REGISTRY_PERMISSIONS, grant


def forwards(apps, schema_editor):
    grant(apps, "registry", LATER_REGISTRY_PERMISSIONS["0008_view_metrics_permission"])


class Migration(migrations.Migration):
    dependencies = [("registry", "0007_drl_scope_index_unconfirmed")]

    operations = [
        migrations.AlterModelOptions(
            name="sitesettings",
            options={"permissions": [("manage_site_settings", "Can change site settings"),
                                     ("view_metrics", "Can read the Prometheus metrics (/metrics)")],
                     "verbose_name_plural": "site settings"},
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
