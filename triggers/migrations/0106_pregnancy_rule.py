"""A default rule for the exposure of a patient the modality recorded as pregnant or possibly pregnant (Pregnancy
Status, 0010,21C0): Directive 2013/59/Euratom Art. 62 asks for special protection and a conceptus dose assessment
where the exposure covered the pelvis.  Effective dose is shown beside it as the study's overall figure (any value
counts: threshold 0)."""

from django.db import migrations

from triggers.packs import pack_rule_install, pack_rule_uninstall

EURATOM_62 = ("Council Directive 2013/59/Euratom, Art. 62 (special protection during pregnancy and breastfeeding): "
              "the practitioner and the referrer inquire whether the patient is pregnant and, where pregnancy cannot "
              "be excluded, give special attention to justification and optimisation. Article text not retrieved here: check against "
              "EUR-Lex (verify)")
RULE = dict(key="pregnancy-exposure", name="Exposure of a patient recorded as (possibly) pregnant", pack="euratom",
            kind="pregnancy", quantity="effective_dose_msv", plane_mode="sum", threshold=0, unit="mSv",
            scope="study", severity="alert", source=EURATOM_62, verify=True,
            note="Fires on the Pregnancy Status the modality recorded (possibly pregnant or pregnant). DoseReg ships "
                 "no conceptus-dose method: a medical physicist estimates it where the beam or scan covered the "
                 "pelvis.")


def load(apps, schema_editor):
    pack_rule_install(apps, RULE)


def unload(apps, schema_editor):
    pack_rule_uninstall(apps, RULE["key"])


class Migration(migrations.Migration):
    dependencies = [("triggers", "0105_rule_kind_pregnancy")]

    operations = [migrations.RunPython(load, unload, elidable=False)]
