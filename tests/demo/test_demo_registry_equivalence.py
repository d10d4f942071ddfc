"""The registry generate_demo_data --bulk builds, table by table (every row of every DoseReg table, surrogate ids and
clock times aside: tests/demo/registry_snapshot.py), post-commit state included (standard exams, effective doses,
alerts, protocol counts, DRL comparisons made due, equipment changes): the same for a seed whatever the batch size
and the number of recording processes.  The harness a second writer of the demo registry is to be held to."""

from __future__ import annotations

import dataclasses
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from dicomrx.demo import demo_report, demo_studies
from dicomrx.pipeline import after_studies_recorded
from dosereg.registry.models import SiteSettings
from dosereg.registry.services.recording import record_reports_bulk
from drl.services import study_exam_matcher
from tests.demo.registry_snapshot import registry_marks, registry_reset, registry_snapshot, snapshot_differences

pytestmark = pytest.mark.django_db(transaction=True)

N = 200


def _build(seed: int = 12, **options) -> dict:
    """N demo studies of one seed into the registry as the test found it; its snapshot; the registry put back."""
    SiteSettings.load()  # the settings row a run makes on first use: part of the registry every run starts from
    marks = registry_marks()
    before = registry_snapshot((timezone.now(), timezone.now()))
    started = timezone.now()
    out = io.StringIO()
    call_command("generate_demo_data", studies=N, year=2024, seed=seed, bulk=True, stdout=out, stderr=io.StringIO(),
                 **options)
    assert out.getvalue().strip().splitlines()[-1] == f"imported={N} failed=0"
    snapshot = registry_snapshot((started, timezone.now()))
    registry_reset(marks)
    assert snapshot_differences(before, registry_snapshot((started, timezone.now()))) == []  # the next run starts alike
    return snapshot


def test_bulk_registry_is_the_same_whatever_the_batch_size():
    whole = _build()
    counts = {table: len(rows) for table, rows in whole.items()}
    # the recording's rows and the post-commit steps' are all in it
    assert counts["registry.Study"] == N and counts["registry.IrradiationEvent"] > N
    assert counts["drl.ProtocolSeen"] and counts["drl.DueComparison"] and counts["triggers.Alert"]
    assert sum(1 for row in whole["registry.Study"] if dict(row)["standard_exam"] is not None) > N // 2
    assert snapshot_differences(whole, _build(seed=13))  # and it tells another seed's registry apart
    assert snapshot_differences(whole, _build(batch_size=7)) == []


def test_bulk_registry_is_the_same_with_recording_processes():
    """--jobs 3 (PostgreSQL: three forked recorders; SQLite: one process).  What follows the order studies come in
    (the units' new-unit changes, the protocols' first-seen dates and kVp baselines, the DRL comparisons made due)
    is the seed's order, not the order the processes' batches happen to commit in."""
    whole = _build(batch_size=25)
    assert snapshot_differences(whole, _build(batch_size=25, jobs=3)) == []


def test_copy_writer_builds_the_registry_the_recording_service_builds():
    """--writer copy (the mapping and the effective dose that follows from it settled in memory, written with the
    rows) against --writer service (mapped and estimated after the batch is written, as every import is), with and
    without recording processes."""
    service = _build(writer="service", batch_size=50)
    assert sum(1 for row in service["registry.Study"] if dict(row)["standard_exam"] is not None) > N // 2
    assert snapshot_differences(service, _build(writer="copy", batch_size=50)) == []
    assert snapshot_differences(service, _build(writer="copy", batch_size=30, jobs=2)) == []


def _recorded(reports, *, settled_in_memory: bool) -> dict:
    """``reports`` recorded as one batch and their post-commit steps run; the snapshot; the registry put back."""
    SiteSettings.load()
    marks = registry_marks()
    started = timezone.now()
    outcomes = record_reports_bulk(reports, demo=True, exam_of=study_exam_matcher() if settled_in_memory else None)
    after_studies_recorded([o.study_id for o in outcomes], [c for o in outcomes for c in o.equipment_change_ids],
                           exam_settled={o.study_id for o in outcomes if o.exam_settled})
    snapshot = registry_snapshot((started, timezone.now()))
    registry_reset(marks)
    return snapshot


def test_copy_writer_estimates_acquisitions_without_a_target_region_from_the_exam():
    """A CT acquisition without a Target Region takes its mapped exam's body region for its effective dose: the
    post-commit step estimates it again after the mapping, the copy writer before it writes the row; the study's
    totals follow."""
    reports = [dataclasses.replace(r, events=tuple(dataclasses.replace(e, target_region=None) for e in r.events))
               for r in map(demo_report, demo_studies(120, year=2024, seed=5)) if "CT" in r.modality_types]
    service = _recorded(reports, settled_in_memory=False)
    from_exam = [row for row in map(dict, service["registry.IrradiationEvent"])
                 if row["effective_dose_estimate_msv"] is not None and not row["target_region_code"]]
    assert len(from_exam) > len(reports)  # the exams' regions were used
    assert snapshot_differences(service, _recorded(reports, settled_in_memory=True)) == []
