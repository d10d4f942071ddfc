"""Incident report services on registry rows: escalation, snapshot and re-import, significance, workflow, bad input,
permissions, the periodic summary and the command."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.utils import timezone

from dosereg.registry.models import AuditLog, NotificationDelivery, NotificationSubscription, Study
from tests.conftest import REPO, require_program
from triggers.incidents import services
from triggers.incidents.models import IncidentReport
from triggers.incidents.services import IncidentError

pytestmark = pytest.mark.django_db


def _quantity(snapshot_study: dict, key: str):
    return snapshot_study["totals"][key]


def test_escalating_an_alert_creates_a_report_with_the_studys_quantities(registry_rows, rule_and_alert, make_user):
    study = registry_rows("fluoro")
    alert = rule_and_alert(study)
    physicist = make_user("physicist")
    incident = services.incident_from_alert(alert.pk, user=physicist)

    alert.refresh_from_db()
    assert alert.state == "escalated"
    assert list(incident.alerts.all()) == [alert]
    assert list(incident.studies.all()) == [study]
    assert incident.origin == "alert" and incident.state == "draft" and incident.reporter == physicist
    assert incident.incident_date == dt.date(2026, 3, 10)
    assert incident.room.name == "Angio 1"
    snap = incident.dose_snapshot["studies"][0]
    assert snap["study_instance_uid"] == study.study_instance_uid
    assert _quantity(snap, "kap_total_gycm2") == 120.75
    assert _quantity(snap, "ka_r_total_mgy") == 5100.0
    assert _quantity(snap, "fluoro_time_total_s") == 2100.0
    planes = {p["plane"]: p for p in snap["planes"]}
    assert planes["A"]["ka_r_total_mgy"] == 3200.0 and planes["B"]["ka_r_total_mgy"] == 1900.0
    assert [e["ka_r_mgy"] for e in snap["events"]] == [3200.0, 1900.0]
    assert incident.skin_dose_note == services.KA_R_NOTE
    assert not incident.is_significant  # an ordinary alert rule is not a significant-event criterion
    # escalating again returns the same report, never a second one
    assert services.incident_from_alert(alert.pk, user=physicist).pk == incident.pk
    assert IncidentReport.objects.count() == 1
    assert AuditLog.objects.filter(object_type="incident_report", object_id=str(incident.pk),
                                   action="incident_create").exists()
    assert AuditLog.objects.filter(object_type="alert", object_id=str(alert.pk), action="alert_escalated").exists()


def test_snapshot_is_kept_after_reimport_and_the_difference_is_shown(registry_rows, rule_and_alert, make_user,
                                                                     client):
    study = registry_rows("fluoro")
    physicist = make_user("physicist")
    incident = services.incident_from_alert(rule_and_alert(study).pk, user=physicist)
    assert services.snapshot_differences(incident) == []
    before = incident.dose_snapshot

    # the study is re-imported: a fuller report replaces the totals and the events
    Study.objects.filter(pk=study.pk).update(ka_r_total_mgy=5600.0, kap_total_gycm2=130.0)
    study.events.filter(sequence=1).update(ka_r_mgy=3700.0)

    incident.refresh_from_db()
    assert incident.dose_snapshot == before
    diffs = services.snapshot_differences(incident)
    changes = {c["what"]: (c["snapshot"], c["current"]) for c in diffs[0]["changes"]}
    assert changes["Ka,r total"] == ("5.1 Gy", "5.6 Gy")
    assert changes["KAP total"] == ("121 Gy·cm²", "130 Gy·cm²")

    client.force_login(physicist)
    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "The registry&#x27;s values have changed since this snapshot was taken" in page or \
        "The registry's values have changed since this snapshot was taken" in page
    assert "5.6 Gy" in page and "5.1 Gy" in page


def test_significant_event_alert_opens_a_significant_draft_with_due_date(registry_rows, rule_and_alert, settings):
    settings.INCIDENT_NOTIFICATION_DAYS = 14
    study = registry_rows("ct", study_date=timezone.now().date() - dt.timedelta(days=2))
    alert = rule_and_alert(study, severity="significant_event", quantity="ctdivol_mgy", value=130.0,
                           threshold=120.0)
    incident = services.incident_from_alert(alert.pk, automatic=True)
    assert incident.origin == "automatic" and incident.reporter is None and incident.state == "draft"
    assert incident.is_significant
    assert incident.notification_due_date == study.study_date + dt.timedelta(days=14)
    assert not incident.notification_overdue
    assert incident.significance_reasons[0]["value"] == 130.0
    alert.refresh_from_db()
    assert alert.state == "new"  # an automatic draft leaves the alert in the inbox
    assert services.incident_from_alert(alert.pk, automatic=True).pk == incident.pk


def test_exposure_discovered_late_is_overdue_at_once(registry_rows, rule_and_alert, settings):
    settings.INCIDENT_NOTIFICATION_DAYS = 14
    study = registry_rows("ct", study_date=dt.date(2025, 1, 5))
    alert = rule_and_alert(study, severity="significant_event", quantity="ctdivol_mgy", value=130.0,
                           threshold=120.0)
    incident = services.incident_from_alert(alert.pk, automatic=True)
    assert incident.notification_due_date == dt.date(2025, 1, 19)
    assert incident.notification_overdue


def test_inactive_significant_rule_does_not_flag(registry_rows, rule_and_alert, make_user):
    study = registry_rows("ct")
    rule_and_alert(study, severity="significant_event", active=False, quantity="ctdivol_mgy", value=130.0,
                   threshold=120.0)
    incident = services.incident_from_study(study.pk, user=make_user("radiographer"), data={
        "category": "dose_higher_than_intended", "incident_date": study.study_date, "description": "x"})
    assert not incident.is_significant and incident.notification_due_date is None


def test_report_exposure_from_study_and_workflow(registry_rows, make_user):
    study = registry_rows("ct")
    radiographer = make_user("radiographer")
    qa = make_user("qa_committee")
    incident = services.incident_from_study(study.pk, user=radiographer, data={
        "kind": "unintended", "category": "repeated_exposure", "incident_date": study.study_date,
        "description": "The head scan was repeated after patient motion."})
    assert incident.dose_snapshot["studies"][0]["totals"]["max_ctdivol_mgy"] == 130.0
    assert incident.dose_snapshot["studies"][0]["totals"]["dlp_total_mgycm"] == 2450.0

    with pytest.raises(IncidentError, match="cannot go"):
        services.incident_transition(incident, user=qa, to_state="closed")
    services.incident_transition(incident, user=radiographer, to_state="submitted")
    with pytest.raises(IncidentError):
        services.incident_transition(incident, user=radiographer, to_state="under_review")
    services.incident_transition(incident, user=qa, to_state="under_review", comment="Looking into it")
    services.incident_transition(incident, user=qa, to_state="closed", comment="Protocol reminder given")
    assert incident.state == "closed" and incident.closed_at is not None

    # reopening: QA committee only, and only with a reason
    with pytest.raises(IncidentError, match="Only the QA committee"):
        services.incident_transition(incident, user=radiographer, to_state="under_review", comment="please")
    with pytest.raises(IncidentError, match="reason"):
        services.incident_reopen(incident, user=qa, reason="  ")
    services.incident_reopen(incident, user=qa, reason="New information from the referrer")
    assert incident.state == "under_review"
    actions = list(AuditLog.objects.filter(object_type="incident_report", object_id=str(incident.pk))
                   .order_by("at", "id").values_list("action", flat=True))
    assert actions == ["incident_create", "incident_transition", "incident_transition", "incident_transition",
                       "incident_reopen"]
    states = [c.to_state for c in incident.comments.all()]
    assert states == ["submitted", "under_review", "closed", "under_review"]


def test_significant_event_cannot_close_before_notification(registry_rows, rule_and_alert, make_user):
    study = registry_rows("ct")
    alert = rule_and_alert(study, severity="significant_event", quantity="ctdivol_mgy", value=130, threshold=120)
    incident = services.incident_from_alert(alert.pk, automatic=True)
    qa = make_user("qa_committee")
    incident.state = "under_review"
    incident.save()
    with pytest.raises(IncidentError, match="notification"):
        services.incident_transition(incident, user=qa, to_state="closed")
    services.incident_record_notification(incident, user=qa, data={
        "notified_date": timezone.now().date(), "notified_authority": "Landesamt", "notification_reference": "A-1"})
    services.incident_transition(incident, user=qa, to_state="closed")
    assert incident.state == "closed" and incident.notified_by == qa


def test_bad_input_is_refused(registry_rows, make_user):
    study = registry_rows("fluoro")
    radiographer = make_user("radiographer")
    physicist = make_user("physicist")
    with pytest.raises(IncidentError, match="category"):
        services.incident_create(user=radiographer, data={"incident_date": dt.date(2026, 1, 1)})
    with pytest.raises(IncidentError, match="date"):
        services.incident_create(user=radiographer, data={"category": "other"})
    nobody = make_user(None)
    with pytest.raises(IncidentError):
        services.incident_create(user=nobody, data={"category": "other", "incident_date": dt.date(2026, 1, 1)})
    # a user who may create reports but may not see studies cannot link one
    clerk = make_user(None)
    clerk.user_permissions.add(Permission.objects.get(codename="add_incidentreport"))
    clerk = type(clerk).objects.get(pk=clerk.pk)
    with pytest.raises(IncidentError, match="cannot see it"):
        services.incident_create(user=clerk, data={"category": "other", "incident_date": dt.date(2026, 1, 1)},
                                 studies=[study])
    incident = services.incident_from_study(study.pk, user=radiographer, data={
        "category": "other", "incident_date": study.study_date})
    with pytest.raises(IncidentError, match="past"):
        services.incident_add_action(incident, user=physicist, kind="corrective", description="Retrain",
                                     owner="Lead radiographer", due_date=timezone.now().date() - dt.timedelta(days=1))
    action = services.incident_add_action(incident, user=physicist, kind="corrective", description="Retrain",
                                          owner="Lead radiographer", due_date=timezone.now().date())
    assert action.is_open
    with pytest.raises(IncidentError, match="physicist"):
        services.incident_update_analysis(incident, user=radiographer, data={"root_cause": "x"})


def test_visibility_reporters_see_their_own_and_qa_sees_all(registry_rows, make_user, client):
    study = registry_rows("fluoro")
    r1, r2, qa = make_user("radiographer"), make_user("radiographer"), make_user("qa_committee")
    mine = services.incident_from_study(study.pk, user=r1, data={"category": "other", "description": "x",
                                                                 "incident_date": study.study_date})
    assert list(services.incidents_visible_to(r1)) == [mine]
    assert list(services.incidents_visible_to(r2)) == []
    assert list(services.incidents_visible_to(qa)) == [mine]
    client.force_login(r2)
    assert client.get(f"/incidents/{mine.pk}/").status_code == 404
    client.force_login(qa)
    page = client.get(f"/incidents/{mine.pk}/").content.decode()
    assert "Audit trail" not in page  # administrators see the audit trail
    admin = make_user("admin")
    client.force_login(admin)
    page = client.get(f"/incidents/{mine.pk}/").content.decode()
    assert "Audit trail" in page and "incident_create" in page
    services.incident_transition(mine, user=r1, to_state="submitted", comment="")
    page = client.get(f"/incidents/{mine.pk}/").content.decode()
    assert "state: draft → submitted" in page and r1.username in page


def test_analysis_edit_records_what_changed(registry_rows, make_user):
    study = registry_rows("ct")
    incident = services.incident_from_study(study.pk, user=make_user("radiographer"), data={
        "category": "dose_higher_than_intended", "incident_date": study.study_date})
    physicist = make_user("physicist")
    services.incident_update_analysis(incident, user=physicist, data={
        "root_cause": "Perfusion protocol run twice", "patient_informed": True,
        "patient_informed_date": dt.date(2026, 3, 11)})
    entry = AuditLog.objects.filter(action="incident_analysis").get()
    assert entry.username == physicist.username
    assert entry.detail["changes"]["patient_informed"] == [None, True]
    assert entry.detail["changes"]["root_cause"] == {"changed": True, "length": len("Perfusion protocol run twice")}


def test_period_summary_renders_empty_and_counts(registry_rows, make_user, settings, tmp_path):
    empty = services.period_summary("2026-Q2")
    assert empty["total"] == 0 and all(n == 0 for _c, _n, n in empty["by_category"])
    study = registry_rows("ct")
    radiographer, physicist = make_user("radiographer"), make_user("physicist")
    inc = services.incident_from_study(study.pk, user=radiographer, data={
        "category": "repeated_exposure", "incident_date": dt.date(2026, 3, 10)})
    services.incident_add_action(inc, user=physicist, kind="preventive", description="Check protocol",
                                 owner="Physicist", due_date=timezone.now().date() + dt.timedelta(days=30))
    q1 = services.period_summary("2026-Q1")
    assert q1["total"] == 1
    assert dict((c, n) for c, _name, n in q1["by_category"])["repeated_exposure"] == 1
    assert q1["by_room"] == [("Angio 1", 1)]
    assert len(q1["open_actions"]) == 1
    assert services.period_summary("2026")["total"] == 1
    with pytest.raises(IncidentError):
        services.parse_period("2026-Q5")

    out = io.StringIO()
    call_command("incident_report", "--period", "2026-Q2", "--format", "html", stdout=out)
    assert "No incidents were reported in this period" in out.getvalue()
    pdf = tmp_path / "q2.pdf"
    call_command("incident_report", "--period", "2026-Q2", "--format", "pdf", "--output", str(pdf))
    assert pdf.read_bytes().startswith(b"%PDF")
    pdftotext = require_program("pdftotext")
    text = subprocess.run([pdftotext, str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "No incidents were reported in this period" in text


def test_command_usage_and_missing_incident():
    run = [sys.executable, "manage.py", "incident_report"]
    bad_period = subprocess.run(run + ["--period", "2026-Q9"], cwd=REPO, capture_output=True, text=True)
    assert bad_period.returncode == 2 and "YYYY-Qn" in bad_period.stderr
    assert "Traceback" not in bad_period.stderr
    neither = subprocess.run(run, cwd=REPO, capture_output=True, text=True)
    assert neither.returncode == 2


def test_incident_pdf_contains_quantities_with_units(registry_rows, rule_and_alert, make_user, tmp_path):
    pdftotext = require_program("pdftotext")
    study = registry_rows("fluoro")
    incident = services.incident_from_alert(rule_and_alert(study).pk, user=make_user("physicist"))
    out = tmp_path / "incident.pdf"
    call_command("incident_report", "--id", str(incident.pk), "--format", "pdf", "--output", str(out))
    text = subprocess.run([pdftotext, "-layout", str(out), "-"], capture_output=True, text=True,
                          check=True).stdout
    flat = " ".join(text.split())
    assert "KAP total 121 Gy·cm²" in flat
    assert "Ka,r total 5.1 Gy" in flat
    assert "Fluoroscopy time 35:00 min" in flat
    assert "surrogate for skin dose" in flat and "not a skin-dose estimate" in flat
    assert study.study_instance_uid in flat
    html = io.StringIO()
    call_command("incident_report", "--id", str(incident.pk), "--format", "html", stdout=html)
    assert "121" in html.getvalue() and "Gy·cm²" in html.getvalue()


def test_subscribers_are_told_of_submitted_and_automatic_reports(registry_rows, rule_and_alert, make_user):
    qa = make_user("qa_committee", email="qa@example.org")
    NotificationSubscription.objects.create(user=qa, topic="incident")
    study = registry_rows("ct")
    alert = rule_and_alert(study, severity="significant_event", quantity="ctdivol_mgy", value=130, threshold=120)
    auto = services.incident_from_alert(alert.pk, automatic=True)
    services.incident_from_alert(alert.pk, automatic=True)  # again: no second message
    radiographer = make_user("radiographer")
    mine = services.incident_from_study(study.pk, user=radiographer, data={
        "category": "repeated_exposure", "incident_date": study.study_date, "description": "Repeated scan"})
    services.incident_transition(mine, user=radiographer, to_state="submitted")
    rows = list(NotificationDelivery.objects.filter(topic="incident").order_by("id"))
    assert [(r.object_id, r.address) for r in rows] == [(str(auto.pk), "qa@example.org"),
                                                        (str(mine.pk), "qa@example.org")]
    assert "significant event" in rows[0].subject and f"/incidents/{auto.pk}/" in rows[0].body
    assert "submitted" in rows[1].subject
    assert "P-INC-1" not in rows[0].body + rows[1].body  # no patient identifiers in messages


def test_a_later_significant_alert_joins_the_open_report_of_its_study(registry_rows, rule_and_alert, make_user):
    study = registry_rows("ct")
    radiographer = make_user("radiographer")
    incident = services.incident_from_study(study.pk, user=radiographer, data={
        "category": "dose_higher_than_intended", "incident_date": study.study_date})
    assert not incident.is_significant
    alert = rule_and_alert(study, severity="significant_event", quantity="ctdivol_mgy", value=130, threshold=120)
    same = services.incident_from_alert(alert.pk, automatic=True)
    assert same.pk == incident.pk and IncidentReport.objects.count() == 1
    incident.refresh_from_db()
    assert incident.is_significant and incident.notification_due_date is not None
    assert list(incident.alerts.all()) == [alert]


def test_edit_page_links_another_study_with_its_snapshot(registry_rows, make_user, client):
    first, second = registry_rows("ct"), registry_rows("fluoro")
    radiographer = make_user("radiographer")
    incident = services.incident_from_study(first.pk, user=radiographer, data={
        "category": "wrong_patient", "incident_date": first.study_date})
    client.force_login(radiographer)
    response = client.post(f"/incidents/{incident.pk}/edit/", {
        "kind": "accidental", "category": "wrong_patient", "incident_date": "2026-03-10",
        "description": "Second study belongs to the same event",
        "study_refs": f"{first.study_instance_uid}\n{second.accession_number}"})
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.kind == "accidental"
    assert [s["study_instance_uid"] for s in incident.dose_snapshot["studies"]] == [first.study_instance_uid,
                                                                                   second.study_instance_uid]
    assert incident.dose_snapshot["studies"][1]["totals"]["ka_r_total_mgy"] == 5100.0
    change = AuditLog.objects.filter(action="incident_update").get()
    assert change.detail["changes"]["kind"] == ["unintended", "accidental"]
    assert change.detail["changes"]["studies"] == [[first.pk], [first.pk, second.pk]]
    # once submitted, the reporter can no longer change it
    services.incident_transition(incident, user=radiographer, to_state="submitted")
    page = client.get(f"/incidents/{incident.pk}/edit/", follow=True).content.decode()
    assert "You may not change this report now." in page
