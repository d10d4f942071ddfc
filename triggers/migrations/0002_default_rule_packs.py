"""Default trigger rule packs, each value with its cited source (../shared/reference/reference-data.md §1, §2 and
reference-data.json: trigger_levels, ct_notification_values, significant_event_criteria_DE).  ``verify`` is set
exactly where the reference marks the value "verify against the primary publication".

Packs: ncrp168 (alerts), aapm_mppg12a (Ka,r notification with 1 Gy steps), aapm_ct_dose_check (CTDIvol per
acquisition notifications), cumulative (patient window), dose_check (TID 10015 overrides), de_strlschv_anlage14
(significant events, inactive by default).  Physicists change them through the rules pages (versioned).
"""

from django.db import migrations

NCRP168 = ("NCRP Report 168 (2010), 'Radiation Dose Management for Fluoroscopically-Guided Interventional Medical "
           "Procedures', substantial radiation dose level (SRDL); report page "
           "http://ncrponline.org/publications/reports/ncrp-report-168/. Primary table text not accessed: value from "
           "secondary public material citing NCRP 168 (reference-data.json trigger_levels)")
MPPG12A = ("AAPM Medical Physics Practice Guideline 12.a (2022), sections 5.3/5.4, as cited in a public teaching-content "
           "file; primary text not accessed; the same rule appears in a public Spanish IR protocol template citing "
           "NCRP 168 (reference-data.json trigger_levels: intra_procedure_kar_first, intra_procedure_kar_increment)")
AAPM_CT = ("AAPM (2011) 'Recommendations Regarding Notification and Alert Values for CT Scanners: Guidelines for Use "
           "of the NEMA XR 25 CT Dose-Check Standard', v1.0, April 2011, "
           "http://www.aapm.org/pubs/CTProtocols/documents/NotificationLevelsStatement_2011-04-27.pdf; values "
           "transcribed from a public script quoting the PDF, the PDF itself not accessed "
           "(reference-data.json ct_notification_values)")
STRLSCHV = ("German Strahlenschutzverordnung (StrlSchV 2018) Anlage 14 (zu § 108), 'Kriterien für die Bedeutsamkeit "
            "eines Vorkommnisses', single-patient criterion, "
            "https://www.gesetze-im-internet.de/strlschv_2018/anlage_14.html")
WINDOW_BASIS = ("84 days (12 weeks) is the default accumulation window of OpenREM, an open-source dose-management "
                "tool: a tool default, not a guideline value. The 60-day window often attributed to NCRP 168 could "
                "not be confirmed in any source consulted (reference-data.md §1.4). Set the window your site decides.")

HEAD = r"(head|brain|skull|cran|kopf|sch(ä|ae)del|stroke)"
PERFUSION = r"(perfusion|perf\b|\bcbp\b|\bvpct\b)"
CARDIAC = r"(cardi|coronar|heart|\bccta\b|calcium|herz)"
RETRO = r"(retro|spiral|helical|\bfull\b)"
PROSP = r"(prosp|sequen|step.?and.?shoot|flash|\bseq\b)"

