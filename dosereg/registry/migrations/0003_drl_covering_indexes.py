"""Indexes for the DRL comparison (drl.selectors): it reads, for a period, the studies with a unit and a mapped
examination, and per acquisition the current non-localizer events' values.

PostgreSQL: partial covering indexes (``INCLUDE``), so both reads are index-only scans of narrow indexes instead of
scans of the wide study and event tables (events carry their content as JSON).  SQLite: nothing (its planner uses a
partial index only when the query's conditions are literals; the embedded mode's registries are small).  Raw SQL, so
the model state is unchanged (the indexes serve one query and one database; they are not part of the models).
"""

from django.db import migrations

EVENT_VALUES = "ctdivol_mgy, dlp_mgycm, kap_gycm2, ka_r_mgy, agd_mgy, activity_mbq"
STUDY_VALUES = ("equipment_id, standard_exam_id, demo, age_years, weight_kg, dlp_total_mgycm, kap_total_gycm2, "
                "ka_r_total_mgy, activity_mbq")
EVENT_WHERE = "is_current AND NOT is_localizer"
STUDY_WHERE = "standard_exam_id IS NOT NULL AND equipment_id IS NOT NULL"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":  # see the module docstring for SQLite
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS event_drl_value_idx ON registry_irradiationevent "
                              f"(study_id) INCLUDE ({EVENT_VALUES}) WHERE {EVENT_WHERE}")
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS study_drl_scope_idx ON registry_study (study_date) "
                              f"INCLUDE ({STUDY_VALUES}) WHERE {STUDY_WHERE}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS event_drl_value_idx")
    schema_editor.execute("DROP INDEX IF EXISTS study_drl_scope_idx")


class Migration(migrations.Migration):
    dependencies = [("registry", "0002_roles")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
