"""Unit conversion for the dose quantities of TID 10001-10015 (X-ray / CT RDSR) and TID 10021-10024 (RRDSR).

Every numeric content item carries its unit as a code in MeasurementUnitsCodeSequence; the standard uses UCUM
(DICOM PS3.16 Annex A template rows, e.g. TID 10003B "Gy" for Dose (RP), TID 10004 "Gy.m2" for DAP totals,
TID 10013 "mGy.cm" for DLP).  Vendors send non-UCUM spellings (``Gym2``, ``mGycm``, ``Gy.cm^2``, ``uAs``, scheme
``UCM``); the tables below list each spelling we accept explicitly, with its factor to DoseReg's canonical unit.
Nothing is guessed: a unit that is not in the table of a *typed* dose quantity refuses the object
(:class:`~dicomrx.dose_report.DoseParseError`).  Factors follow the UCUM prefix definitions (m = 1e-3, u = 1e-6,
c = 1e-2, d = 1e-1, k = 1e3, G = 1e9; 1 Ci = 3.7e10 Bq by definition).
"""

from __future__ import annotations

import math

from dicomrx.dose_report import DoseParseError, Quantity

# --- unit tables per dimension: unit code as sent -> factor to the canonical unit ------------------------------------

# Dose-area product, canonical Gy·cm².  PS3.16 TID 10003 / 10004 / 10007 use Gy.m2 (1 m² = 10 000 cm²).
KAP_UNITS = {
    "Gy.m2": 1e4, "Gym2": 1e4, "Gy.m^2": 1e4, "Gy*m2": 1e4, "Gy m2": 1e4,  # Gym2: Siemens (rdsr-codes.md §1.2)
    "mGy.m2": 10.0, "uGy.m2": 1e-2, "cGy.m2": 100.0, "dGy.m2": 1e3,
    "Gy.cm2": 1.0, "Gy.cm^2": 1.0, "Gycm2": 1.0, "Gy*cm2": 1.0,  # Gy.cm^2: Siemens private summary (Varic)
    "dGy.cm2": 0.1, "dGycm2": 0.1, "dGy.cm^2": 0.1,  # the unit of (0018,115E) in image headers (PS3.3 C.8.7.8)
    "cGy.cm2": 1e-2, "cGycm2": 1e-2, "cGy.cm^2": 1e-2,
    "mGy.cm2": 1e-3, "mGycm2": 1e-3, "mGy.cm^2": 1e-3,
    "uGy.cm2": 1e-6, "uGy.m^2": 1e-2, "uGym2": 1e-2,
}
# Absorbed dose / air kerma, canonical mGy (Dose (RP) is in Gy per TID 10003B; CTDIvol and AGD in mGy).
DOSE_UNITS = {"Gy": 1e3, "dGy": 100.0, "cGy": 10.0, "mGy": 1.0, "uGy": 1e-3}
# Dose-length product, canonical mGy·cm (TID 10013 / 10012: mGy.cm).  mGycm: GE, Siemens, Spectrum Dynamics.
DLP_UNITS = {
    "mGy.cm": 1.0, "mGycm": 1.0, "mGy*cm": 1.0, "mGy cm": 1.0, "mGy.cm1": 1.0,
    "Gy.cm": 1e3, "cGy.cm": 10.0, "dGy.cm": 100.0, "mGy.mm": 0.1, "mGy.m": 100.0,
}
# Time, canonical s.
TIME_UNITS = {"s": 1.0, "sec": 1.0, "ms": 1e-3, "us": 1e-6, "min": 60.0, "h": 3600.0, "d": 86400.0}
# Time, canonical ms (pulse width, TID 10003B row 9).
TIME_MS_UNITS = {"ms": 1.0, "s": 1e3, "us": 1e-3}
# Length, canonical mm.
LENGTH_UNITS = {"mm": 1.0, "cm": 10.0, "m": 1e3, "um": 1e-3, "dm": 100.0}
# Area, canonical m² (TID 10003B Collimated Field Area: m2).
AREA_UNITS = {"m2": 1.0, "m^2": 1.0, "cm2": 1e-4, "cm^2": 1e-4, "mm2": 1e-6, "mm^2": 1e-6, "dm2": 1e-2}
# Plane angle, canonical degree (UCUM "deg").
ANGLE_UNITS = {"deg": 1.0, "degree": 1.0, "rad": 180.0 / math.pi}
# Tube voltage, canonical kV.
KV_UNITS = {"kV": 1.0, "V": 1e-3, "kVp": 1.0}
# Tube current, canonical mA.
CURRENT_UNITS = {"mA": 1.0, "uA": 1e-3, "A": 1e3}
# Current-time product, canonical mAs.  TID 10003B Exposure is uA.s; Siemens/Hologic/GE send "uAs".
CHARGE_UNITS = {"mA.s": 1.0, "mAs": 1.0, "mA*s": 1.0, "uA.s": 1e-3, "uAs": 1e-3, "A.s": 1e3, "As": 1e3}
# Activity, canonical MBq (TID 10022 row 11: MBq).  1 mCi = 37 MBq.
ACTIVITY_UNITS = {"MBq": 1.0, "Bq": 1e-6, "kBq": 1e-3, "GBq": 1e3, "mCi": 37.0, "uCi": 0.037, "Ci": 37000.0}
# Effective / equivalent dose, canonical mSv (TID 10012 row 4: mSv).
EFFECTIVE_DOSE_UNITS = {"mSv": 1.0, "Sv": 1e3, "uSv": 1e-3}
# Rates, canonical 1/s (TID 10003B Pulse Rate: {pulse}/s; GE sends pulse/s).
RATE_UNITS = {"{pulse}/s": 1.0, "pulse/s": 1.0, "/s": 1.0, "1/s": 1.0, "Hz": 1.0, "{pulses}/s": 1.0, "{pulse}/min": 1 / 60}
# Dimensionless counts and ratios.  UCUM "1" and annotations in braces; CT-ESR-GE_Optima sends "X-ray sources".
COUNT_UNITS = {
    "1": 1.0, "{ratio}": 1.0, "ratio": 1.0, "{events}": 1.0, "{X-Ray sources}": 1.0, "{X-ray sources}": 1.0,
    "X-ray sources": 1.0, "X-Ray sources": 1.0, "{pulse}": 1.0, "{pulses}": 1.0, "{frames}": 1.0, "{frame}": 1.0,
    "{images}": 1.0, "{exposures}": 1.0, "no units": 1.0, "": 1.0,
}
# Half-value layer, canonical mm Al (TID 10003 mammography: mm).
HVL_UNITS = {"mm": 1.0, "mm[Al]": 1.0, "mm{Al}": 1.0, "cm": 10.0}

