"""The referrer's dose text (2013/59/Euratom Art. 58(b)) on pages and in the API.

The text itself is built by the registry service ``dosereg.registry.services.dose_text.study_dose_text`` from the
site's template and referrer-summary choice; the web layer only adds what the registry may not import: the position
against the DRL from the ``drl`` app."""

from __future__ import annotations

import logging

from dosereg.registry.models import SiteSettings, Study
from dosereg.registry.services import dose_text as registry_dose_text

log = logging.getLogger(__name__)

MODALITY_LABELS = {"CT": "CT", "fluoroscopy": "Fluoroscopy", "radiography": "Radiography",
                   "mammography": "Mammography", "nuclear_medicine": "Nuclear medicine"}


def _drl_position(study: Study) -> dict | None:
    from drl.services import drl_position

    try:
        return drl_position(study.pk)
    except Exception:  # noqa: BLE001 - the dose text must always render; it then says no comparison is available
        log.exception("DRL position of study %s could not be computed", study.study_instance_uid)
        return None


def study_dose_text(study: Study, *, site: SiteSettings | None = None) -> str:
    site = site or SiteSettings.load()
    template = site.dose_text_template or registry_dose_text.DEFAULT_TEMPLATE
    wants_drl = site.referrer_summary == "drl" or "{drl_position}" in template
    position = _drl_position(study) if wants_drl else None
    return registry_dose_text.study_dose_text(study, drl_position=position or {}, site=site)


__all__ = ["study_dose_text", "MODALITY_LABELS"]
