"""The content trees of reports and irradiation events as PostgreSQL ``json``, compressed with lz4 where the server
has it (``DocumentJSONField``, issue #14).  Changing the type rewrites ``registry_irradiationevent``: on a registry of
ten million events expect minutes with the table locked, as for any column type change; rows written before keep
their pglz compression, new rows take lz4."""

from django.db import migrations

import dosereg.registry.models

DOCUMENT_COLUMNS = [("registry_dosereport", "content"), ("registry_irradiationevent", "raw"),
                    ("registry_irradiationevent", "attributes"), ("registry_irradiationevent", "content")]


def _compression(method: str):
    def run(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != "postgresql" or connection.pg_version < 140000:
            return  # SQLite; PostgreSQL before 14 compresses with pglz only
        with connection.cursor() as cursor:
            # a server built without lz4 does not list it among the methods it takes
            cursor.execute("SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
                           "AND %s = ANY(enumvals)", [method])
            if method != "default" and cursor.fetchone() is None:
                return
            for table, column in DOCUMENT_COLUMNS:
                cursor.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET COMPRESSION {method}')
    return run


class Migration(migrations.Migration):

    dependencies = [
        ('registry', '0015_patient_id_prefix_index'),
    ]

    operations = [
        migrations.AlterField(
            model_name='dosereport',
            name='content',
            field=dosereg.registry.models.DocumentJSONField(blank=True, default=list),
        ),
        migrations.AlterField(
            model_name='irradiationevent',
            name='attributes',
            field=dosereg.registry.models.DocumentJSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name='irradiationevent',
            name='content',
            field=dosereg.registry.models.DocumentJSONField(blank=True, default=list),
        ),
        migrations.AlterField(
            model_name='irradiationevent',
            name='raw',
            field=dosereg.registry.models.DocumentJSONField(blank=True, default=dict),
        ),
        migrations.RunPython(_compression("lz4"), _compression("default"), elidable=True),
    ]
