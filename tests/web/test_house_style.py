"""House style (issue 19): styled error pages with the reason and a way back, patient search by ID prefix and name
parts (case and accents ignored) with a hint, a radiographer's dashboard without panels they cannot use, labels and
ISO dates instead of code names and locale dates."""

from __future__ import annotations

import re

import pytest

from dosereg.registry.models import AuditLog
from dosereg.web.selectors import name_pattern
from tests.web import factories

pytestmark = pytest.mark.django_db


def test_403_and_404_are_styled_with_navigation_and_the_reason(client, make_user, settings):
    settings.DEBUG = False
    user = make_user("radiographer", username="rad-403")
    client.force_login(user)
    forbidden = client.get("/audit/")
    page = forbidden.content.decode()
    assert forbidden.status_code == 403
    assert 'class="mainnav"' in page and 'id="error-reason"' in page and "rad-403" in page and "radiographer" in page
    assert 'href="/"' in page and "dosereg.css" in page
    missing = client.get("/studies/999999/")
    page = missing.content.decode()
    assert missing.status_code == 404 and 'class="mainnav"' in page and "/studies/999999/" in page


def test_500_page_renders_without_a_request_context():
    from django.template import loader

    html = loader.get_template("500.html").render({})
    assert "Something went wrong" in html and 'href="/"' in html


@pytest.mark.parametrize("query", ["PAT0", "muller", "MÜLLER anna", "anna müller", "Muller, Anna"])
def test_patient_search_by_id_prefix_and_name_parts_ignoring_case_and_accents(client, login, query):
    pat = factories.patient_with_history(patient_id="PAT0042", name="Müller^Anna")
    other = factories.patient("XYZ-1", "Mulligan^Anna")
    login("radiographer")
    page = client.get("/patients/", {"q": query}).content.decode()
    assert f"/patients/{pat.pk}/" in page, query
    assert f"/patients/{other.pk}/" not in page, query
    assert 'id="search-hint"' in page and "accents are ignored" in page
    assert AuditLog.objects.filter(action="search_patients").exists()


def test_name_pattern_matches_accents_and_escapes_the_rest():
    assert re.fullmatch(name_pattern("muller"), "Müller", re.IGNORECASE)
    assert re.fullmatch(name_pattern("Zoë"), "zoe", re.IGNORECASE)
    assert not re.search(name_pattern("a.b"), "axb")


def test_radiographer_dashboard_has_no_panel_for_physicists(client, login, history):
    login("radiographer")
    page = client.get("/").content.decode()
    assert 'id="refused-objects"' not in page and "Visible to physicists" not in page
    assert 'id="open-alerts"' in page and 'id="follow-ups"' in page
    login("physicist")
    assert 'id="refused-objects"' in client.get("/").content.decode()


def test_study_page_wraps_uids_and_names_event_types_in_words(client, login, history):
    from dosereg.registry.models import Study

    login("physicist")
    study = Study.objects.get(patient=history, modality_type="CT")
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert f'<td class="uid">{study.study_instance_uid}</td>' in page
    assert "spiral_acquisition" not in page


def test_audit_trail_shows_actions_and_details_in_words(client, login):
    user = login("admin")
    AuditLog.objects.create(username=user.username, action="export_studies", object_type="study",
                            detail={"format": "csv", "filters": {"modality": "CT"}})
    page = client.get("/audit/").content.decode()
    assert "Export studies" in page and "format: csv; filters: (modality: CT)" in page
    assert "{&#x27;format&#x27;" not in page
