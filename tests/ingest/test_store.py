"""The durable store of a received object (dicomrx.storage): the bytes first, then one INSERT of the row; identical
bytes again find their row and never disturb the file it owns."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dicomrx.storage import (
    InboxGroup,
    StorageError,
    StoreTogether,
    TopLevel,
    inbox_path,
    store_received_file,
    store_received_object,
)
from dosereg.registry.models import ReceivedObject
from tests.conftest import require

pytestmark = pytest.mark.django_db

SAMPLE = "ct/CT-RDSR-GEPixelMed.dcm"


def _object(corpus, **changes) -> tuple[bytes, TopLevel]:
    ds = pydicom.dcmread(corpus / SAMPLE)
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue(), TopLevel(ds.SOPInstanceUID, ds.SOPClassUID, ds.StudyInstanceUID, "SR")


def _inbox_files(settings) -> list[Path]:
    return sorted(p for p in Path(settings.INBOX_DIR).rglob("*") if p.is_file())


def test_a_new_object_is_one_insert_after_its_file_is_kept(corpus, settings):
    data, top = _object(corpus)
    with CaptureQueriesContext(connection) as queries:
        row, created = store_received_object(data, top, source="c-store", calling_ae="CT1", peer_address="10.0.0.7")
    assert created and len(queries.captured_queries) == 1
    assert queries.captured_queries[0]["sql"].lstrip().upper().startswith("INSERT")
    stored = ReceivedObject.objects.get(pk=row.pk)
    assert (stored.sop_instance_uid, stored.calling_ae, stored.peer_address, stored.state, stored.size) == \
        (top.sop_instance_uid, "CT1", "10.0.0.7", ReceivedObject.STATE_RECEIVED, len(data))
    assert stored.received_at is not None and stored.warnings == []
    assert Path(stored.file_path).read_bytes() == data and _inbox_files(settings) == [Path(stored.file_path)]


def test_a_correction_with_the_same_sop_instance_uid_is_a_new_row(corpus):
    data, top = _object(corpus)
    first, _ = store_received_object(data, top, source="c-store")
    corrected, top2 = _object(corpus, StudyDescription="corrected")
    assert top2.sop_instance_uid == top.sop_instance_uid
    second, created = store_received_object(corrected, top2, source="c-store")
    assert created and second.pk != first.pk
    assert Path(first.file_path).read_bytes() == data and Path(second.file_path).read_bytes() == corrected


def test_a_resend_never_overwrites_the_rows_rewritten_file(corpus, settings):
    """With pseudonymisation on, ingest rewrites the stored file de-identified; the original sent again the same day
    (the same content-addressed name) must not put the identifiable bytes back."""
    data, top = _object(corpus)
    row, _ = store_received_object(data, top, source="c-store")
    Path(row.file_path).write_bytes(b"de-identified rewrite")
    again, created = store_received_object(data, top, source="c-store")
    assert not created and again.pk == row.pk and again.file_path == row.file_path
    assert Path(row.file_path).read_bytes() == b"de-identified rewrite"
    assert _inbox_files(settings) == [Path(row.file_path)]


def test_a_resend_on_another_day_keeps_the_rows_file_and_drops_the_copy(corpus, settings):
    data, top = _object(corpus)
    row, _ = store_received_object(data, top, source="c-store")
    earlier = Path(settings.INBOX_DIR) / "2020" / "01" / "02" / Path(row.file_path).name
    earlier.parent.mkdir(parents=True)
    shutil.move(row.file_path, earlier)
    ReceivedObject.objects.filter(pk=row.pk).update(file_path=str(earlier))
    again, created = store_received_object(data, top, source="c-store")
    assert not created and again.pk == row.pk and again.file_path == str(earlier)
    assert earlier.read_bytes() == data and _inbox_files(settings) == [earlier]


def test_a_resend_restores_a_lost_file(corpus, settings):
    data, top = _object(corpus)
    row, _ = store_received_object(data, top, source="c-store")
    Path(row.file_path).unlink()
    ReceivedObject.objects.filter(pk=row.pk).update(file_path="")
    again, created = store_received_object(data, top, source="c-store")
    assert not created and again.pk == row.pk
    assert ReceivedObject.objects.get(pk=row.pk).file_path == str(inbox_path(again.sha256))
    assert Path(again.file_path).read_bytes() == data


def test_a_streamed_resend_the_same_day_leaves_the_received_file(corpus, tmp_path, settings):
    data, top = _object(corpus)
    received = tmp_path / "received.dcm"
    received.write_bytes(data)
    row, created = store_received_file(received, top, source="c-store")
    assert created and not received.exists()
    Path(row.file_path).write_bytes(b"de-identified rewrite")
    received.write_bytes(data)
    with CaptureQueriesContext(connection) as queries:
        again, created = store_received_file(received, top, source="c-store")
    assert not created and again.pk == row.pk and len(queries.captured_queries) <= 2
    assert received.exists() and Path(row.file_path).read_bytes() == b"de-identified rewrite"


@pytest.mark.parametrize("streamed", [False, True])
def test_a_leftover_file_no_row_owns_is_replaced_by_the_bytes_received(corpus, tmp_path, settings, streamed):
    """A file of these bytes in the inbox without a row (a crash before its row, or the de-identified rewrite of a
    purged row) must not be taken for the original: the new row's file holds exactly the bytes received."""
    data, top = _object(corpus)
    target = inbox_path(hashlib.sha256(data).hexdigest())
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"de-identified rewrite of a purged row")
    if streamed:
        received = tmp_path / "received.dcm"
        received.write_bytes(data)
        row, created = store_received_file(received, top, source="c-store")
        assert not received.exists()  # moved over the leftover, not copied
    else:
        row, created = store_received_object(data, top, source="c-store")
    assert created and row.file_path == str(target) and target.read_bytes() == data
    assert _inbox_files(settings) == [target]


