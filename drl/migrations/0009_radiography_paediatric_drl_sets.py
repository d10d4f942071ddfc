"""Ship national DRLs for adult projection radiography (BfS 2022, Table 1: KAP per radiograph of a projection) and
the European paediatric CT DRLs (RP 185, by age or weight band), from drl/data/drl_sets_radiography_paediatric.json,
with the radiography standard examinations and their mapping rules (drl/data/standard_exams.json,
default_mapping.json).  Every value keeps its source and verify flag; what could not be read is listed in the data
file's ``not_for_shipping`` notes, not guessed.  Studies already stored keep their examination until the rules are
re-applied (/mapping/, "Re-apply all rules")."""

import json
from pathlib import Path

from django.db import migrations

DATA = Path(__file__).resolve().parent.parent / "data"
SETS_FILE = DATA / "drl_sets_radiography_paediatric.json"
NEW_EXAMS = ("dx-shoulder", "dx-thoracic-spine", "dx-lumbar-spine", "dx-abdomen", "dx-pelvis")
# the units the data file states values in, converted to the catalogue's canonical unit (quantities.py KAP_UNITS)
TO_CANONICAL = {("kap_total_gycm2", "cGy.cm2"): (1e-2, "Gy·cm²")}


def _exams(apps) -> dict:
    StandardExam = apps.get_model("registry", "StandardExam")
    for e in json.loads((DATA / "standard_exams.json").read_text(encoding="utf-8")):
        if e["code"] in NEW_EXAMS:
            StandardExam.objects.get_or_create(code=e["code"], defaults={
                "name": e["name"], "modality_type": e["modality_type"], "body_region": e.get("body_region", "")})
    return {e.code: e for e in StandardExam.objects.all()}


def _rules(apps, exams: dict) -> None:
    MappingRule = apps.get_model("drl", "MappingRule")
    for r in json.loads((DATA / "default_mapping.json").read_text(encoding="utf-8"))["rules"]:
        if r["exam"] in NEW_EXAMS:
            MappingRule.objects.get_or_create(field=r["field"], match="regex", pattern=r["pattern"],
                                              standard_exam=exams[r["exam"]], shipped=True,
                                              defaults={"priority": r["priority"],
                                                        "modality_type": r.get("modality_type", "")})


def _radiography_entries(data: dict) -> list[dict]:
    out = []
    for e in data["entries"]:
        factor, unit = TO_CANONICAL[(e["quantity"], e["unit"])]
        out.append({"exam": e["exam"], "indication": e["indication"], "patient_group": "adult",
                    "quantity": e["quantity"], "value": round(e["value"] * factor, 6), "unit": unit,
                    "per": e["per"], "view": e["view"],
                    "note": f"{e['note']}; published {e['value']} cGy·cm²"})
    return out


def _band_entries(data: dict) -> list[dict]:
    out = []
    for e in data["entries"]:
        band = {"patient_group": e["band"], "age_min_years": e.get("age_min_years"),
                "age_max_years": e.get("age_max_years"), "weight_min_kg": e.get("weight_min_kg"),
                "weight_max_kg": e.get("weight_max_kg")}
        if e["ctdivol_mgy"] is not None:
            out.append({"exam": e["exam"], "indication": e["indication"], **band, "quantity": "ctdivol_mgy",
                        "value": e["ctdivol_mgy"], "unit": "mGy", "per": "acquisition", "view": "",
                        "note": "per-acquisition basis assumed (verify)"})
        out.append({"exam": e["exam"], "indication": e["indication"], **band, "quantity": "dlp_total_mgycm",
                    "value": e["dlp_mgycm"], "unit": "mGy·cm", "per": "examination", "view": "",
                    "note": "per-examination basis assumed (verify)"})
    return out


def forwards(apps, schema_editor):
    DrlSet = apps.get_model("drl", "DrlSet")
    DrlEntry = apps.get_model("drl", "DrlEntry")
    exams = _exams(apps)
    _rules(apps, exams)
    radiography, paediatric = json.loads(SETS_FILE.read_text(encoding="utf-8"))["sets"]
    for data, entries in ((radiography, _radiography_entries(radiography)),
                          (paediatric, _band_entries(paediatric))):
        drl_set, created = DrlSet.objects.get_or_create(name=data["name"], defaults={
            "issuing_body": data["issuing_body"], "country": data["country"], "year": data["year"],
            "source": data["source"], "verify": data["verify"], "notes": data["notes"],
            "priority": data["priority"]})
        if not created:  # a site's own set of that name, or a re-run: left as it is
            continue
        DrlEntry.objects.bulk_create([
            DrlEntry(drl_set=drl_set, standard_exam=exams[e.pop("exam")], verify=data["verify"], **e)
            for e in entries])


def backwards(apps, schema_editor):
    DrlSet = apps.get_model("drl", "DrlSet")
    names = [s["name"] for s in json.loads(SETS_FILE.read_text(encoding="utf-8"))["sets"]]
    DrlSet.objects.filter(name__in=names).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("drl", "0008_entry_view"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
