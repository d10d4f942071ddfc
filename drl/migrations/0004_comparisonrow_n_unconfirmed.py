from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("drl", "0003_quantity_catalogue_keys"),
    ]

    operations = [
        migrations.AddField(
            model_name="drlcomparisonrow",
            name="n_unconfirmed",
            field=models.PositiveIntegerField(
                default=0,
                help_text="studies left out: a value awaits a physicist's confirmation (Study.values_unconfirmed)"),
        ),
    ]
