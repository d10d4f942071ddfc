"""Art. 58(b) of 2013/59/Euratom: information on the patient's exposure is part of the examination report.

``study_dose_text(study)`` builds a short text block for the RIS to insert into the report (the study page and the
API show it).  It lists the dose quantities and units the X-ray system reported (ESR EuroSafe Imaging, Vano et al.
2020: the report should carry the values the modality reports) and, depending on the site's referrer-summary choice
(``SiteSettings.referrer_summary``), the effective dose estimate (labelled, with its method) or the position against
the DRL.

The template is ``SiteSettings.dose_text_template`` (blank: ``DEFAULT_TEMPLATE``).  Placeholders, each optional:

| placeholder | content |
|---|---|
| ``{quantities}`` | one line per reported quantity: name, value, unit |
| ``{quantities_inline}`` | the same, separated by "; " |
| ``{summary}`` | the referrer summary chosen in the site settings (may be empty) |
| ``{effective_dose}`` | the effective dose estimate line, or empty |
| ``{drl_position}`` | the position against the DRL, or empty |
| ``{equipment}`` | the unit's manufacturer, model and station |
| ``{study_date}`` | YYYY-MM-DD |
| ``{study_description}`` | the study description |
| ``{modality}`` | the modality type |

Unknown placeholders are left as written; empty lines are dropped.  No patient identifiers are ever included.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from dosereg.core.display import PLAIN, Separators, format_number, format_quantity
from dosereg.core.quantities import MODALITY_TOTALS, QUANTITIES, STUDY_TOTALS
from dosereg.registry.models import SiteSettings, Study

DEFAULT_TEMPLATE = (
    "Patient radiation exposure ({modality}, {study_date}), as reported by the X-ray system {equipment}:\n"
    "{quantities}\n"
    "{summary}"
)
logger = logging.getLogger(__name__)


class _Keep(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _shown_totals(study: Study) -> list[str]:
    """The study totals the system reported, in the order of the study's modality types (the catalogue's
    ``MODALITY_TOTALS``), then any other total it carries; effective dose has its own line."""
    types = [study.modality_type] + [t for t in (study.modality_types or []) if t != study.modality_type]
    names = [n for t in types for n in MODALITY_TOTALS.get(t, ())]
    names += [n for n in STUDY_TOTALS if n not in names and n != "effective_dose_msv"]
    return [n for n in dict.fromkeys(names) if getattr(study, n, None) is not None]


def study_quantity_lines(study: Study, *, seps: Separators = PLAIN) -> list[str]:
    """One line per total the system reported for this study: 'DLP total: 2,460 mGy·cm', 'Ka,r total: 7.69 Gy',
    'Fluoroscopy time: 47:07 min' (the catalogue's labels and display rules)."""
    lines = [f"{QUANTITIES[n].label}: {format_quantity(n, getattr(study, n), seps=seps)}" for n in _shown_totals(study)]
    if study.modality_type == "nuclear_medicine" and study.effective_dose_msv is not None:
        shown = format_quantity("effective_dose_msv", study.effective_dose_msv, seps=seps)
        lines.append(f"Effective dose reported by the system: {shown}")
    return lines


def effective_dose_partial_note(study: Study) -> str:
    """'' for a complete estimate; else what share it covers and what was left out (dosereg.core.effective_dose)."""
    coverage = study.effective_dose_coverage
    if coverage is None or coverage >= 1.0:
        return ""
    left_out = [str(item.get("what") or "") for item in (study.effective_dose_detail or {}).get("left_out", [])
                if isinstance(item, dict) and item.get("what")]
    note = f"partial: covers {format_number(coverage * 100, 2)} % of the examination"
    return f"{note}; left out: {', '.join(left_out[:3])}" if left_out else note


def _effective_dose_line(study: Study, seps: Separators) -> str:
    if study.effective_dose_msv is None:
        return ""
    method = study.effective_dose_method or "method not recorded"
    shown = format_quantity("effective_dose_msv", study.effective_dose_msv, seps=seps)
    partial = effective_dose_partial_note(study)
    return f"Effective dose estimate: {shown} ({method}{'; ' + partial if partial else ''}); an estimate for " \
           f"comparing procedures, not a personal risk figure."


def _drl_line(position: dict | None, seps: Separators) -> str:
    """The position against the DRL, given by the caller (the registry imports no other app; the web layer asks
    ``drl.services.drl_position``)."""
    if not position:
        return "No comparison with a diagnostic reference level is available for this study."
    where = "above" if position.get("status") == "above" else "at or below"
    unit = position.get("unit", "")
    value, drl = format_number(position.get("value"), seps=seps), format_number(position.get("drl"), seps=seps)
    return (f"Position against the DRL ({position.get('exam_name', '')}, {position.get('drl_set', '')}): "
            f"{value} {unit}, {where} the DRL of {drl} {unit} (DRLs apply to the median of a patient group, not to "
            f"one patient).")


def _study_date(study: Study) -> str:
    if study.study_date:
        return study.study_date.isoformat()
    if study.study_datetime:
        return timezone.localtime(study.study_datetime).date().isoformat()
    return "date unknown"


def study_dose_text(study: Study, *, drl_position: dict | None = None, template: str | None = None,
                    site: SiteSettings | None = None, seps: Separators = PLAIN) -> str:
    """The Art. 58(b) dose text of one study from the site's template (see the module docstring)."""
    site = site or SiteSettings.load()
    template = template if template is not None else (site.dose_text_template or DEFAULT_TEMPLATE)
    lines = study_quantity_lines(study, seps=seps)
    effective = _effective_dose_line(study, seps)
    choice = site.referrer_summary
    drl = _drl_line(drl_position, seps) if choice == "drl" or "{drl_position}" in template else ""
    summary = {"effective_dose": effective, "drl": drl}.get(choice, "")
    equipment = study.equipment.display_name if study.equipment_id else "(unit unknown)"
    values = _Keep(
        quantities="\n".join(lines) if lines else "No dose quantities were reported by the system.",
        quantities_inline="; ".join(lines) if lines else "no dose quantities reported",
        summary=summary, effective_dose=effective, drl_position=drl, equipment=equipment,
        study_date=_study_date(study), study_description=study.study_description,
        modality=study.get_modality_type_display() or "examination",
    )
    try:
        text = template.format_map(values)
    except (ValueError, IndexError, AttributeError, KeyError):  # a stray brace in the site's template: never fail
        logger.warning("SiteSettings.dose_text_template cannot be formatted; using the default template")
        text = DEFAULT_TEMPLATE.format_map(values)
    return "\n".join(line.rstrip() for line in text.splitlines() if line.strip())
