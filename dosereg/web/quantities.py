"""The dose quantities the pages show: label, canonical unit, and a plain-language explanation for patients.

The explanations follow ESR EuroSafe Imaging's advice to inform patients in plain words about the dose quantities
their X-ray system reported (what the number measures, not a risk figure).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Quantity:
    field: str
    label: str
    unit: str
    explanation: str = ""


QUANTITIES: dict[str, Quantity] = {q.field: q for q in [
    Quantity("ctdivol_mgy", _("CTDIvol"), "mGy",
             _("CT dose index (volume): the average dose the CT scanner delivered inside a standard plastic test "
               "object for one rotation. It describes how the scanner was set, not the dose to your body.")),
    Quantity("max_ctdivol_mgy", _("Highest CTDIvol"), "mGy",
             _("The highest CT dose index (volume) of the scans in this examination.")),
    Quantity("dlp_mgycm", _("DLP"), "mGy·cm",
             _("Dose-length product: the CT dose index multiplied by the length of your body that was scanned.")),
    Quantity("dlp_total_mgycm", _("DLP total"), "mGy·cm",
             _("Dose-length product: the CT dose index multiplied by the length of your body that was scanned, "
               "added up over the whole examination.")),
    Quantity("kap_gycm2", _("KAP"), "Gy·cm²",
             _("Kerma-area product (also called dose-area product): the amount of X-rays that left the tube, "
               "multiplied by the area of the X-ray beam.")),
    Quantity("kap_total_gycm2", _("KAP total"), "Gy·cm²",
             _("Kerma-area product (also called dose-area product): the amount of X-rays that left the tube, "
               "multiplied by the area of the beam, added up over the whole examination.")),
    Quantity("ka_r_mgy", _("Ka,r"), "mGy",
             _("Air kerma at the reference point: the X-ray dose in air at a point near where the beam enters "
               "the skin. It is used to watch for possible skin effects during long procedures.")),
    Quantity("ka_r_total_mgy", _("Ka,r total"), "mGy",
             _("Air kerma at the reference point, added up over the procedure: an indicator (not a measurement) "
               "of the dose to the skin.")),
    Quantity("fluoro_time_total_s", _("Fluoroscopy time"), "s",
             _("How long the X-ray beam was switched on for live imaging (fluoroscopy).")),
    Quantity("irradiation_duration_s", _("Irradiation time"), "s", _("How long this exposure lasted.")),
    Quantity("agd_mgy", _("AGD"), "mGy",
             _("Average glandular dose: the estimated average dose to the glandular tissue of the breast for one "
               "image.")),
    Quantity("agd_left_mgy", _("AGD left breast"), "mGy",
             _("Average glandular dose to the left breast, added up over its images.")),
    Quantity("agd_right_mgy", _("AGD right breast"), "mGy",
             _("Average glandular dose to the right breast, added up over its images.")),
    Quantity("activity_mbq", _("Administered activity"), "MBq",
             _("The amount of radioactive medicine given to you, in megabecquerel.")),
    Quantity("effective_dose_msv", _("Effective dose (estimate)"), "mSv",
             _("An estimate used to compare examinations and for population statistics; it is not a measure of "
               "your personal risk.")),
    Quantity("effective_dose_estimate_msv", _("Effective dose (estimate)"), "mSv",
             _("An estimate used to compare examinations; not a measure of personal risk.")),
    Quantity("esak_mgy", _("ESAK"), "mGy", _("Entrance surface air kerma: the X-ray dose in air where the beam "
                                              "enters the skin.")),
]}

# Study total columns, in the order the pages show them.  Different quantities are never added together.
STUDY_TOTALS = ["dlp_total_mgycm", "max_ctdivol_mgy", "kap_total_gycm2", "ka_r_total_mgy", "fluoro_time_total_s",
                "agd_left_mgy", "agd_right_mgy", "activity_mbq", "effective_dose_msv"]

# Which totals belong to which modality type (what the pages show per study).
MODALITY_TOTALS = {
    "CT": ["dlp_total_mgycm", "max_ctdivol_mgy"],
    "fluoroscopy": ["kap_total_gycm2", "ka_r_total_mgy", "fluoro_time_total_s"],
    "radiography": ["kap_total_gycm2"],
    "mammography": ["agd_left_mgy", "agd_right_mgy"],
    "nuclear_medicine": ["activity_mbq"],
}

UNIT_DISPLAY = {"mGy.cm": "mGy·cm", "mGycm": "mGy·cm", "Gy.m2": "Gy·m²", "Gym2": "Gy·m²", "dGy.cm2": "dGy·cm²",
                "Gy.cm2": "Gy·cm²", "cGy.cm2": "cGy·cm²", "mGy.cm2": "mGy·cm²", "uGy.m2": "µGy·m²", "mm[Al]": "mm Al",
                "um": "µm", "uGy": "µGy"}


def unit_display(code: str) -> str:
    """A UCUM code as people read it (the code itself is kept as sent)."""
    return UNIT_DISPLAY.get(code, code)


def fmt(value, digits: int = 3) -> str:
    """A number for people: significant digits, no exponent for ordinary magnitudes."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    v = float(value)
    if v == 0:
        return "0"
    if abs(v) >= 10 ** digits:
        return f"{v:,.0f}"
    if abs(v) < 1e-3:
        return f"{v:.{digits - 1}e}"
    text = f"{v:.{digits}g}" if abs(v) < 1 else f"{v:,.{max(0, digits - len(str(int(abs(v)))))}f}"
    if "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")  # 25.10 -> 25.1: no precision the value does not have
    return text
