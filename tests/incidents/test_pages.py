"""Incident pages and API: bad input refused with a message, permissions, escalate, printable page, PDF, summary."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from triggers.incidents import services
from triggers.incidents.models import IncidentReport

pytestmark = pytest.mark.django_db


def test_blank_report_without_category_or_date_is_refused(client, make_user):
    client.force_login(make_user("qa_committee"))
    page = client.post("/incidents/new/", {"kind": "unintended", "category": "", "incident_date": ""})
    assert page.status_code == 200
    text = page.content.decode()
    assert "Choose a category." in text and "Give the date of the exposure." in text
    assert not IncidentReport.objects.exists()
    future = (timezone.now().date() + dt.timedelta(days=3)).isoformat()
    text = client.post("/incidents/new/", {"kind": "unintended", "category": "other",
                                           "incident_date": future}).content.decode()
    assert "cannot be in the future" in text


def test_linking_a_study_the_user_may_not_see_is_refused(client, make_user, registry_rows):
    study = registry_rows("fluoro")
    clerk = make_user(None)
    clerk.user_permissions.add(*Permission.objects.filter(codename__in=["view_incidentreport",
                                                                        "add_incidentreport", "report_exposure"]))
    client.force_login(clerk)
    text = client.post("/incidents/new/", {"kind": "unintended", "category": "other", "incident_date": "2026-03-10",
                                           "study_refs": study.study_instance_uid}).content.decode()
    assert f"Study {study.study_instance_uid} was not found or you may not see it." in text
    assert not IncidentReport.objects.exists()
    # an unknown study gets the same message (existence is not revealed)
    text = client.post("/incidents/new/", {"kind": "unintended", "category": "other", "incident_date": "2026-03-10",
                                           "study_refs": "1.2.3.4.999"}).content.decode()
    assert "Study 1.2.3.4.999 was not found or you may not see it." in text
    # the API refuses it too
    response = client.post("/api/v1/incidents/", {"category": "other", "incident_date": "2026-03-10",
                                                  "studies": [study.study_instance_uid]},
                           content_type="application/json")
    assert response.status_code == 400 and "may not see it" in str(response.json())


def test_blank_report_links_studies_and_snapshots_them(client, make_user, registry_rows):
    study = registry_rows("ct")
    client.force_login(make_user("physicist"))  # linking a study needs triggers.report_exposure (the QA committee's
    response = client.post("/incidents/new/", {"kind": "accidental", "category": "wrong_patient",  # role has not)
                                               "incident_date": "2026-03-10", "description": "Wrong patient called",
                                               "study_refs": study.accession_number})
    incident = IncidentReport.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/incidents/{incident.pk}/"
    assert incident.origin == "blank" and list(incident.studies.all()) == [study]
    assert incident.dose_snapshot["studies"][0]["totals"]["dlp_total_mgycm"] == 2450.0
    page = client.get(f"/incidents/{incident.pk}/print/").content.decode()
    assert "Wrong patient" in page and "2,450" in page and "mGy·cm" in page
    pdf = client.get(f"/incidents/{incident.pk}/pdf/")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")


def test_action_due_date_in_the_past_is_refused_on_the_page(client, make_user, registry_rows):
    study = registry_rows("ct")
    incident = services.incident_from_study(study.pk, user=make_user("radiographer"), data={
        "category": "other", "incident_date": study.study_date})
    client.force_login(make_user("physicist"))
    yesterday = (timezone.now().date() - dt.timedelta(days=1)).isoformat()
    page = client.post(f"/incidents/{incident.pk}/actions/", {"kind": "corrective", "description": "Retrain staff",
                                                              "owner": "Chief radiographer", "due_date": yesterday},
                       follow=True).content.decode()
    assert "The due date cannot be in the past." in page
    assert not incident.actions.exists()
    soon = (timezone.now().date() + dt.timedelta(days=14)).isoformat()
    page = client.post(f"/incidents/{incident.pk}/actions/", {"kind": "corrective", "description": "Retrain staff",
                                                              "owner": "Chief radiographer", "due_date": soon},
                       follow=True).content.decode()
    assert "Action added." in page and "Chief radiographer" in page


def test_physicist_edits_the_analysis_radiographer_may_not(client, make_user, registry_rows):
    study = registry_rows("ct")
    radiographer = make_user("radiographer")
    incident = services.incident_from_study(study.pk, user=radiographer, data={
        "category": "dose_higher_than_intended", "incident_date": study.study_date})
    client.force_login(radiographer)
    assert client.get(f"/incidents/{incident.pk}/analysis/").status_code == 403
    client.force_login(make_user("physicist"))
    page = client.get(f"/incidents/{incident.pk}/analysis/").content.decode()
    assert "surrogate for skin dose" in page
    data = {"root_cause": "Perfusion run twice", "effective_dose_estimate_msv": "5.1", "effective_dose_method": "",
            "patient_informed": "true", "referrer_informed": ""}
    page = client.post(f"/incidents/{incident.pk}/analysis/", data).content.decode()
    assert "Label the effective dose estimate with its method." in page
    data["effective_dose_method"] = "DLP x k (AAPM Report 96, head)"
    assert client.post(f"/incidents/{incident.pk}/analysis/", data).status_code == 302
    incident.refresh_from_db()
    assert incident.root_cause == "Perfusion run twice" and incident.patient_informed is True
    assert incident.referrer_informed is None


def test_escalate_page_sets_the_alert_escalated(client, make_user, registry_rows, rule_and_alert):
    study = registry_rows("fluoro")
    alert = rule_and_alert(study)
    client.force_login(make_user("radiographer"))
    assert client.post(f"/incidents/new/alert/{alert.pk}/").status_code == 403  # radiographers cannot escalate
    client.force_login(make_user("physicist"))
    response = client.post(f"/incidents/new/alert/{alert.pk}/")
    incident = IncidentReport.objects.get()
    assert response["Location"] == f"/incidents/{incident.pk}/"
    alert.refresh_from_db()
    assert alert.state == "escalated"


def test_closed_report_reopened_only_by_qa_with_reason(client, make_user, registry_rows):
    study = registry_rows("ct")
    radiographer, qa = make_user("radiographer"), make_user("qa_committee")
    incident = services.incident_from_study(study.pk, user=radiographer, data={
        "category": "other", "incident_date": study.study_date, "description": "x"})
    for user, state in ((radiographer, "submitted"), (qa, "under_review"), (qa, "closed")):
        services.incident_transition(incident, user=user, to_state=state)
    client.force_login(radiographer)
    page = client.post(f"/incidents/{incident.pk}/transition/", {"to_state": "under_review", "comment": "x"},
                       follow=True).content.decode()
    assert "Only the QA committee can reopen a closed report." in page
    client.force_login(qa)
    page = client.post(f"/incidents/{incident.pk}/transition/", {"to_state": "under_review", "comment": ""},
                       follow=True).content.decode()
    assert "Give the reason for reopening the report." in page
    incident.refresh_from_db()
    assert incident.state == "closed"
    client.post(f"/incidents/{incident.pk}/transition/", {"to_state": "under_review", "comment": "New facts"})
    incident.refresh_from_db()
    assert incident.state == "under_review"


def test_summary_page_renders_empty_and_pdf(client, make_user):
    client.force_login(make_user("qa_committee"))
    page = client.get("/incidents/summary/?period=2031-Q1").content.decode()
    assert "summary for 2031-Q1" in page and "No incidents were reported in this period." in page
    pdf = client.get("/incidents/summary/?period=2031&format=pdf")
    assert pdf.content.startswith(b"%PDF")
    client.force_login(make_user("radiographer"))
    assert client.get("/incidents/summary/").status_code == 403


def test_api_lists_what_the_user_may_see(client, make_user, registry_rows):
    study = registry_rows("ct")
    r1, r2 = make_user("radiographer"), make_user("radiographer")
    incident = services.incident_from_study(study.pk, user=r1, data={"category": "other",
                                                                     "incident_date": study.study_date})
    client.force_login(r1)
    body = client.get("/api/v1/incidents/").json()
    assert [i["id"] for i in body["results"]] == [incident.pk]
    assert body["results"][0]["studies"] == [study.study_instance_uid]
    assert body["results"][0]["dose_snapshot"]["studies"][0]["totals"]["max_ctdivol_mgy"] == 130.0
    client.force_login(r2)
    assert client.get("/api/v1/incidents/").json()["results"] == []
    assert client.get(f"/api/v1/incidents/{incident.pk}/").status_code == 404
    bad = client.post("/api/v1/incidents/", {"incident_date": "2026-03-10"}, content_type="application/json")
    assert bad.status_code == 400 and "category" in bad.json()
    ok = client.post("/api/v1/incidents/", {"category": "other", "incident_date": "2026-03-10",
                                            "studies": [study.accession_number]}, content_type="application/json")
    assert ok.status_code == 201 and ok.json()["studies"] == [study.study_instance_uid]
