"""DRL quantities are keyed by their catalogue key (``dosereg.core.quantities``: the study-total name where the
quantity has one), as trigger rules key them; ``per`` says which column is compared.  The three quantities drl used
to key by their event column are renamed in the stored DRL entries and comparison snapshots.  Units are unchanged
(``mGy·cm``, ``Gy·cm²``, ``mGy``: the catalogue's symbols)."""

from django.db import migrations, models

import drl.comparison

# the keys as they were before the catalogue -> the catalogue keys (written out: a migration must not follow later
# changes of the catalogue)
RENAMED = {
    "dlp_mgycm": "dlp_total_mgycm",
    "kap_gycm2": "kap_total_gycm2",
    "ka_r_mgy": "ka_r_total_mgy",
}
MODELS = ("DrlEntry", "DrlComparisonRow")


def _rename(apps, mapping: dict[str, str]) -> None:
    for name in MODELS:
        model = apps.get_model("drl", name)
        for old, new in mapping.items():
            model.objects.filter(quantity=old).update(quantity=new)


def forwards(apps, schema_editor):
    _rename(apps, RENAMED)


def backwards(apps, schema_editor):
    _rename(apps, {new: old for old, new in RENAMED.items()})


class Migration(migrations.Migration):
    dependencies = [
        ("drl", "0002_standard_exams_drl_sets_mapping"),
    ]

    operations = [
        migrations.AlterField(
            model_name="drlcomparisonrow",
            name="quantity",
            field=models.CharField(choices=drl.comparison.quantity_choices, help_text="catalogue key", max_length=20),
        ),
        migrations.AlterField(
            model_name="drlentry",
            name="quantity",
            field=models.CharField(choices=drl.comparison.quantity_choices, help_text="catalogue key", max_length=20),
        ),
        migrations.RunPython(forwards, backwards),
    ]
