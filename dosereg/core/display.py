"""The one formatter: every page, PDF, export label, dose text and patient sheet prints numbers through it.

Rules (from the catalogue's :class:`~dosereg.core.quantities.Display`): a set number of significant digits (3 by
default, never an exponent, no trailing zeros the value does not have), unit switching above a threshold
(7 689 mGy -> 7.69 Gy), seconds as minutes and seconds from one minute (2 827 s -> 47:07 min), and the site's
thousands and decimal separators.  A value that is missing or not finite prints as an em dash, never as ``inf``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from dosereg.core.quantities import QUANTITIES, unit_symbol

MISSING = "—"


@dataclass(frozen=True)
class Separators:
    """Thousands and decimal separators (the web layer passes the active locale's)."""

    thousands: str = ","
    decimal: str = "."


PLAIN = Separators()


def _group(digits: str, sep: str) -> str:
    if not sep or len(digits) <= 3:
        return digits
    head = len(digits) % 3 or 3
    return digits[:head] + "".join(sep + digits[i:i + 3] for i in range(head, len(digits), 3))


def format_number(value, significant: int = 3, *, seps: Separators = PLAIN) -> str:
    """``value`` rounded to ``significant`` digits, in positional notation (integers keep all their digits:
    2 460 stays 2,460; 0.00004688 prints as 0.0000469)."""
    if value is None or isinstance(value, bool):
        return MISSING
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond a float's range
        return MISSING
    if not math.isfinite(number):
        return MISSING
    if number == 0:
        return "0"
    exponent = math.floor(math.log10(abs(number)))
    exact = Decimal(repr(number))
    with localcontext() as ctx:
        ctx.prec = 400  # room for 1e308 written out in full
        if exponent + 1 > significant:  # 2 463.7 -> 2 460: keep the magnitude, drop false precision
            step = Decimal(10) ** (exponent + 1 - significant)
            rounded = (exact / step).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * step
        else:
            rounded = exact.quantize(Decimal(1).scaleb(-(significant - 1 - exponent)), rounding=ROUND_HALF_EVEN)
    text = f"{rounded:f}"
    sign = "-" if text.startswith("-") else ""
    text = text.lstrip("-")
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    out = _group(whole, seps.thousands)
    if frac:
        out += seps.decimal + frac
    return sign + out if out != "0" else "0"


def _clock(seconds: float) -> str:
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d} h"
    return f"{minutes}:{secs:02d} min"


@dataclass(frozen=True)
class Shown:
    """A value as displayed: the number's text and its unit symbol (the unit may be switched, e.g. Gy)."""

    number: str
    unit: str

    def __str__(self) -> str:
        if self.number == MISSING or not self.unit:
            return self.number
        return f"{self.number} {self.unit}"


def show(name: str, value, *, switch: bool = True, seps: Separators = PLAIN) -> Shown:
    """Quantity ``name``'s canonical ``value`` as people read it.  ``switch=False`` keeps the canonical unit (for
    a table column whose header names the unit)."""
    q = QUANTITIES[name]
    rule = q.display
    if value is None or isinstance(value, bool):
        return Shown(MISSING, q.unit_symbol)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return Shown(MISSING, q.unit_symbol)
    if not math.isfinite(number):
        return Shown(MISSING, q.unit_symbol)
    if switch and rule.clock and abs(number) >= 60:
        return Shown(_clock(number), "")
    if switch:
        for threshold, factor, symbol in reversed(rule.larger):
            if abs(number) >= threshold:
                return Shown(format_number(number * factor, rule.significant, seps=seps), symbol)
    return Shown(format_number(number, rule.significant, seps=seps), q.unit_symbol)


def format_quantity(name: str, value, *, switch: bool = True, seps: Separators = PLAIN) -> str:
    """``"7.69 Gy"``, ``"2,460 mGy·cm"``, ``"47:07 min"``, or an em dash."""
    return str(show(name, value, switch=switch, seps=seps))


def format_labelled(name: str, value, *, seps: Separators = PLAIN) -> str:
    """``"DLP 2,460 mGy·cm"``: the quantity's symbol, value and unit."""
    return f"{QUANTITIES[name].symbol} {format_quantity(name, value, seps=seps)}"


def format_raw(raw_value, raw_unit: str, *, significant: int = 4, seps: Separators = PLAIN) -> str:
    """A value exactly as the X-ray system reported it, in its own unit, rounded only for reading:
    ``("0.04688100000000", "Gy.m2")`` -> ``"0.04688 Gy·m²"``."""
    number = format_number(raw_value, significant, seps=seps)
    symbol = unit_symbol(raw_unit or "")
    return f"{number} {symbol}" if symbol and number != MISSING else number


def column_label(name: str) -> str:
    """A table or spreadsheet header: ``"DLP total (mGy·cm)"``."""
    q = QUANTITIES[name]
    return f"{q.label} ({q.unit_symbol})" if q.unit_symbol else q.label


def format_change(name: str, old, new, *, seps: Separators = PLAIN) -> str:
    """A correction for people: ``"DLP 236.1 → 177.3 mGy·cm"`` (both in the same unit, one more digit)."""
    q = QUANTITIES[name]
    digits = q.display.significant + 1
    return (f"{q.symbol} {format_number(old, digits, seps=seps)} → {format_number(new, digits, seps=seps)} "
            f"{q.unit_symbol}").rstrip()
