"""Size-specific dose estimate (SSDE) of a CT acquisition: SSDE = f(D) x CTDIvol.

AAPM Report 204 (2011): f = a·exp(−b·D), D the effective diameter in cm, with constants per CTDI phantom (32 cm body,
16 cm head phantom: paediatric body scans are often reported in the 16 cm phantom).  AAPM Report 220 (2014): the
water-equivalent diameter Dw replaces the effective diameter (Appendix A).  Paths, in order of preference:

1. Dw reported in the RDSR (CT Size-Specific Dose Estimation, TID 10013) -> CID 10023 ``113988``;
2. patient dimensions (the RDSR's Measured Lateral / AP Dimension, TID 10013 DCM 113931 / 113932) -> effective
   diameter from AAPM 204 Table 1A / 2A (lateral + AP, ``113936``), 1B / 2B (lateral, ``113934``) or 1C / 2C (AP,
   ``113935``), as CID 10023 defines those codes; lateral + AP when both are known;
3. age (AAPM 204 age table, 0-18 years, as transcribed in a public SSDE calculator: *verify*) -> ``113937``, for
   an acquisition with neither Dw nor dimensions; an adult beyond the table has no SSDE (``age_beyond_table``).

Constants and tables are data (``dosereg/registry/data/ssde_aapm204.json``, from ../shared/reference; the age table
from a public transcription, its source there) handed in as :class:`SsdeTables`.  Refused (None with a reason):
CTDIvol missing, phantom unknown, a diameter outside the fit range, an age beyond the table, head scans (AAPM Report
293 / McMillan et al. 2019 constants not read in the report or article, nor in two independent implementations
citing it: no cited constants; the search is recorded in the data file, ``head_ssde_aapm293``).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass

# DICOM PS3.16 CID 10023 Size Specific Dose Estimation Method for CT
AAPM_204_LATERAL, AAPM_204_AP, AAPM_204_LATERAL_AP = "113934", "113935", "113936"
AAPM_204_AGE, WATER_EQUIVALENT_DIAMETER = "113937", "113988"
CID_10023 = {
    AAPM_204_LATERAL: "AAPM 204 Lateral Dimension",
    AAPM_204_AP: "AAPM 204 AP Dimension",
    AAPM_204_LATERAL_AP: "AAPM 204 Sum of Lateral and AP Dimension",
    AAPM_204_AGE: "AAPM 204 Effective Diameter Estimated From Patient Age",
    WATER_EQUIVALENT_DIAMETER: "Estimated from Water Equivalent Diameter",
    "113989": "Arithmetic Average of SSDE(z)",
}
DIMENSION_METHOD = {"lateral": AAPM_204_LATERAL, "ap": AAPM_204_AP, "lateral_plus_ap": AAPM_204_LATERAL_AP}

NO_CTDIVOL, PHANTOM_UNKNOWN, HEAD = "no_ctdivol", "phantom_unknown", "head_scan"
OUT_OF_RANGE, NO_SIZE, AGE_BEYOND_TABLE = "diameter_out_of_fit_range", "no_patient_size", "age_beyond_table"


@dataclass(frozen=True)
class Fit:
    a: float
    b: float  # per cm
    d_min_cm: float
    d_max_cm: float

    def factor(self, d_cm: float) -> float | None:
        if not (self.d_min_cm <= d_cm <= self.d_max_cm):
            return None
        return self.a * math.exp(-self.b * d_cm)


@dataclass(frozen=True)
class SsdeTables:
    """AAPM 204 fits per phantom ('body' 32 cm, 'head' 16 cm), dimension -> effective diameter tables (cm), and an
    optional age -> effective diameter table (AAPM 204, 0-18 years; empty when no cited copy is shipped)."""

    fits: dict[str, Fit]
    dimensions: dict[str, tuple[tuple[float, float], ...]]  # 'lateral'|'ap'|'lateral_plus_ap' -> (dim, eff. diam)
    ages: tuple[tuple[float, float], ...] = ()  # (age years, effective diameter cm), ascending

    @classmethod
    def from_dict(cls, data: dict) -> SsdeTables:
        fits = {f["phantom"]: Fit(float(f["a"]), float(f["b"]), float(f["d_min_cm"]), float(f["d_max_cm"]))
                for f in data["aapm204_fit"]}
        dims = {name: tuple((float(r["dimension_cm"]), float(r["effective_diameter_cm"])) for r in rows)
                for name, rows in data["effective_diameter_from_dimensions"].items()}
        ages = tuple((float(r["age_years"]), float(r["effective_diameter_cm"]))
                     for r in data.get("effective_diameter_from_age", {}).get("rows", []))
        return cls(fits, dims, ages)


@dataclass(frozen=True)
class Ssde:
    value_mgy: float | None
    method: str = ""  # CID 10023 code
    diameter_cm: float | None = None
    factor: float | None = None
    reason: str = ""

    @property
    def method_meaning(self) -> str:
        return CID_10023.get(self.method, "")


def interpolate(table: tuple[tuple[float, float], ...], x: float) -> float | None:
    """Linear interpolation in an ascending (x, y) table; None outside it."""
    if not table or x < table[0][0] or x > table[-1][0]:
        return None
    xs = [row[0] for row in table]
    i = bisect_left(xs, x)
    if xs[i] == x:
        return table[i][1]
    (x0, y0), (x1, y1) = table[i - 1], table[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def water_equivalent_diameter_cm(*, mean_hu: float, roi_area_cm2: float) -> float:
    """AAPM Report 220: Aw = (mean HU / 1000 + 1) x A_ROI; Dw = 2·sqrt(Aw / pi)."""
    aw = (mean_hu / 1000.0 + 1.0) * roi_area_cm2
    return 2.0 * math.sqrt(aw / math.pi)


def _from_diameter(ctdivol_mgy: float, fit: Fit, d_cm: float, method: str) -> Ssde:
    f = fit.factor(d_cm)
    if f is None:
        return Ssde(None, method, d_cm, reason=OUT_OF_RANGE)
    return Ssde(ctdivol_mgy * f, method, d_cm, f)


def ssde(*, ctdivol_mgy: float | None, phantom: str, tables: SsdeTables, head: bool = False,
         dw_mm: float | None = None, lateral_cm: float | None = None, ap_cm: float | None = None,
         age_years: float | None = None) -> Ssde:
    """SSDE of one body acquisition by the first path that has its input (Dw in mm; lateral and AP dimensions in cm;
    age in years)."""
    if ctdivol_mgy is None or not math.isfinite(ctdivol_mgy):
        return Ssde(None, reason=NO_CTDIVOL)
    if head:
        return Ssde(None, reason=HEAD)
    fit = tables.fits.get(phantom)
    if fit is None:
        return Ssde(None, reason=PHANTOM_UNKNOWN)
    if dw_mm is not None and dw_mm > 0:
        return _from_diameter(ctdivol_mgy, fit, dw_mm / 10.0, WATER_EQUIVALENT_DIAMETER)
    dims = [("lateral_plus_ap", lateral_cm + ap_cm)] if lateral_cm and ap_cm else []
    dims += [("lateral", lateral_cm)] if lateral_cm else []
    dims += [("ap", ap_cm)] if ap_cm else []
    for name, value in dims[:1]:  # lateral + AP when both are known (AAPM 204 prefers it), else the one known
        d = interpolate(tables.dimensions.get(name, ()), value)
        if d is None:
            return Ssde(None, DIMENSION_METHOD[name], reason=OUT_OF_RANGE)
        return _from_diameter(ctdivol_mgy, fit, d, DIMENSION_METHOD[name])
    if age_years is not None and tables.ages:
        return _from_age(ctdivol_mgy, fit, tables.ages, age_years)
    return Ssde(None, reason=NO_SIZE)


def _from_age(ctdivol_mgy: float, fit: Fit, ages: tuple[tuple[float, float], ...], age_years: float) -> Ssde:
    """Effective diameter interpolated in the age table.  Its last row is an age in completed years (DICOM Patient's
    Age counts them), so up to a year past it takes that row; beyond, adult body size does not follow from age and
    clamping would give every adult the last row's diameter, so no SSDE rather than a guess."""
    last = ages[-1][0]
    if age_years >= last + 1.0:
        return Ssde(None, AAPM_204_AGE, reason=AGE_BEYOND_TABLE)
    d = interpolate(ages, min(age_years, last))
    if d is None:  # a negative age: no row
        return Ssde(None, AAPM_204_AGE, reason=OUT_OF_RANGE)
    return _from_diameter(ctdivol_mgy, fit, d, AAPM_204_AGE)
