"""The listener in this process against the test database (PostgreSQL + Celery worker when configured), and the
status page."""

from __future__ import annotations

import hashlib
import shutil
import stat
from pathlib import Path

import pydicom
import pytest
from django.urls import reverse
from pynetdicom import AE, _config, evt

from dicomrx import dispatch, ingest
from dicomrx.listener import DOSE_SOP_CLASSES, Listener, StoreHandler, syntaxes_for
from dicomrx.models import ListenerStatus, RefusedObject
from dicomrx.storage import TopLevel, store_received_file, store_received_object
from dosereg.registry.models import AuditLog, DoseReport, ReceivedObject
from tests.conftest import wait_for
from tests.listener.helpers import push_files

pytestmark = [pytest.mark.network]


@pytest.mark.django_db(transaction=True)
def test_listener_in_thread_stores_and_ingests(corpus, celery_worker_process):
    listener = Listener(bind="127.0.0.1", port=0, heartbeat_interval=0.5)
    listener.start()
    try:
        files = [corpus / "ct" / "CT-RDSR-GEPixelMed.dcm", corpus / "nm" / "NM-RRDSR-Siemens.dcm",
                 corpus / "dx" / "DX-Im-Carestream_DRX.dcm"]
        assert [status for _, status in push_files(listener.port, files, calling="ROOM7")] == [0, 0, 0]
        assert ReceivedObject.objects.filter(calling_ae="ROOM7").count() == 3
        wait_for(lambda: not ReceivedObject.objects.filter(state="received").exists(), timeout=120)
        assert set(ReceivedObject.objects.values_list("state", flat=True)) == {"ingested"}
        assert DoseReport.objects.count() == 3
        image = ReceivedObject.objects.exclude(sop_class_uid__startswith="1.2.840.10008.5.1.4.1.1.88.").get()
        assert image.size < (corpus / "dx" / "DX-Im-Carestream_DRX.dcm").stat().st_size  # header only kept
        assert wait_for(lambda: ListenerStatus.objects.filter(stored_count=3).exists(), timeout=10)
    finally:
        listener.stop()
    assert ListenerStatus.objects.get().stopped_at is not None


@pytest.mark.django_db
def test_status_page_lists_refusals_and_reprocesses(client, make_user, corpus):
    data = (corpus / "negative" / "ESR_non-dose.dcm").read_bytes()
    row, _ = store_received_object(data, TopLevel("1.2.3.4", "1.2.840.10008.5.1.4.1.1.88.22"), source="c-store",
                                   calling_ae="PACSX", peer_address="10.0.0.9")
    ReceivedObject.objects.filter(pk=row.pk).update(state="rejected", reason="not a dose object: test")
    RefusedObject.objects.create(kind="c-store", calling_ae="BADMOD", status=0xC000, reason="top level garbled")
    client.force_login(make_user("radiographer"))
    assert client.get(reverse("dicomrx:status")).status_code == 403
    client.force_login(make_user("physicist"))
    page = client.get(reverse("dicomrx:status")).content.decode()
    assert "no listener has reported" in page and "BADMOD" in page and "0xC000" in page
    assert "PACSX" in page and "not a dose object: test" in page and "Reprocess" not in page
    assert client.post(reverse("dicomrx:reprocess", args=[row.pk])).status_code == 403
    client.force_login(make_user("admin"))
    assert "Reprocess" in client.get(reverse("dicomrx:status")).content.decode()
    response = client.post(reverse("dicomrx:reprocess", args=[row.pk]), follow=True)
    assert response.status_code == 200 and "Reprocessed 1.2.3.4" in response.content.decode()
    row.refresh_from_db()
    assert row.state == "rejected" and "not a dose" in row.reason
    assert AuditLog.objects.filter(action="reprocess_object", object_id=str(row.pk)).exists()


