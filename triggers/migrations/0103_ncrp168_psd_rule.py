"""NCRP 168's substantial radiation dose level for peak skin dose (3 Gy) beside the Ka,r rules, now that DoseReg
estimates peak skin dose from the event geometry (dosereg.core.skin_dose).  Source: reference-data.md §1.1."""

from django.db import migrations

from triggers.packs import pack_rule_install, pack_rule_uninstall

NCRP168_PSD = ("NCRP Report 168 (2010), substantial radiation dose level (SRDL) for peak skin dose, 3 000 mGy; "
               "secondary: AAPM MPPG 12.a (2022) §5.4 as quoted in a public repository gives the same pair "
               "'5 Gy Ka,r or 3 Gy PSD' (reference-data.md §1.1). Primary table text not accessed.")
RULE = dict(key="ncrp168-psd", name="NCRP 168 SRDL: peak skin dose 3 Gy", pack="ncrp168",
            modality_type="fluoroscopy", quantity="psd_mgy", plane_mode="each", threshold=3, unit="Gy",
            scope="study", severity="alert", source=NCRP168_PSD, verify=True,
            note="Peak skin dose is an estimate (about ±50 %) from the event geometry; where the geometry is "
                 "incomplete no PSD is computed and the Ka,r rules stand in for it.")


def load(apps, schema_editor):
    pack_rule_install(apps, RULE)


def unload(apps, schema_editor):
    pack_rule_uninstall(apps, RULE["key"])


class Migration(migrations.Migration):
    dependencies = [("triggers", "0102_rule_choices_from_catalogue")]

    operations = [migrations.RunPython(load, unload, elidable=False)]
