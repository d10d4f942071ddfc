"""The API's study object: the ``export_doses`` study object (``dosereg.registry.selectors``) plus the referrer's
``dose_text`` (Art. 58(b))."""

from __future__ import annotations

from django.db.models import QuerySet

from dosereg.registry.models import SiteSettings, Study
from dosereg.registry.selectors import iter_export_dicts
from dosereg.web.dose_text import study_dose_text


def study_objects(studies, *, events: bool = False, dose_text: bool = True) -> list[dict]:
    """Study objects for a page of studies (a fixed number of queries per page)."""
    if isinstance(studies, QuerySet):
        studies = list(studies.select_related("equipment", "standard_exam", "patient"))
    elif dose_text:  # a page of studies: their units in one query (the dose text names the unit)
        loaded = Study.objects.select_related("equipment", "standard_exam", "patient").in_bulk([s.pk for s in studies])
        studies = [loaded[s.pk] for s in studies]
    site = SiteSettings.load() if dose_text else None
    qs = Study.objects.filter(pk__in=[s.pk for s in studies])
    by_uid = {d["study_instance_uid"]: d for d in iter_export_dicts(qs, events=events)}
    out = []
    for study in studies:
        obj = dict(by_uid[study.study_instance_uid])
        if dose_text:
            obj["dose_text"] = study_dose_text(study, site=site)
        out.append(obj)
    return out


def study_object(study: Study) -> dict:
    return study_objects([study], events=True)[0]
