"""The post-commit steps: map_study, effective dose, check_study, note_equipment_change, in that order."""

from __future__ import annotations

import sys
import types

import pytest

from dicomrx import pipeline
from dosereg.registry.models import StandardExam, Study
from dosereg.registry.services.recording import record_report
from tests.ingest.factories import ct_event, ct_report, received

pytestmark = pytest.mark.django_db


def test_after_study_recorded_calls_the_other_apps_in_order(monkeypatch):
    out = record_report(*(lambda r: (r, received(r)))(ct_report("7.1", [ct_event("1", 100.0, region=None)])))
    calls = []
    exam = StandardExam.objects.create(code="ct-chest-test", name="CT chest", modality_type="CT", body_region="chest")

    def map_study(study_id):
        calls.append(("map", study_id))
        Study.objects.filter(pk=study_id).update(standard_exam=exam)
        return exam.code

    drl = types.ModuleType("drl.services")
    drl.map_study = map_study
    drl.note_equipment_change = lambda change_id: calls.append(("change", change_id))
    triggers = types.ModuleType("triggers.services")
    triggers.check_study = lambda study_id: calls.append(("check", study_id)) or []
    monkeypatch.setitem(sys.modules, "drl.services", drl)
    monkeypatch.setitem(sys.modules, "triggers.services", triggers)
    assert Study.objects.get(pk=out.study_id).effective_dose_msv is None  # no target region, exam not mapped yet
    pipeline.after_study_recorded(out.study_id, out.equipment_change_ids)
    assert calls == [("map", out.study_id), ("check", out.study_id)] + [("change", c) for c in
                                                                       out.equipment_change_ids]
    study = Study.objects.get(pk=out.study_id)
    assert study.effective_dose_msv == pytest.approx(1.4)  # the mapped exam's region (chest), adult k 0.014


def test_ingest_schedules_the_pipeline_on_commit(corpus, django_capture_on_commit_callbacks, monkeypatch):
    from dicomrx import ingest, tasks

    seen = []  # the task is scheduled on commit (with a broker, a worker would run it; here we only record it)
    monkeypatch.setattr(tasks.after_record, "delay", lambda s, c: seen.append((s, list(c))))
    with django_capture_on_commit_callbacks(execute=True):
        outcome = ingest.import_file(corpus / "ct" / "CT-RDSR-Siemens-Multi-1.dcm")
    assert seen == [(outcome.study_id, outcome.equipment_change_ids)] and outcome.equipment_change_ids