class SteppedClock:
    """Monotonic time that only moves when the ingest thread sleeps: sleep() advances it at once, no real waiting."""

    def __init__(self):
        self.now = 0.0
        self.polls: list[float] = []  # the time of each receiving() question

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.django_db(transaction=True)
def test_in_process_ingest_gathers_a_batch_while_objects_arrive_at_most_the_batch_wait(corpus, settings):
    """While objects arrive (receiving() true) the embedded ingest thread waits for a full batch, for at most
    INGEST_BATCH_WAIT_MS, asking every 0.05 s; a full batch, or no arrivals, goes at once."""
    data = (corpus / "ct" / "CT-RDSR-GEPixelMed.dcm").read_bytes()
    ds = pydicom.dcmread(corpus / "ct" / "CT-RDSR-GEPixelMed.dcm", stop_before_pixels=True)
    store_received_object(data, TopLevel(ds.SOPInstanceUID, ds.SOPClassUID, ds.StudyInstanceUID, "SR"),
                          source="c-store")
    clock = SteppedClock()
    arriving = {"now": True}
    during_wait = []  # objects that arrive while the thread gathers a batch

    def receiving() -> bool:
        clock.polls.append(clock.now)
        while during_wait:
            uid = during_wait.pop()
            store_received_object(uid.encode() + b" not dicom", TopLevel(uid, ds.SOPClassUID), source="c-store")
            dispatcher.notify(0)
        return arriving["now"]

    settings.INGEST_BATCH_WAIT_MS, settings.INGEST_BATCH_SIZE = 3000, 2
    dispatcher = dispatch.IngestDispatcher(use_celery=False, receiving=receiving, clock=clock, sleep=clock.sleep)
    dispatcher.start()
    try:
        assert wait_for(lambda: ReceivedObject.objects.get().state == "ingested", timeout=60)
        # held back while objects arrive, asking every 0.05 s, for the batch wait; then ingested regardless
        assert clock.polls == pytest.approx([0.05 * i for i in range(len(clock.polls))])
        assert clock.polls[-1] < 3.0 <= clock.now
        assert wait_for(lambda: dispatcher.batches == 1, timeout=30)  # counted once ingest_batch has returned
        assert dispatcher.ingested == 1
        settings.INGEST_BATCH_WAIT_MS = 600_000
        before = clock.now
        during_wait.append("1.2.3.999")  # the second object of a batch arrives while the first waits
        store_received_object(b"1.2.3.998 not dicom", TopLevel("1.2.3.998", ds.SOPClassUID), source="c-store")
        dispatcher.notify(0)
        assert wait_for(lambda: ReceivedObject.objects.filter(state="received").count() == 0
                        and ReceivedObject.objects.count() == 3, timeout=30)
        assert wait_for(lambda: dispatcher.batches == 2, timeout=30)
        assert clock.now - before < 1.0  # the full batch went at once, as one
        arriving["now"] = False
        store_received_object(b"not dicom either", TopLevel("1.2.3.1000", ds.SOPClassUID), source="c-store")
        before = clock.now
        dispatcher.notify(0)
        assert wait_for(lambda: ReceivedObject.objects.get(sop_instance_uid="1.2.3.1000").state != "received",
                        timeout=30)
        assert clock.now - before < 0.1  # no arrivals: taken at once
    finally:
        dispatcher.stop()


