"""The quantity catalogue: the one home of DoseReg's dose vocabulary.

Every quantity DoseReg stores is listed once, by its export name (the ``export_doses`` field, the registry column,
the trigger rule's and the DRL's key): its label and symbol, its canonical unit, the unit codes it accepts with their
factors, its event column and study-total column, the modalities it applies to, whether it can be negative, the
range of plausible values, and how it is displayed.  The parser's unit conversion, the registry's border checks,
triggers, drl, the pages, PDFs, exports, the dose text and the API read it here; nothing keeps a copy.

Unit codes are those of DICOM PS3.16 (UCUM, e.g. TID 10003B "Gy" for Dose (RP), TID 10004 "Gy.m2" for DAP totals,
TID 10013 "mGy.cm" for DLP) plus the vendor spellings seen in real objects (``Gym2``, ``mGycm``, ``Gy.cm^2``,
``uAs``; ``../shared/reference/rdsr-codes.md`` §1.2), each listed explicitly with its factor: nothing is guessed.
Factors follow the UCUM prefix definitions (m = 1e-3, u = 1e-6, c = 1e-2, d = 1e-1, k = 1e3, G = 1e9;
1 Ci = 3.7e10 Bq by definition).  Forms and DRL files may also use the display spellings (``mGy·cm``, ``Gy·cm²``).

Plausible ranges: the upper bound is about ten times the highest value the cited sources report for a clinical
procedure, so a value above it is almost certainly a unit or encoding error (stored, flagged ``implausible_value``
and left out of DRL medians until a physicist confirms it).  Sources: NCRP Report 168 (2010) table 4.9 and §4.4
(Ka,r above 15 Gy is a sentinel event; KAP 500 Gy·cm² and 60 min fluoroscopy are substantial radiation dose
levels); AAPM CT Dose Check (2011) notification values (CTDIvol 80 mGy head perfusion 1 000 mGy); the 2008–2009
CT brain-perfusion overexposures (CTDIvol about 3–4 Gy, US FDA safety communication 2009-11-09); radionuclide
therapy activities up to about 7.4 GBq (EANM procedure guidelines for 131I and 177Lu).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# --- modality types, in classification order (the first present is a study's ``modality_type``) ---------------------
MODALITY_TYPES: tuple[str, ...] = ("CT", "fluoroscopy", "mammography", "radiography", "nuclear_medicine")
MODALITY_LABELS: dict[str, str] = {
    "CT": "CT",
    "fluoroscopy": "Fluoroscopy / interventional",
    "mammography": "Mammography",
    "radiography": "Radiography",
    "nuclear_medicine": "Nuclear medicine",
}
MODALITY_CHOICES: list[tuple[str, str]] = [(m, MODALITY_LABELS[m]) for m in MODALITY_TYPES]

# --- accepted unit codes per dimension: code as sent -> factor to the canonical unit ---------------------------------
# Dose-area product, canonical Gy·cm² (1 m² = 10 000 cm²).  (0018,115E) in image headers is dGy·cm² (PS3.3 C.8.7.8).
KAP_UNITS = {
    "Gy.m2": 1e4, "Gym2": 1e4, "Gy.m^2": 1e4, "Gy*m2": 1e4, "Gy m2": 1e4,  # Gym2: Siemens (rdsr-codes.md §1.2)
    "mGy.m2": 10.0, "uGy.m2": 1e-2, "cGy.m2": 100.0, "dGy.m2": 1e3,
    "Gy.cm2": 1.0, "Gy.cm^2": 1.0, "Gycm2": 1.0, "Gy*cm2": 1.0,  # Gy.cm^2: Siemens private summary (Varic)
    "dGy.cm2": 0.1, "dGycm2": 0.1, "dGy.cm^2": 0.1,
    "cGy.cm2": 1e-2, "cGycm2": 1e-2, "cGy.cm^2": 1e-2,
    "mGy.cm2": 1e-3, "mGycm2": 1e-3, "mGy.cm^2": 1e-3,
    "uGy.cm2": 1e-6, "uGy.m^2": 1e-2, "uGym2": 1e-2,
}
DOSE_UNITS = {"Gy": 1e3, "dGy": 100.0, "cGy": 10.0, "mGy": 1.0, "uGy": 1e-3}  # canonical mGy
DLP_UNITS = {  # canonical mGy·cm; mGycm: GE, Siemens, Spectrum Dynamics
    "mGy.cm": 1.0, "mGycm": 1.0, "mGy*cm": 1.0, "mGy cm": 1.0, "mGy.cm1": 1.0,
    "Gy.cm": 1e3, "cGy.cm": 10.0, "dGy.cm": 100.0, "mGy.mm": 0.1, "mGy.m": 100.0,
}
TIME_UNITS = {"s": 1.0, "sec": 1.0, "ms": 1e-3, "us": 1e-6, "min": 60.0, "h": 3600.0, "d": 86400.0}
TIME_MS_UNITS = {"ms": 1.0, "s": 1e3, "us": 1e-3}  # pulse width, TID 10003B row 9
LENGTH_UNITS = {"mm": 1.0, "cm": 10.0, "m": 1e3, "um": 1e-3, "dm": 100.0}
AREA_UNITS = {"m2": 1.0, "m^2": 1.0, "cm2": 1e-4, "cm^2": 1e-4, "mm2": 1e-6, "mm^2": 1e-6, "dm2": 1e-2}
ANGLE_UNITS = {"deg": 1.0, "degree": 1.0, "rad": 180.0 / math.pi}
KV_UNITS = {"kV": 1.0, "V": 1e-3, "kVp": 1.0}
CURRENT_UNITS = {"mA": 1.0, "uA": 1e-3, "A": 1e3}
CHARGE_UNITS = {"mA.s": 1.0, "mAs": 1.0, "mA*s": 1.0, "uA.s": 1e-3, "uAs": 1e-3, "A.s": 1e3, "As": 1e3}
ACTIVITY_UNITS = {"MBq": 1.0, "Bq": 1e-6, "kBq": 1e-3, "GBq": 1e3, "mCi": 37.0, "uCi": 0.037, "Ci": 37000.0}
EFFECTIVE_DOSE_UNITS = {"mSv": 1.0, "Sv": 1e3, "uSv": 1e-3}
RATE_UNITS = {"{pulse}/s": 1.0, "pulse/s": 1.0, "/s": 1.0, "1/s": 1.0, "Hz": 1.0, "{pulses}/s": 1.0,
              "{pulse}/min": 1 / 60}
COUNT_UNITS = {  # UCUM "1" and annotations in braces; CT-ESR-GE_Optima sends "X-ray sources"
    "1": 1.0, "{ratio}": 1.0, "ratio": 1.0, "{events}": 1.0, "{X-Ray sources}": 1.0, "{X-ray sources}": 1.0,
    "X-ray sources": 1.0, "X-Ray sources": 1.0, "{pulse}": 1.0, "{pulses}": 1.0, "{frames}": 1.0, "{frame}": 1.0,
    "{images}": 1.0, "{exposures}": 1.0, "no units": 1.0, "": 1.0,
}
HVL_UNITS = {"mm": 1.0, "mm[Al]": 1.0, "mm{Al}": 1.0, "cm": 10.0}
UCUM_SCHEMES = frozenset({"UCUM", "UCM"})  # rdsr-codes.md §1.2: GE fluoroscopy sends "UCM"

# UCUM code -> how people read it (the code itself is kept as sent).
UNIT_SYMBOLS = {
    "mGy.cm": "mGy·cm", "mGycm": "mGy·cm", "Gy.cm": "Gy·cm", "Gy.m2": "Gy·m²", "Gym2": "Gy·m²", "dGy.cm2": "dGy·cm²",
    "Gy.cm2": "Gy·cm²", "cGy.cm2": "cGy·cm²", "mGy.cm2": "mGy·cm²", "uGy.m2": "µGy·m²", "uGy.cm2": "µGy·cm²",
    "mGy.m2": "mGy·m²", "mm[Al]": "mm Al", "um": "µm", "uGy": "µGy", "uSv": "µSv", "uAs": "µAs", "uA.s": "µA·s",
    "mA.s": "mAs", "m2": "m²", "cm2": "cm²", "mm2": "mm²", "{pulse}/s": "pulses/s", "1": "", "deg": "°",
}


@dataclass(frozen=True)
class Display:
    """How a value is shown.  ``significant`` digits (never an exponent); ``larger``: (threshold in the canonical
    unit, factor, unit symbol) to switch to above it (mGy -> Gy from 1 000 mGy); ``clock``: seconds as min:s."""

    significant: int = 3
    larger: tuple[tuple[float, float, str], ...] = ()
    clock: bool = False


@dataclass(frozen=True)
class QuantityDef:
    """One quantity of the catalogue.  ``name`` is its export name and registry column; ``event_column`` and
    ``study_column`` name the per-event and per-study columns of the same quantity (either may be itself)."""

    name: str
    label: str
    symbol: str
    unit: str  # canonical unit, UCUM code
    units: dict[str, float]  # accepted unit codes -> factor to the canonical unit
    strict: bool = False  # an unknown unit refuses the object (rdsr-codes.md §3 rule 3)
    signed: bool = False  # can be negative (angles, table positions); no dose, time or activity can
    plausible_max: float | None = None  # in the canonical unit; above it: implausible_value
    event_column: str | None = None
    study_column: str | None = None
    modalities: tuple[str, ...] = ()
    display: Display = Display()
    explanation: str = ""  # plain words for the patient sheet (ESR EuroSafe Imaging: what the number measures)
    is_dose: bool = False  # a dose, kerma, activity or time a rule or DRL may compare

    @property
    def unit_symbol(self) -> str:
        return UNIT_SYMBOLS.get(self.unit, self.unit)

    @property
    def key(self) -> str:
        """The key rules and DRLs use: the study-total name where the quantity has one, else its own name."""
        return self.study_column or self.name


_GY = Display(larger=((1000.0, 1e-3, "Gy"),))  # Ka,r and ESAK: mGy, Gy from 1 000 mGy
_CLOCK = Display(clock=True)
_GBQ = Display(larger=((10000.0, 1e-3, "GBq"),))
_CT, _FL, _MG, _RF, _NM = ("CT",), ("fluoroscopy",), ("mammography",), ("radiography",), ("nuclear_medicine",)
_PROJ = ("fluoroscopy", "radiography")

_EXPLAIN_CTDIVOL = ("CT dose index (volume): the average dose the CT scanner delivered inside a standard plastic test "
                    "object for one rotation. It describes how the scanner was set, not the dose to your body.")
_EXPLAIN_DLP = "Dose-length product: the CT dose index multiplied by the length of your body that was scanned."
_EXPLAIN_KAP = ("Kerma-area product (also called dose-area product): the amount of X-rays that left the tube, "
                "multiplied by the area of the X-ray beam.")
_EXPLAIN_KAR = ("Air kerma at the reference point: the X-ray dose in air at a point near where the beam enters the "
                "skin. It is used to watch for possible skin effects during long procedures.")
_EXPLAIN_AGD = "Average glandular dose: the estimated average dose to the glandular tissue of the breast."
_EXPLAIN_ACTIVITY = "The amount of radioactive medicine given to you, in megabecquerel."
_EXPLAIN_ED = ("An estimate used to compare examinations and for population statistics; it is not a measure of your "
               "personal risk.")


def _q(name, label, symbol, unit, units, **kw) -> QuantityDef:
    return QuantityDef(name=name, label=label, symbol=symbol, unit=unit, units=units, **kw)


_ENTRIES: list[QuantityDef] = [
    # --- CT (TID 10013 / 10014 / 10012) ----------------------------------------------------------------------------
    _q("ctdivol_mgy", "CTDIvol", "CTDIvol", "mGy", DOSE_UNITS, strict=True, plausible_max=10000.0,
       event_column="ctdivol_mgy", study_column=None, modalities=_CT, explanation=_EXPLAIN_CTDIVOL, is_dose=True),
    _q("max_ctdivol_mgy", "Highest CTDIvol", "CTDIvol max", "mGy", DOSE_UNITS, strict=True, plausible_max=10000.0,
       event_column="ctdivol_mgy", study_column="max_ctdivol_mgy", modalities=_CT,
       explanation="The highest CT dose index (volume) of the scans in this examination."),
    _q("dlp_mgycm", "DLP", "DLP", "mGy.cm", DLP_UNITS, strict=True, plausible_max=100000.0,
       event_column="dlp_mgycm", study_column="dlp_total_mgycm", modalities=_CT, explanation=_EXPLAIN_DLP,
       is_dose=True),
    _q("dlp_total_mgycm", "DLP total", "DLP", "mGy.cm", DLP_UNITS, strict=True, plausible_max=200000.0,
       event_column="dlp_mgycm", study_column="dlp_total_mgycm", modalities=_CT,
       explanation=_EXPLAIN_DLP + " Added up over the whole examination.", is_dose=True),
    _q("ctdiw_mgy", "CTDIw", "CTDIw", "mGy", DOSE_UNITS, strict=True, plausible_max=10000.0, modalities=_CT),
    _q("ssde_mgy", "SSDE", "SSDE", "mGy", DOSE_UNITS, strict=True, plausible_max=20000.0, modalities=_CT,
       explanation="Size-specific dose estimate: the CT dose index adjusted to the patient's size (AAPM Reports "
                   "204 and 220)."),
    # the scanner's own SSDE as sent (the parser's ``ssde_mgy``); DoseReg's own is ``ssde_mgy`` (dosereg.core.ssde)
    _q("ssde_reported_mgy", "SSDE (reported)", "SSDE rep.", "mGy", DOSE_UNITS, strict=True, plausible_max=20000.0,
       modalities=_CT),
    _q("scanning_length_mm", "Scanning length", "L", "mm", LENGTH_UNITS, plausible_max=5000.0, modalities=_CT),
    _q("exposure_time_s", "Exposure time", "t", "s", TIME_UNITS, strict=True, plausible_max=3600.0, modalities=_CT),
    _q("exposure_time_per_rotation_s", "Rotation time", "t rot", "s", TIME_UNITS, strict=True, plausible_max=60.0,
       modalities=_CT),
    _q("pitch_factor", "Pitch", "pitch", "1", COUNT_UNITS, plausible_max=20.0, modalities=_CT),
    _q("nominal_single_collimation_mm", "Single collimation", "N×T", "mm", LENGTH_UNITS, plausible_max=1000.0,
       modalities=_CT),
    _q("nominal_total_collimation_mm", "Total collimation", "collimation", "mm", LENGTH_UNITS, plausible_max=1000.0,
       modalities=_CT),
    _q("water_equivalent_diameter_mm", "Water-equivalent diameter", "Dw", "mm", LENGTH_UNITS, plausible_max=1500.0,
       modalities=_CT),
    # the patient's size under an RDSR's SSDE item (TID 10013: DCM 113931, 113932, 113933); no column of their own,
    # kept in the event's attributes["quantities"] and read by the SSDE dimensions path (AAPM Report 204)
    _q("measured_lateral_dimension_mm", "Measured lateral dimension", "LAT", "mm", LENGTH_UNITS,
       plausible_max=1500.0, modalities=_CT),
    _q("measured_ap_dimension_mm", "Measured AP dimension", "AP", "mm", LENGTH_UNITS, plausible_max=1500.0,
       modalities=_CT),
    _q("derived_effective_diameter_mm", "Derived effective diameter", "Deff", "mm", LENGTH_UNITS,
       plausible_max=1500.0, modalities=_CT),
    _q("number_of_xray_sources", "X-ray sources", "sources", "1", COUNT_UNITS, plausible_max=8.0, modalities=_CT),
    _q("ct_event_count", "CT acquisitions", "n", "1", COUNT_UNITS, plausible_max=10000.0, modalities=_CT),
    # --- projection X-ray (TID 10003, 10003A/B/C; accumulated TID 10002/10004/10007) --------------------------------
    _q("kap_gycm2", "KAP", "KAP", "Gy.cm2", KAP_UNITS, strict=True, plausible_max=5000.0,
       event_column="kap_gycm2", study_column="kap_total_gycm2", modalities=_PROJ + _MG, explanation=_EXPLAIN_KAP,
       is_dose=True),
    _q("kap_total_gycm2", "KAP total", "KAP", "Gy.cm2", KAP_UNITS, strict=True, plausible_max=10000.0,
       event_column="kap_gycm2", study_column="kap_total_gycm2", modalities=_PROJ,
       explanation=_EXPLAIN_KAP + " Added up over the whole examination.", is_dose=True),
    _q("fluoro_kap_total_gycm2", "KAP fluoroscopy", "KAP fluoro", "Gy.cm2", KAP_UNITS, strict=True,
       plausible_max=10000.0, modalities=_FL),
    _q("acquisition_kap_total_gycm2", "KAP acquisition", "KAP acq", "Gy.cm2", KAP_UNITS, strict=True,
       plausible_max=10000.0, modalities=_FL),
    _q("ka_r_mgy", "Ka,r", "Ka,r", "mGy", DOSE_UNITS, strict=True, plausible_max=100000.0,
       event_column="ka_r_mgy", study_column="ka_r_total_mgy", modalities=_PROJ, display=_GY,
       explanation=_EXPLAIN_KAR, is_dose=True),
    _q("ka_r_total_mgy", "Ka,r total", "Ka,r", "mGy", DOSE_UNITS, strict=True, plausible_max=150000.0,
       event_column="ka_r_mgy", study_column="ka_r_total_mgy", modalities=_PROJ, display=_GY,
       explanation="Air kerma at the reference point, added up over the procedure: an indicator (not a measurement) "
                   "of the dose to the skin.", is_dose=True),
    _q("fluoro_ka_r_total_mgy", "Ka,r fluoroscopy", "Ka,r fluoro", "mGy", DOSE_UNITS, strict=True,
       plausible_max=150000.0, modalities=_FL, display=_GY),
    _q("acquisition_ka_r_total_mgy", "Ka,r acquisition", "Ka,r acq", "mGy", DOSE_UNITS, strict=True,
       plausible_max=150000.0, modalities=_FL, display=_GY),
    # Peak skin dose: estimated by dosereg.core.skin_dose from the event geometry (not sent by the modality).
    _q("psd_mgy", "Peak skin dose", "PSD", "mGy", DOSE_UNITS, strict=True, plausible_max=100000.0, modalities=_FL,
       study_column="psd_mgy", display=_GY, explanation="The highest dose estimated on the skin, from where the X-ray beam entered the body "
                                "during the procedure: an estimate (about ±50 %), not a measurement.", is_dose=True),
    _q("fluoro_time_total_s", "Fluoroscopy time", "t fluoro", "s", TIME_UNITS, strict=True, plausible_max=36000.0,
       event_column="irradiation_duration_s", study_column="fluoro_time_total_s", modalities=_FL, display=_CLOCK,
       explanation="How long the X-ray beam was switched on for live imaging (fluoroscopy).", is_dose=True),
    _q("acquisition_time_total_s", "Acquisition time", "t acq", "s", TIME_UNITS, strict=True, plausible_max=36000.0,
       modalities=_FL, display=_CLOCK),
    _q("irradiation_duration_s", "Irradiation time", "t", "s", TIME_UNITS, strict=True, plausible_max=36000.0,
       modalities=_PROJ + _MG, display=_CLOCK, explanation="How long this exposure lasted."),
    _q("total_number_of_radiographic_frames", "Radiographic frames", "frames", "1", COUNT_UNITS,
       plausible_max=1e6, modalities=_FL),
    _q("positioner_primary_angle_deg", "Primary angle", "α", "deg", ANGLE_UNITS, signed=True, plausible_max=360.0,
       modalities=_PROJ),
    _q("positioner_secondary_angle_deg", "Secondary angle", "β", "deg", ANGLE_UNITS, signed=True,
       plausible_max=360.0, modalities=_PROJ),
    _q("table_longitudinal_position_mm", "Table longitudinal", "table long.", "mm", LENGTH_UNITS, signed=True,
       plausible_max=10000.0, modalities=_PROJ),
    _q("table_lateral_position_mm", "Table lateral", "table lat.", "mm", LENGTH_UNITS, signed=True,
       plausible_max=10000.0, modalities=_PROJ),
    _q("table_height_position_mm", "Table height", "table height", "mm", LENGTH_UNITS, signed=True,
       plausible_max=10000.0, modalities=_PROJ),
    _q("distance_source_to_isocenter_mm", "Source to isocentre", "SID iso", "mm", LENGTH_UNITS,
       plausible_max=10000.0, modalities=_PROJ),
    _q("distance_source_to_detector_mm", "Source to detector", "SID", "mm", LENGTH_UNITS, plausible_max=10000.0,
       modalities=_PROJ + _MG),
    _q("distance_source_to_rp_mm", "Source to reference point", "SRP", "mm", LENGTH_UNITS, plausible_max=10000.0,
       modalities=_PROJ),
    _q("collimated_field_area_m2", "Field area", "A", "m2", AREA_UNITS, plausible_max=10.0, modalities=_PROJ),
    _q("collimated_field_height_mm", "Field height", "h", "mm", LENGTH_UNITS, plausible_max=5000.0,
       modalities=_PROJ),
    _q("collimated_field_width_mm", "Field width", "w", "mm", LENGTH_UNITS, plausible_max=5000.0, modalities=_PROJ),
    _q("pulse_rate_per_s", "Pulse rate", "pulses/s", "{pulse}/s", RATE_UNITS, plausible_max=1000.0, modalities=_FL),
    _q("pulse_width_ms", "Pulse width", "pulse", "ms", TIME_MS_UNITS, plausible_max=10000.0, modalities=_FL),
    _q("number_of_pulses", "Pulses", "pulses", "1", COUNT_UNITS, plausible_max=1e7, modalities=_FL),
    _q("number_of_frames", "Frames", "frames", "1", COUNT_UNITS, plausible_max=1e7, modalities=_FL),
    _q("exposure_mas", "Exposure", "mAs", "mA.s", CHARGE_UNITS, plausible_max=100000.0, modalities=_PROJ + _MG),
    # --- X-ray source ---------------------------------------------------------------------------------------------
    _q("kvp", "kVp", "kVp", "kV", KV_UNITS, plausible_max=200.0, modalities=_CT + _PROJ + _MG),
    _q("tube_current_ma", "Tube current", "I", "mA", CURRENT_UNITS, plausible_max=10000.0,
       modalities=_CT + _PROJ + _MG),
    _q("max_tube_current_ma", "Highest tube current", "I max", "mA", CURRENT_UNITS, plausible_max=10000.0,
       modalities=_CT),
    # --- mammography (TID 10003 with breast items; TID 10005) ----------------------------------------------------
    _q("agd_mgy", "AGD", "AGD", "mGy", DOSE_UNITS, strict=True, plausible_max=100.0,
       event_column="agd_mgy", study_column=None, modalities=_MG, explanation=_EXPLAIN_AGD + " For one image.",
       is_dose=True),
    _q("agd_left_mgy", "AGD left breast", "AGD left", "mGy", DOSE_UNITS, strict=True, plausible_max=500.0,
       event_column="agd_mgy", study_column="agd_left_mgy", modalities=_MG,
       explanation=_EXPLAIN_AGD + " Left breast, added up over its images."),
    _q("agd_right_mgy", "AGD right breast", "AGD right", "mGy", DOSE_UNITS, strict=True, plausible_max=500.0,
       event_column="agd_mgy", study_column="agd_right_mgy", modalities=_MG,
       explanation=_EXPLAIN_AGD + " Right breast, added up over its images."),
    _q("agd_both_mgy", "AGD both breasts", "AGD both", "mGy", DOSE_UNITS, strict=True, plausible_max=500.0,
       modalities=_MG),
    _q("esak_mgy", "ESAK", "ESAK", "mGy", DOSE_UNITS, strict=True, plausible_max=100000.0, modalities=_PROJ + _MG,
       display=_GY, explanation="Entrance surface air kerma: the X-ray dose in air where the beam enters the skin."),
    _q("compression_thickness_mm", "Compressed breast thickness", "thickness", "mm", LENGTH_UNITS,
       plausible_max=300.0, modalities=_MG),
    _q("hvl_mmal", "HVL", "HVL", "mm[Al]", HVL_UNITS, plausible_max=50.0, modalities=_MG),
    # --- nuclear medicine (TID 10021 / 10022, image headers) --------------------------------------------------------
    _q("activity_mbq", "Administered activity", "A", "MBq", ACTIVITY_UNITS, strict=True, plausible_max=100000.0,
       event_column="activity_mbq", study_column="activity_mbq", modalities=_NM, display=_GBQ,
       explanation=_EXPLAIN_ACTIVITY, is_dose=True),
    # --- effective dose (reported by an RRDSR, or derived; always an estimate) ------------------------------------
    _q("effective_dose_msv", "Effective dose (estimate)", "E", "mSv", EFFECTIVE_DOSE_UNITS, strict=True,
       plausible_max=1000.0, event_column="effective_dose_msv", study_column="effective_dose_msv",
       modalities=MODALITY_TYPES, explanation=_EXPLAIN_ED, is_dose=True),
    _q("effective_dose_estimate_msv", "Effective dose (estimate)", "E", "mSv", EFFECTIVE_DOSE_UNITS, strict=True,
       plausible_max=1000.0, modalities=_CT + _NM, explanation=_EXPLAIN_ED),
]

QUANTITIES: dict[str, QuantityDef] = {q.name: q for q in _ENTRIES}

# The parser's typed quantities: the registry has a column of the same name for each (IrradiationEvent,
# AccumulatedDose); any other quantity the parser finds is kept in the event's JSON with its raw value and unit.
EVENT_QUANTITIES: tuple[str, ...] = (
    "ctdivol_mgy", "dlp_mgycm", "ctdiw_mgy", "scanning_length_mm", "exposure_time_s", "pitch_factor",
    "nominal_single_collimation_mm", "nominal_total_collimation_mm", "exposure_time_per_rotation_s",
    "ssde_mgy", "water_equivalent_diameter_mm", "number_of_xray_sources",
    "kap_gycm2", "ka_r_mgy", "positioner_primary_angle_deg", "positioner_secondary_angle_deg",
    "table_longitudinal_position_mm", "table_lateral_position_mm", "table_height_position_mm",
    "distance_source_to_isocenter_mm", "distance_source_to_detector_mm", "distance_source_to_rp_mm",
    "collimated_field_area_m2", "collimated_field_height_mm", "collimated_field_width_mm",
    "pulse_rate_per_s", "pulse_width_ms", "number_of_pulses", "irradiation_duration_s", "exposure_mas",
    "number_of_frames", "kvp", "tube_current_ma", "max_tube_current_ma",
    "agd_mgy", "esak_mgy", "compression_thickness_mm", "hvl_mmal",
    "activity_mbq", "effective_dose_msv",
)
ACCUMULATED_QUANTITIES: tuple[str, ...] = (
    "dlp_total_mgycm", "ct_event_count",
    "kap_total_gycm2", "fluoro_kap_total_gycm2", "acquisition_kap_total_gycm2",
    "ka_r_total_mgy", "fluoro_ka_r_total_mgy", "acquisition_ka_r_total_mgy",
    "fluoro_time_total_s", "acquisition_time_total_s", "total_number_of_radiographic_frames",
    "agd_left_mgy", "agd_right_mgy", "agd_both_mgy",
    "activity_mbq", "effective_dose_msv",
)
# A study's totals as the X-ray system reported them: the study columns, in the order pages show them (derived
# values -- effective dose aside, which carries its method -- such as the peak skin dose are shown apart, labelled).  Different quantities are never added together.
STUDY_TOTALS: tuple[str, ...] = ("dlp_total_mgycm", "max_ctdivol_mgy", "kap_total_gycm2", "ka_r_total_mgy",
                                 "fluoro_time_total_s", "agd_left_mgy", "agd_right_mgy", "activity_mbq",
                                 "effective_dose_msv")
# Study totals that are sums of the current reports' accumulated totals as written (the rest are derived).
SUMMED_TOTALS: tuple[str, ...] = ("dlp_total_mgycm", "kap_total_gycm2", "ka_r_total_mgy", "fluoro_time_total_s",
                                  "agd_left_mgy", "agd_right_mgy", "activity_mbq")
# What the pages show per study, by modality type.
MODALITY_TOTALS: dict[str, tuple[str, ...]] = {
    "CT": ("dlp_total_mgycm", "max_ctdivol_mgy"),
    "fluoroscopy": ("kap_total_gycm2", "ka_r_total_mgy", "fluoro_time_total_s"),
    "radiography": ("kap_total_gycm2",),
    "mammography": ("agd_left_mgy", "agd_right_mgy"),
    "nuclear_medicine": ("activity_mbq",),
}
# The quantities a trigger rule may watch (its ``quantity``), and those a DRL may be set for.
RULE_QUANTITIES: tuple[str, ...] = ("ka_r_total_mgy", "kap_total_gycm2", "fluoro_time_total_s", "ctdivol_mgy",
                                    "dlp_total_mgycm", "agd_mgy", "activity_mbq", "effective_dose_msv", "psd_mgy")
DRL_QUANTITIES: tuple[str, ...] = ("dlp_total_mgycm", "ctdivol_mgy", "kap_total_gycm2", "ka_r_total_mgy",
                                   "agd_mgy", "activity_mbq")
# Per-plane quantities (biplane units report Ka,r, KAP and fluoroscopy time per plane, TID 10002).
PLANE_QUANTITIES: tuple[str, ...] = ("ka_r_total_mgy", "kap_total_gycm2", "fluoro_time_total_s")


class UnknownQuantity(KeyError):
    """A name that is not in the catalogue."""


def quantity(name: str) -> QuantityDef:
    try:
        return QUANTITIES[name]
    except KeyError:
        raise UnknownQuantity(name) from None


def unit_symbol(code: str) -> str:
    """A UCUM code as people read it."""
    return UNIT_SYMBOLS.get(code, code)


def _normalise_unit(text: str) -> str:
    """Display spellings to UCUM: 'Gy·cm²' -> 'Gy.cm2', 'µGy' -> 'uGy', 'mGy cm' -> 'mGy.cm'."""
    out = text.strip().replace("·", ".").replace("²", "2").replace("µ", "u").replace("μ", "u").replace("^", "")
    return " ".join(out.split()).replace(" ", ".")


def unit_factor(name: str, unit: str) -> float | None:
    """The factor from ``unit`` (a UCUM code as sent, or a display spelling from a form or DRL file) to the canonical
    unit of quantity ``name``; None when the catalogue does not accept that unit for it."""
    table = quantity(name).units
    code = unit.strip()
    if code in table:
        return table[code]
    normal = _normalise_unit(code)
    if normal in table:
        return table[normal]
    folded = [factor for key, factor in table.items() if key.lower() == normal.lower()]
    return folded[0] if len(set(folded)) == 1 else None


def input_units(name: str) -> list[str]:
    """The unit symbols a form offers for quantity ``name``: the canonical one first, then the usual larger and
    smaller ones (each accepted by :func:`unit_factor`)."""
    q = quantity(name)
    offered = {
        "mGy": ["mGy", "Gy"], "mGy.cm": ["mGy.cm", "Gy.cm"], "Gy.cm2": ["Gy.cm2", "dGy.cm2", "cGy.cm2", "mGy.cm2",
                                                                    "uGy.m2", "Gy.m2"],
        "s": ["s", "min"], "MBq": ["MBq", "GBq"], "mSv": ["mSv"],
    }.get(q.unit, [q.unit])
    return [unit_symbol(u) for u in offered]


def to_canonical_value(name: str, value: float, unit: str) -> float:
    """``value`` in ``unit`` converted to the canonical unit of ``name``; ValueError for a unit it does not accept."""
    factor = unit_factor(name, unit)
    if factor is None:
        raise ValueError(f"{unit!r} is not a unit of {quantity(name).label} (use {', '.join(input_units(name))})")
    return value * factor


def from_canonical_value(name: str, value: float, unit: str) -> float:
    factor = unit_factor(name, unit)
    if factor is None:
        raise ValueError(f"{unit!r} is not a unit of {quantity(name).label}")
    return value / factor


def modality_order(kinds) -> list[str]:
    """The modality types among ``kinds``, in classification order."""
    present = set(kinds or ())
    return [m for m in MODALITY_TYPES if m in present]