RULES = [
    # --- NCRP 168 substantial radiation dose levels: alerts ---------------------------------------------------------
    dict(key="ncrp168-kar", name="NCRP 168 SRDL: Ka,r 5 Gy", pack="ncrp168", modality_type="fluoroscopy",
         quantity="ka_r_total_mgy", plane_mode="each", threshold=5000, unit="mGy", scope="study", severity="alert",
         source=NCRP168 + "; consistent with CVIR Endovascular 2020 (doi 10.1186/s42155-020-00159-6): SIR treats "
         "Ka,r > 5000 mGy as a significant radiation dose", verify=True,
         note="Ka,r is a surrogate for skin dose, not a skin-dose estimate: it can under- or overestimate peak skin "
              "dose. Each plane is checked on its own (biplane beams enter at different skin sites). Follow-up: "
              "patients with a large dose at 10-14 days and about 1 month (Tech Vasc Interv Radiol 2010)."),
    dict(key="ncrp168-kap", name="NCRP 168 SRDL: KAP 500 Gy·cm²", pack="ncrp168", modality_type="fluoroscopy",
         quantity="kap_total_gycm2", plane_mode="each", threshold=500, unit="Gy·cm²", scope="study",
         severity="alert", source=NCRP168, verify=True,
         note="NCRP assumes a field size when deriving this value; that assumption was not confirmed. AAPM MPPG 12.a "
              "reportedly gives no KAP level."),
    dict(key="ncrp168-fluoro-time", name="NCRP 168 SRDL: fluoroscopy time 60 min", pack="ncrp168",
         modality_type="fluoroscopy", quantity="fluoro_time_total_s", plane_mode="each", threshold=60, unit="min",
         scope="study", severity="alert", source=NCRP168, verify=True,
         note="Fluoroscopy time tracks skin dose poorly; a last resort where Ka,r and KAP are missing."),
    # --- in-procedure-style notification: Ka,r 3 Gy, then every further 1 Gy, listed inside the one notification ----
    dict(key="mppg12a-kar-notification", name="Ka,r notification 3 Gy (+ every further 1 Gy)", pack="aapm_mppg12a",
         modality_type="fluoroscopy", quantity="ka_r_total_mgy", plane_mode="each", threshold=3, step=1, unit="Gy",
         scope="study", severity="notification", source=MPPG12A, verify=True,
         note="A notification is a prompt to decide how to continue, not a limit. Ka,r is a surrogate for skin "
              "dose, not a skin-dose estimate. Notification values for PSD, KAP and fluoroscopy time were not "
              "confirmed and are not shipped."),
    # --- cumulative interventional window -------------------------------------------------------------------------
    dict(key="cumulative-kar-window", name="Cumulative Ka,r 5 Gy over repeat procedures", pack="cumulative",
         modality_type="fluoroscopy", quantity="ka_r_total_mgy", plane_mode="sum", threshold=5000, unit="mGy",
         scope="patient_window", window_days=84, min_procedures=2, window_basis=WINDOW_BASIS, severity="alert",
         source=NCRP168 + ". Applying the 5 Gy SRDL to the sum over repeat procedures is a local choice.",
         verify=True,
         note="Fires only when the window holds two or more procedures of the patient (a single procedure is "
              "covered by the study rules). Planes are summed across procedures because the plane labels of "
              "different procedures do not mark the same skin site."),
    dict(key="cumulative-kap-window", name="Cumulative KAP 500 Gy·cm² over repeat procedures", pack="cumulative",
         modality_type="fluoroscopy", quantity="kap_total_gycm2", plane_mode="sum", threshold=500, unit="Gy·cm²",
         scope="patient_window", window_days=84, min_procedures=2, window_basis=WINDOW_BASIS, severity="alert",
         source=NCRP168 + ". Applying the 500 Gy·cm² SRDL to the sum over repeat procedures is a local choice.",
         verify=True),
    # --- CT Dose Check overrides recorded in the RDSR (TID 10015) ---------------------------------------------------
    dict(key="ct-dose-check-override", name="CT Dose Check override (NEMA XR 25, TID 10015)", pack="dose_check",
         kind="dose_check", modality_type="CT", quantity="dlp_total_mgycm", threshold=0, unit="mGy·cm",
         scope="study", severity="notification",
         source="NEMA XR 25-2010 (revised 2019) CT Dose Check; DICOM PS3.16 TID 10015 'CT Dose Check Details' "
                "(notification/alert value exceeded by the forward estimate, reason, authorising person)",
         verify=False,
         note="One alert per study listing every acquisition whose Dose Check notification or alert value was "
              "exceeded; value and threshold are the largest forward estimate and its configured value."),
]

