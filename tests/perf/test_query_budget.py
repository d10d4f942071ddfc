"""Query budgets of batch ingest (counted, not timed): a regression that brings back per-object queries fails here.

Measured when written (SQLite, batches of 20 small CT reports of new studies): recording 1.1 queries per object,
the post-commit steps 0.8-2.0 per object (no alert raised).  The budgets leave room for a few more per batch, not for
a query per object or per event.
"""

from __future__ import annotations

import io

import pydicom
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from pydicom.uid import generate_uid

from dicomrx import ingest
from dicomrx.storage import TopLevel, store_received_object
from dosereg.registry.models import IrradiationEvent, Study

pytestmark = pytest.mark.django_db

BATCH = 20
RECORD_BUDGET = 2.0  # queries per object to parse and record a batch (loading the rows included)
POST_COMMIT_BUDGET = 3.0  # queries per object for mapping, effective dose, trigger checks, DRL tracking


def _fresh_copies(path, n: int) -> list[int]:
    """``n`` copies of a dose object as new objects of new studies, stored as the listener stores them."""
    ids = []
    for _ in range(n):
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID, ds.StudyInstanceUID = generate_uid(), generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        out = io.BytesIO()
        ds.save_as(out)
        row, _ = store_received_object(out.getvalue(), TopLevel(ds.SOPInstanceUID, ds.SOPClassUID,
                                                                ds.StudyInstanceUID, "SR"), source="c-store")
        ids.append(row.pk)
    return ids


def _ingest_counted(ids: list[int]) -> tuple[list, int, int]:
    """Ingest a batch; the queries of recording and of the post-commit steps, counted apart."""
    with transaction.atomic():  # the test's own transaction: the post-commit steps are held back and run below
        with CaptureQueriesContext(connection) as recording:
            outcomes = ingest.ingest_batch(ids)
        held = [hook for _, hook, _ in connection.run_on_commit]
        connection.run_on_commit = []
    with CaptureQueriesContext(connection) as post:
        for hook in held:
            hook()
    return outcomes, len(recording.captured_queries), len(post.captured_queries)


@pytest.mark.parametrize("name", ["ct/CT-RDSR-GEPixelMed.dcm", "ct/CT-RDSR-Siemens-Multi-1.dcm",
                                  "dx/DX-Im-Carestream_DRX.dcm"])
def test_batch_ingest_stays_within_its_query_budget_per_object(corpus, name):
    _ingest_counted(_fresh_copies(corpus / name, 2))  # the units and the patient exist: the steady state
    ids = _fresh_copies(corpus / name, BATCH)
    outcomes, recording, post = _ingest_counted(ids)
    assert [o.status for o in outcomes] == ["imported"] * BATCH
    assert Study.objects.count() == BATCH + 2 and IrradiationEvent.objects.filter(study__isnull=True).count() == 0
    assert recording / BATCH <= RECORD_BUDGET, f"recording: {recording} queries for {BATCH} objects"
    assert post / BATCH <= POST_COMMIT_BUDGET, f"post-commit steps: {post} queries for {BATCH} objects"
    # a batch of one still pays a fixed cost only
    [one] = _fresh_copies(corpus / name, 1)
    _, recording_one, _ = _ingest_counted([one])
    assert recording_one <= 30