# --- objects kept together (import, PACS pull): one barrier and one INSERT for the group -----------------------------

def _new_objects(corpus, n: int) -> list[tuple[bytes, TopLevel]]:
    return [_object(corpus, SOPInstanceUID=f"1.2.826.0.1.3680043.10.1418.{i}") for i in range(n)]


def test_a_group_is_one_insert_after_its_files_are_kept(corpus, settings):
    objects = _new_objects(corpus, 5)
    group = InboxGroup(source="import")
    for data, top in objects:
        group.add(data, top)
    with CaptureQueriesContext(connection) as queries:
        stored = group.commit()
    assert [q["sql"].lstrip().split()[0].upper() for q in queries.captured_queries] == ["SELECT", "INSERT"]
    assert [created for _, created in stored] == [True] * 5
    for (data, top), (row, _) in zip(objects, stored, strict=True):
        kept = ReceivedObject.objects.get(pk=row.pk)
        assert (kept.sop_instance_uid, kept.source, kept.size) == (top.sop_instance_uid, "import", len(data))
        assert Path(kept.file_path).read_bytes() == data
    assert len(_inbox_files(settings)) == 5  # no temporary name left behind


def test_an_import_run_again_finds_what_it_kept_without_writing_it_again(corpus, settings):
    """Resuming an interrupted import: what is recorded is found by SOP Instance UID and SHA-256 in one query per
    group, its file neither written again nor flushed, and no INSERT is tried."""
    objects = _new_objects(corpus, 4)
    first = InboxGroup(source="import")
    for data, top in objects[:3]:
        first.add(data, top)
    kept = first.commit()
    files = {p: p.stat().st_mtime_ns for p in _inbox_files(settings)}
    again = InboxGroup(source="import")
    for data, top in objects:
        again.add(data, top)
    with CaptureQueriesContext(connection) as queries:
        stored = again.commit()
    assert [q["sql"].lstrip().split()[0].upper() for q in queries.captured_queries] == ["SELECT", "INSERT"]
    assert [(row.pk, created) for row, created in stored[:3]] == [(row.pk, False) for row, _ in kept]
    assert stored[3][1] and Path(stored[3][0].file_path).read_bytes() == objects[3][0]
    assert {p: p.stat().st_mtime_ns for p in files} == files  # the kept files untouched
    assert len(_inbox_files(settings)) == 4


def test_a_group_finds_resends_and_the_same_bytes_twice(corpus, settings):
    (a, top_a), (b, top_b) = _new_objects(corpus, 2)
    earlier, _ = store_received_object(a, top_a, source="c-store")
    group = InboxGroup(source="import")
    for data, top in ((a, top_a), (b, top_b), (b, top_b)):
        group.add(data, top)
    (row_a, created_a), (row_b, created_b), (row_b2, created_b2) = group.commit()
    assert (row_a.pk, created_a) == (earlier.pk, False)
    assert created_b and not created_b2 and row_b2.pk == row_b.pk
    assert ReceivedObject.objects.count() == 2 and len(_inbox_files(settings)) == 2
    assert Path(row_b.file_path).read_bytes() == b


