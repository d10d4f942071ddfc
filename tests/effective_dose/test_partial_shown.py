"""A partial effective dose estimate says so wherever it is shown: the study page and the referrer's dose text."""

from __future__ import annotations

import pytest

from dicomrx import ingest
from dosereg.registry.models import SiteSettings, Study
from dosereg.registry.services.dose_text import study_dose_text

pytestmark = [pytest.mark.django_db, pytest.mark.corpus]


def test_a_partial_estimate_is_labelled_on_the_page_and_in_the_dose_text(corpus, client, make_user):
    # Siemens Flash-QA: the "Heart" acquisitions carry no region the factor set covers (coverage about 0.02)
    outcome = ingest.import_file(corpus / "ct" / "CT-RDSR-Siemens_Flash-QA-DS.dcm")
    study = Study.objects.get(pk=outcome.study_id)
    assert study.effective_dose_coverage is not None and study.effective_dose_coverage < 1
    site = SiteSettings.load()
    site.referrer_summary = "effective_dose"
    site.save()
    text = study_dose_text(study)
    assert "partial: covers 1.9 %" in text or "partial: covers 1.8 %" in text, text
    client.force_login(make_user("physicist"))
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert 'id="effective-dose-partial"' in page and "partial: covers" in page
