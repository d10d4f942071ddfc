"""The DRL comparison now leaves out studies whose implausible values await confirmation (``values_unconfirmed``):
the covering index of 0003 must carry that column too, or PostgreSQL reads the wide study table again."""

from django.db import migrations

STUDY_VALUES = ("equipment_id, standard_exam_id, demo, age_years, weight_kg, dlp_total_mgycm, kap_total_gycm2, "
                "ka_r_total_mgy, activity_mbq")
STUDY_WHERE = "standard_exam_id IS NOT NULL AND equipment_id IS NOT NULL"


def _recreate(schema_editor, include: str) -> None:
    schema_editor.execute("DROP INDEX IF EXISTS study_drl_scope_idx")
    schema_editor.execute(f"CREATE INDEX study_drl_scope_idx ON registry_study (study_date) INCLUDE ({include}) "
                          f"WHERE {STUDY_WHERE}")


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":  # SQLite: no covering indexes (see 0003)
        _recreate(schema_editor, STUDY_VALUES + ", values_unconfirmed")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _recreate(schema_editor, STUDY_VALUES)


class Migration(migrations.Migration):
    dependencies = [("registry", "0006_report_versions_and_findings")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
