"""How the DRL pages, charts and PDF print numbers: through the one formatter (``dosereg.core.display``), in the
quantity's canonical unit so a row's median, percentiles, mean and DRL read in the same unit."""

from __future__ import annotations

from dosereg.core import display
from dosereg.core.quantities import QUANTITIES

# A DRL is shown as published: four significant digits keep a local DRL of 1 234 mGy·cm from reading 1 230.
LIMIT_DIGITS = 4


def value_number(name: str, value) -> str:
    """A value of catalogue quantity ``name`` without its unit (for a column whose label names the unit)."""
    return display.show(name, value, switch=False).number


def value_text(name: str, value) -> str:
    """``290 mGy·cm``, or an em dash."""
    return display.format_quantity(name, value, switch=False)


def limit_number(value) -> str:
    return display.format_number(value, LIMIT_DIGITS)


def limit_text(name: str, value) -> str:
    """A DRL value with its unit, as published (up to four significant digits)."""
    number = limit_number(value)
    unit = QUANTITIES[name].unit_symbol
    return f"{number} {unit}" if number != display.MISSING and unit else number


def number_text(value) -> str:
    """A number that is not a catalogue quantity (a ratio, a weight limit)."""
    return display.format_number(value, 3)


STATUS_TEXT = {"above": "above DRL", "below": "below DRL", "insufficient_data": "insufficient data",
               "no_drl": "no DRL"}


def status_text(status: str) -> str:
    return STATUS_TEXT.get(status, status)


def quantity_label(name: str) -> str:
    """The catalogue label of a quantity (``DLP total``), or the name itself."""
    q = QUANTITIES.get(name)
    return q.label if q else name
