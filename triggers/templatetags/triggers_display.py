"""Template filters of the triggers pages: every number through the catalogue's formatter (dosereg.core.display)."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from dosereg.core.display import format_number, format_quantity
from dosereg.core.quantities import QUANTITIES, unit_symbol
from triggers.models import Alert

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


def person_name(value) -> str:
    """A DICOM person name (Family^Given^Middle^Prefix^Suffix, alphabetic group) as 'Family, Given Middle'."""
    if not value:
        return ""
    parts = [p.strip() for p in str(value).split("=")[0].split("^")]
    given = " ".join(p for p in parts[1:3] if p)
    return f"{parts[0]}, {given}" if given else parts[0]


@register.filter
def patient_ref(patient) -> str:
    """A patient as the site shows patients: the ID (the keyed pseudonym when pseudonymisation is on, shortened
    with the whole ID in the tooltip) and the name where the registry holds one."""
    if patient is None:
        return "—"
    pid = patient.patient_id or ""
    short = pid if len(pid) <= 24 else f"{pid[:23]}…"
    name = person_name(patient.name)
    return format_html('<span class="patient-ref"><span class="mono" title="{}">{}</span>{}{}</span>', pid, short,
                       mark_safe(' <span class="badge">pseudonym</span>') if patient.pseudonymised else "",
                       format_html(" · {}", name) if name else "")


@register.filter
def words(code) -> str:
    """A code name for people: 'follow_up' -> 'Follow up'."""
    text = str(code or "").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


@register.filter
def state_label(state) -> str:
    """An alert state in words, as the alert's own choices name it."""
    return dict(Alert.STATES).get(state) or words(state)


@register.filter
def iso_date(value) -> str:
    """A date (or an ISO date string from a JSON snapshot) as YYYY-MM-DD, the one date format of the site."""
    if value in (None, ""):
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return value.date().isoformat() if isinstance(value, dt.datetime) else value.isoformat()
    return str(value)[:10]


@register.filter
def unit(code) -> str:
    """A unit code as people write it ('Gy.cm2' -> 'Gy·cm²')."""
    return unit_symbol(code or "")
