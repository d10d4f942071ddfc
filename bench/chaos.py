"""Chaos: concurrent senders, the listener (and in production mode the Celery workers) SIGKILLed at random moments.

    .venv/bin/python bench/chaos.py --trials 20 [--mode embedded|production] [--per-trial 30] [--senders 3]
                                    [--settle 120] [--seed 1] [--corpus ../shared/rdsr]

Each trial sends fresh-UID copies of the corpus dose SRs (bench/listener.py's same-length UID substitution) from
``--senders`` concurrent associations, SIGKILLs the listener at a random moment while they send (production mode:
also a Celery worker, in half of the trials; embedded mode: in half of the trials only the listener's ingest child
process, which the listener must start again itself), and restarts what it killed.  After the last trial everything runs
until no object waits for ingest, or ``--settle`` seconds.  Then, against the database:

    acknowledged  objects the sender got Success for
    held          objects not acknowledged (association killed, or a refusal status): the sender still has them
    lost          acknowledged, and no received-object row holds them
    duplicated    acknowledged, and more than one received-object row or dose report holds them
    stuck         acknowledged, and still waiting for ingest after the settle time

embedded: SQLite in a fresh data directory, the listener's ingest child process.  production: a fresh PostgreSQL
database on DATABASE_URL's server (default postgres@127.0.0.1:5432, dropped afterwards) and Redis database
``--redis-db`` (flushed first) with ``--workers`` Celery worker processes.  Exit status 1 when anything was lost,
duplicated or stuck.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.listener import DOSE_KINDS, _variant, free_port, wait_port  # noqa: E402

CALLED = "DOSEREG"
SENDER_TIMEOUT_S = 10  # an object unanswered this long counts as held (the sender keeps it and sends it again)


# --- the load ------------------------------------------------------------------------------------------------------
def dose_sources(corpus: Path, max_size: int) -> list[tuple[bytes, str, str]]:
    expected = json.loads((corpus / "expected.json").read_text())
    out = []
    for rel, info in sorted(expected.items()):
        path = corpus / rel
        if info.get("kind") in DOSE_KINDS and path.stat().st_size <= max_size:
            out.append((path.read_bytes(), info["sop_instance_uid"], info["study_instance_uid"]))
    return out


def write_copies(sources, start: int, count: int, out: Path) -> dict[Path, str]:
    """``count`` objects with UIDs numbered from ``start`` (unique across trials) -> {file: SOP Instance UID}."""
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for n in range(start, start + count):
        data, sop, study = sources[n % len(sources)]
        new, new_sop = _variant(data, sop, study, n)
        path = out / f"{n:07d}.dcm"
        path.write_bytes(new)
        files[path] = new_sop
    return files


def _sender(port: int, items: list[tuple[Path, str]], ready, results) -> None:
    results.put(_send(port, items, ready))


def _send(port: int, items: list[tuple[Path, str]], ready=None) -> list[tuple[str, int | None]]:
    """One association sending its share; (SOP Instance UID, DIMSE status or None when never answered)."""
    import warnings

    from pydicom.filereader import read_file_meta_info
    from pynetdicom import AE, _config

    warnings.simplefilter("ignore")  # pydicom's notes on the corpus's odd UIDs are not this script's business

    _config.STORE_SEND_CHUNKED_DATASET = True
    ae = AE(ae_title="CHAOSSCU")
    # pynetdicom notices a peer killed mid-request only when the DIMSE timeout runs out: keep it short
    ae.acse_timeout = ae.network_timeout = ae.dimse_timeout = SENDER_TIMEOUT_S
    for sop_class, ts in sorted({(str(m.MediaStorageSOPClassUID), str(m.TransferSyntaxUID))
                                 for m in (read_file_meta_info(p) for p, _ in items)}):
        ae.add_requested_context(sop_class, [ts])
    results: list[tuple[str, int | None]] = []
    if ready is not None:
        ready.set()  # imports done: the kill clock starts now
    try:
        assoc = ae.associate("127.0.0.1", port, ae_title=CALLED)
    except Exception:  # noqa: BLE001 - listener down: nothing sent
        return [(uid, None) for _, uid in items]
    for path, uid in items:
        status = None
        if assoc.is_established:
            try:
                answer = assoc.send_c_store(path)
                status = int(answer.Status) if answer is not None and "Status" in answer else None
            except Exception:  # noqa: BLE001 - the association died under us
                status = None
        results.append((uid, status))
    if assoc.is_established:
        assoc.release()
    return results


# --- the processes -------------------------------------------------------------------------------------------------
@dataclass
class Fleet:
    env: dict
    port: int
    workers: int
    log_dir: Path
    listener: subprocess.Popen | None = None
    worker_procs: list[subprocess.Popen] = field(default_factory=list)
    kills: dict = field(default_factory=lambda: {"listener": 0, "worker": 0, "ingest child": 0})

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")
        return subprocess.Popen(args, cwd=REPO, env=self.env, stdout=log, stderr=log, start_new_session=True)

    def start_listener(self) -> None:
        if self.listener is not None and self.listener.poll() is None:
            return  # only its ingest child was killed: the listener starts that one again itself
        self.listener = self._spawn([sys.executable, "manage.py", "dicom_listen", "--skip-checks"], "listener")
        wait_port(self.port, self.listener)

    def start_workers(self) -> None:
        while len(self.worker_procs) < self.workers:
            n = len(self.worker_procs) + self.kills["worker"]
            self.worker_procs.append(self._spawn(
                [sys.executable, "-m", "celery", "-A", "dosereg.celery", "worker", "-c", "1", "-l", "WARNING",
                 "--without-gossip", "--without-mingle", "-n", f"chaos{n}@%h"], "worker"))

    def kill_listener(self) -> None:
        if self.listener and self.listener.poll() is None:
            os.killpg(self.listener.pid, signal.SIGKILL)
            self.listener.wait()
            self.kills["listener"] += 1

    def kill_ingest_child(self) -> None:
        """SIGKILL the listener's ingest child alone (embedded mode); the listener itself stays up."""
        if self.listener and self.listener.poll() is None:
            for task in Path(f"/proc/{self.listener.pid}/task").iterdir():
                for pid in (task / "children").read_text().split():
                    if b"multiprocessing.spawn" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        os.kill(int(pid), signal.SIGKILL)
                        self.kills["ingest child"] += 1
                        return

    def kill_a_worker(self, rng: random.Random) -> None:
        if self.worker_procs:
            proc = self.worker_procs.pop(rng.randrange(len(self.worker_procs)))
            os.killpg(proc.pid, signal.SIGKILL)  # the pool's children too
            proc.wait()
            self.kills["worker"] += 1

    def stop(self) -> None:
        for proc in [self.listener, *self.worker_procs]:
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)


