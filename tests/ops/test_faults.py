"""Faults at the edges: a full inbox answers 0xA700 and recovers without a restart, the sweeper re-queues what a lost
message left waiting, and two concurrent importers never count the same object twice."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest
from django.utils import timezone

from bench.chaos import dose_sources, write_copies
from dicomrx import diskspace, ingest, sweeper
from dosereg.registry.models import ReceivedObject
from tests.conftest import REPO, free_port, require
from tests.listener.helpers import push_files
from tests.ops.test_startup import env

OUT_OF_RESOURCES = 0xA700


def test_space_keeps_the_reserve():
    assert diskspace.Space(free_bytes=110, reserve_bytes=100).room_for(10)
    assert not diskspace.Space(free_bytes=110, reserve_bytes=100).room_for(11)


@pytest.mark.django_db
def test_ensure_room_refuses_below_the_reserve(settings, tmp_path):
    incoming = tmp_path / "object.dcm"
    incoming.write_bytes(b"x" * 1000)
    settings.DICOM_MIN_FREE_MB = 0
    diskspace.ensure_room(incoming, tmp_path)
    settings.DICOM_MIN_FREE_MB = 10_000_000  # 10 TB
    with pytest.raises(diskspace.StorageError, match="DOSEREG_DICOM_MIN_FREE_MB"):
        diskspace.ensure_room(incoming, tmp_path)


@pytest.fixture
def small_disk(tmp_path):
    """A 24 MB tmpfs as the data directory (inbox and the listener's temporary files)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True)
    require(done.returncode == 0, "mounting a tmpfs is not allowed here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_full_disk_answers_a700_then_recovers_without_restart(small_disk, tmp_path, corpus):
    database = tmp_path / "db" / "dosereg.sqlite3"  # off the small disk: this is about the inbox
    database.parent.mkdir()
    port = free_port()
    run_env = env(small_disk, DATABASE_URL=f"sqlite:///{database}", DOSEREG_DICOM_MIN_FREE_MB="8",
                  DOSEREG_DICOM_PORT=str(port), DOSEREG_DICOM_BIND="127.0.0.1")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=run_env, check=True,
                   capture_output=True)
    files = list(write_copies(dose_sources(corpus, 200_000), 900_000, 12, tmp_path / "load"))
    listener = subprocess.Popen([sys.executable, "manage.py", "dicom_listen"], cwd=REPO, env=run_env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        from bench.listener import wait_port

        wait_port(port, listener)
        filler = small_disk / "filler"
        free = shutil.disk_usage(small_disk).free
        filler.write_bytes(b"\0" * (free - 6 * 1024 * 1024))  # 6 MB left: under the 8 MB reserve
        refused = push_files(port, files[:6], calling="FULLSCU")
        assert [status for _, status in refused] == [OUT_OF_RESOURCES] * 6
        filler.unlink()  # space returns: the same listener takes the next objects
        accepted = push_files(port, files[6:], calling="FULLSCU")
        assert [status for _, status in accepted] == [0] * 6
        assert listener.poll() is None
    finally:
        os.killpg(listener.pid, signal.SIGTERM)
        _, err = listener.communicate(timeout=30)
    assert "answered 0xA700: not enough free space" in err
    assert "Traceback" not in err and "run_reactor" not in err


@pytest.mark.django_db(transaction=True)
def test_sweeper_queues_what_waited_too_long(corpus, settings, tasks_in_process):
    settings.INBOX_DIR.mkdir(parents=True, exist_ok=True)
    rows = [ingest.store_file(p) for p in sorted((corpus / "ct").glob("*.dcm"))[:2]]
    assert all(isinstance(r, ReceivedObject) for r in rows)
    old, fresh = rows
    ReceivedObject.objects.filter(pk=old.pk).update(
        received_at=timezone.now() - dt.timedelta(seconds=settings.INGEST_RETRY_DELAY_S + 5))
    assert sweeper.sweep() == 1  # embedded: the queued task runs at once
    assert ReceivedObject.objects.get(pk=old.pk).state != ReceivedObject.STATE_RECEIVED
    assert ReceivedObject.objects.get(pk=fresh.pk).state == ReceivedObject.STATE_RECEIVED  # its message may come


def test_two_concurrent_imports_count_each_object_once(corpus, tmp_path):
    data_dir = tmp_path / "data"
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=env(data_dir),
                   check=True, capture_output=True)
    folder = tmp_path / "folder"
    files = write_copies(dose_sources(corpus, 2_000_000), 700_000, 24, folder)
    runs = [subprocess.Popen([sys.executable, "manage.py", "import_dose", str(folder)], cwd=REPO, env=env(data_dir),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [r.communicate(timeout=600)[0] for r in runs]
    summaries = [next((line for line in out.splitlines() if line.startswith("imported=")), "") for out in outputs]
    assert all(summaries), outputs
    counts = [{k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)} for line in summaries]
    recorded = sum(c["imported"] + c["corrected"] + c["superseded"] for c in counts)
    finished = sum(c["imported"] + c["corrected"] + c["superseded"] + c["failed"] + c["skipped"] for c in counts)
    present = sum(c["already_present"] for c in counts)
    assert finished + present == 2 * len(files)  # each run accounts for every file once
    assert finished == len(files), counts  # and each object is counted by one run only
    assert recorded <= len(files)


def test_production_sweep_ingests_what_a_killed_worker_left(corpus, tmp_path):
    """What a SIGKILLed worker leaves: the row claimed (an attempt counted) and never finished, its message gone.
    Beat's sweep, run by a real worker on PostgreSQL and Redis, queues it again and it is ingested."""
    import redis

    from bench.chaos import admin_sql

    server = "postgresql://postgres@127.0.0.1:5432"
    try:
        admin_sql(server, "SELECT 1")
        redis.Redis.from_url("redis://127.0.0.1:6379/12").ping()
    except Exception as exc:  # noqa: BLE001 - whichever service is missing
        require(False, f"PostgreSQL and Redis on 127.0.0.1 are needed ({type(exc).__name__})")
    name = f"dosereg_sweep_{os.getpid()}"
    admin_sql(server, f"CREATE DATABASE {name}")
    run_env = env(tmp_path / "data", DATABASE_URL=f"{server}/{name}", CELERY_BROKER_URL="redis://127.0.0.1:6379/12")
    redis.Redis.from_url("redis://127.0.0.1:6379/12").flushdb()
    worker = None

    def shell(code: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", "shell", "--no-imports", "-c", code], cwd=REPO,
                              env=run_env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip()

    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=run_env,
                       check=True, capture_output=True)
        source = sorted((corpus / "ct").glob("*.dcm"))[0]
        pk = shell("import datetime as dt\nfrom django.utils import timezone\nfrom dicomrx import ingest\n"
                   "from dosereg.registry.models import ReceivedObject as R\n"
                   f"row = ingest.store_file(__import__('pathlib').Path({str(source)!r}))\n"
                   "R.objects.filter(pk=row.pk).update(attempts=1, "
                   "processed_at=timezone.now() - dt.timedelta(minutes=3))\nprint(row.pk)")
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "dosereg.celery", "worker", "-c", "1",
                                   "-l", "WARNING", "--without-gossip", "--without-mingle", "-n", f"sweep{os.getpid()}@%h"],
                                  cwd=REPO, env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        shell("from dicomrx.sweeper import sweep_received\nsweep_received.delay()")  # what beat sends
        state = shell("import time\nfrom dosereg.registry.models import ReceivedObject as R\n"
                      "for _ in range(120):\n"
                      f"    s = R.objects.get(pk={pk}).state\n"
                      "    if s != 'received': break\n"
                      "    time.sleep(0.5)\n"
                      "print(s)")
        assert state in {"ingested", "rejected"}, state  # finished either way: not stuck
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
        admin_sql(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
