"""Alert inbox and lifecycle pages, rule pages (bad input refused), the API, commands, permissions, tuning."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from dosereg.registry.models import AuditLog, DoseCheckOverride
from tests.triggers.factories import ct_study, fluoro_study
from triggers.models import Alert, TriggerRule
from triggers.selectors import EXPORT_FIELDS, alert_inbox_count, rule_tuning
from triggers.services import alert_acknowledge, alert_close, check_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def raised():
    study = fluoro_study(ka_r_mgy=5200.0)
    check_study(study.pk)
    return Alert.objects.get(study=study, rule__key="ncrp168-kar")


def test_default_packs_are_sourced_and_flagged():
    rules = {r.key: r for r in TriggerRule.objects.all()}
    assert rules["ncrp168-kar"].threshold_canonical == 5000 and rules["ncrp168-kar"].verify
    assert rules["ncrp168-kap"].threshold_canonical == 500
    assert rules["ncrp168-fluoro-time"].threshold_canonical == 3600
    assert rules["mppg12a-kar-notification"].step == 1 and rules["mppg12a-kar-notification"].unit == "Gy"
    assert rules["cumulative-kar-window"].window_days == 84 and "not be confirmed" in \
        rules["cumulative-kar-window"].window_basis
    de = [r for r in rules.values() if r.pack == "de_strlschv_anlage14"]
    assert len(de) == 3 and not any(r.active for r in de) and all(r.severity == "significant_event" for r in de)
    assert rules["de-anlage14-fluoro-dap"].threshold_canonical == pytest.approx(200)
    assert rules["de-anlage14-fluoro-dap"].procedure_kind == "diagnostic"
    aapm = [r for r in rules.values() if r.pack == "aapm_ct_dose_check"]
    assert len(aapm) == 9 and all(r.verify and r.scope == "event" and r.quantity == "ctdivol_mgy" for r in aapm)
    assert all(r.source.strip() for r in rules.values())


def test_inbox_count_detail_and_lifecycle(client, make_user, raised):
    phys = make_user("physicist")
    assert alert_inbox_count(phys) == 2
    assert alert_inbox_count(make_user("qa_committee")) == 2
    assert alert_inbox_count(make_user()) == 0  # no permission, no count
    client.force_login(phys)
    page = client.get("/alerts/").content.decode()
    assert "NCRP 168 SRDL: Ka,r 5 Gy" in page and "surrogate for skin dose" in page
    detail = client.get(f"/alerts/{raised.pk}/").content.decode()
    assert "5.2 Gy" in detail and "Verify against the primary publication" in detail
    assert "not a skin-dose estimate" in detail
    assert AuditLog.objects.filter(action="view_alert", object_id=str(raised.pk)).exists()
    # acknowledging without a reason is refused
    r = client.post(f"/alerts/{raised.pk}/acknowledge/", {"reason": "", "comment": "x"}, follow=True)
    assert "required" in r.content.decode().lower()
    raised.refresh_from_db()
    assert raised.state == "new"
    client.post(f"/alerts/{raised.pk}/acknowledge/", {"reason": "justified_clinical", "comment": "complex case"})
    client.post(f"/alerts/{raised.pk}/follow-up/", {"follow_up_date": "2026-03-16", "check": "skin inspection"})
    raised.refresh_from_db()
    assert (raised.state, raised.reason, raised.follow_up_date) == ("follow_up", "justified_clinical",
                                                                   dt.date(2026, 3, 16))
    client.post(f"/alerts/{raised.pk}/close/", {"reason": "", "comment": "no reaction"})
    raised.refresh_from_db()
    assert raised.state == "closed" and raised.close_reason == "justified_clinical"
    assert list(raised.history.values_list("action", flat=True)) == ["raised", "acknowledged", "follow_up", "closed"]


def test_radiographer_acknowledges_but_cannot_schedule_or_edit_rules(client, make_user, raised):
    client.force_login(make_user("radiographer"))
    assert client.post(f"/alerts/{raised.pk}/acknowledge/", {"reason": "patient_size"}).status_code == 302
    assert client.post(f"/alerts/{raised.pk}/follow-up/", {"follow_up_date": "2026-03-16",
                                                           "check": "x"}).status_code == 403
    assert client.get("/rules/new/").status_code == 403
    assert client.get("/rules/").status_code == 200


BAD = [
    ({"quantity": "skin_dose_gy"}, "quantity", "unknown quantity"),
    ({"unit": "mSv"}, "unit", "does not fit"),
    ({"threshold": "-1"}, "threshold", "cannot be negative"),
    ({"scope": ""}, "scope", "scope"),
    ({"scope": "patient_window", "window_days": ""}, "window_days", "window"),
]


def _rule_post(**over):
    data = {"name": "Local Ka,r 2 Gy", "modality_type": "fluoroscopy", "quantity": "ka_r_total_mgy",
            "plane_mode": "each", "threshold": "2", "unit": "Gy", "scope": "study", "severity": "alert",
            "source": "Local decision of the radiation protection committee, 2026", "procedure_kind": "any",
            "min_procedures": "2", "active": "on"}
    data.update(over)
    return data


@pytest.mark.parametrize("override,field,message", BAD)
def test_bad_rule_input_refused_on_the_form(client, make_user, override, field, message):
    client.force_login(make_user("physicist"))
    r = client.post("/rules/new/", _rule_post(**override))
    assert r.status_code == 200
    body = r.content.decode()
    assert f'data-field="{field}"' in body and message in body
    assert not TriggerRule.objects.filter(name="Local Ka,r 2 Gy").exists()


@pytest.mark.parametrize("override,field,message", BAD)
def test_bad_rule_input_refused_by_the_api(make_user, override, field, message):
    api = APIClient()
    api.force_authenticate(make_user("physicist"))
    payload = {k: v for k, v in _rule_post(**override).items() if k != "active"}
    if payload.get("window_days") == "":
        payload["window_days"] = None  # JSON has null, not an empty string
    r = api.post("/api/v1/rules/", payload, format="json")
    assert r.status_code == 400
    assert message in " ".join(r.json()[field])


def test_rule_change_is_versioned_and_never_drops_alerts(client, make_user, raised):
    client.force_login(make_user("physicist"))
    rule = raised.rule
    r = client.post(f"/rules/{rule.pk}/edit/", _rule_post(name=rule.name, threshold="6", unit="Gy",
                                                           source=rule.source, verify="on", comment="raise to 6 Gy"))
    assert r.status_code == 302
    rule.refresh_from_db()
    assert rule.version == 2 and rule.threshold == 6
    assert list(rule.versions.values_list("version", flat=True)) == [2, 1]
    call_command("check_triggers", stdout=io.StringIO())
    raised.refresh_from_db()  # kept, marked, still visible
    assert raised.state == "new" and raised.still_exceeds is False
    assert "no longer exceeds" in client.get(f"/alerts/{raised.pk}/").content.decode()


def test_api_lists_alerts_in_the_drf_envelope(make_user, raised):
    api = APIClient()
    assert api.get("/api/v1/alerts/").status_code in (401, 403)
    api.force_authenticate(make_user("api_client"))
    body = api.get("/api/v1/alerts/").json()
    assert set(body) == {"count", "next", "previous", "results"} and body["count"] == 2
    row = next(r for r in body["results"] if r["id"] == raised.pk)
    assert row["quantity"] == "ka_r_total_mgy" and row["quantity_label"] == "Ka,r total" and row["unit"] == "mGy"
    assert api.get("/api/v1/alerts/?state=bogus").status_code == 400
    assert api.post(f"/api/v1/alerts/{raised.pk}/acknowledge/", {"reason": "false_alert"}).status_code == 403
    assert api.post("/api/v1/rules/", _rule_post(), format="json").status_code == 403


def test_api_acknowledge_and_rule_crud(make_user, raised):
    api = APIClient()
    api.force_authenticate(make_user("physicist"))
    assert api.post(f"/api/v1/alerts/{raised.pk}/acknowledge/", {"reason": "nonsense"}).status_code == 400
    r = api.post(f"/api/v1/alerts/{raised.pk}/acknowledge/", {"reason": "documentation_error", "comment": "typo"})
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    payload = {k: v for k, v in _rule_post().items() if k != "active"}
    created = api.post("/api/v1/rules/", payload, format="json")
    assert created.status_code == 201 and created.json()["version"] == 1
    pk = created.json()["id"]
    assert api.patch(f"/api/v1/rules/{pk}/", {"threshold": 2.5}, format="json").json()["version"] == 2
    assert api.patch(f"/api/v1/rules/{pk}/", {"unit": "Gy·cm²"}, format="json").status_code == 400
    assert api.delete(f"/api/v1/rules/{raised.rule_id}/").status_code == 409  # it has alerts


def test_export_alerts_json_and_csv(raised, tmp_path):
    out = io.StringIO()
    call_command("export_alerts", "--format", "json", stdout=out)
    rows = json.loads(out.getvalue())
    assert len(rows) == 2 and all(list(r) == EXPORT_FIELDS for r in rows)
    row = next(r for r in rows if r["rule"] == "NCRP 168 SRDL: Ka,r 5 Gy")
    assert row["scope"] == "study" and row["quantity"] == "ka_r_total_mgy" and row["quantity_label"] == "Ka,r total"
    assert row["value"] == 5200.0 and row["threshold"] == 5000.0 and row["unit"] == "mGy"
    assert row["severity"] == "alert" and row["state"] == "new" and row["patient_id"] == raised.patient.patient_id
    assert "NCRP Report 168" in row["rule_source"]
    path = tmp_path / "alerts.csv"
    call_command("export_alerts", "--format", "csv", "--output", str(path))
    with open(path, newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 2 and list(table[0]) == EXPORT_FIELDS


def test_tuning_figures_leave_demo_out_unless_asked(make_user):
    user = make_user("physicist")
    real = fluoro_study(ka_r_mgy=5200.0)
    demo = fluoro_study(ka_r_mgy=5200.0, demo=True)
    check_study(real.pk)
    check_study(demo.pk)
    assert Alert.objects.get(study=demo, rule__key="ncrp168-kar").demo is True
    for study, reason in ((real, "documentation_error"), (demo, "justified_clinical")):
        a = Alert.objects.get(study=study, rule__key="ncrp168-kar")
        alert_acknowledge(alert=a, user=user, reason=reason)
        alert_close(alert=a, user=user)
    row = next(r for r in rule_tuning() if r["rule"].key == "ncrp168-kar")
    assert (row["raised"], row["closed"], row["documentation_error_pct"], row["justified_pct"]) == (1, 1, 100.0, 0.0)
    row = next(r for r in rule_tuning(include_demo=True) if r["rule"].key == "ncrp168-kar")
    assert (row["raised"], row["closed"], row["justified_pct"]) == (2, 2, 50.0)


def test_check_triggers_command_and_bad_dates():
    study = fluoro_study(ka_r_mgy=3100.0, study_date=dt.date(2026, 2, 1))
    out = io.StringIO()
    call_command("check_triggers", "--since", "2026-01-01", stdout=out)
    assert out.getvalue().strip() == "studies=1 alerts_created=1"
    assert Alert.objects.get(study=study).rule.key == "mppg12a-kar-notification"
    out = io.StringIO()
    call_command("check_triggers", "--since", "2026-01-01", stdout=out)
    assert out.getvalue().strip() == "studies=1 alerts_created=0"


def test_rule_and_tuning_pages_render(client, make_user, raised):
    client.force_login(make_user("physicist"))
    rule = raised.rule
    listing = client.get("/rules/").content.decode()
    assert "StrlSchV Anlage 14" in listing and "verify against the primary publication" in listing
    detail = client.get(f"/rules/{rule.pk}/").content.decode()
    assert "NCRP Report 168" in detail and "Verify against the primary publication" in detail
    window = TriggerRule.objects.get(key="cumulative-kar-window")
    assert "could not be confirmed" in client.get(f"/rules/{window.pk}/").content.decode()
    form = client.get(f"/rules/{rule.pk}/edit/").content.decode()
    assert 'value="5000.0"' in form and "will become version 2" in form
    assert client.get("/rules/new/").status_code == 200
    tuning = client.get("/rules/tuning/").content.decode()
    assert "NCRP 168 SRDL: Ka,r 5 Gy" in tuning and "Demo studies left out" in tuning


def test_dose_check_alert_page_lists_every_acquisition(client, make_user):
    study = ct_study(acquisitions=[(5.3, "Chest"), (10.6, "Chest")], description="CT Chest")
    report = study.reports.get()
    for uid, fwd in (("1.2.4.x.10", 251.2), ("1.2.4.x.11", 502.4)):
        DoseCheckOverride.objects.create(report=report, irradiation_event_uid=uid, kind="alert", dlp_configured=True,
                                         dlp_value_mgycm=100.0, dlp_forward_estimate_mgycm=fwd,
                                         reason_for_proceeding="clinical need", person_name="Dr A")
    check_study(study.pk)
    alert = Alert.objects.get(study=study, rule__key="ct-dose-check-override")
    client.force_login(make_user("physicist"))
    page = client.get(f"/alerts/{alert.pk}/").content.decode()
    assert "251 mGy·cm" in page and "502 mGy·cm" in page and "clinical need" in page
    assert "Dose Check" in page


# --- triage first (issue 19) ---------------------------------------------------------------------------------------
def _raise(study, key: str = "ncrp168-kar") -> Alert:
    check_study(study.pk)
    return Alert.objects.get(study=study, rule__key=key)


def _row_ids(html: str, table_id: str = "alert-table") -> list[int]:
    import re

    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return [int(x) for x in re.findall(r'data-alert-id="(\d+)"', body)]


def test_inbox_and_dashboard_put_the_real_5_gy_alert_before_newer_demo_notifications(client, make_user):
    real = _raise(fluoro_study(ka_r_mgy=7700.0, description="Coronary angioplasty"))
    demo_alerts = [_raise(fluoro_study(ka_r_mgy=7600.0, demo=True), "mppg12a-kar-notification") for _ in range(3)]
    assert all(a.created_at >= real.created_at for a in demo_alerts)
    client.force_login(make_user("physicist"))
    inbox = client.get("/alerts/").content.decode()
    order = _row_ids(inbox)
    assert order[0] == real.pk and {a.pk for a in demo_alerts} <= set(order[1:])
    home = client.get("/").content.decode()
    assert _row_ids(home, "dashboard-alerts")[0] == real.pk


def test_state_orders_within_a_severity_new_first(client, make_user):
    phys = make_user("physicist")
    first = _raise(fluoro_study(ka_r_mgy=5200.0))
    alert_acknowledge(alert=first, user=phys, reason="justified_clinical", comment="")
    second = _raise(fluoro_study(ka_r_mgy=5100.0))
    Alert.objects.filter(pk=second.pk).update(created_at=first.created_at - dt.timedelta(days=3))  # older but new
    client.force_login(phys)
    order = [pk for pk in _row_ids(client.get("/alerts/").content.decode()) if pk in (first.pk, second.pk)]
    assert order == [second.pk, first.pk]


def test_alert_rows_and_page_name_patient_procedure_room_and_link_study_and_history(client, make_user):
    from tests.triggers.factories import RoomFactory

    study = fluoro_study(ka_r_mgy=7700.0, room=RoomFactory(name="Cath lab 2"), description="PCI LAD")
    study.patient.name = "Doe^Jane"
    study.patient.save()
    alert = _raise(study)
    client.force_login(make_user("radiographer"))
    inbox = client.get("/alerts/").content.decode()
    row = inbox.split(f'data-alert-id="{alert.pk}"', 1)[1].split("</tr>", 1)[0]
    assert study.patient.patient_id in row and "Doe, Jane" in row and "PCI LAD" in row and "Cath lab 2" in row
    assert f"/studies/{study.pk}/" in row and f"/patients/{study.patient_id}/" in row
    page = client.get(f"/alerts/{alert.pk}/").content.decode()
    banner = page.split('id="alert-patient"', 1)[1].split("</section>", 1)[0]
    assert "Doe, Jane" in banner and "Cath lab 2" in banner and "PCI LAD" in banner
    assert 'id="alert-study-link"' in banner and f"/patients/{study.patient_id}/" in banner
    assert "30 days" in banner  # what to do: the skin check of NCRP 168


def test_study_page_shows_its_alerts_as_a_banner_with_value_threshold_and_what_to_do(client, make_user):
    study = fluoro_study(ka_r_mgy=7700.0)
    _raise(study)
    client.force_login(make_user("radiographer"))
    page = client.get(f"/studies/{study.pk}/").content.decode()
    banner = page.split('id="study-alerts"', 1)[1].split("</section>", 1)[0]
    assert "7.7 Gy" in banner and "5 Gy" in banner and "What to do" in banner and "skin check" in banner
    assert page.index('id="study-alerts"') < page.index('id="dose-text"')


def test_follow_up_worklist_due_first_overdue_marked(client, make_user):
    from triggers.services import alert_schedule_follow_up

    phys = make_user("physicist")
    late, soon = _raise(fluoro_study(ka_r_mgy=5200.0)), _raise(fluoro_study(ka_r_mgy=5300.0))
    for a, due in ((soon, dt.date.today() + dt.timedelta(days=5)), (late, dt.date.today() - dt.timedelta(days=2))):
        alert_acknowledge(alert=a, user=phys, reason="justified_clinical", comment="")
        alert_schedule_follow_up(alert=a, user=phys, follow_up_date=due, check="skin check by phone")
    client.force_login(make_user("radiographer"))
    page = client.get("/alerts/follow-up/").content.decode()
    assert _row_ids(page, "follow-up-table") == [late.pk, soon.pk]
    late_row = page.split(f'data-alert-id="{late.pk}"', 1)[1].split("</tr>", 1)[0]
    assert "overdue" in late_row and "skin check by phone" in late_row
    assert "overdue" not in page.split(f'data-alert-id="{soon.pk}"', 1)[1].split("</tr>", 1)[0]
    home = client.get("/").content.decode()
    assert 'id="follow-ups"' in home and "1 overdue" in home


def test_incident_report_names_the_patient_and_lists_the_alerts_of_its_study(client, make_user):
    from triggers.incidents.models import IncidentReport

    study = fluoro_study(ka_r_mgy=7700.0)
    study.patient.name = "Doe^Jane"
    study.patient.save()
    check_study(study.pk)
    incident = IncidentReport.objects.create(incident_date=study.study_date, kind="unintended", category="other")
    incident.studies.add(study)  # made from the study, not escalated from an alert: its alerts are listed anyway
    client.force_login(make_user("physicist"))
    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "Doe, Jane" in page.split('id="incident-patient"', 1)[1].split("</td>", 1)[0]
    linked = page.split('id="incident-alerts"', 1)[1].split("</td>", 1)[0]
    assert linked.count("/alerts/") == Alert.objects.filter(study=study).count() == 2
    assert "7.7 Gy" in linked and "threshold 5 Gy" in linked
    pdf = client.get(f"/incidents/{incident.pk}/pdf/")
    assert pdf.status_code == 200 and pdf.content[:4] == b"%PDF"
