"""Retention purge with legal holds, the Art. 58(b) dose text, and the Art. 60(3) unit reporting status."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from dosereg.registry.models import (
    AuditLog,
    DoseReport,
    Equipment,
    Patient,
    ReceivedObject,
    SiteSettings,
    Study,
)
from dosereg.registry.services.dose_text import study_dose_text
from dosereg.registry.services.euratom import equipment_reporting_status
from triggers.incidents.models import IncidentReport


def make_study(uid, date, patient, tmp_path=None, **kw):
    study = Study.objects.create(study_instance_uid=uid, patient=patient, study_date=date, modality_type="CT", **kw)
    if tmp_path is not None:
        f = tmp_path / f"{uid}.dcm"
        f.write_bytes(b"DICM")
        ro = ReceivedObject.objects.create(sop_instance_uid=f"{uid}.1", sha256=uid, study_instance_uid=uid,
                                           source="import", file_path=str(f))
        DoseReport.objects.create(received_object=ro, study=study, sop_instance_uid=ro.sop_instance_uid,
                                  sop_class_uid="1.2.840.10008.5.1.4.1.1.88.67", source_kind="rdsr")
    return study


def purge(*args) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("purge", *args, stdout=out, stderr=io.StringIO())
        return 0, out.getvalue()
    except CommandError as exc:
        return exc.returncode, str(exc)


@pytest.fixture
def incident_model():
    return IncidentReport


@pytest.mark.django_db
def test_purge_keeps_studies_linked_to_an_open_incident(tmp_path, incident_model):
    p_old, p_kept, p_new = (Patient.objects.create(patient_id=x) for x in ("old", "kept", "new"))
    old = make_study("3.1", dt.date(2015, 1, 1), p_old, tmp_path)
    held = make_study("3.2", dt.date(2015, 2, 1), p_kept, tmp_path)
    closed_link = make_study("3.3", dt.date(2015, 3, 1), p_kept, tmp_path)
    new = make_study("3.4", dt.date(2024, 1, 1), p_new, tmp_path)
    open_report = incident_model.objects.create(category="other", incident_date=dt.date(2015, 2, 1), state="draft")
    open_report.studies.add(held)
    closed_report = incident_model.objects.create(category="other", incident_date=dt.date(2015, 3, 1),
                                                  state="closed", dose_snapshot={"studies": ["kept"]})
    closed_report.studies.add(closed_link)

    # --dry-run changes nothing (but is audited)
    code, out = purge("--before", "2020-01-01", "--dry-run")
    assert code == 0
    assert "would delete studies: 2" in out and "kept under a legal hold: 1" in out
    assert f"study {held.pk}: linked to open incident report {open_report.pk}" in out
    assert Study.objects.count() == 4 and ReceivedObject.objects.count() == 4
    assert all((tmp_path / f"3.{i}.dcm").exists() for i in range(1, 5))

    code, out = purge("--before", "2020-01-01")
    assert code == 0, out
    assert "deleted studies: 2" in out and "deleted received objects: 2 (files: 2)" in out
    assert set(Study.objects.values_list("pk", flat=True)) == {held.pk, new.pk}
    assert not (tmp_path / "3.1.dcm").exists() and not (tmp_path / "3.3.dcm").exists()
    assert (tmp_path / "3.2.dcm").exists() and (tmp_path / "3.4.dcm").exists()
    assert set(ReceivedObject.objects.values_list("study_instance_uid", flat=True)) == {"3.2", "3.4"}
    # the patient left without studies is gone; the one with a held study stays
    assert not Patient.objects.filter(pk=p_old.pk).exists() and Patient.objects.filter(pk=p_kept.pk).exists()
    # the closed incident and its snapshot survive
    closed_report.refresh_from_db()
    assert closed_report.dose_snapshot == {"studies": ["kept"]} and closed_report.studies.count() == 0
    entry = AuditLog.objects.filter(action="purge").get()
    assert entry.detail["deleted_studies"] == 2 and entry.detail["held_ids"] == [held.pk]
    assert AuditLog.objects.filter(action="purge_dry_run").count() == 1
    assert old.pk not in Study.objects.values_list("pk", flat=True)


@pytest.mark.django_db
def test_purge_respects_the_retention_minimum(monkeypatch):
    patient = Patient.objects.create(patient_id="r")
    make_study("4.1", timezone.localdate() - dt.timedelta(days=400), patient)
    monkeypatch.setenv("DOSEREG_RETENTION_STUDIES_YEARS", "10")
    code, message = purge("--before", timezone.localdate().isoformat())
    assert code == 2 and "retention period of 10 years" in message
    assert Study.objects.count() == 1
    monkeypatch.delenv("DOSEREG_RETENTION_STUDIES_YEARS")
    site = SiteSettings.load()
    site.retention = {"studies": 1}
    site.save()
    assert purge("--before", timezone.localdate().isoformat())[0] == 2
    assert purge("--before", (timezone.localdate() - dt.timedelta(days=370)).isoformat())[0] == 0
    assert Study.objects.count() == 0


@pytest.mark.django_db
def test_dose_text_lists_reported_quantities_and_follows_the_template():
    unit = Equipment.objects.create(identity_key="x", manufacturer="Acme", model="CT 9", station_name="CT1")
    patient = Patient.objects.create(patient_id="T", name="Doe^Jane")
    study = Study.objects.create(study_instance_uid="5.1", patient=patient, equipment=unit, modality_type="CT",
                                 study_date=dt.date(2025, 2, 3), dlp_total_mgycm=512.34, max_ctdivol_mgy=12.1,
                                 effective_dose_msv=7.17, effective_dose_method="DLP x k, AAPM Report 96")
    text = study_dose_text(study)
    assert "DLP total: 512 mGy·cm\nHighest CTDIvol: 12.1 mGy" in text  # one quantity per line
    assert "e+" not in text
    assert "Acme CT 9 (CT1)" in text and "2025-02-03" in text
    assert "Effective dose" not in text  # the site's default referrer summary is physical quantities
    assert "Doe" not in text and "T" not in text.split(":")[0].split()  # no patient identifiers
    site = SiteSettings.load()
    site.referrer_summary = "effective_dose"
    site.dose_text_template = "Dose: {quantities_inline}. {summary} {unknown_placeholder}"
    site.save()
    text = study_dose_text(study)
    assert text.startswith("Dose: DLP total: 512 mGy·cm; Highest CTDIvol: 12.1 mGy.")
    assert "Effective dose estimate: 7.17 mSv (DLP x k, AAPM Report 96)" in text and "not a personal risk" in text
    assert "{unknown_placeholder}" in text
    site.dose_text_template = "broken {"
    site.save()
    assert "512 mGy·cm" in study_dose_text(study)  # falls back to the default template


@pytest.mark.django_db
def test_equipment_reporting_status():
    now = timezone.now()
    Equipment.objects.create(identity_key="a", model="A", sends_dose_reports=True,
                             last_report_at=now - dt.timedelta(days=2), last_object_at=now)
    Equipment.objects.create(identity_key="b", model="B", sends_dose_reports=True,
                             last_report_at=now - dt.timedelta(days=90))
    Equipment.objects.create(identity_key="c", model="C", sends_dose_reports=False, last_object_at=now)
    Equipment.objects.create(identity_key="d", model="D", demo=True)
    status = {u["name"]: u for u in equipment_reporting_status(now=now)}
    assert set(status) == {"A", "B", "C"}
    assert status["A"]["status"] == "reporting" and status["A"]["days_since_last_report"] == 2
    assert status["B"]["status"] == "silent" and status["B"]["days_since_last_report"] == 90
    assert status["C"]["status"] == "never" and status["C"]["last_report_at"] is None


@pytest.mark.django_db
def test_purge_service_keeps_what_its_caller_holds():
    from dosereg.registry.services.euratom import purge_studies

    patient = Patient.objects.create(patient_id="h")
    kept, gone = make_study("6.1", dt.date(2015, 1, 1), patient), make_study("6.2", dt.date(2015, 1, 2), patient)
    asked: list[list[int]] = []

    def holds(ids: list[int]) -> dict[int, str]:
        asked.append(list(ids))
        return {kept.pk: "held by the caller"}

    result = purge_studies(before=dt.date(2020, 1, 1), legal_holds=holds)
    assert asked == [[kept.pk, gone.pk]]
    assert result.held == {kept.pk: "held by the caller"} and result.deleted_studies == 1
    assert list(Study.objects.values_list("pk", flat=True)) == [kept.pk]


@pytest.mark.django_db
def test_an_alert_linked_to_an_open_incident_holds_its_study():
    from dosereg.web.retention import incident_legal_holds
    from triggers.models import Alert, TriggerRule

    patient = Patient.objects.create(patient_id="a")
    study, other = make_study("7.1", dt.date(2015, 1, 1), patient), make_study("7.2", dt.date(2015, 1, 1), patient)
    rule = TriggerRule.objects.create(name="Ka,r 5 Gy", modality_type="fluoroscopy", quantity="ka_r_total_mgy",
                                      threshold=5000, unit="mGy", scope="study", severity="alert", source="test")
    alert = Alert.objects.create(study=study, rule=rule, patient=patient, severity="alert", scope="study",
                                 quantity="ka_r_total_mgy", quantity_label="Ka,r", value=7689, unit="mGy",
                                 threshold=5000)
    report = IncidentReport.objects.create(category="other", incident_date=dt.date(2015, 1, 1), state="submitted")
    report.alerts.add(alert)
    assert incident_legal_holds([study.pk, other.pk]) == {
        study.pk: f"an alert of it is linked to open incident report {report.pk}"}
    report.state = "closed"
    report.save()
    assert incident_legal_holds([study.pk, other.pk]) == {}
