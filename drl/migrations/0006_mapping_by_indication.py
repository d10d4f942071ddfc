"""Mapping by indication: rule fields listed in order of weight (requested procedure code, its description, study
description, protocol); the shipped rules brought in line with drl/data (a body-part name such as 'Upper Abdomen'
maps to the new ct-abdomen, not to the EUCLID 'abdominal pain' indication; 'TAP' is thorax-abdomen-pelvis; a
temporary pacing wire is not a pacemaker implantation; diagnostic mammography is not screening).  Studies already
stored keep their examination until the rules are re-applied (/mapping/, "Re-apply all rules")."""

import json
from pathlib import Path

from django.db import migrations, models

DATA = Path(__file__).resolve().parent.parent / "data"


def _shipped_rules() -> list[dict]:
    rules = []
    for name in ("default_mapping.json", "not_for_drl.json"):
        rules.extend(json.loads((DATA / name).read_text(encoding="utf-8"))["rules"])
    return rules


def forwards(apps, schema_editor):
    StandardExam = apps.get_model("registry", "StandardExam")
    MappingRule = apps.get_model("drl", "MappingRule")
    for e in json.loads((DATA / "standard_exams.json").read_text(encoding="utf-8")):
        StandardExam.objects.get_or_create(code=e["code"], defaults={
            "name": e["name"], "modality_type": e["modality_type"], "body_region": e.get("body_region", "")})
    exams = {e.code: e for e in StandardExam.objects.all()}
    wanted = {(r["field"], r["pattern"], r["exam"]): r for r in _shipped_rules()}
    for rule in MappingRule.objects.filter(shipped=True).select_related("standard_exam"):
        if (rule.field, rule.pattern, rule.standard_exam.code) not in wanted:
            rule.delete()
    for (field, pattern, code), r in wanted.items():
        MappingRule.objects.get_or_create(field=field, match="regex", pattern=pattern, standard_exam=exams[code],
                                          shipped=True, defaults={"priority": r["priority"],
                                                                  "modality_type": r.get("modality_type", "")})


class Migration(migrations.Migration):
    dependencies = [
        ("drl", "0005_not_for_drl_exams"),
    ]

    operations = [
        migrations.AlterField(
            model_name="mappingrule",
            name="field",
            field=models.CharField(choices=[
                ("requested_procedure_code", "Requested procedure code"),
                ("requested_procedure_description", "Requested procedure description"),
                ("study_description", "Study description"),
                ("protocol", "Acquisition protocol (any irradiation event)")],
                default="study_description", max_length=40),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
