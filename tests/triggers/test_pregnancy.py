"""Pregnancy Status as the modality recorded it: read, kept, shown, and the default rule alerts on the exposure of a
patient recorded as pregnant or possibly pregnant (Directive 2013/59/Euratom Art. 62)."""

from __future__ import annotations

import io

import pydicom
import pytest

from dicomrx.parse import parse_dose_object
from dosereg.registry.models import Study
from dosereg.registry.services.recording import record_report
from tests.dicomrx import synthetic
from tests.ingest.factories import received
from triggers.models import Alert
from triggers.services import check_study


def _report(status: int | None):
    ds = pydicom.dcmread(io.BytesIO(synthetic.build_ct_rdsr()))
    if status is not None:
        ds.PregnancyStatus = status
    return parse_dose_object(synthetic.to_bytes(ds))


@pytest.mark.parametrize(("status", "expected"), [
    (1, "not_pregnant"), (2, "possibly_pregnant"), (3, "pregnant"), (4, "unknown"), (None, ""), (9, "")])
def test_pregnancy_status_is_read_from_the_header(status, expected):
    assert _report(status).patient.pregnancy_status == expected


@pytest.mark.django_db
@pytest.mark.parametrize(("status", "alerts"), [(3, 1), (2, 1), (1, 0), (4, 0)])
def test_the_default_rule_alerts_on_a_pregnant_patient_s_exposure(status, alerts):
    report = _report(status)
    study = Study.objects.get(pk=record_report(report, received(report)).study_id)
    check_study(study.pk)
    found = Alert.objects.filter(study=study, rule__key="pregnancy-exposure")
    assert found.count() == alerts
    if alerts:
        alert = found.get()
        assert "pregnant" in alert.summary and "conceptus dose" in alert.summary
        assert alert.details["pregnancy_status"] == study.pregnancy_status


@pytest.mark.django_db
def test_the_study_page_and_history_show_the_status(client, make_user):
    report = _report(3)
    study = Study.objects.get(pk=record_report(report, received(report)).study_id)
    client.force_login(make_user("radiographer"))
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert 'id="pregnancy-status"' in page and "Pregnant" in page and "conceptus dose" in page
    history = client.get(f"/patients/{study.patient_id}/").content.decode()
    assert "Pregnant" in history

