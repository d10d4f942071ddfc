"""Value sanity at the border, from the catalogue: what may be stored as a dose, and what a study is flagged with.

Pure functions (dataclasses in, dataclasses out).  The registry applies them to every value of a parsed report
after unit conversion, before anything is stored:

- a non-finite value of any quantity, or a negative dose, time or activity, is **invalid**: not stored as a value
  (the value and unit as sent stay in ``raw``), recorded as a finding with its reason, and the study is flagged;
- a value above the catalogue's plausible maximum is **implausible**: stored, flagged, and left out of DRL medians
  until a physicist confirms it;
- a device's accumulated total that differs from the sum of its events by more than 5 % is kept as reported (the
  device total is the legal record of what the unit measured) and the study is flagged with both numbers;
- text: NUL characters removed, over-long values cut to the field's length with a finding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from dosereg.core.display import format_number
from dosereg.core.quantities import QUANTITIES

# Finding flags (Study.flags; each with its details in Study.flag_details)
INVALID_VALUE = "invalid_value"
IMPLAUSIBLE_VALUE = "implausible_value"
DEVICE_TOTAL_MISMATCH = "device_total_mismatch"
TEXT_TRUNCATED = "text_truncated"
CORRECTED = "corrected"
DEVICE_TOTAL_TOLERANCE = 0.05  # relative difference above which a device total and its events' sum disagree
# A value a million times above the plausible maximum is no measurement at all (a unit or encoding error is a factor
# of 10 to 10 000): it is invalid, not implausible, so no stored value can overflow a sum in the database.
IMPOSSIBLE_FACTOR = 1e6


@dataclass(frozen=True)
class Finding:
    """One thing found about a study's values: the flag, the quantity or field concerned, and why."""

    flag: str
    quantity: str = ""
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"flag": self.flag}
        if self.quantity:
            out["quantity"] = self.quantity
        if self.reason:
            out["reason"] = self.reason
        out.update({k: _json_number(v) for k, v in self.detail.items()})
        return out


def _json_number(value):
    """JSON has no inf or NaN: say what the value was in words instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("+infinity" if value > 0 else "-infinity")
    return value


def screen_value(name: str, value: float | None, *, where: str = "") -> Finding | None:
    """The finding for one canonical value of quantity ``name``, or None when it may be stored as it is."""
    if value is None:
        return None
    q = QUANTITIES.get(name)
    place = f" ({where})" if where else ""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return Finding(INVALID_VALUE, name, f"{_label(name)} is not a finite number{place}", {"value": value})
    if q is None:
        return None
    if value < 0 and not q.signed:
        return Finding(INVALID_VALUE, name, f"{q.label} cannot be negative{place}", {"value": value})
    if q.plausible_max is not None and abs(value) > q.plausible_max * IMPOSSIBLE_FACTOR:
        return Finding(INVALID_VALUE, name, f"{q.label} is beyond any physical value{place}",
                       {"value": value, "unit": q.unit_symbol})
    if q.plausible_max is not None and abs(value) > q.plausible_max:
        return Finding(IMPLAUSIBLE_VALUE, name,
                       f"{q.label} above the plausible maximum of {format_number(q.plausible_max)} {q.unit_symbol}{place}",
                       {"value": value, "unit": q.unit_symbol, "plausible_max": q.plausible_max})
    return None


def is_storable(finding: Finding | None) -> bool:
    """Whether a value with this finding is stored as a value (implausible ones are, invalid ones are not)."""
    return finding is None or finding.flag != INVALID_VALUE


def _label(name: str) -> str:
    q = QUANTITIES.get(name)
    return q.label if q else name


@dataclass(frozen=True)
class PlaneSums:
    """A report's accumulated totals of one plane beside the sums of its events' values of the same quantities."""

    plane: str
    totals: dict[str, float | None]  # accumulated column -> value as reported
    sums: dict[str, float | None]  # accumulated column -> sum of the events' values (None: no event value)
    resolution: dict[str, float] = field(default_factory=dict)  # half the last digit the unit wrote, canonical unit


# accumulated total -> the event quantity it sums (only where a total is by definition the events' sum)
SUMMED_BY_EVENTS = {"kap_total_gycm2": "kap_gycm2", "ka_r_total_mgy": "ka_r_mgy", "dlp_total_mgycm": "dlp_mgycm"}


def device_total_findings(planes: list[PlaneSums], *, tolerance: float = DEVICE_TOTAL_TOLERANCE) -> list[Finding]:
    """A finding for each device total that differs from its events' sum by more than ``tolerance`` (relative to
    the device total).  Reports whose events carry no value of the quantity are not compared."""
    out = []
    for plane in planes:
        for total_name, reported in plane.totals.items():
            summed = plane.sums.get(total_name)
            if reported is None or summed is None or not math.isfinite(reported) or not math.isfinite(summed):
                continue
            base = max(abs(reported), abs(summed))
            difference = abs(reported - summed)
            if base == 0 or difference / base <= tolerance or difference <= plane.resolution.get(total_name, 0.0):
                continue  # within 5 %, or within the rounding of the total as the unit wrote it
            q = QUANTITIES[total_name]
            out.append(Finding(
                DEVICE_TOTAL_MISMATCH, total_name,
                f"{q.label} reported by the unit differs from the sum of its events by "
                f"{abs(reported - summed) / abs(reported or summed) * 100:.0f} %; the unit's total is kept",
                {"reported": reported, "events_sum": summed, "unit": q.unit_symbol, "plane": plane.plane}))
    return out


def clean_text(value: Any) -> str:
    """Text as it may be stored: a string without NUL characters (PostgreSQL refuses them in text) and without lone
    surrogates (no database encodes them; each becomes '?')."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value)
    if not text.isascii():
        text = text.encode("utf-8", errors="replace").decode("utf-8")
    return text.replace("\x00", "")


def fit_text(value: Any, max_length: int) -> tuple[str, bool]:
    """``value`` cleaned and cut to ``max_length`` characters; the flag says whether it was cut."""
    text = clean_text(value)
    if len(text) <= max_length:
        return text, False
    return text[:max_length], True
