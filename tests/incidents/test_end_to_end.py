"""Incident reports through the real ingest path: synthetic CT reports against the German StrlSchV Anlage 14 pack,
a re-import that changes the registry under a kept snapshot, and the 316-event fluoroscopy report escalated."""

from __future__ import annotations

import datetime as dt
import io
import subprocess

import pytest
from django.core.management import call_command
from django.utils import timezone
from pydicom.uid import generate_uid

from dosereg.celery import app
from dosereg.core.display import format_quantity
from dosereg.registry.models import Study
from tests.conftest import require_program
from tests.dicomrx.synthetic import build_ct_rdsr, to_bytes
from triggers.incidents import services
from triggers.incidents.models import IncidentReport
from triggers.models import Alert, TriggerRule

pytestmark = pytest.mark.django_db


@pytest.fixture
def import_bytes(tmp_path, django_capture_on_commit_callbacks):
    """import_bytes(data, ...) -> imports through `manage.py import_dose`, on-commit steps (mapping, triggers) run
    in this process, also when a broker is configured (these tests are about the reports, not the transport)."""
    eager_before = app.conf.task_always_eager
    app.conf.task_always_eager = True

    def _import(*blobs_or_paths):
        paths = []
        for item in blobs_or_paths:
            if isinstance(item, bytes):
                path = tmp_path / f"{generate_uid()}.dcm"
                path.write_bytes(item)
                item = path
            paths.append(str(item))
        out = io.StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            try:
                call_command("import_dose", *paths, stdout=out, stderr=io.StringIO())
            except SystemExit:
                pass
        return out.getvalue()

    yield _import
    app.conf.task_always_eager = eager_before


def _brain_ct(study_uid: str, events: list[dict]) -> bytes:
    """A synthetic CT RDSR whose acquisitions have Target Region = Brain (SRT T-A0100) and a 16 cm phantom."""
    ds = build_ct_rdsr(study_uid, [{"phantom": "head", "protocol": "Head", **e} for e in events], as_dataset=True)

    def walk(items):
        for it in items:
            name = it.ConceptNameCodeSequence[0].CodeValue if "ConceptNameCodeSequence" in it else ""
            if name == "123014":  # Target Region
                it.ConceptCodeSequence[0].CodeValue = "T-A0100"
                it.ConceptCodeSequence[0].CodingSchemeDesignator = "SRT"
                it.ConceptCodeSequence[0].CodeMeaning = "Brain"
            if "ContentSequence" in it:
                walk(it.ContentSequence)

    walk(ds.ContentSequence)
    return to_bytes(ds)


def _activate_german_pack() -> int:
    return TriggerRule.objects.filter(pack="de_strlschv_anlage14").update(active=True)


def test_german_pack_brain_ct_over_the_criterion_opens_a_significant_draft(import_bytes, settings):
    settings.INCIDENT_NOTIFICATION_DAYS = 10
    assert _activate_german_pack() >= 3
    over_uid, under_uid = generate_uid(), generate_uid()
    import_bytes(_brain_ct(over_uid, [{"ctdivol": 131.5, "dlp": 2100.0}]),
                 _brain_ct(under_uid, [{"ctdivol": 110.0, "dlp": 1800.0}]))
    over = Study.objects.get(study_instance_uid=over_uid)
    under = Study.objects.get(study_instance_uid=under_uid)

    significant = Alert.objects.filter(severity="significant_event")
    assert [(a.study_id, a.rule.key) for a in significant] == [(over.pk, "de-anlage14-ct-brain")]
    incident = IncidentReport.objects.get()
    assert list(incident.studies.all()) == [over]
    assert incident.origin == "automatic" and incident.state == "draft"
    assert incident.is_significant
    assert incident.significance_reasons[0]["rule_key"] == "de-anlage14-ct-brain"
    assert incident.significance_reasons[0]["value"] == pytest.approx(131.5)
    study_date = over.study_date or timezone.now().date()
    assert incident.notification_due_date == study_date + dt.timedelta(days=10)
    snap = incident.dose_snapshot["studies"][0]
    assert snap["totals"]["max_ctdivol_mgy"] == pytest.approx(131.5)
    assert snap["events"][0]["ctdivol_mgy"] == pytest.approx(131.5)
    # 110 mGy on a brain CT is under the 120 mGy brain criterion (and the 80 mGy body criterion does not apply)
    assert not Alert.objects.filter(study=under, severity="significant_event").exists()
    assert not under.incident_reports.exists()