@pytest.mark.django_db(transaction=True)
def test_in_process_ingest_takes_a_backlog_at_once_and_gathers_again_once_caught_up(settings, monkeypatch):
    """Objects that arrive while a batch is ingested are a backlog: the next batch goes at once, although objects
    still arrive; once the ingest has caught up, a batch waits for more again (INGEST_BATCH_WAIT_MS)."""
    sop_class = "1.2.840.10008.5.1.4.1.1.88.67"
    clock = SteppedClock()
    during_first_batch = ["1.2.3.2001", "1.2.3.2002"]
    taken: list[tuple[float, list[int]]] = []  # (fake time, ids) of each batch
    real_ingest_batch = ingest.ingest_batch

    def ingest_batch(ids):
        taken.append((clock.now, list(ids)))
        while during_first_batch:  # they arrive while the first batch is being ingested
            uid = during_first_batch.pop(0)
            store_received_object(uid.encode() + b" not dicom", TopLevel(uid, sop_class), source="c-store")
            dispatcher.notify(0)
        return real_ingest_batch(ids)

    monkeypatch.setattr(ingest, "ingest_batch", ingest_batch)
    settings.INGEST_BATCH_WAIT_MS, settings.INGEST_BATCH_SIZE = 1000, 50
    store_received_object(b"1.2.3.2000 not dicom", TopLevel("1.2.3.2000", sop_class), source="c-store")
    dispatcher = dispatch.IngestDispatcher(use_celery=False, receiving=lambda: True, clock=clock, sleep=clock.sleep)
    dispatcher.start()
    try:
        assert wait_for(lambda: ReceivedObject.objects.count() == 3
                        and not ReceivedObject.objects.filter(state="received").exists(), timeout=30)
        assert wait_for(lambda: dispatcher.batches == 2, timeout=30) and len(taken) == 2
        (first_at, first), (second_at, second) = taken
        assert first_at == pytest.approx(1.0)  # caught up: the first object waited the batch wait for company
        assert second_at == first_at and len(second) == 2  # the backlog went at once, no gathering
        store_received_object(b"1.2.3.2003 not dicom", TopLevel("1.2.3.2003", sop_class), source="c-store")
        dispatcher.notify(0)
        assert wait_for(lambda: len(taken) == 3, timeout=30)
        assert taken[2][0] == pytest.approx(second_at + 1.0)  # caught up again: it gathers again
    finally:
        dispatcher.stop()


@pytest.mark.django_db
def test_streamed_object_is_moved_into_the_inbox_private_and_idempotent(corpus, tmp_path):
    source = corpus / "ct" / "CT-RDSR-GEPixelMed.dcm"
    received = tmp_path / "received.dcm"
    shutil.copyfile(source, received)
    top = TopLevel("1.2.3.4.5", "1.2.840.10008.5.1.4.1.1.88.67")
    row, created = store_received_file(received, top, source="c-store", calling_ae="CT1")
    assert created and not received.exists()  # moved, not copied
    kept = row.file_path and Path(row.file_path)
    assert kept.read_bytes() == source.read_bytes() and row.size == source.stat().st_size
    assert row.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert stat.S_IMODE(kept.stat().st_mode) & 0o007 == 0  # no access for others: health data
    shutil.copyfile(source, received)
    again, created = store_received_file(received, top, source="c-store", calling_ae="CT1")
    assert not created and again.pk == row.pk and received.exists()  # identical bytes again: nothing new kept


@pytest.mark.django_db(transaction=True)
def test_store_handler_without_chunked_receive_keeps_the_object(corpus, monkeypatch):
    """With pynetdicom's chunked receive switched off the handler spills the object to its own file, which is then
    kept in the inbox like a streamed one (and the spill file does not linger)."""
    monkeypatch.setattr(_config, "STORE_RECV_CHUNKED_DATASET", False)
    stored = []
    scp = AE(ae_title="NOCHUNK")
    for sop_class in DOSE_SOP_CLASSES:
        scp.add_supported_context(sop_class, syntaxes_for(sop_class))
    server = scp.start_server(("127.0.0.1", 0), block=False, evt_handlers=[
        (evt.EVT_C_STORE, StoreHandler(source="c-store", on_stored=stored.append))])
    try:
        source = corpus / "ct" / "CT-RDSR-GEPixelMed.dcm"
        assert [s for _, s in push_files(server.server_address[1], [source], calling="CT9")] == [0]
    finally:
        server.shutdown()
    row = ReceivedObject.objects.get(calling_ae="CT9")
    assert stored == [row.pk] and Path(row.file_path).exists()
    assert row.size >= source.stat().st_size - 200  # the whole object (file meta may be rewritten by the sender)
    kept = pydicom.dcmread(row.file_path)
    assert kept.SOPInstanceUID == pydicom.dcmread(source, stop_before_pixels=True).SOPInstanceUID
