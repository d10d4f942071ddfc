"""Template filters for dose pages.  Every number goes through the one formatter (``dosereg.core.display`` via
``dosereg.web.formatting``); labels, units and explanations come from the quantity catalogue."""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.utils.translation import gettext

from dosereg.core import display
from dosereg.core.quantities import MODALITY_LABELS, QUANTITIES, unit_symbol
from dosereg.web import formatting
from triggers.templatetags.triggers_display import person_name

register = template.Library()


@register.filter
def num(value, digits=3):
    """A number that is not a catalogue quantity (a count, a ratio): significant digits, never an exponent."""
    return formatting.number(value, int(digits))


@register.filter
def quantity(value, name):
    """A value of catalogue quantity ``name`` with its unit, switched where the catalogue says (7.69 Gy, 47:07 min)."""
    return formatting.quantity(name, value)


@register.filter
def cell(value, name):
    """A value in the canonical unit, for a table column whose header names the unit (``column_label``)."""
    return formatting.quantity(name, value, switch=False).removesuffix(f" {QUANTITIES[name].unit_symbol}")


@register.filter
def labelled(value, name):
    return formatting.labelled(name, value)


@register.filter
def qlabel(name):
    q = QUANTITIES.get(name)
    return gettext(q.label) if q else name


@register.filter
def qunit(name):
    q = QUANTITIES.get(name)
    return q.unit_symbol if q else ""


@register.filter
def qexplain(name):
    q = QUANTITIES.get(name)
    return gettext(q.explanation) if q else ""


@register.filter
def column_label(name):
    return display.column_label(name) if name in QUANTITIES else name


@register.filter
def unit(code):
    return unit_symbol(code or "")


@register.filter
def pn(value):
    """A DICOM person name (Family^Given^Middle^Prefix^Suffix) as 'Family, Given Middle'."""
    return person_name(value)


@register.filter
def get(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def attr(obj, name):
    return getattr(obj, name, None)


@register.filter
def modality_label(code):
    return gettext(MODALITY_LABELS[code]) if code in MODALITY_LABELS else (code or "—")


@register.filter
def words(code):
    """A code name for people: 'spiral_acquisition' -> 'Spiral acquisition'."""
    text = str(code or "").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


@register.filter
def severity(alert):
    if isinstance(alert, dict):
        return alert.get("severity") or "alert"
    return getattr(alert, "severity", "") or "alert"


def _cells(s) -> list[str]:
    agd = ""
    if s.agd_left_mgy is not None or s.agd_right_mgy is not None:
        agd = f"{cell(s.agd_left_mgy, 'agd_left_mgy')} / {cell(s.agd_right_mgy, 'agd_right_mgy')}"
    return [cell(s.dlp_total_mgycm, "dlp_total_mgycm"), cell(s.max_ctdivol_mgy, "max_ctdivol_mgy"),
            cell(s.kap_total_gycm2, "kap_total_gycm2"), cell(s.ka_r_total_mgy, "ka_r_total_mgy"), agd,
            cell(s.activity_mbq, "activity_mbq")]


@register.simple_tag(takes_context=True)
def study_list_rows(context, studies):
    """The study list's table rows, built in Python: the template loop was most of a 50-row page's server time (see
    dosereg/web/widgets.py for the measurement).  The markup is the same as the template's was; values are escaped."""
    user = context.get("user")
    linked = bool(user and user.has_perm("registry.view_study_detail"))
    rows = []
    for s in studies:
        date = s.study_date.isoformat() if s.study_date else ""
        if linked:
            date_cell = format_html('<a href="{}">{}</a>', reverse("study_detail", args=[s.pk]), date or "—")
        else:
            date_cell = date
        exam = format_html('<br><span class="muted small">{}</span>', s.standard_exam.name) if s.standard_exam else ""
        unit_ = s.equipment
        room = format_html('<br><span class="muted small">{}</span>', unit_.room.name) if unit_ and unit_.room else ""
        dlp, ctdi, kap, kar, agd, activity = _cells(s)
        rows.append(format_html(
            '<tr><td class="nowrap">{}{}</td>\n<td>{}</td>\n<td>{}{}</td>\n<td>{}{}</td>\n'
            '<td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td>\n'
            '<td class="num">{}</td>\n<td class="num">{}</td></tr>\n',
            date_cell, mark_safe(' <span class="badge demo">demo</span>') if s.demo else "",
            modality_label(s.modality_type),
            Truncator(s.study_description or "—").chars(48), exam,
            Truncator((unit_.display_name if unit_ else "") or "—").chars(36), room,
            dlp, ctdi, kap, kar, agd, activity))
    return mark_safe("".join(rows))


def _detail_value(value) -> str:
    if isinstance(value, dict):
        return "(" + detail_text(value) + ")"
    if isinstance(value, list | tuple):
        return ", ".join(_detail_value(v) for v in value) or "none"
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if value in (None, ""):
        return "—"
    return str(value)


@register.filter
def detail_text(detail) -> str:
    """An audit record's detail in words ("format: csv; filters: (modality: CT)"), never a Python dict."""
    if not isinstance(detail, dict):
        return _detail_value(detail)
    return "; ".join(f"{words(k).lower()}: {_detail_value(v)}" for k, v in detail.items())
