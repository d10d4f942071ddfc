"""The referrer's dose text (2013/59/Euratom Art. 58(b)) on pages and in the API.

The text itself is built by the registry service ``dosereg.registry.services.dose_text.study_dose_text`` from the
site's template and referrer-summary choice; the web layer adds what the registry may not import: the position
against the DRL from the ``drl`` app, and the active locale's separators."""

from __future__ import annotations

import logging

from dosereg.registry.models import SiteSettings, Study
from dosereg.registry.services import dose_text as registry_dose_text
from dosereg.web.formatting import separators
from drl import selectors as drl_selectors

log = logging.getLogger(__name__)


def _drl_position(study: Study) -> dict | None:
    position_of = drl_selectors.drl_position  # outside the try: a rename must fail loudly, not turn the line off
    try:
        return position_of(study.pk)
    except Exception:  # noqa: BLE001 - the dose text must always render; it then says no comparison is available
        log.exception("DRL position of study %s could not be computed", study.study_instance_uid)
        return None


def study_dose_text(study: Study, *, site: SiteSettings | None = None) -> str:
    site = site or SiteSettings.load()
    template = site.dose_text_template or registry_dose_text.DEFAULT_TEMPLATE
    wants_drl = site.referrer_summary == "drl" or "{drl_position}" in template
    position = _drl_position(study) if wants_drl else None
    return registry_dose_text.study_dose_text(study, drl_position=position or {}, site=site, seps=separators())


__all__ = ["study_dose_text"]
