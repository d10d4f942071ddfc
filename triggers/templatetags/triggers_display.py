"""Template filters of the triggers pages: every number through the catalogue's formatter (dosereg.core.display)."""

from __future__ import annotations

from django import template

from dosereg.core.display import format_number, format_quantity
from dosereg.core.quantities import QUANTITIES

register = template.Library()


@register.filter
def quantity(value, name: str) -> str:
    """``{{ alert.value|quantity:alert.quantity }}`` -> "5.2 Gy" (unit switched and shown); a name outside the
    catalogue prints the bare number."""
    return format_quantity(name, value) if name in QUANTITIES else format_number(value)


@register.filter
def number(value) -> str:
    """``{{ rule.threshold|number }}``: a number without exponent or false precision (its unit is printed beside)."""
    return format_number(value)