def test_a_group_replaces_a_leftover_file_no_row_owns(corpus, settings):
    """A crash after a group's files were placed but before its INSERT leaves files without rows; the bytes sent
    again replace them (a leftover may be cut short by the crash)."""
    [(data, top)] = _new_objects(corpus, 1)
    target = inbox_path(hashlib.sha256(data).hexdigest())
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data[:100])
    group = InboxGroup(source="import")
    group.add(data, top)
    [(row, created)] = group.commit()
    assert created and row.file_path == str(target) and target.read_bytes() == data


def test_a_full_disk_refuses_the_objects_that_did_not_fit_and_keeps_the_rest(corpus, settings, tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    require(done.returncode == 0, "mounting a tmpfs is not allowed here (needs root)")
    try:
        settings.INBOX_DIR = mount / "inbox"
        objects = _new_objects(corpus, 6)
        size = len(objects[0][0])
        (mount / "filler").write_bytes(b"\0" * (shutil.disk_usage(mount).free - int(2.5 * size) - 8192))
        group = InboxGroup(source="import")
        for data, top in objects:
            group.add(data, top)
        stored = group.commit()
        kept = [s for s in stored if not isinstance(s, StorageError)]
        refused = [s for s in stored if isinstance(s, StorageError)]
        assert 1 <= len(kept) < 6 and stored[: len(kept)] == kept  # the first ones fit, the rest did not
        assert all("No space left" in str(e) for e in refused)
        assert ReceivedObject.objects.count() == len(kept)
        for (data, _), (row, created) in zip(objects, kept, strict=False):
            assert created and Path(row.file_path).read_bytes() == data
        assert len(_inbox_files(settings)) == len(kept)  # a file cut short by the full disk is not left behind
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_store_files_keeps_a_large_batch_as_several_groups(corpus, tmp_path, monkeypatch):
    from dicomrx.ingest import store_files

    paths = []
    for i, (data, _) in enumerate(_new_objects(corpus, 5)):
        paths.append(tmp_path / f"{i}.dcm")
        paths[-1].write_bytes(data)
    (tmp_path / "notes.txt").write_text("not DICOM")
    monkeypatch.setattr(InboxGroup, "MAX_OPEN", 2)
    with CaptureQueriesContext(connection) as queries:
        out = store_files([*paths[:3], tmp_path / "notes.txt", *paths[3:], paths[0]])
    inserts = [q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 3  # groups of 2, 2 and 1 new objects
    assert [getattr(o, "status", "row") for o in out] == ["row"] * 3 + ["skipped"] + ["row"] * 3
    assert out[-1].pk == out[0].pk and ReceivedObject.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_concurrent_stores_waiting_together_share_one_barrier_and_one_insert(corpus, settings):
    """Stores arriving while a group is being made durable wait for the next leader, who takes them all."""
    import threading

    from django.db import connections

    objects = _new_objects(corpus, 4)
    together = StoreTogether()
    results: dict[int, object] = {}

    def store(i: int) -> None:
        data, top = objects[i]
        try:
            results[i] = store_received_object(data, top, source="c-store", together=together)
        except StorageError as exc:
            results[i] = exc
        finally:
            connections.close_all()

    with together._cond:
        together._leading = True  # as if a group were being flushed: the stores below queue behind it
    threads = [threading.Thread(target=store, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    while len(together._waiting) < 3:
        threading.Event().wait(0.01)
    with together._cond:
        together._leading = False
        together._cond.notify_all()
    for t in threads:
        t.join(30)
    assert (together.groups, together.objects) == (1, 3)
    store(3)  # one alone afterwards: a group of one
    assert (together.groups, together.objects) == (2, 4)
    for i, (data, _) in enumerate(objects):
        row, created = results[i]
        assert created and Path(ReceivedObject.objects.get(pk=row.pk).file_path).read_bytes() == data
    assert len(_inbox_files(settings)) == 4
    again, created = store_received_object(objects[0][0], objects[0][1], source="c-store", together=together)
    assert not created and again.pk == results[0][0].pk  # a re-send takes the one-object path


@pytest.mark.django_db(transaction=True)
def test_a_streamed_file_is_moved_into_the_inbox_when_stored_together(corpus, tmp_path, settings):
    [(data, top)] = _new_objects(corpus, 1)
    received = tmp_path / "received.dcm"
    received.write_bytes(data)
    row, created = store_received_file(received, top, source="c-store", together=StoreTogether())
    assert created and not received.exists() and Path(row.file_path).read_bytes() == data
    assert Path(row.file_path).stat().st_mode & 0o777 == 0o600
