"""Shipped data: standard examinations (registry table), the default mapping rules, and three DRL sets with their
citations, transcribed from ../shared/reference (reference-data.md section 3, reference-data.json ``drl``):

- UKHSA national DRLs for adult CT (page "NDRLs from 20 November 2024", Table 1; adopted 2022).  CTDIvol is per
  sequence (compared per acquisition), DLP per complete examination.  verify: false (values match an independent copy).
- European clinical DRLs for CT, EUCLID (European Commission Radiation Protection No 195, 2021).  verify: TRUE for
  every value: transcribed from a public repository's copy, RP 195 itself was not read.  CTDIvol taken per
  acquisition (assumed); the HCC DLP's per-phase or per-examination basis is not confirmed.
- European DRLs for interventional cardiology, KAP per procedure (Siiskonen et al., Phys Med 2018;54:42-48).
  verify: false.
"""

import json
from pathlib import Path

from django.db import migrations

from dosereg.registry.roles import grant

DATA = Path(__file__).resolve().parent.parent / "data"

UK_SOURCE = ("UKHSA, 'National Diagnostic Reference Levels (NDRLs) from 20 November 2024', Table 1 Adult CT "
             "examinations (gov.uk publication 'Diagnostic radiology: national diagnostic reference levels (NDRLs)', "
             "https://www.gov.uk/government/publications/diagnostic-radiology-national-diagnostic-reference-levels-ndrls)"
             "; year adopted 2022 for all rows. Cross-checked against GitHub nathanwangai/drl_app "
             "drls/uk_adult_drls.csv. CTDIvol is per sequence; DLP is per complete examination.")
# (exam code, indication as published, CTDIvol mGy per sequence or None, DLP mGy.cm per examination)
UK_CT = [
    ("ct-head-stroke", "Head (acute stroke)", 47, 790),
    ("ct-sinus", "Paranasal sinuses (sinus disease)", 12, 160),
    ("ct-cspine-trauma", "Cervical spine (fracture)", 16, 400),
    ("ct-ncap-cancer", "Neck, chest, abdomen and pelvis (cancer)", None, 850),
    ("ct-chest", "Chest (lung cancer)", 8.5, 290),
    ("ct-chest-abdomen", "Chest and abdomen (lung cancer)", None, 470),
    ("ct-chest-hr", "Chest, high resolution, helical (interstitial lung disease)", 8, 300),
    ("ct-cap-cancer", "Chest, abdomen, pelvis (cancer)", None, 660),
    ("ct-ctpa", "CT pulmonary angiography (pulmonary embolism)", 9.1, 310),
    ("ct-abdomen-pelvis", "Abdomen and pelvis (abscess)", 10, 530),
    ("ct-colonography", "CT colonography (polyps / tumour)", None, 690),
    ("ct-kub", "Kidneys, ureters, bladder (stones / colic)", 6.3, 290),
    ("ct-urogram", "Urogram (tumour / stones / colic)", None, 890),
]

EUCLID_SOURCE = ("European Commission, Radiation Protection No 195 (2021), 'European Study on Clinical Diagnostic "
                 "Reference Levels for X-ray Medical Imaging' (EUCLID); see also Tsapaki et al., Eur Radiol 2021. "
                 "Values NOT read from RP 195 itself: transcribed from GitHub nathanwangai/drl_app, files "
                 "drls/europe_clinical_drls.csv and drl_references/europe/europe_adult_indicators.csv (identical). "
                 "Verify against RP 195 before use.")
EUCLID_CT = [
    ("ct-sinus", "Chronic sinusitis", 11, 188, ""),
    ("ct-head-stroke", "Stroke", 48, 807, ""),
    ("ct-cspine-trauma", "Cervical spine trauma", 17, 455, ""),
    ("ct-calcium-score", "Coronary calcium scoring", 4, 72, ""),
    ("ct-chest", "Lung cancer", 8, 348, ""),
    ("ct-ctpa", "Pulmonary embolism", 9, 307, ""),
    ("ct-coronary-cta", "Coronary CT angiography", 25, 415, ""),
    ("ct-liver-hcc", "Hepatocellular carcinoma", 9, 354, "DLP: per-phase vs whole-examination basis not confirmed"),
    ("ct-abdominal-pain", "Colic / abdominal pain", 8, 436, ""),
    ("ct-appendicitis", "Appendicitis", 9, 498, ""),
]

IC_SOURCE = ("Siiskonen T, et al. 'Establishing the European diagnostic reference levels for interventional "
             "cardiology'. Phys Med 2018;54:42-48, doi:10.1016/j.ejmp.2018.09.012 (13 countries, 14 922 procedures).")