def test_pack_inactive_by_default_raises_no_significant_event(import_bytes):
    assert not TriggerRule.objects.filter(pack="de_strlschv_anlage14", active=True).exists()
    import_bytes(_brain_ct(generate_uid(), [{"ctdivol": 150.0, "dlp": 2500.0}]))
    assert not Alert.objects.filter(severity="significant_event").exists()
    assert not IncidentReport.objects.exists()


def test_reimport_keeps_the_snapshot_and_the_report_shows_the_difference(import_bytes, make_user, client):
    _activate_german_pack()
    uid, e1, e2 = generate_uid(), generate_uid(), generate_uid()
    import_bytes(_brain_ct(uid, [{"uid": e1, "ctdivol": 125.0, "dlp": 2000.0}]))
    incident = IncidentReport.objects.get()
    snapshot = incident.dose_snapshot
    assert snapshot["studies"][0]["totals"]["dlp_total_mgycm"] == pytest.approx(2000.0)

    # a fuller report of the same study (its events a superset) replaces the first one
    import_bytes(_brain_ct(uid, [{"uid": e1, "ctdivol": 125.0, "dlp": 2000.0},
                                 {"uid": e2, "ctdivol": 60.0, "dlp": 900.0}]))
    study = Study.objects.get(study_instance_uid=uid)
    assert study.dlp_total_mgycm == pytest.approx(2900.0)
    assert IncidentReport.objects.count() == 1
    incident.refresh_from_db()
    assert incident.dose_snapshot == snapshot
    changes = {c["what"]: (c["snapshot"], c["current"]) for d in services.snapshot_differences(incident)
               for c in d["changes"]}
    assert changes["DLP total"] == ("2,000 mGy·cm", "2,900 mGy·cm")
    assert changes["Number of irradiation events"] == ("1", "2")

    client.force_login(make_user("qa_committee"))
    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "have changed since this snapshot was taken" in page
    assert "2,900 mGy·cm" in page


@pytest.mark.corpus
def test_escalating_the_316_event_alert_snapshots_its_quantities(corpus, import_bytes, make_user, tmp_path):
    import_bytes(corpus / "rf" / "RF-Pat-Orientation-Modifier-Missing.dcm")
    study = Study.objects.get()
    alert = Alert.objects.get(study=study, rule__key="ncrp168-kar")
    incident = services.incident_from_alert(alert.pk, user=make_user("physicist"))
    alert.refresh_from_db()
    assert alert.state == "escalated"
    snap = incident.dose_snapshot["studies"][0]
    assert snap["totals"]["ka_r_total_mgy"] == pytest.approx(study.ka_r_total_mgy)
    assert snap["totals"]["kap_total_gycm2"] == pytest.approx(study.kap_total_gycm2)
    assert snap["totals"]["fluoro_time_total_s"] == pytest.approx(study.fluoro_time_total_s)
    assert snap["event_count"] == 316
    assert services.snapshot_differences(incident) == []

    pdftotext = require_program("pdftotext")
    out = tmp_path / "incident.pdf"
    call_command("incident_report", "--id", str(incident.pk), "--format", "pdf", "--output", str(out),
                 stderr=io.StringIO())
    text = " ".join(subprocess.run([pdftotext, str(out), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())
    assert f"Ka,r total {format_quantity('ka_r_total_mgy', study.ka_r_total_mgy)}" in text
    assert f"KAP total {format_quantity('kap_total_gycm2', study.kap_total_gycm2)}" in text
    assert "Ka,r (mGy)" in text  # the per-event table's column with its unit
