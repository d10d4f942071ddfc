"""Staff dosimetry configuration: dose limits, investigation levels, the effective-dose method and EPD matching.

Read from environment variables when first used (never at import time), else the defaults below.  Every value is
documented in docs/euratom.md ("Staff dose settings") and in the README.

| variable | default | meaning |
|---|---|---|
| DOSEREG_STAFF_EFFECTIVE_LIMIT_MSV | 20 | Art. 9(2): effective dose, mSv in a single year |
| DOSEREG_STAFF_EFFECTIVE_MODE | annual | ``annual`` (limit per year) or ``5year`` (Art. 9(2) derogation: at most 50 mSv in one year and 100 mSv in five consecutive years) |
| DOSEREG_STAFF_EYE_LIMIT_MSV | 20 | Art. 9(3)(a): lens of the eye, mSv a year |
| DOSEREG_STAFF_EYE_MODE | annual | ``annual`` or ``5year`` (100 mSv in 5 consecutive years, at most 50 mSv in one) |
| DOSEREG_STAFF_SKIN_LIMIT_MSV | 500 | Art. 9(3)(b): skin, mSv a year (averaged over any 1 cm²) |
| DOSEREG_STAFF_EXTREMITY_LIMIT_MSV | 500 | Art. 9(3)(c): extremities, mSv a year |
| DOSEREG_STAFF_INVESTIGATION_EFFECTIVE_MSV | 6 | investigation level for effective dose (empty = none) |
| DOSEREG_STAFF_INVESTIGATION_EYE_MSV | 15 | investigation level for the eye lens (empty = none) |
| DOSEREG_STAFF_INVESTIGATION_SKIN_MSV | 150 | investigation level for skin (empty = none) |
| DOSEREG_STAFF_INVESTIGATION_EXTREMITY_MSV | 150 | investigation level for extremities (empty = none) |
| DOSEREG_STAFF_PREGNANCY_LEVEL_MSV | 1 | Art. 10: investigation level for a declared pregnancy (empty = off) |
| DOSEREG_STAFF_DOUBLE_DOSIMETRY | (empty) | ``a,b`` coefficients of E = a·Hp(10)under + b·Hp(10)over; empty = effective dose from under-apron Hp(10) |
| DOSEREG_STAFF_DOUBLE_DOSIMETRY_SOURCE | (empty) | the publication the coefficients come from; REQUIRED when the formula is set |
| DOSEREG_STAFF_EYE_SURROGATE | hp007 | collar quantity used for the eye lens when no Hp(3) was measured: ``hp007`` or ``hp10`` |
| DOSEREG_STAFF_MATCH_DEFAULT_MIN | 60 | assumed length of a procedure without timed irradiation events (minutes) |
| DOSEREG_STAFF_MATCH_MARGIN_MIN | 10 | margin added on both sides of a procedure's time window (minutes) |
| DOSEREG_STAFF_OUTLIER_FACTOR | 3 | a staff-to-patient ratio above median × factor or below median / factor is flagged |
| DOSEREG_STAFF_OUTLIER_MIN_N | 5 | the room's usual ratio needs at least this many matched readings |

The default investigation levels are the thresholds of Art. 40(1) of 2013/59/Euratom for classifying category A
workers (6 mSv effective, 15 mSv eye lens, 150 mSv skin and extremities a year; three tenths of the limits).  They
are not in ../shared/reference/reference-data.md: check them against EUR-Lex and set your own.  No double-dosimetry
formula is built in: reference-data.md names none, so the site enters the coefficients and their source.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

ART9 = "Council Directive 2013/59/Euratom, Article 9 (dose limits for occupational exposure)"
ART40 = "2013/59/Euratom Art. 40(1) category A thresholds (default; verify against EUR-Lex)"
ART10 = "2013/59/Euratom Art. 10 (protection of pregnant workers: 1 mSv to the unborn child)"


@dataclass(frozen=True)
class Limit:
    quantity: str  # effective | eye_lens | skin | extremities
    label: str
    limit_msv: float
    mode: str  # annual | 5year
    investigation_msv: float | None
    source: str


@dataclass(frozen=True)
class StaffConfig:
    limits: dict[str, Limit]
    pregnancy_level_msv: float | None
    double_dosimetry: tuple[float, float] | None
    double_dosimetry_source: str
    eye_surrogate: str
    match_default_minutes: float
    match_margin_minutes: float
    outlier_factor: float
    outlier_min_n: int

    @property
    def effective_method(self) -> str:
        if self.double_dosimetry:
            a, b = self.double_dosimetry
            return f"E = {a:g}·Hp(10) under apron + {b:g}·Hp(10) over apron ({self.double_dosimetry_source})"
        return "E = Hp(10) under apron (approved dosimetry service)"


def _float(name: str, default: float | None, *, allow_empty: bool = False) -> float | None:
    raw = os.environ.get(name)
    if raw is None:
        return default
    raw = raw.strip()
    if raw == "":
        return None if allow_empty else default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ImproperlyConfigured(f"{name}={raw!r} must not be negative")
    return value


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, "").strip() or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def staff_config() -> StaffConfig:
    """The staff-dose configuration from the environment (raises ImproperlyConfigured on a bad value)."""
    limits = {
        "effective": Limit("effective", "Effective dose", _float("DOSEREG_STAFF_EFFECTIVE_LIMIT_MSV", 20.0),
                           _choice("DOSEREG_STAFF_EFFECTIVE_MODE", "annual", ("annual", "5year")),
                           _float("DOSEREG_STAFF_INVESTIGATION_EFFECTIVE_MSV", 6.0, allow_empty=True), ART9),
        "eye_lens": Limit("eye_lens", "Lens of the eye", _float("DOSEREG_STAFF_EYE_LIMIT_MSV", 20.0),
                          _choice("DOSEREG_STAFF_EYE_MODE", "annual", ("annual", "5year")),
                          _float("DOSEREG_STAFF_INVESTIGATION_EYE_MSV", 15.0, allow_empty=True), ART9),
        "skin": Limit("skin", "Skin", _float("DOSEREG_STAFF_SKIN_LIMIT_MSV", 500.0), "annual",
                      _float("DOSEREG_STAFF_INVESTIGATION_SKIN_MSV", 150.0, allow_empty=True), ART9),
        "extremities": Limit("extremities", "Extremities", _float("DOSEREG_STAFF_EXTREMITY_LIMIT_MSV", 500.0),
                             "annual", _float("DOSEREG_STAFF_INVESTIGATION_EXTREMITY_MSV", 150.0, allow_empty=True),
                             ART9),
    }
    formula = os.environ.get("DOSEREG_STAFF_DOUBLE_DOSIMETRY", "").strip()
    source = os.environ.get("DOSEREG_STAFF_DOUBLE_DOSIMETRY_SOURCE", "").strip()
    double = None
    if formula:
        try:
            a, b = (float(x) for x in formula.split(","))
        except ValueError:
            raise ImproperlyConfigured(
                f"DOSEREG_STAFF_DOUBLE_DOSIMETRY={formula!r} must be two numbers 'a,b' (E = a·Hu + b·Ho)") from None
        if not source:
            raise ImproperlyConfigured("DOSEREG_STAFF_DOUBLE_DOSIMETRY is set but DOSEREG_STAFF_DOUBLE_DOSIMETRY_SOURCE "
                                       "is empty: name the publication the coefficients come from")
        double = (a, b)
    return StaffConfig(
        limits=limits,
        pregnancy_level_msv=_float("DOSEREG_STAFF_PREGNANCY_LEVEL_MSV", 1.0, allow_empty=True),
        double_dosimetry=double,
        double_dosimetry_source=source,
        eye_surrogate=_choice("DOSEREG_STAFF_EYE_SURROGATE", "hp007", ("hp007", "hp10")),
        match_default_minutes=_float("DOSEREG_STAFF_MATCH_DEFAULT_MIN", 60.0),
        match_margin_minutes=_float("DOSEREG_STAFF_MATCH_MARGIN_MIN", 10.0),
        outlier_factor=_float("DOSEREG_STAFF_OUTLIER_FACTOR", 3.0) or 3.0,
        outlier_min_n=int(_float("DOSEREG_STAFF_OUTLIER_MIN_N", 5.0)),
    )
