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

from dosereg.registry.models import SiteSettings, Study

DEFAULT_TEMPLATE = (
    "Patient radiation exposure ({modality}, {study_date}), as reported by the X-ray system {equipment}:\n"
    "{quantities}\n"
    "{summary}"
)

# (attribute, label, unit, decimals) per modality type; only values the system reported (not null) are listed.
_QUANTITIES = {
    "CT": [("dlp_total_mgycm", "Dose-length product (DLP), total", "mGy·cm", 1),
           ("max_ctdivol_mgy", "CTDIvol, highest acquisition", "mGy", 2)],
    "fluoroscopy": [("kap_total_gycm2", "Kerma-area product (KAP), total", "Gy·cm²", 2),
                    ("ka_r_total_mgy", "Air kerma at the reference point (Ka,r), total", "mGy", 1),
                    ("fluoro_time_total_s", "Fluoroscopy time", "s", 0)],
    "radiography": [("kap_total_gycm2", "Kerma-area product (KAP), total", "Gy·cm²", 3)],
    "mammography": [("agd_left_mgy", "Average glandular dose, left breast", "mGy", 2),
                    ("agd_right_mgy", "Average glandular dose, right breast", "mGy", 2)],
    "nuclear_medicine": [("activity_mbq", "Administered activity", "MBq", 0)],
}
logger = logging.getLogger(__name__)
_ALL = [q for qs in _QUANTITIES.values() for q in qs]


class _Keep(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fmt(value: float, decimals: int) -> str:
    if decimals and abs(value) < 10 ** -decimals * 10 and value != 0:
        return f"{value:.3g}"
    return f"{value:.{decimals}f}"


def study_quantity_lines(study: Study) -> list[str]:
    """'label: value unit' for every total the system reported for this study, in the modality's order."""
    types = [study.modality_type] + [t for t in (study.modality_types or []) if t != study.modality_type]
    seen, lines = set(), []
    for mtype in types:
        for attr, label, unit, decimals in _QUANTITIES.get(mtype, []):
            value = getattr(study, attr, None)
            if value is None or attr in seen:
                continue
            seen.add(attr)
            lines.append(f"{label}: {_fmt(value, decimals)} {unit}")
    if not lines:  # a modality type we do not know: any total that is present
        for attr, label, unit, decimals in _ALL:
            value = getattr(study, attr, None)
            if value is not None and attr not in seen:
                seen.add(attr)
                lines.append(f"{label}: {_fmt(value, decimals)} {unit}")
    if study.modality_type == "nuclear_medicine" and study.effective_dose_msv is not None:
        lines.append(f"Effective dose reported by the system: {study.effective_dose_msv:.2f} mSv")
    return lines


def _effective_dose_line(study: Study) -> str:
    if study.effective_dose_msv is None:
        return ""
    method = study.effective_dose_method or "method not recorded"
    return (f"Effective dose estimate: {study.effective_dose_msv:.2f} mSv ({method}); an estimate for comparing "
            f"procedures, not a personal risk figure.")


def _drl_line(study: Study, position: dict | None) -> str:
    """The position against the DRL, given by the caller (the registry imports no other app; the web layer asks
    ``drl.services.drl_position``)."""
    if not position:
        return "No comparison with a diagnostic reference level is available for this study."
    where = "above" if position.get("status") == "above" else "at or below"
    return (f"Position against the DRL ({position.get('exam_name', '')}, {position.get('drl_set', '')}): "
            f"{position['value']:.3g} {position.get('unit', '')}, {where} the DRL of {position['drl']:.3g} "
            f"{position.get('unit', '')} (DRLs apply to the median of a patient group, not to one patient).")


def study_dose_text(study: Study, *, drl_position: dict | None = None, template: str | None = None,
                    site: SiteSettings | None = None) -> str:
    """The Art. 58(b) dose text of one study from the site's template (see the module docstring)."""
    site = site or SiteSettings.load()
    template = template if template is not None else (site.dose_text_template or DEFAULT_TEMPLATE)
    lines = study_quantity_lines(study)
    effective = _effective_dose_line(study)
    choice = site.referrer_summary
    drl = _drl_line(study, drl_position) if choice == "drl" or "{drl_position}" in template else ""
    summary = {"effective_dose": effective, "drl": drl}.get(choice, "")
    if study.study_date:
        date = study.study_date.isoformat()
    elif study.study_datetime:
        date = timezone.localtime(study.study_datetime).date().isoformat()
    else:
        date = "date unknown"
    equipment = study.equipment.display_name if study.equipment_id else "(unit unknown)"
    values = _Keep(
        quantities="\n".join(lines) if lines else "No dose quantities were reported by the system.",
        quantities_inline="; ".join(lines) if lines else "no dose quantities reported",
        summary=summary, effective_dose=effective, drl_position=drl, equipment=equipment, study_date=date,
        study_description=study.study_description, modality=study.get_modality_type_display() or "examination",
    )
    try:
        text = template.format_map(values)
    except (ValueError, IndexError, AttributeError):  # a stray brace in the site's template: fall back, never fail
        logger.warning("SiteSettings.dose_text_template cannot be formatted; using the default template")
        text = DEFAULT_TEMPLATE.format_map(values)
    return "\n".join(line.rstrip() for line in text.splitlines() if line.strip())
