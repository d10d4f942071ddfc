"""Indexes the web pages asked for (bench/web.py RECOMMENDED_INDEXES, issue 5): the study list's modality filter
(``modality_types`` containment, GIN), the patient search by name prefix (case-insensitive), and the study list
sorted by a dose column (largest first, unknown values last).  PostgreSQL only (GIN and operator classes); SQLite's
embedded registries are small.  Raw SQL, so the model state is unchanged.
"""

from django.db import migrations

SORT_COLUMNS = ("dlp_total_mgycm", "max_ctdivol_mgy", "kap_total_gycm2", "ka_r_total_mgy", "activity_mbq")
INDEXES = {
    "study_modality_types_gin": "registry_study USING gin (modality_types)",
    "patient_name_upper_like": "registry_patient (UPPER(name::text) text_pattern_ops)",
    **{f"study_{col}_desc": f"registry_study ({col} DESC NULLS LAST)" for col in SORT_COLUMNS},
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, target in INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {target}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("registry", "0003_drl_covering_indexes")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
