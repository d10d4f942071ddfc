"""On PostgreSQL the recording transactions of concurrent ingest batches take turns (dicomrx.ingest._take_turn):
batches from the same units deadlocked on their equipment rows when four worker processes ingested side by side."""

from __future__ import annotations

import threading

import pydicom
import pytest
from django.db import connection, connections, transaction

from dicomrx import ingest
from dicomrx.storage import TopLevel, store_received_object
from dosereg.registry.models import ReceivedObject
from tests.conftest import wait_for
from tests.listener.helpers import fresh_copy

WAITING_FOR_THE_TURN = ("select count(*) from pg_locks where locktype = 'advisory' and not granted "
                        "and ((classid::bigint << 32) | objid::bigint) = %s")


@pytest.mark.django_db(transaction=True)
def test_a_batch_records_only_when_no_other_batch_is_recording(corpus, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: on SQLite the IMMEDIATE transactions already make writers take turns")
    copy = tmp_path / "ct.dcm"
    fresh_copy(corpus / "ct" / "CT-RDSR-GEPixelMed.dcm", copy)
    ds = pydicom.dcmread(copy, stop_before_pixels=True)
    row, _ = store_received_object(copy.read_bytes(), TopLevel(ds.SOPInstanceUID, ds.SOPClassUID,
                                                               ds.StudyInstanceUID, "SR"), source="c-store")
    outcomes = []

    def other_worker() -> None:
        try:
            outcomes.extend(ingest.ingest_batch([row.pk]))
        finally:
            connections.close_all()

    with transaction.atomic():  # this session holds the turn, as a batch recording elsewhere would
        ingest._take_turn()
        worker = threading.Thread(target=other_worker)
        worker.start()

        def waiting() -> bool:
            with connection.cursor() as cursor:
                cursor.execute(WAITING_FOR_THE_TURN, [ingest.RECORDING_LOCK])
                return cursor.fetchone()[0] == 1

        assert wait_for(waiting, timeout=60, interval=0.05)  # parsed and claimed, waiting to record
        assert ReceivedObject.objects.get(pk=row.pk).state == "received"
    worker.join(60)  # the turn is given back with this transaction: the batch records
    assert [o.status for o in outcomes] == ["imported"]
    assert ReceivedObject.objects.get(pk=row.pk).state == "ingested"
