"""The one post-commit orchestrator, with the real apps: mapping, effective dose, trigger checks, equipment changes."""

from __future__ import annotations

import pytest

from dicomrx import pipeline
from dosereg.registry.models import StandardExam, Study
from dosereg.registry.services.recording import record_report
from drl.models import DueComparison, MappingRule
from tests.ingest.factories import ct_event, ct_report, received
from triggers.models import Alert, TriggerRule

pytestmark = pytest.mark.django_db


def _record(report):
    return record_report(report, received(report))


def test_after_studies_recorded_maps_estimates_checks_and_notes_changes():
    exam = StandardExam.objects.create(code="ct-chest-test", name="CT chest", modality_type="CT", body_region="chest")
    MappingRule.objects.create(field="study_description", match="regex", pattern="^CT", modality_type="CT",
                               standard_exam=exam, priority=1)
    TriggerRule.objects.create(key="test-dlp", name="DLP 100", quantity="dlp_total_mgycm", threshold=100,
                               unit="mGy·cm", scope="study", severity="notification", modality_type="CT",
                               source="test")
    out = _record(ct_report("7.1", [ct_event("1", 100.0, region=None)]))
    assert Study.objects.get(pk=out.study_id).effective_dose_msv is None  # no target region, exam not mapped yet
    assert out.equipment_change_ids  # a new unit
    pipeline.after_studies_recorded([out.study_id], out.equipment_change_ids)
    study = Study.objects.get(pk=out.study_id)
    assert study.standard_exam == exam
    assert study.effective_dose_msv == pytest.approx(1.4)  # the mapped exam's region (chest), adult k 0.014
    assert Alert.objects.filter(study=study, rule__key="test-dlp").count() == 1
    assert DueComparison.objects.filter(equipment_change_id__in=out.equipment_change_ids).count() == len(
        out.equipment_change_ids)  # a new unit makes its DRL comparisons due


def test_ingest_schedules_the_pipeline_on_commit(corpus, django_capture_on_commit_callbacks, monkeypatch):
    from dicomrx import ingest, tasks

    seen = []  # the task is scheduled on commit (with a broker, a worker would run it; here we only record it)
    monkeypatch.setattr(tasks.after_record, "delay", lambda s, c: seen.append((list(s), list(c))))
    with django_capture_on_commit_callbacks(execute=True):
        outcome = ingest.import_file(corpus / "ct" / "CT-RDSR-Siemens-Multi-1.dcm")
    assert seen == [([outcome.study_id], outcome.equipment_change_ids)] and outcome.equipment_change_ids
