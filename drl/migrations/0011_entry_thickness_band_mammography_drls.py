"""DRL entries per compressed breast thickness band (``thickness_min_mm`` inclusive, ``thickness_max_mm`` exclusive)
and per mammographic view (CC, MLO), copied onto the comparison rows; and the Uganda national screening-mammography
DRLs (Odongo et al., PLoS One 2024, doi:10.1371/journal.pone.0294541) from drl/data/drl_sets_mammography.json,
loaded INACTIVE: a national DRL of another country is a site's choice, made by activating the set."""

import json
from pathlib import Path

from django.db import migrations, models

SETS_FILE = Path(__file__).resolve().parent.parent / "data" / "drl_sets_mammography.json"


def forwards(apps, schema_editor):
    DrlSet = apps.get_model("drl", "DrlSet")
    DrlEntry = apps.get_model("drl", "DrlEntry")
    StandardExam = apps.get_model("registry", "StandardExam")
    exams = {e.code: e for e in StandardExam.objects.all()}
    for data in json.loads(SETS_FILE.read_text(encoding="utf-8"))["sets"]:
        drl_set, created = DrlSet.objects.get_or_create(name=data["name"], defaults={
            "issuing_body": data["issuing_body"], "country": data["country"], "year": data["year"],
            "source": data["source"], "verify": data["verify"], "notes": data["notes"],
            "priority": data["priority"], "active": data["active"]})
        if not created:  # a site's own set of that name, or a re-run: left as it is
            continue
        DrlEntry.objects.bulk_create([
            DrlEntry(drl_set=drl_set, standard_exam=exams[e["exam"]], indication=e["indication"],
                     patient_group="adult", quantity=e["quantity"], value=e["value"], unit=e["unit"], per=e["per"],
                     view=e["view"], thickness_min_mm=e["thickness_min_mm"], thickness_max_mm=e["thickness_max_mm"],
                     verify=data["verify"], note=e["note"][:255])
            for e in data["entries"]])


def backwards(apps, schema_editor):
    DrlSet = apps.get_model("drl", "DrlSet")
    names = [s["name"] for s in json.loads(SETS_FILE.read_text(encoding="utf-8"))["sets"]]
    DrlSet.objects.filter(name__in=names).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('drl', '0010_mammography_exams_mapping'),
        ('registry', '0015_patient_id_prefix_index'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='drlcomparisonrow',
            options={'ordering': ['comparison', 'exam_code', 'equipment_name', 'patient_group', 'quantity', 'view', 'thickness_min_mm']},
        ),
        migrations.AlterModelOptions(
            name='drlentry',
            options={'ordering': ['drl_set', 'standard_exam', 'quantity', 'patient_group', 'view', 'thickness_min_mm'], 'verbose_name': 'DRL entry', 'verbose_name_plural': 'DRL entries'},
        ),
        migrations.RemoveConstraint(
            model_name='drlentry',
            name='drl_entry_identity_view',
        ),
        migrations.AddField(
            model_name='drlcomparisonrow',
            name='thickness_max_mm',
            field=models.FloatField(help_text='upper limit of the band (exclusive)', null=True),
        ),
        migrations.AddField(
            model_name='drlcomparisonrow',
            name='thickness_min_mm',
            field=models.FloatField(help_text='compressed breast thickness band compared (inclusive)', null=True),
        ),
        migrations.AddField(
            model_name='drlentry',
            name='thickness_max_mm',
            field=models.FloatField(blank=True, help_text='upper limit of the compressed breast thickness band (exclusive)', null=True),
        ),
        migrations.AddField(
            model_name='drlentry',
            name='thickness_min_mm',
            field=models.FloatField(blank=True, help_text='mammography, per image: compressed breast thickness band, lower limit (inclusive); only events whose thickness is in the band enter the median', null=True),
        ),
        migrations.AlterField(
            model_name='drlentry',
            name='view',
            field=models.CharField(blank=True, choices=[('PA', 'PA'), ('AP', 'AP'), ('AP/PA', 'AP or PA'), ('LAT', 'lateral'), ('CC', 'cranio-caudal (CC)'), ('MLO', 'medio-lateral oblique (MLO)')], help_text='radiography and mammography, per radiograph (image): the projection the DRL is set for; only current events of that view (IrradiationEvent.view) enter the median (blank: every event)', max_length=8),
        ),
        migrations.AddConstraint(
            model_name='drlentry',
            constraint=models.UniqueConstraint(condition=models.Q(('thickness_max_mm__isnull', True), ('thickness_min_mm__isnull', True)), fields=('drl_set', 'standard_exam', 'patient_group', 'quantity', 'per', 'view'), name='drl_entry_identity_view'),
        ),
        migrations.AddConstraint(
            model_name='drlentry',
            constraint=models.UniqueConstraint(fields=('drl_set', 'standard_exam', 'patient_group', 'quantity', 'per', 'view', 'thickness_min_mm', 'thickness_max_mm'), name='drl_entry_identity_thickness'),
        ),
        migrations.RunPython(forwards, backwards),
    ]
