"""Grant the incident-report permissions to the role groups (dosereg.registry.roles).

QA committee: read all, review and close (and reopen with a reason); reporters see what they reported; physicists
edit the analysis (and read all); administrators read all and see the audit trail (registry.view_audit_trail);
radiographers and practitioners may report an exposure.
"""

from django.db import migrations

PERMISSIONS = {
    "radiographer": ["view_incidentreport", "add_incidentreport", "change_incidentreport", "report_exposure"],
    "practitioner": ["view_incidentreport", "add_incidentreport", "change_incidentreport", "report_exposure"],
    "physicist": ["view_incidentreport", "add_incidentreport", "change_incidentreport", "report_exposure",
                  "view_all_incidents", "edit_incident_analysis"],
    "qa_committee": ["view_incidentreport", "add_incidentreport", "change_incidentreport", "view_all_incidents",
                     "review_incident"],
    "admin": ["view_incidentreport", "view_all_incidents"],
}


def forwards(apps, schema_editor):
    from dosereg.registry.roles import grant

    grant(apps, "triggers", PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [("triggers", "0100_incidents"), ("registry", "0002_roles")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
