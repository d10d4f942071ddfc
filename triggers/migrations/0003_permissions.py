"""Grant the triggers permissions to the role groups (dosereg.registry.roles)."""

from django.db import migrations

VIEW = ["view_alert", "view_triggerrule"]
ALL = VIEW + ["acknowledge_alert", "follow_up_alert", "escalate_alert", "export_alerts", "manage_rules",
              "add_triggerrule", "change_triggerrule", "change_alert"]
PERMISSIONS = {
    "radiographer": VIEW + ["acknowledge_alert"],
    "practitioner": VIEW + ["acknowledge_alert"],
    "physicist": ALL,
    "qa_committee": VIEW,
    "admin": ALL + ["delete_triggerrule"],
    "api_client": VIEW,
}


def forwards(apps, schema_editor):
    from dosereg.registry.roles import grant

    grant(apps, "triggers", PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [("triggers", "0002_default_rule_packs"), ("registry", "0002_roles")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
