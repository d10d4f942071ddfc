"""Ship the 'not for DRL' examinations (radiotherapy planning; QA, phantom, research) and their mapping rules
(drl/data/not_for_drl.json): such studies are mapped but stay out of DRL medians."""

import json
from pathlib import Path

from django.db import migrations

DATA = Path(__file__).resolve().parent.parent / "data" / "not_for_drl.json"


def forwards(apps, schema_editor):
    StandardExam = apps.get_model("registry", "StandardExam")
    MappingRule = apps.get_model("drl", "MappingRule")
    data = json.loads(DATA.read_text(encoding="utf-8"))
    exams = {}
    for e in data["exams"]:
        exams[e["code"]], _ = StandardExam.objects.update_or_create(
            code=e["code"], defaults={"name": e["name"], "modality_type": e["modality_type"],
                                      "body_region": e.get("body_region", ""), "not_for_drl": True})
    for rule in data["rules"]:
        MappingRule.objects.get_or_create(field=rule["field"], match="regex", pattern=rule["pattern"],
                                          standard_exam=exams[rule["exam"]],
                                          defaults={"priority": rule["priority"], "shipped": True,
                                                    "modality_type": rule.get("modality_type", "")})


def backwards(apps, schema_editor):
    StandardExam = apps.get_model("registry", "StandardExam")
    MappingRule = apps.get_model("drl", "MappingRule")
    codes = [e["code"] for e in json.loads(DATA.read_text(encoding="utf-8"))["exams"]]
    MappingRule.objects.filter(standard_exam__code__in=codes, shipped=True).delete()
    StandardExam.objects.filter(code__in=codes, studies__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("drl", "0004_comparisonrow_n_unconfirmed"),
        ("registry", "0009_derived_quantities"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