# --- AAPM (2011) CT notification values, CTDIvol per acquisition --------------------------------------------------
for key, name, region, amin, amax, phantom, pattern, exclude, value in [
    ("aapm-ct-adult-head", "adult head", "head", 18, None, "", "", PERFUSION, 80),
    ("aapm-ct-adult-torso", "adult torso", "body", 18, None, "", "", CARDIAC, 50),
    ("aapm-ct-paed-head-lt2", "paediatric head, age < 2 y", "head", None, 2, "", "", PERFUSION, 50),
    ("aapm-ct-paed-head-2-5", "paediatric head, age 2-5 y", "head", 2, 6, "", "", PERFUSION, 60),
    ("aapm-ct-paed-torso-16", "paediatric torso, age < 10 y, 16 cm phantom", "body", None, 10, "head", "", CARDIAC, 25),
    ("aapm-ct-paed-torso-32", "paediatric torso, age < 10 y, 32 cm phantom", "body", None, 10, "body", "", CARDIAC, 10),
    ("aapm-ct-brain-perfusion", "brain perfusion (repeated scanning of one level)", "", None, None, "", PERFUSION, "",
     600),
    ("aapm-ct-cardiac-retro", "cardiac, retrospectively gated (spiral)", "", None, None, "", CARDIAC + ".*" + RETRO
     + "|" + RETRO + ".*" + CARDIAC, "", 150),
    ("aapm-ct-cardiac-prosp", "cardiac, prospectively gated (sequential)", "", None, None, "", CARDIAC + ".*" + PROSP
     + "|" + PROSP + ".*" + CARDIAC, "", 50),
]:
    RULES.append(dict(
        key=key, name=f"AAPM CT notification value: {name} CTDIvol {value} mGy", pack="aapm_ct_dose_check",
        modality_type="CT", quantity="ctdivol_mgy", threshold=value, unit="mGy", scope="event",
        severity="notification", body_region=region, age_min_years=amin, age_max_years=amax, ctdi_phantom=phantom,
        protocol_pattern=pattern, protocol_exclude_pattern=exclude, source=AAPM_CT, verify=True,
        note="Category from the acquisition's Target Region, else the mapped examination, else the protocol text; "
             "age bands need a known age (adult rules also apply when the age is unknown). Perfusion and cardiac "
             "categories are recognised from protocol/description text. Localizers are left out."))

# --- German StrlSchV Anlage 14 significant-event criteria (single patient), inactive by default ---------------------
RULES += [
    dict(key="de-anlage14-ct-brain", name="StrlSchV Anlage 14: CT brain CTDIvol > 120 mGy",
         pack="de_strlschv_anlage14", modality_type="CT", quantity="ctdivol_mgy", threshold=120, unit="mGy",
         scope="event", severity="significant_event", body_region="head", active=False, source=STRLSCHV, verify=False,
         note="Per acquisition, on its own CTDIvol; region from Target Region or the mapped examination. The law "
              "says 'greater than'; the rule fires at or above the value, so a value of exactly 120 mGy is also "
              "listed for review. Whether to sum CTDIvol over overlapping series is debated; this rule does not."),
    dict(key="de-anlage14-ct-body", name="StrlSchV Anlage 14: other CT of the body CTDIvol > 80 mGy",
         pack="de_strlschv_anlage14", modality_type="CT", quantity="ctdivol_mgy", threshold=80, unit="mGy",
         scope="event", severity="significant_event", body_region="body", active=False, source=STRLSCHV, verify=False,
         note="Per acquisition, on its own CTDIvol; region from Target Region or the mapped examination."),
    dict(key="de-anlage14-fluoro-dap", name="StrlSchV Anlage 14: fluoroscopic examination DAP > 20 000 cGy·cm²",
         pack="de_strlschv_anlage14", modality_type="fluoroscopy", quantity="kap_total_gycm2", plane_mode="sum",
         threshold=20000, unit="cGy·cm²", scope="study", severity="significant_event", procedure_kind="diagnostic",
         active=False, source=STRLSCHV, verify=False,
         note="Diagnostic fluoroscopy examinations only, not interventions (Anlage 14 part II, not shipped: its "
              "criterion was not read in full). A study counts as an intervention when its mapped examination is "
              "one or its descriptions name one."),
]


def load(apps, schema_editor):
    TriggerRule = apps.get_model("triggers", "TriggerRule")
    TriggerRuleVersion = apps.get_model("triggers", "TriggerRuleVersion")
    for data in RULES:
        rule, created = TriggerRule.objects.get_or_create(key=data["key"], defaults=data)
        if created:
            snapshot = {k: v for k, v in data.items()}
            snapshot.setdefault("active", True)
            TriggerRuleVersion.objects.create(rule=rule, version=1, data=snapshot, comment="default rule pack")


def unload(apps, schema_editor):
    TriggerRule = apps.get_model("triggers", "TriggerRule")
    TriggerRule.objects.filter(key__in=[r["key"] for r in RULES], alerts__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("triggers", "0001_initial")]
    operations = [migrations.RunPython(load, unload)]
