"""import_files on PostgreSQL stores a next batch of large files in a thread of its own while it ingests this one; the
promise is unchanged (a batch is ingested only after it is stored, outcomes come in order) and the thread's database
session ends with the import.  Small files, a caller's transaction and SQLite: batches stored one after another.
The tests lower ``STORE_AHEAD_MIN_BYTES`` to make small copies count as large."""

from __future__ import annotations

import threading

import pydicom
import pytest
from django.db import connection
from pydicom.uid import generate_uid

from dicomrx import ingest
from dosereg.registry.models import ReceivedObject, Study

SOURCE = "ct/CT-RDSR-GEPixelMed.dcm"


def _copies(corpus, tmp_path, n: int) -> list:
    ds = pydicom.dcmread(corpus / SOURCE)
    out = []
    for i in range(n):
        ds.SOPInstanceUID, ds.StudyInstanceUID = generate_uid(), generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        out.append(tmp_path / f"copy-{i}.dcm")
        ds.save_as(out[-1])
    return out


@pytest.fixture
def large_on_postgresql(monkeypatch) -> int:
    """PostgreSQL, with every batch counted large enough to store ahead; gives the real threshold."""
    if connection.vendor != "postgresql":
        pytest.skip("storing ahead needs a second PostgreSQL session")
    large = ingest.STORE_AHEAD_MIN_BYTES
    monkeypatch.setattr(ingest, "STORE_AHEAD_MIN_BYTES", 1)
    return large


def _sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute("select count(*) from pg_stat_activity where datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_the_next_batch_is_stored_while_this_one_is_ingested_and_outcomes_keep_their_order(corpus, tmp_path,
                                                                                           monkeypatch,
                                                                                           large_on_postgresql):
    files = _copies(corpus, tmp_path, 7)
    before = _sessions()
    stored_in, overlaps = [], []
    store, ingest_batch = ingest.store_files, ingest.ingest_batch
    began = threading.Semaphore(0)

    def watched_store(batch, **kwargs):
        stored_in.append(threading.current_thread().name)
        began.release()
        return store(batch, **kwargs)

    def watched_ingest(ids, **kwargs):
        began.acquire(timeout=10)  # this batch's own store
        if len(overlaps) < 3:  # the first import's batches 1-3 of 4 have a next batch, stored while they are ingested
            overlaps.append(began.acquire(timeout=10))
            began.release()  # it belongs to the next batch's ingest
        return ingest_batch(ids, **kwargs)

    monkeypatch.setattr(ingest, "store_files", watched_store)
    monkeypatch.setattr(ingest, "ingest_batch", watched_ingest)
    outcomes = list(ingest.import_files(files, batch_size=2))
    assert [path for path, _ in outcomes] == files
    assert [o.status for _, o in outcomes] == ["imported"] * 7
    main = threading.current_thread().name  # the first batch is stored before there is anything to overlap
    assert stored_in[0] == main and len(stored_in) == 4
    assert all(name.startswith("store-ahead") for name in stored_in[1:])
    assert overlaps == [True, True, True]
    assert Study.objects.count() == 7 and not ReceivedObject.objects.exclude(state="ingested").exists()
    assert _sessions() == before  # the storing thread's session ended with the import
    stored_in.clear()
    (tmp_path / "single").mkdir()
    single = _copies(corpus, tmp_path / "single", 2)
    assert [o.status for _, o in ingest.import_files(single, batch_size=2)] == ["imported"] * 2
    assert stored_in == [main]  # a single batch: no thread, no second session
    monkeypatch.setattr(ingest, "STORE_AHEAD_MIN_BYTES", large_on_postgresql)
    stored_in.clear()
    (tmp_path / "small").mkdir()
    small = _copies(corpus, tmp_path / "small", 5)
    assert [o.status for _, o in ingest.import_files(small, batch_size=2)] == ["imported"] * 5
    assert stored_in == [main] * 3  # small files: their store is Python work a thread would not overlap


@pytest.mark.django_db(transaction=True)
def test_an_import_stopped_early_leaves_the_batch_stored_ahead_kept_and_found_by_the_next_import(corpus, tmp_path,
                                                                                               large_on_postgresql):
    files = _copies(corpus, tmp_path, 4)
    before = _sessions()
    run = ingest.import_files(files, batch_size=2)
    first = [next(run), next(run)]
    run.close()  # the consumer stops after the first batch: the second was being stored meanwhile
    assert [o.status for _, o in first] == ["imported"] * 2
    assert ReceivedObject.objects.count() == 4  # durable and recorded, waiting to be ingested
    assert ReceivedObject.objects.filter(state="received").count() == 2
    assert _sessions() == before
    again = [o.status for _, o in ingest.import_files(files, batch_size=2)]
    assert again == ["already_present", "already_present", "imported", "imported"]


@pytest.mark.django_db
def test_inside_a_callers_transaction_batches_are_stored_one_after_another(corpus, tmp_path, monkeypatch):
    files = _copies(corpus, tmp_path, 3)
    monkeypatch.setattr(ingest, "STORE_AHEAD_MIN_BYTES", 1)
    stored_in = []
    store = ingest.store_files
    monkeypatch.setattr(ingest, "store_files",
                        lambda batch, **kw: stored_in.append(threading.current_thread().name) or store(batch, **kw))
    outcomes = [o.status for _, o in ingest.import_files(files, batch_size=2)]
    assert outcomes == ["imported"] * 3
    assert stored_in == [threading.current_thread().name] * 2
