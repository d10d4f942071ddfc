"""Unit conversion of parsed values to the canonical units of the quantity catalogue (``dosereg.core.quantities``,
which holds the accepted unit codes and their factors), for TID 10001-10015 (X-ray / CT RDSR) and TID 10021-10024.

Every numeric content item carries its unit as a code in MeasurementUnitsCodeSequence; the standard uses UCUM
(DICOM PS3.16 Annex A template rows, e.g. TID 10003B "Gy" for Dose (RP), TID 10004 "Gy.m2" for DAP totals,
TID 10013 "mGy.cm" for DLP).  Vendors send non-UCUM spellings (``Gym2``, ``mGycm``, ``Gy.cm^2``, ``uAs``, scheme
``UCM``); the catalogue lists each spelling we accept explicitly, with its factor to DoseReg's canonical unit.
Nothing is guessed: a unit that is not in the table of a *typed* dose quantity refuses the object
(:class:`~dosereg.core.dose_report.DoseParseError`).  Factors follow the UCUM prefix definitions (m = 1e-3, u = 1e-6,
c = 1e-2, d = 1e-1, k = 1e3, G = 1e9; 1 Ci = 3.7e10 Bq by definition).
"""

from __future__ import annotations

import re

from dosereg.core.dose_report import DoseParseError, Quantity
from dosereg.core.quantities import QUANTITIES, UCUM_SCHEMES


def is_strict(quantity_name: str) -> bool:
    q = QUANTITIES.get(quantity_name)
    return bool(q and q.strict)


# A DS / NumericValue (PS3.5 §6.2: "+1.5e-3"), or the words a FloatingPointValue prints as (nan, inf).  Python's
# float() alone would also take "1_000" and non-ASCII digits, which no DICOM number is.
_NUMBER = re.compile(r"[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|nan|inf|infinity)", re.IGNORECASE | re.ASCII)


def parse_number(raw: str) -> float:
    """Parse a DS / NumericValue string ("8.664e-005", " 12 "; "1,5" and "abc" raise ValueError).

    Non-finite and negative values are returned as they are: the parser reports what the object says, and the
    registry's border (``dosereg.core.sanity``) records such a value as invalid with its reason.
    """
    text = raw.strip()
    if "\\" in text:  # an illegal multi-valued decimal: take the first value
        text = text.split("\\", 1)[0].strip()
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"not a number: {raw!r}")
    return float(text)


def factor_for(quantity_name: str, unit_code: str) -> float | None:
    """The factor from ``unit_code`` to the canonical unit of ``quantity_name``, or None if unknown."""
    q = QUANTITIES.get(quantity_name)
    if q is None:
        return None
    return q.units.get(unit_code.strip())


def to_canonical(quantity_name: str, raw_value_str: str, unit_code: str | None, *, scheme: str = "UCUM") -> Quantity:
    """Convert a value sent as ``raw_value_str`` in ``unit_code`` to the canonical unit of ``quantity_name``.

    Raises DoseParseError for an unknown unit or an unreadable number (callers decide whether the quantity is typed);
    a non-finite or negative value is converted and returned, never refused here.
    """
    if quantity_name not in QUANTITIES:
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
    # beyond the float range the product is inf (1e308 Gy.m2 -> Gy.cm2): passed on for the registry to record
    return Quantity(value=value * factor, raw_value=raw_value_str.strip(), raw_unit=unit_code)


def fixed_unit(quantity_name: str, raw_value: str | float, unit_code: str) -> Quantity:
    """Convert an image-header value whose unit is fixed by PS3.3 (e.g. (0018,115E) dGy.cm2)."""
    return to_canonical(quantity_name, str(raw_value), unit_code)
