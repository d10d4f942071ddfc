"""A study's findings (``Study.flags`` and ``Study.flag_details``, see ``dosereg.core.sanity``) as sentences for the
study page: what was found, with the numbers through the one formatter."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dosereg.core.quantities import QUANTITIES
from dosereg.registry.models import Study
from dosereg.web import formatting

FLAG_LABELS = {
    "invalid_value": gettext_lazy("Invalid value (not stored)"),
    "implausible_value": gettext_lazy("Implausible value"),
    "device_total_mismatch": gettext_lazy("Device total differs from its events"),
    "text_truncated": gettext_lazy("Text shortened"),
    "corrected": gettext_lazy("Corrected report"),
    "partial_overlap": gettext_lazy("Reports overlap partly"),
    "patient_mismatch": gettext_lazy("Reports name different patients"),
    "sop_instance_uid_reused": gettext_lazy("SOP Instance UID reused"),
}


@dataclass(frozen=True)
class FindingLine:
    flag: str
    label: str
    text: str


def _value(name: str, value, unit: str = "") -> str:
    if name in QUANTITIES:
        return formatting.quantity(name, value)
    return f"{formatting.number(value)} {unit}".strip()


def _label(name: str) -> str:
    q = QUANTITIES.get(name)
    return q.label if q else name


def _corrected(d: dict) -> str:
    name, when = d.get("quantity", ""), str(d.get("date") or "")[:10]
    what = formatting.change(name, d.get("old"), d.get("new")) if name in QUANTITIES else name
    return _("corrected on %(date)s: %(change)s") % {"date": when or "?", "change": what}


def _mismatch(d: dict) -> str:
    name, unit = d.get("quantity", ""), str(d.get("unit") or "")
    plane = f" ({_('plane')} {d['plane']})" if d.get("plane") else ""
    return _("%(label)s%(plane)s: the unit reported %(reported)s, its events add up to %(summed)s; the unit's total "
             "is kept") % {"label": _label(name), "plane": plane, "reported": _value(name, d.get("reported"), unit),
                           "summed": _value(name, d.get("events_sum"), unit)}


def _implausible(d: dict) -> str:
    name = d.get("quantity", "")
    if d.get("confirmed"):
        return _("%(label)s %(value)s is above the plausible maximum of %(max)s; confirmed by %(who)s on %(date)s") % {
            "label": _label(name), "value": _value(name, d.get("value")), "max": _value(name, d.get("plausible_max")),
            "who": d.get("confirmed_by") or "?", "date": str(d.get("confirmed_at") or "")[:10]}
    return _("%(label)s %(value)s is above the plausible maximum of %(max)s; it awaits a physicist's confirmation and "
             "is left out of DRL medians until then") % {
        "label": _label(name), "value": _value(name, d.get("value")), "max": _value(name, d.get("plausible_max"))}


def _invalid(d: dict) -> str:
    name, value = d.get("quantity", ""), d.get("value")
    shown = _value(name, value) if isinstance(value, int | float) else str(value or "")
    reason = str(d.get("reason") or _("%(label)s is not a valid value") % {"label": _label(name)})
    return f"{reason} ({shown}); {_('not stored')}" if shown and shown != "—" else f"{reason}; {_('not stored')}"


_TEXTS = {"corrected": _corrected, "device_total_mismatch": _mismatch, "implausible_value": _implausible,
          "invalid_value": _invalid}


def finding_text(detail: dict) -> str:
    flag = str(detail.get("flag") or "")
    build = _TEXTS.get(flag)
    if build is not None:
        return build(detail)
    return str(detail.get("reason") or detail.get("quantity") or "")


def study_findings(study: Study) -> list[FindingLine]:
    """One line per finding in ``flag_details``, then one per flag that has no details (older flags)."""
    lines, described = [], set()
    for detail in study.flag_details or []:
        if not isinstance(detail, dict):
            continue
        flag = str(detail.get("flag") or "")
        described.add(flag)
        lines.append(FindingLine(flag, FLAG_LABELS.get(flag, flag.replace("_", " ")), finding_text(detail)))
    for flag in study.flags or []:
        flag = str(flag)
        if flag not in described:
            lines.append(FindingLine(flag, FLAG_LABELS.get(flag, flag.replace("_", " ")), ""))
    return lines
