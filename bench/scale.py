"""Scale-out of ingest: the same backlog ingested by 1, 2 and 4 Celery worker processes on PostgreSQL and Redis.

    .venv/bin/python bench/scale.py [--objects 400] [--workers 1,2,4] [--batch 10] [--corpus ../shared/rdsr]

For each worker count: a fresh PostgreSQL database (on DATABASE_URL's server, default postgres@127.0.0.1:5432,
dropped afterwards), ``--objects`` fresh-UID copies of the corpus dose SRs received by ``dicom_listen --no-ingest``
(so they all wait in state 'received'), then one Celery worker with N prefork processes started and, once it answers
a ping, the backlog queued as ``dicomrx.tasks.ingest_objects`` tasks of ``--batch`` objects (what the listener's
dispatcher sends).  Timed from the first task queued until no object waits.  Prints objects/s and the speed-up over
one process.  Ingest is CPU-bound in the worker (parsing, recording) with PostgreSQL doing row locking, so the
speed-up is bounded by the machine's free cores: on a shared 2-core machine expect about 2x at most.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.chaos import Rows, _send, admin_sql, base_env, dose_sources, write_copies  # noqa: E402
from bench.listener import free_port, wait_port  # noqa: E402


def receive_backlog(env: dict, port: int, files: dict, work: Path) -> int:
    log = open(work / "listener.log", "ab")
    listener = subprocess.Popen([sys.executable, "manage.py", "dicom_listen", "--no-ingest", "--skip-checks"],
                                cwd=REPO, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        wait_port(port, listener)
        items = list(files.items())
        acked = sum(1 for _, status in _send(port, items) if status == 0)
    finally:
        os.killpg(listener.pid, signal.SIGTERM)
        listener.wait(30)
    return acked


def start_worker(env: dict, processes: int, work: Path, broker: str) -> subprocess.Popen:
    from celery import Celery

    log = open(work / f"worker-{processes}.log", "ab")
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "dosereg.celery", "worker", "-P", "prefork",
                               "-c", str(processes), "-l", "WARNING", "--without-gossip", "--without-mingle",
                               "-n", f"scale{processes}@%h"], cwd=REPO, env=env, stdout=log, stderr=log,
                              start_new_session=True)
    probe = Celery(broker=broker)
    deadline = time.time() + 60
    while time.time() < deadline:
        if probe.control.ping(timeout=1):
            return worker
    os.killpg(worker.pid, signal.SIGKILL)
    raise SystemExit("the Celery worker did not answer within 60 s")


def idle(app) -> bool:
    inspect = app.control.inspect(timeout=1)
    busy = [*((inspect.active() or {}).values()), *((inspect.reserved() or {}).values())]
    return not any(busy)


def measure(o, processes: int, sources, work: Path) -> dict:
    import redis
    from celery import Celery

    server = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres").rsplit("/", 1)[0]
    db_name = f"dosereg_scale_{os.getpid()}_{processes}"
    db_url, broker = f"{server}/{db_name}", f"redis://127.0.0.1:6379/{o.redis_db}"
    data_dir = work / f"data-{processes}"
    data_dir.mkdir()
    port = free_port()
    env = base_env("production", data_dir, port, db_url, broker)
    env["DOSEREG_ALLOWED_CALLING_AETS"] = "CHAOSSCU"
    admin_sql(server, f"CREATE DATABASE {db_name}")
    worker = None
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=env, check=True,
                       capture_output=True)
        files = write_copies(sources, processes * 100_000, o.objects, work / f"load-{processes}")
        acked = receive_backlog(env, port, files, work)
        rows = Rows("production", data_dir, db_url)
        ids = [r[0] for r in rows.query("SELECT id FROM registry_receivedobject WHERE state = 'received' "
                                        "ORDER BY id")]
        redis.Redis.from_url(broker).flushdb()
        worker = start_worker(env, processes, work, broker)
        app = Celery(broker=broker)
        t0 = time.perf_counter()
        for i in range(0, len(ids), o.batch):
            app.send_task("dicomrx.tasks.ingest_objects", args=[ids[i:i + o.batch]])
        queue = redis.Redis.from_url(broker)
        while rows.waiting() and time.perf_counter() - t0 < o.timeout:
            if queue.llen("celery") == 0 and idle(app):  # what is left failed its attempt (retried later)
                break
            time.sleep(0.3)
        seconds = time.perf_counter() - t0
        states = dict(rows.query("SELECT state, count(*) FROM registry_receivedobject GROUP BY state"))
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        admin_sql(server, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
    return {"processes": processes, "objects": len(ids), "acknowledged": acked, "seconds": seconds,
            "failed_attempts": states.get("received", 0),
            "per_second": (len(ids) - states.get("received", 0)) / seconds if seconds else 0.0, "states": states}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=400)
    parser.add_argument("--workers", default="1,2,4", help="worker process counts to compare")
    parser.add_argument("--batch", type=int, default=10, help="objects per ingest task")
    parser.add_argument("--timeout", type=float, default=900, help="give up waiting for a backlog after this")
    parser.add_argument("--redis-db", type=int, default=14, help="Redis database for the broker (flushed)")
    parser.add_argument("--max-size", type=int, default=2_000_000)
    parser.add_argument("--corpus", type=Path, default=(REPO / ".." / "shared" / "rdsr").resolve())
    o = parser.parse_args()
    sources = dose_sources(o.corpus, o.max_size)
    work = Path(tempfile.mkdtemp(prefix="dosereg-scale-"))
    results = []
    for processes in (int(n) for n in o.workers.split(",")):
        result = measure(o, processes, sources, work)
        results.append(result)
        print(f"{processes} worker process(es): {result['objects']} objects in {result['seconds']:.1f} s = "
              f"{result['per_second']:.1f} objects/s; states {result['states']} (still 'received': the attempt failed)", file=sys.stderr)
    base = results[0]["per_second"] or 1.0
    print(f"\n{'processes':>9} {'objects':>8} {'seconds':>8} {'objects/s':>10} {'speed-up':>9}")
    for r in results:
        print(f"{r['processes']:>9} {r['objects']:>8} {r['seconds']:>8.1f} {r['per_second']:>10.1f} "
              f"{r['per_second'] / base:>8.2f}x")
    print(f"(machine: {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
