"""The one formatter (``dosereg.core.display``) with the active locale's separators: what pages, charts and the
dose text print numbers through."""

from __future__ import annotations

from django.conf import settings
from django.utils.formats import get_format

from dosereg.core import display
from dosereg.core.display import PLAIN, Separators


def separators() -> Separators:
    """The active locale's thousands and decimal separators when the site groups thousands
    (``USE_THOUSAND_SEPARATOR``), else DoseReg's defaults (1,234.5): never a locale decimal comma beside a default
    thousands comma."""
    if not settings.USE_THOUSAND_SEPARATOR:
        return PLAIN
    return Separators(thousands=str(get_format("THOUSAND_SEPARATOR")), decimal=str(get_format("DECIMAL_SEPARATOR")))


def number(value, significant: int = 3) -> str:
    return display.format_number(value, significant, seps=separators())


def quantity(name: str, value, *, switch: bool = True) -> str:
    return display.format_quantity(name, value, switch=switch, seps=separators())


def labelled(name: str, value) -> str:
    return display.format_labelled(name, value, seps=separators())


def raw(value, unit: str) -> str:
    return display.format_raw(value, unit, seps=separators())


def change(name: str, old, new) -> str:
    return display.format_change(name, old, new, seps=separators())
