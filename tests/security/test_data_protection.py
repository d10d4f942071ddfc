"""The data-protection report: who viewed or exported which patient's data, from the audit trail."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from tests.web import factories


@pytest.mark.django_db
def test_report_per_patient_and_per_user(client, make_user, api_for, history):
    other = factories.patient("PAT002", "Roe^Richard", "M")
    other_study = factories.ct_study(other, date=dt.date(2024, 9, 1))
    study = history.studies.first()
    physicist, radiographer = make_user("physicist"), make_user("radiographer")
    client.force_login(physicist)
    assert client.get(f"/patients/{history.pk}/").status_code == 200
    assert client.get(f"/studies/{other_study.pk}/").status_code == 200
    assert client.get("/studies/", {"format": "csv"}).status_code == 200
    client.force_login(radiographer)
    assert client.get(f"/patients/{history.pk}/sheet/").status_code == 200
    api = api_for("api_client")
    assert api.get(f"/api/v1/studies/{study.study_instance_uid}/").status_code == 200

    client.force_login(physicist)
    assert client.get("/audit/data-protection/").status_code == 403
    client.force_login(make_user("admin"))
    page = client.get("/audit/data-protection/")
    assert page.status_code == 200
    per_patient = {p["patient_pk"]: {u["username"]: u for u in p["users"]} for p in page.context["per_patient"]}
    assert set(per_patient[history.pk]) == {physicist.username, radiographer.username, api.user.username}
    assert per_patient[history.pk][radiographer.username]["actions"] == ["print_patient_sheet"]
    assert set(per_patient[other.pk]) == {physicist.username}
    users = {u["username"]: u for u in page.context["per_user"]}
    assert users[physicist.username]["patients"] == 2
    assert [b.action for b in users[physicist.username]["bulk"]] == ["export_studies"]

    narrowed = client.get("/audit/data-protection/", {"patient": "PAT002"})
    assert [p["patient_pk"] for p in narrowed.context["per_patient"]] == [other.pk]
    response = client.get("/audit/data-protection/", {"user": radiographer.username, "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["action"], r["patient"], r["patient_id"]) for r in rows] == [
        ("print_patient_sheet", str(history.pk), "PAT001")]
    assert client.get("/audit/data-protection/", {"date_from": "2024-13-01"}).status_code == 400