# --- the database --------------------------------------------------------------------------------------------------
class Rows:
    def __init__(self, mode: str, data_dir: Path, url: str):
        self.mode, self.data_dir, self.url = mode, data_dir, url

    def query(self, sql: str) -> list[tuple]:
        if self.mode == "embedded":
            db = sqlite3.connect(self.data_dir / "dosereg.sqlite3", timeout=30)
            try:
                return db.execute(sql).fetchall()
            finally:
                db.close()
        import psycopg2

        db = psycopg2.connect(self.url)
        try:
            with db.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall()
        finally:
            db.close()

    def waiting(self) -> int:
        return self.query("SELECT count(*) FROM registry_receivedobject WHERE state = 'received'")[0][0]


def admin_sql(server: str, sql: str) -> None:
    import psycopg2

    db = psycopg2.connect(f"{server}/postgres")
    db.autocommit = True
    try:
        with db.cursor() as cursor:
            cursor.execute(sql)
    finally:
        db.close()


def base_env(mode: str, data_dir: Path, port: int, db_url: str, redis_url: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND") and not k.startswith("DOSEREG_")}
    env.update(DOSEREG_DATA_DIR=str(data_dir), DOSEREG_DICOM_BIND="127.0.0.1", DOSEREG_DICOM_PORT=str(port),
               DOSEREG_LOG_LEVEL="WARNING", DOSEREG_TIME_ZONE="UTC", DOSEREG_ALLOWED_CALLING_AETS="CHAOSSCU",
               PYTHONUNBUFFERED="1")
    if mode == "production":
        env.update(DATABASE_URL=db_url, CELERY_BROKER_URL=redis_url)
    return env


def run(o) -> int:
    rng = random.Random(o.seed)
    work = Path(tempfile.mkdtemp(prefix="dosereg-chaos-"))
    data_dir = work / "data"
    data_dir.mkdir()
    port = free_port()
    server = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres").rsplit("/", 1)[0]
    db_name = f"dosereg_chaos_{os.getpid()}"
    db_url, redis_url = f"{server}/{db_name}", f"redis://127.0.0.1:6379/{o.redis_db}"
    env = base_env(o.mode, data_dir, port, db_url, redis_url)
    if o.mode == "production":
        import redis

        admin_sql(server, f"CREATE DATABASE {db_name}")
        redis.Redis.from_url(redis_url).flushdb()
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=env, check=True,
                   capture_output=True)
    rows = Rows(o.mode, data_dir, db_url)
    fleet = Fleet(env, port, o.workers if o.mode == "production" else 0, work)
    sources = dose_sources(o.corpus, o.max_size)
    sent: dict[str, int | None] = {}
    started = time.time()
    try:
        fleet.start_listener()
        fleet.start_workers()
        for trial in range(o.trials):
            t0 = time.time()
            files = write_copies(sources, trial * o.per_trial, o.per_trial, work / f"t{trial}")
            items = list(files.items())
            kill_at = rng.uniform(0.05, o.kill_window)
            kill_worker = rng.random() < 0.5  # production: a worker too; embedded: the ingest child instead
            if o.mode == "production":
                timer = threading.Timer(kill_at, lambda kw=kill_worker: (fleet.kill_listener(),
                                                                         kw and fleet.kill_a_worker(rng)))
            else:
                timer = threading.Timer(kill_at, fleet.kill_ingest_child if kill_worker else fleet.kill_listener)
            ctx = mp.get_context("spawn")
            ready, results = ctx.Event(), ctx.Queue()
            senders = [ctx.Process(target=_sender, args=(port, items[i::o.senders], ready, results))
                       for i in range(o.senders)]
            for proc in senders:
                proc.start()
            ready.wait(60)
            timer.start()
            t_send = time.time()
            for _ in senders:
                sent.update(results.get(timeout=300))
            for proc in senders:
                proc.join()
            timer.join()
            t_sent = time.time() - t_send
            fleet.start_listener()
            fleet.start_workers()
            acked = sum(1 for s in sent.values() if s == 0)
            what = ("the listener + a worker" if o.mode == "production" else "the ingest child") if kill_worker \
                else "the listener"
            print(f"trial {trial + 1}/{o.trials}: killed {what} at {kill_at:.2f} s; "
                  f"acknowledged so far {acked}/{len(sent)} (trial {time.time() - t0:.1f} s, sending {t_sent:.1f} s)", file=sys.stderr)
            for path in files:
                path.unlink()
        settle_from = time.time()
        while rows.waiting() and time.time() < settle_from + o.settle:
            time.sleep(1)
        report = tally(sent, rows)
        report.update(settled_after_s=round(time.time() - settle_from, 1), mode=o.mode, trials=o.trials, kills=fleet.kills, settle_s=o.settle,
                      seconds=round(time.time() - started, 1))
    finally:
        fleet.stop()
        if o.mode == "production":
            admin_sql(server, f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
    print(json.dumps(report))
    print(f"\n{o.mode}: {o.trials} trials, {report['sent']} objects sent, {fleet.kills['listener']} listener and "
          f"{fleet.kills['worker']} worker and {fleet.kills['ingest child']} ingest child SIGKILLs\n  acknowledged {report['acknowledged']}, held {report['held']}, "
          f"lost {report['lost']}, duplicated {report['duplicated']}, stuck {report['stuck']} "
          f"(after {o.settle} s); final states {report['states']}", file=sys.stderr)
    return 1 if report["lost"] or report["duplicated"] or report["stuck"] else 0


def tally(sent: dict[str, int | None], rows: Rows) -> dict:
    acked = {uid for uid, status in sent.items() if status == 0}
    received: dict[str, list[str]] = {}
    for uid, state in rows.query("SELECT sop_instance_uid, state FROM registry_receivedobject"):
        received.setdefault(uid, []).append(state)
    reports: dict[str, int] = dict(rows.query("SELECT sop_instance_uid, count(*) FROM registry_dosereport "
                                              "GROUP BY sop_instance_uid"))
    states: dict[str, int] = {}
    for uid in acked:
        for state in received.get(uid, []):
            states[state] = states.get(state, 0) + 1
    return {
        "sent": len(sent),
        "acknowledged": len(acked),
        "held": len(sent) - len(acked),
        "lost": sum(1 for uid in acked if uid not in received),
        "duplicated": sum(1 for uid in acked if len(received.get(uid, [])) > 1 or reports.get(uid, 0) > 1),
        "stuck": sum(1 for uid in acked if "received" in received.get(uid, [])),
        "states": states,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--mode", choices=("embedded", "production"), default="embedded")
    parser.add_argument("--per-trial", type=int, default=30, help="objects sent per trial")
    parser.add_argument("--senders", type=int, default=3, help="concurrent associations")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (production)")
    parser.add_argument("--kill-window", type=float, default=1.0, help="kill within this many seconds of the start")
    parser.add_argument("--settle", type=float, default=120, help="seconds allowed for the backlog to clear")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--redis-db", type=int, default=13, help="Redis database for the broker (flushed)")
    parser.add_argument("--max-size", type=int, default=2_000_000, help="leave out corpus files larger than this")
    parser.add_argument("--corpus", type=Path, default=(REPO / ".." / "shared" / "rdsr").resolve())
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
