"""The patient sheet in the patient's language: German and French translations of everything a patient reads."""

from __future__ import annotations

import pytest

from tests.ingest.factories import ct_event, ct_report, received

pytestmark = pytest.mark.django_db


@pytest.fixture
def sheet_url():
    from dosereg.registry.models import Study
    from dosereg.registry.services.recording import record_report

    report = ct_report("5.1", [ct_event("1", 236.09, 12.3)])
    study = Study.objects.get(pk=record_report(report, received(report)).study_id)
    return f"/patients/{study.patient_id}/sheet/"


@pytest.mark.parametrize(("lang", "title", "explained"), [
    ("de", "Ihre Informationen zur Strahlendosis", "Dosislängenprodukt"),
    ("fr", "Vos informations sur la dose de rayonnement", "Produit dose-longueur"),
    ("en", "Your radiation dose information", "Dose-length product"),
])
def test_the_sheet_reads_in_the_patient_s_language(client, make_user, sheet_url, lang, title, explained):
    client.force_login(make_user("radiographer"))
    html = client.get(f"{sheet_url}?lang={lang}").content.decode()
    assert title in html and explained in html
    assert "236 mGy·cm" in html or "236.1" in html  # the number itself is not translated away


def test_an_unknown_language_is_a_clear_400(client, make_user, sheet_url):
    client.force_login(make_user("radiographer"))
    response = client.get(f"{sheet_url}?lang=xx")
    assert response.status_code == 400 and b"lang must be one of" in response.content
