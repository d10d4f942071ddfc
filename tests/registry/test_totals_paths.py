"""The one totals implementation fed two ways: from the rows the batch path has just built for a study it opens
(no query), and from the database (``studies_update_totals``).  Both must give every study the same totals."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dicomrx.demo import demo_report, demo_studies
from dosereg.core.quantities import STUDY_TOTALS
from dosereg.registry.models import DoseReport, IrradiationEvent, ReceivedObject, Study
from dosereg.registry.services.recording import record_batch, record_reports_bulk, studies_update_totals
from tests.ingest.factories import ct_event, ct_report, image_report, received

pytestmark = pytest.mark.django_db

FIELDS = [*STUDY_TOTALS, "effective_dose_method", "effective_dose_coverage", "effective_dose_detail", "event_count",
          "modality_types", "modality_type"]


def _totals() -> dict:
    return {row[0]: row[1:] for row in Study.objects.values_list("study_instance_uid", *FIELDS)}


def _headers():
    """Image headers of new studies: an exposure sent twice (counts once), mammography left and right, NM
    activity, and a CT report with a localizer-free event pair."""
    return [
        image_report("7.1", kap=1.5, key="k1"), image_report("7.1", kap=1.5, key="k1"),
        image_report("7.2", agd=1.2, laterality="left", modality="mammography"),
        image_report("7.3", agd=0.9, laterality="right", modality="mammography"),
        image_report("7.4", activity=350.0, modality="nuclear_medicine"),
        ct_report("7.5", [ct_event("1", 120.0), ct_event("2", 30.0)], total=150.0),
    ]


def test_totals_written_with_a_new_study_equal_those_recomputed_from_the_database():
    reports = [demo_report(s) for s in demo_studies(260, year=2024, seed=3)]  # every demo kind; COPY on PostgreSQL
    outcomes = record_reports_bulk(reports, demo=True)
    assert {o.status for o in outcomes} == {"imported"}
    record_batch([(r, received(r)) for r in _headers()])
    written = _totals()
    assert len(written) == 265 and any(v[0] for v in written.values())  # DLP totals are there
    with CaptureQueriesContext(connection) as recording:
        studies_update_totals(list(Study.objects.all()))
    assert len(recording.captured_queries) <= 5  # three reads and one UPDATE for all of them
    assert _totals() == written
    # the exposure sent twice counted once; the rows link up (ids given before COPY on PostgreSQL)
    assert Study.objects.get(study_instance_uid="7.1").kap_total_gycm2 == 1.5
    assert Study.objects.get(study_instance_uid="7.5").dlp_total_mgycm == 150.0
    assert not IrradiationEvent.objects.exclude(study_id__in=Study.objects.values("id")).exists()
    assert DoseReport.objects.filter(received_object__in=ReceivedObject.objects.all()).count() == 266
    for report, outcome in zip(reports[:20], outcomes[:20], strict=True):
        stored = DoseReport.objects.get(pk=outcome.report_id)
        assert stored.sop_instance_uid == report.sop_instance_uid and stored.study_id == outcome.study_id
        assert stored.study.study_instance_uid == report.study.study_instance_uid
