"""Template filters of the DRL pages (``drl.display``: the one formatter, units from the quantity catalogue)."""

from __future__ import annotations

from django import template

from drl import display

register = template.Library()


@register.filter
def drl_value(value, name):
    """A value of catalogue quantity ``name`` with its unit, in the canonical unit (``260 mGy·cm``)."""
    return display.value_text(name, value)


@register.filter
def drl_limit(value, name):
    """A DRL value with its unit, as published (``1,234 mGy·cm``)."""
    return display.limit_text(name, value)


@register.filter
def drl_number(value):
    """A ratio or a weight limit: three significant digits, never an exponent."""
    return display.number_text(value)


@register.filter
def drl_status(value):
    """``above DRL``, ``below DRL``, ``insufficient data``, ``no DRL``."""
    return display.status_text(value)


@register.filter
def drl_label(name):
    """The catalogue label of a quantity (``DLP total``)."""
    return display.quantity_label(name)
