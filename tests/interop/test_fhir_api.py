"""The /fhir/ API: capability statement, Observation searches by patient, date and study, reads, errors."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from dosereg.interop import fhir
from dosereg.registry.models import Study
from tests.interop.test_fhir_resources import import_corpus

pytestmark = [pytest.mark.corpus, pytest.mark.django_db]

FILES = ("ct/CT-ESR-GE_Optima.dcm", "rf/Dual-RDSR-RF.dcm", "nm/NM-NmIm-Siemens.dcm", "mg")


@pytest.fixture
def client(make_user):
    user = make_user("physicist")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api


@pytest.fixture
def studies(corpus):
    import_corpus(corpus, *FILES)
    rows = list(Study.objects.select_related("patient").order_by("pk"))
    assert len(rows) >= 4
    return rows


def search(client, **params) -> dict:
    response = client.get("/fhir/Observation", params)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/fhir+json")
    body = response.json()
    Bundle.model_validate(body)
    assert body["type"] == "searchset"
    return body


def ids(bundle: dict) -> set[int]:
    return {int(e["resource"]["id"]) for e in bundle["entry"]}


def test_metadata_declares_the_rdsp_role(client):
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    body = response.json()
    CapabilityStatement.model_validate(body)
    assert body["instantiates"] == [fhir.IG_CAPABILITY_RDSP] and body["fhirVersion"] == "4.0.1"
    observation = next(r for r in body["rest"][0]["resource"] if r["type"] == "Observation")
    assert {p["name"] for p in observation["searchParam"]} >= {"code", "patient", "date", "part-of", "_id"}


def test_searches_by_code_patient_date_and_study(client, studies):
    everything = search(client, code="http://loinc.org|73569-6")
    assert everything["total"] == len(studies) and ids(everything) == {s.pk for s in studies}
    assert search(client, code="1234-5")["total"] == 0

    one = studies[0]
    by_patient = search(client, code="73569-6", patient=f"Patient/{one.patient_id}")
    assert ids(by_patient) == {s.pk for s in studies if s.patient_id == one.patient_id}
    by_identifier = search(client, **{"patient.identifier": one.patient.patient_id})
    assert ids(by_identifier) == ids(by_patient)

    dated = [s for s in studies if s.study_date]
    day = dated[0].study_date
    exact = search(client, date=day.isoformat())
    assert ids(exact) == {s.pk for s in dated if s.study_date == day}
    later = search(client, date=f"gt{day.isoformat()}")
    assert ids(later) == {s.pk for s in dated if s.study_date > day}
    in_year = search(client, date=[f"ge{day.year}", f"le{day.year}"])
    assert ids(in_year) == {s.pk for s in dated if s.study_date.year == day.year}

    by_uid = search(client, **{"part-of": one.study_instance_uid})
    assert ids(by_uid) == {one.pk}
    assert ids(search(client, **{"part-of": f"ImagingStudy/{one.pk}"})) == {one.pk}
    assert ids(search(client, _id=str(one.pk))) == {one.pk}
    observation = search(client, _id=str(one.pk))["entry"][0]["resource"]
    assert observation["partOf"][0]["identifier"]["value"] == f"urn:oid:{one.study_instance_uid}"


def test_paging_with_count(client, studies):
    first = search(client, _count="2")
    assert len(first["entry"]) == 2 and first["total"] == len(studies)
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = client.get(following.replace("http://testserver", "")).json()
    assert len(second["entry"]) == min(2, len(studies) - 2)
    assert not ids(first) & ids(second)


def test_reads_and_formats(client, studies):
    study = studies[0]
    for path, kind in ((f"Observation/{study.pk}", "Observation"), (f"Patient/{study.patient_id}", "Patient"),
                       (f"ImagingStudy/{study.pk}", "ImagingStudy"), (f"Device/{study.equipment_id}", "Device")):
        response = client.get(f"/fhir/{path}")
        assert response.status_code == 200 and response.json()["resourceType"] == kind
    plain = client.get(f"/fhir/Observation/{study.pk}", HTTP_ACCEPT="application/json")
    assert plain["Content-Type"].startswith("application/json")
    assert client.get(f"/fhir/Observation/{study.pk}", {"_format": "json"})["Content-Type"].startswith(
        "application/json")


@pytest.mark.parametrize(("path", "params", "status"), [
    ("/fhir/Observation", {"date": "yesterday"}, 400),
    ("/fhir/Observation", {"date": "2024-13-01"}, 400),
    ("/fhir/Observation", {"_count": "many"}, 400),
    ("/fhir/Observation", {"patient": "Practitioner/x"}, 400),
    ("/fhir/Observation/999999", {}, 404),
    ("/fhir/Observation/abc", {}, 404),
    ("/fhir/Patient/999999", {}, 404),
    ("/fhir/Encounter/1", {}, 404),
])
def test_bad_input_gets_an_operation_outcome(client, studies, path, params, status):
    response = client.get(path, params)
    assert response.status_code == status
    OperationOutcome.model_validate(response.json())
    assert response.json()["issue"][0]["diagnostics"]


def test_roles_and_authentication(make_user, studies):
    anonymous = APIClient().get("/fhir/Observation")
    assert anonymous.status_code in (401, 403) and anonymous.json()["resourceType"] == "OperationOutcome"
    outsider = APIClient()
    outsider.force_authenticate(make_user(None))
    assert outsider.get("/fhir/Observation").status_code == 403
    session = APIClient()
    session.force_login(make_user("radiographer"))
    assert session.get("/fhir/Observation").status_code == 200
