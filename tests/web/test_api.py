"""The REST API: token auth, permissions per role, filters, envelopes, study object with dose text, audit."""

from __future__ import annotations

import urllib.parse

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from dosereg.registry.models import AuditLog, Study
from tests.web import factories

ENDPOINTS = ["/api/v1/studies/", "/api/v1/studies/1.2.3/", "/api/v1/patients/PAT001/history/",
             "/api/v1/alerts/", "/api/v1/incidents/", "/api/v1/drl/comparisons/"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ENDPOINTS)
def test_every_endpoint_needs_a_token(path):
    response = APIClient().get(path)
    assert response.status_code in (401, 403, 404)
    assert response.status_code != 302
    if path.startswith(("/api/v1/studies", "/api/v1/patients")):
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Token")


@pytest.mark.django_db
def test_bad_token_is_401(history):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Token 0000000000000000000000000000000000000000")
    assert api.get("/api/v1/studies/").status_code == 401


@pytest.mark.django_db
def test_schema_is_open(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/v1/studies/" in response.content


@pytest.mark.django_db
def test_study_list_envelope_and_filters(api_for, history):
    api = api_for("api_client")
    body = api.get("/api/v1/studies/").json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 5
    ct = api.get("/api/v1/studies/", {"modality": "CT"}).json()
    assert ct["count"] == 1
    study = ct["results"][0]
    assert study["modality_type"] == "CT"
    assert study["totals"]["dlp_total_mgycm"] == 968.4
    assert study["patient"]["id"] == "PAT001"
    assert "DLP total: 968 mGy·cm\nHighest CTDIvol: 11.5 mGy" in study["dose_text"]
    assert api.get("/api/v1/studies/", {"dlp_min": 1000}).json()["count"] == 0
    assert api.get("/api/v1/studies/", {"date_from": "2024-06-01"}).json()["count"] == 3
    page = api.get("/api/v1/studies/", {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"] and page["previous"] is None


@pytest.mark.django_db
@pytest.mark.parametrize("params,field", [({"date_from": "2024-13-01"}, "date_from"), ({"modality": "XR"}, "modality"),
                                          ({"dlp_min": "lots"}, "dlp_min"), ({"sort": "password"}, "sort"),
                                          ({"kap_min": "5", "kap_max": "1"}, "kap_max")])
def test_invalid_filter_is_400_with_message(api_for, history, params, field):
    response = api_for("api_client").get("/api/v1/studies/", params)
    assert response.status_code == 400
    assert field in response.json() and response.json()[field][0]


@pytest.mark.django_db
def test_study_detail_is_export_object_plus_dose_text(api_for, history):
    api = api_for("practitioner")
    study = Study.objects.get(patient=history, modality_type="fluoroscopy")
    body = api.get(f"/api/v1/studies/{study.study_instance_uid}/").json()
    assert body["study_instance_uid"] == study.study_instance_uid
    assert body["totals"]["kap_total_gycm2"] == 33.4
    assert {p["plane"] for p in body["totals"]["planes"]} == {"A", "B"}
    assert len(body["events"]) == 3 and body["events"][1]["kap_gycm2"] == 2.113
    assert body["manufacturer"] == "Philips"
    assert "KAP total: 33.4 Gy·cm²\nKa,r total: 512 mGy\nFluoroscopy time: 6:12 min" in body["dose_text"]
    assert AuditLog.objects.filter(action="api_view_study", object_id=str(study.pk)).exists()
    assert api.get("/api/v1/studies/1.2.3.4.5/").status_code == 404


@pytest.mark.django_db
def test_patient_history_by_url_encoded_id(api_for):
    pat = factories.patient("ID/with space+plus", "Roe^Richard", "M")
    factories.ct_study(pat)
    factories.fluoro_study(pat)
    api = api_for("radiographer")
    body = api.get(f"/api/v1/patients/{urllib.parse.quote('ID/with space+plus', safe='')}/history/").json()
    assert body["patient"]["id"] == "ID/with space+plus"
    assert [s["modality_type"] for s in body["studies"]] == ["CT", "fluoroscopy"]
    assert body["totals"]["dlp_total_mgycm"] == 968.4 and body["totals"]["kap_total_gycm2"] == 33.4
    assert AuditLog.objects.filter(action="api_view_patient_history", object_id=str(pat.pk)).exists()
    assert api.get("/api/v1/patients/NOPE/history/").status_code == 404


@pytest.mark.django_db
def test_permissions_per_role(api_for, history):
    study = Study.objects.filter(patient=history).first()
    detail = f"/api/v1/studies/{study.study_instance_uid}/"
    hist = "/api/v1/patients/PAT001/history/"
    expect = {  # role: (list, detail, history)
        "radiographer": (200, 200, 200), "practitioner": (200, 200, 200), "physicist": (200, 200, 200),
        "qa_committee": (200, 200, 403), "admin": (200, 200, 200), "api_client": (200, 200, 200), None: (403, 403, 403),
    }
    for role, codes in expect.items():
        api = api_for(role)
        got = (api.get("/api/v1/studies/").status_code, api.get(detail).status_code, api.get(hist).status_code)
        assert got == codes, role


@pytest.mark.django_db
def test_pseudonym_mode_api_shows_pseudonym(api_for, settings):
    from dosereg.registry.services.pseudonyms import patient_pseudonym

    settings.PSEUDONYM_KEY = "k"
    pseudo = patient_pseudonym("REAL-7")
    pat = factories.patient(pseudo, name="", birth_date=None, pseudonymised=True)
    study = factories.ct_study(pat)
    api = api_for("api_client")
    body = api.get(f"/api/v1/studies/{study.study_instance_uid}/").json()
    assert body["patient"]["id"] == pseudo
    assert "REAL-7" not in str(body)
    assert api.get(f"/api/v1/patients/{pseudo}/history/").json()["patient"]["pseudonymised"] is True


@pytest.mark.django_db
def test_create_api_token_prints_key_last_line(make_user, capsys):
    user = make_user("api_client")
    call_command("create_api_token", user.username)
    first = capsys.readouterr().out.strip().splitlines()[-1]
    call_command("create_api_token", user.username)
    again = capsys.readouterr().out.strip().splitlines()[-1]
    assert first == again and len(first) == 40
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    assert api.get("/api/v1/studies/").status_code == 200


def test_create_api_token_unknown_user_exits_1(db):
    from django.core.management import CommandError

    with pytest.raises(CommandError) as exc:  # DoseRegCommand turns returncode into the exit status
        call_command("create_api_token", "nobody-such")
    assert exc.value.returncode == 1


@pytest.mark.django_db
def test_study_list_queries_do_not_grow_with_the_page(api_for, history, django_assert_max_num_queries):
    """A page of the API study list costs a fixed number of queries (no query per study for its unit or events)."""
    api = api_for("practitioner")
    for _ in range(3):
        factories.ct_study(history)
    assert api.get("/api/v1/studies/").json()["count"] >= 8
    with django_assert_max_num_queries(15):
        body = api.get("/api/v1/studies/", {"page_size": 50}).json()
    assert all(row["dose_text"] for row in body["results"])