# --- canonical quantity name -> (unit table, strict) ---------------------------------------------------------------
# strict: an unknown unit refuses the object (rdsr-codes.md §3 rule 3: CTDIvol, DLP, KAP, Ka,r, times, AGD,
# activity, effective dose).  Non-strict quantities with an unknown unit are kept as raw content only.
QUANTITY_UNITS: dict[str, tuple[dict[str, float], bool]] = {
    "ctdivol_mgy": (DOSE_UNITS, True),
    "ctdiw_mgy": (DOSE_UNITS, True),
    "ssde_mgy": (DOSE_UNITS, True),
    "dlp_mgycm": (DLP_UNITS, True),
    "dlp_total_mgycm": (DLP_UNITS, True),
    "kap_gycm2": (KAP_UNITS, True),
    "kap_total_gycm2": (KAP_UNITS, True),
    "fluoro_kap_total_gycm2": (KAP_UNITS, True),
    "acquisition_kap_total_gycm2": (KAP_UNITS, True),
    "ka_r_mgy": (DOSE_UNITS, True),
    "ka_r_total_mgy": (DOSE_UNITS, True),
    "fluoro_ka_r_total_mgy": (DOSE_UNITS, True),
    "acquisition_ka_r_total_mgy": (DOSE_UNITS, True),
    "esak_mgy": (DOSE_UNITS, True),
    "agd_mgy": (DOSE_UNITS, True),
    "agd_left_mgy": (DOSE_UNITS, True),
    "agd_right_mgy": (DOSE_UNITS, True),
    "agd_both_mgy": (DOSE_UNITS, True),
    "exposure_time_s": (TIME_UNITS, True),
    "exposure_time_per_rotation_s": (TIME_UNITS, True),
    "irradiation_duration_s": (TIME_UNITS, True),
    "fluoro_time_total_s": (TIME_UNITS, True),
    "acquisition_time_total_s": (TIME_UNITS, True),
    "activity_mbq": (ACTIVITY_UNITS, True),
    "effective_dose_msv": (EFFECTIVE_DOSE_UNITS, True),
    "pulse_width_ms": (TIME_MS_UNITS, False),
    "scanning_length_mm": (LENGTH_UNITS, False),
    "nominal_single_collimation_mm": (LENGTH_UNITS, False),
    "nominal_total_collimation_mm": (LENGTH_UNITS, False),
    "water_equivalent_diameter_mm": (LENGTH_UNITS, False),
    "table_longitudinal_position_mm": (LENGTH_UNITS, False),
    "table_lateral_position_mm": (LENGTH_UNITS, False),
    "table_height_position_mm": (LENGTH_UNITS, False),
    "distance_source_to_isocenter_mm": (LENGTH_UNITS, False),
    "distance_source_to_detector_mm": (LENGTH_UNITS, False),
    "distance_source_to_rp_mm": (LENGTH_UNITS, False),
    "collimated_field_height_mm": (LENGTH_UNITS, False),
    "collimated_field_width_mm": (LENGTH_UNITS, False),
    "compression_thickness_mm": (LENGTH_UNITS, False),
    "hvl_mmal": (HVL_UNITS, False),
    "collimated_field_area_m2": (AREA_UNITS, False),
    "positioner_primary_angle_deg": (ANGLE_UNITS, False),
    "positioner_secondary_angle_deg": (ANGLE_UNITS, False),
    "kvp": (KV_UNITS, False),
    "tube_current_ma": (CURRENT_UNITS, False),
    "max_tube_current_ma": (CURRENT_UNITS, False),
    "exposure_mas": (CHARGE_UNITS, False),
    "pulse_rate_per_s": (RATE_UNITS, False),
    "number_of_pulses": (COUNT_UNITS, False),
    "number_of_frames": (COUNT_UNITS, False),
    "number_of_xray_sources": (COUNT_UNITS, False),
    "pitch_factor": (COUNT_UNITS, False),
    "ct_event_count": (COUNT_UNITS, False),
    "total_number_of_radiographic_frames": (COUNT_UNITS, False),
}

