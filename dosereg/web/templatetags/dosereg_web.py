"""Template filters for dose pages: numbers, quantities, units, person names."""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

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


@register.simple_tag(takes_context=True)
def study_list_rows(context, studies):
    """The study list's table rows, built in Python: the template loop was most of a 50-row page's server time (see
    dosereg/web/widgets.py for the measurement).  The markup is the same as the template's was; values are escaped."""
    from django.urls import reverse
    from django.utils.text import Truncator

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
        unit = s.equipment
        room = format_html('<br><span class="muted small">{}</span>', unit.room.name) if unit and unit.room else ""
        agd = ""
        if s.agd_left_mgy is not None or s.agd_right_mgy is not None:
            agd = f"{num(s.agd_left_mgy) or '–'} / {num(s.agd_right_mgy) or '–'}"
        rows.append(format_html(
            '<tr><td class="nowrap">{}{}</td>\n<td>{}</td>\n<td>{}{}</td>\n<td>{}{}</td>\n'
            '<td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td>\n'
            '<td class="num">{}</td>\n<td class="num">{}</td></tr>\n',
            date_cell, mark_safe(' <span class="badge demo">demo</span>') if s.demo else "",
            modality_label(s.modality_type),
            Truncator(s.study_description or "—").chars(48), exam,
            Truncator((unit.display_name if unit else "") or "—").chars(36), room,
            num(s.dlp_total_mgycm), num(s.max_ctdivol_mgy), num(s.kap_total_gycm2), num(s.ka_r_total_mgy), agd,
            num(s.activity_mbq)))
    return mark_safe("".join(rows))
