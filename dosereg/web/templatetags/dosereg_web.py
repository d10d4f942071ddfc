"""Template filters for dose pages: numbers, quantities, units, person names."""

from __future__ import annotations

from django import template

from dosereg.web import quantities

register = template.Library()


@register.filter
def num(value, digits=3):
    return quantities.fmt(value, int(digits))


@register.filter
def qlabel(field):
    q = quantities.QUANTITIES.get(field)
    return q.label if q else field


@register.filter
def qunit(field):
    q = quantities.QUANTITIES.get(field)
    return q.unit if q else ""


@register.filter
def qexplain(field):
    q = quantities.QUANTITIES.get(field)
    return q.explanation if q else ""


@register.filter
def unit(code):
    return quantities.unit_display(code or "")


@register.filter
def pn(value):
    """A DICOM person name (Family^Given^Middle^Prefix^Suffix) as 'Family, Given Middle'."""
    if not value:
        return ""
    parts = [p.strip() for p in str(value).split("=")[0].split("^")]
    family = parts[0]
    given = " ".join(p for p in parts[1:3] if p)
    return f"{family}, {given}" if given else family


@register.filter
def get(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def duration(seconds):
    if seconds is None:
        return ""
    m, s = divmod(round(float(seconds)), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


@register.filter
def modality_label(code):
    from dosereg.web.dose_text import MODALITY_LABELS

    return MODALITY_LABELS.get(code, code or "—")


@register.filter
def severity(alert):
    if not isinstance(alert, dict):
        return ""
    return alert.get("severity") or alert.get("level") or "alert"
