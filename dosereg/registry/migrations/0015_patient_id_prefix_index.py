"""The patient search by the beginning of an ID (``patient_id LIKE 'B1798%'``) from an index: under the database's
non-C collation (C.UTF-8, en_US.UTF-8) a plain btree orders by the collation and cannot serve a prefix, so the search
read every patient.  ``varchar_pattern_ops`` orders by bytes, which LIKE with a fixed prefix can use.  PostgreSQL
only (SQLite ignores the operator class and builds a plain index)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("registry", "0014_event_view_positions"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="patient",
            index=models.Index(fields=["patient_id"], name="patient_id_prefix_idx",
                               opclasses=["varchar_pattern_ops"]),
        ),
    ]
