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
    assert study.effective_dose_msv == pytest.approx(2.1)  # the mapped exam's region (chest), ICRP 103 adult k 0.021
    assert Alert.objects.filter(study=study, rule__key="test-dlp").count() == 1
    assert DueComparison.objects.filter(equipment_change_id__in=out.equipment_change_ids).count() == len(
        out.equipment_change_ids)  # a new unit makes its DRL comparisons due


def test_a_batch_runs_the_pipeline_once_on_commit(corpus, django_capture_on_commit_callbacks):
    """The post-commit steps run once for a batch, after its commit, for every object recorded in it; the studies
    the batch opened are written with their mapping already."""
    from dicomrx import ingest

    exam = StandardExam.objects.create(code="ct-any-test", name="CT any", modality_type="CT", body_region="chest")
    MappingRule.objects.create(field="protocol", match="regex", pattern=".", modality_type="CT",
                               standard_exam=exam, priority=1)
    files = [corpus / "ct" / name for name in ("CT-RDSR-Siemens-Multi-1.dcm", "CT-RDSR-GEPixelMed.dcm",
                                               "CT-RDSR-ToshibaPixelMed.dcm")]
    rows = [ingest.store_file(f) for f in files]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        outcomes = ingest.ingest_batch([r.pk for r in rows])
    assert [o.status for o in outcomes] == ["imported"] * 3 and len(callbacks) == 1
    with_protocol = set(Study.objects.filter(events__protocol__gt="").values_list("pk", flat=True))
    # the studies the batch opened were written mapped (a protocol rule: their events' protocols read in memory)
    assert set(Study.objects.filter(standard_exam=exam).values_list("pk", flat=True)) == with_protocol
    callbacks[0]()  # the post-commit steps, once for the batch, leave the mapping as it is
    assert set(Study.objects.filter(standard_exam=exam).values_list("pk", flat=True)) == with_protocol
    assert len(with_protocol) >= 2