# UCUM scheme spellings (rdsr-codes.md §1.2: GE fluoroscopy sends "UCM").
UCUM_SCHEMES = frozenset({"UCUM", "UCM"})


def is_strict(quantity_name: str) -> bool:
    return QUANTITY_UNITS.get(quantity_name, ({}, False))[1]


def parse_number(raw: str) -> float:
    """Parse a DS / NumericValue string ("8.664e-005", " 12 ", "1,5" is refused)."""
    text = raw.strip()
    if "\\" in text:  # an illegal multi-valued decimal: take the first value
        text = text.split("\\", 1)[0].strip()
    value = float(text)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"not a finite number: {raw!r}")
    return value


def factor_for(quantity_name: str, unit_code: str) -> float | None:
    """The factor from ``unit_code`` to the canonical unit of ``quantity_name``, or None if unknown."""
    table = QUANTITY_UNITS.get(quantity_name)
    if table is None:
        return None
    return table[0].get(unit_code.strip())


def to_canonical(quantity_name: str, raw_value_str: str, unit_code: str | None, *, scheme: str = "UCUM") -> Quantity:
    """Convert a value sent as ``raw_value_str`` in ``unit_code`` to the canonical unit of ``quantity_name``.

    Raises DoseParseError for an unknown unit or an unreadable number (callers decide whether the quantity is typed).
    """
    if quantity_name not in QUANTITY_UNITS:
        raise DoseParseError(f"unknown quantity name {quantity_name!r}")
    if unit_code is None:
        raise DoseParseError(f"missing unit for {quantity_name}")
    if scheme and scheme.upper() not in UCUM_SCHEMES:
        raise DoseParseError(f"unit {unit_code!r} for {quantity_name} uses coding scheme {scheme!r}, not UCUM")
    factor = factor_for(quantity_name, unit_code)
    if factor is None:
        raise DoseParseError(f"unknown unit {unit_code!r} for {quantity_name}")
    try:
        value = parse_number(raw_value_str)
    except (ValueError, TypeError) as exc:
        raise DoseParseError(f"unreadable number {raw_value_str!r} for {quantity_name}") from exc
    return Quantity(value=value * factor, raw_value=raw_value_str.strip(), raw_unit=unit_code)


def fixed_unit(quantity_name: str, raw_value: str | float, unit_code: str) -> Quantity:
    """Convert an image-header value whose unit is fixed by PS3.3 (e.g. (0018,115E) dGy.cm2)."""
    return to_canonical(quantity_name, str(raw_value), unit_code)