IC_KAP = [
    ("xa-coronary-angiography", "Coronary angiography", 35),
    ("xa-pci", "Percutaneous coronary intervention", 85),
    ("xa-tavi", "Transcatheter aortic valve implantation", 130),
    ("xa-ep", "Electrophysiology procedures", 12),
    ("xa-pacemaker-single", "Pacemaker, single chamber", 2.5),
    ("xa-pacemaker-dual", "Pacemaker, dual chamber", 3.5),
    ("xa-crt", "Cardiac resynchronisation therapy device", 18),
]


def forwards(apps, schema_editor):
    StandardExam = apps.get_model("registry", "StandardExam")
    DrlSet = apps.get_model("drl", "DrlSet")
    DrlEntry = apps.get_model("drl", "DrlEntry")
    MappingRule = apps.get_model("drl", "MappingRule")

    exams = {}
    for e in json.loads((DATA / "standard_exams.json").read_text(encoding="utf-8")):
        exams[e["code"]], _ = StandardExam.objects.get_or_create(
            code=e["code"], defaults={"name": e["name"], "modality_type": e["modality_type"],
                                      "body_region": e.get("body_region", "")})

    for rule in json.loads((DATA / "default_mapping.json").read_text(encoding="utf-8"))["rules"]:
        MappingRule.objects.create(priority=rule["priority"], field=rule["field"], match="regex",
                                   pattern=rule["pattern"], modality_type=rule.get("modality_type", ""),
                                   standard_exam=exams[rule["exam"]], shipped=True)

    uk = DrlSet.objects.create(
        name="UK national DRLs, adult CT (UKHSA 2024)", issuing_body="UK Health Security Agency (NDRL Working Party)",
        country="GB", year=2024, source=UK_SOURCE, verify=False, priority=20,
        notes="All rows adopted 2022. Coronary CTA, paediatric CT, radiography, fluoroscopy/IR and mammography tables "
              "of the same page were not retrieved.")
    for code, indication, ctdivol, dlp in UK_CT:
        if ctdivol is not None:
            DrlEntry.objects.create(drl_set=uk, standard_exam=exams[code], indication=indication,
                                    quantity="ctdivol_mgy", value=ctdivol, unit="mGy", per="acquisition",
                                    note="per sequence")
        DrlEntry.objects.create(drl_set=uk, standard_exam=exams[code], indication=indication, quantity="dlp_mgycm",
                                value=dlp, unit="mGy·cm", per="examination", note="per complete examination")

    eu = DrlSet.objects.create(
        name="European clinical DRLs, CT (EUCLID, RP 195)", issuing_body="European Commission (EUCLID project)",
        country="EU", year=2021, source=EUCLID_SOURCE, verify=True, priority=30,
        notes="Clinical DRLs per indication. CTDIvol compared per acquisition (basis assumed, verify).")
    for code, indication, ctdivol, dlp, note in EUCLID_CT:
        DrlEntry.objects.create(drl_set=eu, standard_exam=exams[code], indication=indication, quantity="ctdivol_mgy",
                                value=ctdivol, unit="mGy", per="acquisition", verify=True,
                                note="per-acquisition basis assumed")
        DrlEntry.objects.create(drl_set=eu, standard_exam=exams[code], indication=indication, quantity="dlp_mgycm",
                                value=dlp, unit="mGy·cm", per="examination", verify=True, note=note)

    ic = DrlSet.objects.create(
        name="European DRLs, interventional cardiology (Siiskonen 2018)", issuing_body="EURADOS / European study",
        country="EU", year=2018, source=IC_SOURCE, verify=False, priority=30)
    for code, procedure, kap in IC_KAP:
        DrlEntry.objects.create(drl_set=ic, standard_exam=exams[code], indication=procedure, quantity="kap_gycm2",
                                value=kap, unit="Gy·cm²", per="examination", note="PKA per procedure")

    view = ["view_drlcomparison", "view_drlcomparisonrow", "view_drlset", "view_drlentry", "view_duecomparison"]
    manage = view + ["run_drl_comparison", "manage_mapping", "manage_drl_sets", "view_mappingrule",
                     "add_mappingrule", "change_mappingrule", "delete_mappingrule", "add_drlset", "change_drlset",
                     "delete_drlset", "add_drlentry", "change_drlentry", "delete_drlentry", "view_unmappedname",
                     "view_protocolseen"]
    grant(apps, "drl", {"physicist": manage, "admin": manage, "practitioner": view, "qa_committee": view,
                        "api_client": view})


def backwards(apps, schema_editor):
    apps.get_model("drl", "DrlSet").objects.all().delete()
    apps.get_model("drl", "MappingRule").objects.filter(shipped=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("drl", "0001_initial"),
        ("registry", "0002_roles"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
