"""The post-commit steps of a batch (dicomrx.pipeline.after_studies_recorded) cost a number of queries that does not
grow with the batch: mapping, protocol notes, effective dose, skin dose, trigger checks (no alert raised here),
interop (not configured)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dicomrx.demo import demo_report, demo_studies
from dicomrx.pipeline import after_studies_recorded
from dosereg.registry.models import IrradiationEvent, Study
from dosereg.registry.services.recording import record_reports_bulk
from drl.models import DueComparison, ProtocolSeen
from triggers.models import Alert, TriggerRule

pytestmark = pytest.mark.django_db


def _post_commit_queries(studies) -> tuple[int, list[int]]:
    outcomes = record_reports_bulk([demo_report(s) for s in studies], demo=True)
    ids = [o.study_id for o in outcomes]
    dues = DueComparison.objects.count()
    with CaptureQueriesContext(connection) as ctx:
        after_studies_recorded(ids, [c for o in outcomes for c in o.equipment_change_ids])
    # a comparison made due costs its own queries (a row and a notification): leave those out
    return len(ctx) - 4 * (DueComparison.objects.count() - dues), ids


def test_post_commit_queries_per_batch_do_not_grow_with_the_batch():
    TriggerRule.objects.update(active=False)  # alerts raised cost per alert; here only the batch's fixed cost
    generated = demo_studies(400, year=2024, seed=21)
    _post_commit_queries([next(generated) for _ in range(100)])  # units, protocols and names seen once
    small, small_ids = _post_commit_queries([next(generated) for _ in range(50)])
    large, large_ids = _post_commit_queries([next(generated) for _ in range(250)])
    print(f"post-commit queries: {small} for 50 studies, {large} for 250")
    assert large <= small + 2, (small, large)
    assert large / 250 < 0.3, large  # well under one query per object
    # and the steps did their work
    mapped = Study.objects.filter(pk__in=large_ids, standard_exam__isnull=False).count()
    assert mapped > 200
    fluoro = [s for s in Study.objects.filter(pk__in=large_ids) if "fluoroscopy" in (s.modality_types or [])]
    assert fluoro and all(s.skin_dose for s in fluoro if s.ka_r_total_mgy)
    assert ProtocolSeen.objects.exists()
    assert not Alert.objects.exists()


def test_protocol_counts_and_baselines_follow_the_batch_in_order():
    """Each recorded object counts once for its unit's protocols, including a study recorded twice in a batch."""
    studies = list(demo_studies(60, year=2024, seed=4))
    outcomes = record_reports_bulk([demo_report(s) for s in studies], demo=True)
    ids = [o.study_id for o in outcomes]
    after_studies_recorded(ids + ids[:1], [c for o in outcomes for c in o.equipment_change_ids])
    expected: dict[tuple[int, str], int] = {}
    for sid in ids + ids[:1]:
        eq = Study.objects.get(pk=sid).equipment_id
        for protocol in set(IrradiationEvent.objects.filter(study_id=sid, is_current=True, is_localizer=False)
                            .exclude(protocol="").values_list("protocol", flat=True)):
            expected[(eq, protocol)] = expected.get((eq, protocol), 0) + 1
    got = {(p.equipment_id, p.protocol): p.studies for p in ProtocolSeen.objects.all()}
    assert got == expected
    assert all(p.kvp_baseline_n <= 5 for p in ProtocolSeen.objects.all())
