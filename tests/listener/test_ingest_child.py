"""The embedded mode's ingest child process (dicomrx.ingest_child) with a live listener: real processes, real
signals.  Nothing here is timed: every wait polls with a generous timeout."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from pathlib import Path

import pydicom
import pytest

from tests.conftest import wait_for
from tests.listener.helpers import fresh_copy, push_files

pytestmark = [pytest.mark.network]

SOURCES = ("ct/CT-RDSR-GEPixelMed.dcm", "dx/DX-RDSR-Canon_CXDI.dcm", "mg/MG-RDSR-Hologic_2D.dcm")


def copies(corpus: Path, tmp_path: Path, n: int, prefix: str) -> list[Path]:
    out = []
    for i in range(n):
        dst = tmp_path / f"{prefix}{i}.dcm"
        fresh_copy(corpus / SOURCES[i % len(SOURCES)], dst)
        out.append(dst)
    return out


def sop_uids(files: list[Path]) -> set[str]:
    return {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}


def ingest_child(listener) -> int | None:
    """The pid of the listener's ingest child (a 'spawn' child of the listener process), or None."""
    for task in Path(f"/proc/{listener.proc.pid}/task").iterdir():
        for pid in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            if b"multiprocessing.spawn" in cmdline and b"resource_tracker" not in cmdline:
                return int(pid)
    return None


def new_child(listener, other_than: int | None = None) -> int:
    pid = wait_for(lambda: (p := ingest_child(listener)) and p != other_than and p, timeout=60)
    assert pid, f"no ingest child process: {listener.log.read_text()[-2000:]}"
    return pid


def exactly_once(listener, acknowledged: set[str]) -> None:
    """Every acknowledged object: one received-object row, ingested, and one dose report."""
    rows = listener.query("select sop_instance_uid, count(*), max(state) from registry_receivedobject "
                          "group by sop_instance_uid")
    assert {uid for uid, _, _ in rows} == acknowledged
    assert all(n == 1 and state == "ingested" for _, n, state in rows), rows
    reports = listener.query("select sop_instance_uid, count(*) from registry_dosereport group by sop_instance_uid")
    assert dict(reports) == dict.fromkeys(acknowledged, 1)


def stop_idle(listener, child: int) -> None:
    """SIGSTOP the child where it holds no SQLite write lock (checked by taking the lock once, here): stopped inside
    a transaction it would hold the listener's writes back, which is not what a busy child does."""
    def stopped_without_lock() -> bool:
        os.kill(child, signal.SIGSTOP)
        con = sqlite3.connect(listener.data_dir / "dosereg.sqlite3", timeout=0.5)
        try:
            con.execute("begin immediate")
            con.rollback()
            return True
        except sqlite3.OperationalError:  # locked: let it finish its transaction and try again
            os.kill(child, signal.SIGCONT)
            return False
        finally:
            con.close()

    assert wait_for(stopped_without_lock, timeout=60, interval=0.1)


def test_the_ingest_child_ingests_what_the_listener_stored(start_listener, corpus, tmp_path):
    listener = start_listener()
    child = new_child(listener)
    assert Path(f"/proc/{child}/status").read_text().count(f"PPid:\t{listener.proc.pid}\n") == 1
    files = copies(corpus, tmp_path, 6, "a")
    assert [status for _, status in push_files(listener.port, files)] == [0] * 6
    listener.wait_ingested(6)
    exactly_once(listener, sop_uids(files))
    assert ingest_child(listener) == child  # the same child did it, no restart


def test_the_listener_keeps_acknowledging_while_the_child_cannot_ingest(start_listener, corpus, tmp_path):
    listener = start_listener()
    child = new_child(listener)
    first = copies(corpus, tmp_path, 1, "first")
    assert [status for _, status in push_files(listener.port, first)] == [0]
    listener.wait_ingested(1)
    stop_idle(listener, child)
    try:
        files = copies(corpus, tmp_path, 30, "b")
        assert [status for _, status in push_files(listener.port, files)] == [0] * 30
        # acknowledged and durable while the child could not run; the listener itself ingests nothing
        assert dict(listener.query("select state, count(*) from registry_receivedobject group by state")) == \
            {"ingested": 1, "received": 30}
    finally:
        os.kill(child, signal.SIGCONT)
    listener.wait_ingested(31)
    exactly_once(listener, sop_uids(first + files))
    assert ingest_child(listener) == child


def test_sigkill_of_the_child_mid_batch_loses_nothing_and_it_is_started_again(start_listener, corpus, tmp_path):
    # a lease of 1 s on claimed rows, so the batch the killed child had claimed is taken again soon
    listener = start_listener(DOSEREG_INGEST_RETRY_DELAY_S="1", DOSEREG_INGEST_BATCH_SIZE="20")
    child = new_child(listener)
    stop_idle(listener, child)  # the whole load waits, so the child is surely inside a batch when killed
    files = copies(corpus, tmp_path, 60, "c")
    try:
        assert [status for _, status in push_files(listener.port, files)] == [0] * 60
    finally:
        os.kill(child, signal.SIGCONT)
    in_batch = "select count(*) from registry_receivedobject where state = 'received' and attempts > 0"
    caught = threading.Event()

    def kill_in_batch() -> bool:
        if listener.query(in_batch)[0][0]:  # claimed, not yet recorded: the batch's transaction is under way
            os.kill(child, signal.SIGKILL)
            caught.set()
        return caught.is_set() or not listener.query("select count(*) from registry_receivedobject "
                                                     "where state = 'received'")[0][0]

    assert wait_for(kill_in_batch, timeout=120, interval=0.01)
    assert caught.is_set(), "the child finished every batch before one could be seen under way"
    restarted = new_child(listener, other_than=child)
    listener.wait_ingested(60, timeout=300)
    exactly_once(listener, sop_uids(files))
    # the killed batch was claimed twice (attempt 1 killed, attempt 2 recorded), by the restarted child
    assert listener.query("select count(*) from registry_receivedobject where attempts >= 2")[0][0] >= 1
    assert ingest_child(listener) == restarted
    assert "ingest process" in listener.log.read_text() and "starting it again" in listener.log.read_text()
