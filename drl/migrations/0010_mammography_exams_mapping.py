"""Mammography examinations and their mapping rules (issue 15).  Digital breast tomosynthesis gets its own
examination (mg-dbt), so its glandular doses, higher than those of 2D views of the same breast, never enter the
median of 2D screening mammograms; flat-field, QA and phantom exposures on a mammography unit are mapped 'not for
DRL' (mg-qa-phantom).  The examinations and rules come from drl/data (standard_exams.json, default_mapping.json,
not_for_drl.json).  No mammography DRL is shipped: no table of national AGD values could be read (see the
``not_shipped`` notes of drl/data/drl_sets_radiography_paediatric.json).  Studies already stored keep their
examination until the rules are re-applied (/mapping/, "Re-apply all rules")."""

import json
from pathlib import Path

from django.db import migrations

DATA = Path(__file__).resolve().parent.parent / "data"
NEW_EXAMS = ("mg-dbt", "mg-qa-phantom")


def _data(name: str):
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def forwards(apps, schema_editor):
    StandardExam = apps.get_model("registry", "StandardExam")
    MappingRule = apps.get_model("drl", "MappingRule")
    not_for_drl = _data("not_for_drl.json")
    listed = [(e, False) for e in _data("standard_exams.json")] + [(e, True) for e in not_for_drl["exams"]]
    exams = {}
    for e, excluded in listed:
        if e["code"] in NEW_EXAMS:
            exams[e["code"]], _ = StandardExam.objects.update_or_create(code=e["code"], defaults={
                "name": e["name"], "modality_type": e["modality_type"], "body_region": e.get("body_region", ""),
                "not_for_drl": excluded})
    for r in _data("default_mapping.json")["rules"] + not_for_drl["rules"]:
        if r["exam"] in NEW_EXAMS:
            MappingRule.objects.get_or_create(field=r["field"], match="regex", pattern=r["pattern"],
                                              standard_exam=exams[r["exam"]], shipped=True,
                                              defaults={"priority": r["priority"],
                                                        "modality_type": r.get("modality_type", "")})


def backwards(apps, schema_editor):
    StandardExam = apps.get_model("registry", "StandardExam")
    MappingRule = apps.get_model("drl", "MappingRule")
    MappingRule.objects.filter(standard_exam__code__in=NEW_EXAMS, shipped=True).delete()
    StandardExam.objects.filter(code__in=NEW_EXAMS, studies__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("drl", "0009_radiography_paediatric_drl_sets"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
