"""The DRL comparison rules (ICRP Publication 135, 2017), as pure functions: no ORM, no I/O.

- The DRL quantity of a unit (room, facility) is the **median** of its patient distribution; the 75th percentile and
  the mean are shown beside it (ICRP 135 glossary, "DRL quantity"; national DRLs are the 75th percentile of
  facility medians).
- Patients: **adults** (age 18 or over, or age unknown); when the site turns on the standard-size option, only
  patients whose weight is **known and inside the band** (default 50-90 kg, ICRP 135 glossary "Standard-size adult":
  about 70 +/- 10 kg, e.g. by keeping patients of 50-90 kg).
- A DRL quantity is keyed by its catalogue key (``dosereg.core.quantities``: ``dlp_total_mgycm``, ``ctdivol_mgy``,
  ``kap_total_gycm2``, ``ka_r_total_mgy``, ``agd_mgy``, ``activity_mbq``), as trigger rules key it.  Per examination,
  a study's value is its study column (``Study.dlp_total_mgycm`` ...); per acquisition, each current,
  **non-localizer** irradiation event's event column (``IrradiationEvent.dlp_mgycm``; CTDIvol is per sequence in the
  UK NDRLs).
- A study whose values await a physicist's confirmation (``Study.values_unconfirmed``: an implausible value) is left
  out of the medians and counted apart; an invalid value is stored as NULL and drops out by itself.
- A **minimum number of patients** (studies contributing a value) below which no status is given. Its basis: the
  site setting ``SiteSettings.drl_min_patients``, default 20. ICRP 135 itself was not read on this point; "at least
  20 patients per room" is the figure commonly quoted, not a confirmed ICRP requirement (reference-data.md 3.1).
- Percentiles are interpolated linearly between order statistics, as PostgreSQL ``percentile_cont`` does (and
  ``statistics.quantiles(..., method="inclusive")``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from dosereg.core.quantities import DRL_QUANTITIES, QUANTITIES, unit_factor

ADULT_AGE_YEARS = 18
PER_EXAMINATION, PER_ACQUISITION = "examination", "acquisition"
PER_CHOICES = [(PER_EXAMINATION, "per examination"), (PER_ACQUISITION, "per acquisition")]

# quantities compared for every mapped examination of a modality, DRL or not (status no_drl without one)
DEFAULT_QUANTITIES = {
    "CT": [("dlp_total_mgycm", PER_EXAMINATION), ("ctdivol_mgy", PER_ACQUISITION)],
    "fluoroscopy": [("kap_total_gycm2", PER_EXAMINATION)],
    "radiography": [("kap_total_gycm2", PER_EXAMINATION)],
    "mammography": [("agd_mgy", PER_ACQUISITION)],
    "nuclear_medicine": [("activity_mbq", PER_EXAMINATION)],
}

# Projections a DRL per radiograph (per image) may be set for (national tables give chest PA and lateral, lumbar
# spine AP and lateral ..., mammography cranio-caudal and medio-lateral oblique apart).  Compared with the event's
# View Position (DICOM (0018,5101): AP, PA, LL, RL, CC, MLO ...), a left or right lateral counting as LAT.
VIEW_CHOICES = [("PA", "PA"), ("AP", "AP"), ("AP/PA", "AP or PA"), ("LAT", "lateral"), ("CC", "cranio-caudal (CC)"),
                ("MLO", "medio-lateral oblique (MLO)")]
VIEW_SYNONYMS = {"PA": ("PA",), "AP": ("AP",), "AP/PA": ("AP", "PA"), "LAT": ("LAT", "LL", "RL", "LATERAL"),
                 "CC": ("CC",), "MLO": ("MLO",)}

STATUS_ABOVE, STATUS_BELOW = "above", "below"
STATUS_INSUFFICIENT, STATUS_NO_DRL = "insufficient_data", "no_drl"


class DrlValidationError(ValueError):
    """A DRL entry, band or file that cannot be accepted (the message says why)."""


def quantity_choices() -> list[tuple[str, str]]:
    """The quantities a DRL may be set for, keyed by their catalogue key (a callable: the model field's choices
    follow the catalogue without a migration)."""
    return [(key, QUANTITIES[key].label) for key in DRL_QUANTITIES]


def drl_quantity(name: str) -> str | None:
    """The DRL key of a quantity named in a DRL file: its catalogue key, or None.  An event column name whose
    quantity has a study total is accepted for it (``dlp_mgycm``, ``kap_gycm2``, ``ka_r_mgy``: drl's keys before
    the catalogue, still found in sites' files)."""
    q = QUANTITIES.get((name or "").strip())
    return q.key if q is not None and q.key in DRL_QUANTITIES else None


def value_column(quantity: str, per: str) -> str | None:
    """The registry column compared for a DRL quantity: per examination the study column, per acquisition the
    event column (itself a catalogue name, whose label and display the reports use); None when the registry does not
    keep the quantity that way (CTDIvol and AGD have no study value)."""
    q = QUANTITIES.get(quantity)
    if q is None or quantity not in DRL_QUANTITIES:
        return None
    return q.study_column if per == PER_EXAMINATION else q.event_column if per == PER_ACQUISITION else None


@dataclass(frozen=True)
class CheckedEntry:
    """A DRL entry's quantity key, value and unit, in the catalogue's canonical unit."""

    quantity: str
    value: float
    unit: str


def entry_check(*, quantity: str, unit: str, per: str, value: float | None) -> CheckedEntry:
    """Validate one DRL entry and convert its value to the canonical unit (any unit the catalogue accepts for the
    quantity: ``Gy·cm`` for DLP is multiplied by 1 000); raises DrlValidationError with a clear message."""
    key = drl_quantity(quantity)
    if key is None:
        raise DrlValidationError(f"unknown quantity {quantity!r} (one of {', '.join(DRL_QUANTITIES)})")
    if per not in (PER_EXAMINATION, PER_ACQUISITION):
        raise DrlValidationError(f"per must be {PER_EXAMINATION!r} or {PER_ACQUISITION!r}, not {per!r}")
    q = QUANTITIES[key]
    factor = unit_factor(key, unit or "")
    if factor is None:
        raise DrlValidationError(f"unit {unit!r} does not fit {key} (expected {q.unit_symbol})")
    if value_column(key, per) is None:
        raise DrlValidationError(f"{key} cannot be compared per {per} (the registry keeps it per acquisition)")
    if value is None or not math.isfinite(value) or value <= 0:
        raise DrlValidationError(f"value {value!r} must be a positive number")
    return CheckedEntry(quantity=key, value=value * factor, unit=q.unit_symbol)


@dataclass(frozen=True)
class Band:
    """A patient group: ``adult`` or a band with lower-inclusive / upper-exclusive age and weight limits."""

    label: str
    age_min: float | None = None
    age_max: float | None = None
    weight_min: float | None = None
    weight_max: float | None = None

    @property
    def is_adult(self) -> bool:
        return self.label == "adult"


def bands_check(bands: Sequence[Band]) -> None:
    """Refuse overlapping bands for one examination and quantity (a patient must fall in one group at most)."""
    for i, a in enumerate(bands):
        if a.is_adult:
            if any(x is not None for x in (a.age_min, a.age_max, a.weight_min, a.weight_max)):
                raise DrlValidationError("the 'adult' group takes no age or weight limits (it is age >= 18 or unknown)")
            continue
        if all(x is None for x in (a.age_min, a.age_max, a.weight_min, a.weight_max)):
            raise DrlValidationError(f"band {a.label!r} has no age or weight limits")
        for lo, hi, what in ((a.age_min, a.age_max, "age"), (a.weight_min, a.weight_max, "weight")):
            if lo is not None and hi is not None and lo >= hi:
                raise DrlValidationError(f"band {a.label!r}: {what} lower limit {lo} is not below upper limit {hi}")
        if a.age_min is not None and a.age_min >= ADULT_AGE_YEARS:
            raise DrlValidationError(f"band {a.label!r} lies inside the adult group; use patient group 'adult'")
        for b in bands[i + 1:]:
            if b.is_adult:
                continue
            if _overlap(a.age_min, a.age_max, b.age_min, b.age_max) and _overlap(
                    a.weight_min, a.weight_max, b.weight_min, b.weight_max):
                raise DrlValidationError(f"bands {a.label!r} and {b.label!r} overlap")


def thickness_check(lo: float | None, hi: float | None, *, per: str) -> None:
    """A compressed-breast-thickness band (mm; lower inclusive, upper exclusive, like the age bands): per image only
    (each exposure's own thickness is compared), at least one limit, the lower below the upper."""
    if lo is None and hi is None:
        return
    if per != PER_ACQUISITION:
        raise DrlValidationError("a compressed breast thickness band is set only for a DRL per image (per acquisition)")
    for limit in (lo, hi):
        if limit is not None and (not math.isfinite(limit) or limit < 0):
            raise DrlValidationError(f"thickness limit {limit!r} must be a number of millimetres, 0 or more")
    if lo is not None and hi is not None and lo >= hi:
        raise DrlValidationError(f"thickness lower limit {lo:g} mm is not below the upper limit {hi:g} mm")


def thickness_overlap(a: tuple[float | None, float | None], b: tuple[float | None, float | None]) -> bool:
    """Whether two thickness bands share a thickness (no band at all: every thickness)."""
    return _overlap(*a, *b)


def thickness_text(lo: float | None, hi: float | None) -> str:
    """``CBT 40-<60 mm`` (upper limit exclusive), ``CBT >=60 mm``, ``CBT <40 mm``; "" for no band."""
    if lo is None and hi is None:
        return ""
    mm = QUANTITIES["compression_thickness_mm"].unit_symbol  # the catalogue's unit of the thickness
    if hi is None:
        return f"CBT >={lo:g} {mm}"
    if lo is None:
        return f"CBT <{hi:g} {mm}"
    return f"CBT {lo:g}-<{hi:g} {mm}"


def _overlap(lo1, hi1, lo2, hi2) -> bool:
    lo1 = -math.inf if lo1 is None else lo1
    lo2 = -math.inf if lo2 is None else lo2
    hi1 = math.inf if hi1 is None else hi1
    hi2 = math.inf if hi2 is None else hi2
    return lo1 < hi2 and lo2 < hi1


def is_adult(age_years: float | None) -> bool:
    """ICRP 135 compares adults; a study whose age is unknown is counted as adult (most dose objects of adults
    omit nothing, but some send no age at all; leaving them out would empty whole units)."""
    return age_years is None or age_years >= ADULT_AGE_YEARS


def in_standard_size(weight_kg: float | None, weight_min_kg: float, weight_max_kg: float) -> bool:
    """Standard-size rule: weight known and inside [min, max] (both inclusive)."""
    return weight_kg is not None and weight_min_kg <= weight_kg <= weight_max_kg


def in_band(band: Band, age_years: float | None, weight_kg: float | None) -> bool:
    if band.is_adult:
        return is_adult(age_years)
    if band.age_min is not None or band.age_max is not None:
        if age_years is None:
            return False
        if band.age_min is not None and age_years < band.age_min:
            return False
        if band.age_max is not None and age_years >= band.age_max:
            return False
    if band.weight_min is not None or band.weight_max is not None:
        if weight_kg is None:
            return False
        if band.weight_min is not None and weight_kg < band.weight_min:
            return False
        if band.weight_max is not None and weight_kg >= band.weight_max:
            return False
    return True


def percentile_positions(n: int, p: float) -> tuple[int, int, float]:
    """0-based order-statistic positions (lo, hi) and the fraction between them for ``percentile_cont(p)``."""
    h = (n - 1) * p
    lo = math.floor(h)
    return lo, min(lo + 1, n - 1), h - lo


def percentile_cont(sorted_values: Sequence[float], p: float) -> float | None:
    if not sorted_values:
        return None
    lo, hi, frac = percentile_positions(len(sorted_values), p)
    return sorted_values[lo] + frac * (sorted_values[hi] - sorted_values[lo])


def comparison_status(*, median: float | None, drl: float | None, n_patients: int, min_patients: int) -> str:
    """``no_drl`` without a DRL; ``insufficient_data`` below the minimum number of patients; else ``above`` when
    the median exceeds the DRL (ICRP 135: a median above the DRL calls for a review), ``below`` otherwise."""
    if drl is None:
        return STATUS_NO_DRL
    if median is None or n_patients < max(min_patients, 1):
        return STATUS_INSUFFICIENT
    return STATUS_ABOVE if median > drl else STATUS_BELOW


def ratio(median: float | None, reference: float | None) -> float | None:
    if median is None or not reference:
        return None
    return median / reference
