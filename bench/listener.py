"""Listener throughput: objects per second acknowledged and ingested, against DCMTK's storescp on the same load.

    .venv/bin/python bench/listener.py [--count 3000] [--senders 4] [--rounds 3] [--corpus ../shared/rdsr]
                                       [--modes embedded,production] [--workers 1,2] [--redis-db 13]
    .venv/bin/python bench/listener.py --idle 4 [--rounds 3]

The load: copies of the corpus dose SRs with fresh SOP Instance and Study Instance UIDs (same-length byte
substitution, so nothing is re-encoded), written once to a temporary folder.  Each sender is a separate process with
one association that sends the pre-encoded files as they are (``ul_sender``: a synchronous DICOM Upper Layer sender
with TCP_NODELAY; ``--sender pynetdicom`` uses pynetdicom's chunked send, which intermittently stalled an association
until the network timeout, see ``ul_sender``; ``--sender storescu`` uses DCMTK's storescu, which parses each file
first).
The same senders send the same files to DCMTK's ``storescp`` (``--fork``: one process per association, as DCMTK
handles concurrent senders; it parses every object and writes it to disk) and to ``manage.py dicom_listen``:

- embedded: SQLite in a fresh data folder, ingest in the listener's child process; also once with ingest off
  (``--no-ingest``: the receive path alone);
- production: a fresh PostgreSQL database on DATABASE_URL's server (default dosereg@127.0.0.1:5432, dropped
  afterwards), Redis database ``--redis-db`` (flushed) and N Celery workers (``--workers``, each with
  ``--concurrency`` processes, default 2 as ``docker-compose.yml`` runs a worker), the listener sending batches of
  ids to them.

All run with TCP_NODELAY=1.  Per run: acknowledged objects/s (first send to last Success), ingested objects/s (first
send to the last object out of state 'received'), the lag from the last Success to the last object ingested, and
peak RSS (VmHWM) of the listener, of its ingest child and of the largest Celery worker process, and the CPU time
per object of each (user + system, from the first send to the last object ingested; storescp's with its reaped
children: CPU is steadier than rates on a shared machine).  ``--rounds N``
repeats every configuration, interleaved, and prints the medians: on a shared 2-core machine single runs vary by a
third.  Ratios are against storescp's acknowledged rate in the same round.  ``--idle N`` measures only what the
listener's own process spends while N associations stay open without sending (pynetdicom polls each one).  ``BENCH_LOG_LEVEL=INFO`` and
``BENCH_KEEP_LOG=DIR`` keep each run's listener log in DIR (at INFO it names every ingested batch and its size).
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TICK = os.sysconf("SC_CLK_TCK")
SENDER = "ul"  # or "pynetdicom", "storescu" (--sender)
STALL_S = 120
DOSE_KINDS = {"ct", "projection", "radiopharmaceutical", "summary"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _uid_variant(uid: str, n: int) -> str:
    """A UID of the same length: the digits after the first of its longest component replaced by n."""
    parts = uid.split(".")
    i = max(range(len(parts)), key=lambda k: len(parts[k]))
    width = min(len(parts[i]) - 1, 9)
    if width < 3:
        raise ValueError(f"cannot vary {uid}")
    parts[i] = parts[i][: len(parts[i]) - width] + f"{n % 10 ** width:0{width}d}"
    return ".".join(parts)


def _variant(data: bytes, sop_uid: str, study_uid: str, n: int) -> tuple[bytes, str]:
    new_sop = _uid_variant(sop_uid, n)
    new = data.replace(study_uid.encode(), _uid_variant(study_uid, n + 7).encode())
    return new.replace(sop_uid.encode(), new_sop.encode()), new_sop


def build_load(corpus: Path, count: int, out: Path, max_size: int) -> list[Path]:
    import pydicom

    # the corpus's quirks (a '-' in a UID) are sent as they are: no warning per probe
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    expected = json.loads((corpus / "expected.json").read_text())
    sources = []
    for rel, info in sorted(expected.items()):
        path = corpus / rel
        if info.get("kind") not in DOSE_KINDS or path.stat().st_size > max_size:
            continue
        data, sop_uid, study_uid = path.read_bytes(), info["sop_instance_uid"], info["study_instance_uid"]
        new, new_sop = _variant(data, sop_uid, study_uid, 1)
        probe = out / "probe.dcm"
        probe.write_bytes(new)
        ds = pydicom.dcmread(probe, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
        if ds.file_meta.MediaStorageSOPInstanceUID == new_sop and ds.SOPInstanceUID == new_sop:
            sources.append((data, sop_uid, study_uid))  # the substitution gives a consistent object
        probe.unlink()
    files = []
    for i, (data, sop_uid, study_uid) in zip(range(count), itertools.cycle(sources)):
        path = out / f"{i:06d}.dcm"
        path.write_bytes(_variant(data, sop_uid, study_uid, i)[0])
        files.append(path)
    return files


def _sender(args) -> tuple[int, int, dict[str, int]]:
    """One pynetdicom association streaming pre-encoded files (chunked send: no decoding), TCP_NODELAY set.  An
    association that ends early (aborted by either side) is counted as failures for the files it did not send.  The
    third value counts the non-Success answers by status (and error comment), so a failed run says why."""
    port, called, files = args
    from pydicom.filereader import read_file_meta_info
    from pynetdicom import AE, _config

    _config.STORE_SEND_CHUNKED_DATASET = True
    ae = AE(ae_title="BENCHSCU")
    ae.acse_timeout = ae.network_timeout = ae.dimse_timeout = 120
    contexts = set()
    for f in files:
        meta = read_file_meta_info(f)
        contexts.add((str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID)))
    for sop_class, ts in sorted(contexts):
        ae.add_requested_context(sop_class, [ts])
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        return 0, len(files), {"association rejected or not established": len(files)}
    assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ok = failed = 0
    why: dict[str, int] = {}
    for i, f in enumerate(files):
        if not assoc.is_established:
            why[f"association ended after {i} of {len(files)} objects"] = len(files) - i
            return ok, failed + len(files) - i, why
        status = assoc.send_c_store(f)
        code = getattr(status, "Status", None)
        if code == 0:
            ok += 1
        else:
            failed += 1
            key = "no answer" if code is None else f"0x{code:04X} {getattr(status, 'ErrorComment', '') or ''}".strip()
            why[key] = why.get(key, 0) + 1
    assoc.release()
    return ok, failed, why


def _ul_sender(args) -> tuple[int, int, dict[str, int]]:
    """One association of the synchronous Upper Layer sender (``ul_sender``): the files' bytes as they are."""
    import ul_sender

    port, called, files = args
    return ul_sender.send_files(port, called, files)


def _storescu(args) -> tuple[int, int]:
    port, called, files = args
    proc = subprocess.run([shutil.which("storescu"), "-nh", "-R", "-aet", "BENCHSCU", "-aec", called, "127.0.0.1",
                           str(port), *map(str, files)], capture_output=True, text=True,
                          env={"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"})
    failed = sum(1 for line in proc.stderr.splitlines() if line.startswith("E: Store Failed"))
    failed += sum(1 for line in proc.stderr.splitlines() if "Store SCU Failed" in line)
    return len(files) - failed, failed, {"storescu: see its stderr": failed} if failed else {}


def send_all(port: int, called: str, files: list[Path], senders: int) -> tuple[float, float, int, int, dict[str, int]]:
    """Send with ``senders`` concurrent processes: ``ul_sender`` (default; the bytes as they are), pynetdicom
    (``--sender pynetdicom``) or DCMTK storescu (``--sender storescu``; it parses every file before sending it, which
    dominates for large SRs)."""
    shares = [files[i::senders] for i in range(senders)]
    worker = {"storescu": _storescu, "pynetdicom": _sender}.get(SENDER, _ul_sender)
    with mp.get_context("spawn").Pool(senders) as pool:
        pool.map(abs, range(senders))  # the senders are up (spawned, imported) before the clock starts
        t0 = time.perf_counter()
        results = pool.map(worker, [(port, called, share) for share in shares])
        t1 = time.perf_counter()
    why: dict[str, int] = {}
    for *_, reasons in results:
        for key, n in reasons.items():
            why[key] = why.get(key, 0) + n
    return t0, t1, sum(r[0] for r in results), sum(r[1] for r in results), why


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"receiver exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("receiver did not open its port")


def wait_workers(redis_url: str, names: list[str], procs: list[subprocess.Popen], timeout: float = 120) -> None:
    """Until every Celery worker answers a ping (its consumer is up): a worker still starting (Django checks, the
    pool's fork) would otherwise take the first seconds of the load and show as ingest lag."""
    from celery import Celery

    app = Celery(broker=redis_url)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            if any(p.poll() is not None for p in procs):
                raise SystemExit("a Celery worker exited during start-up")
            replies = app.control.ping(destination=names, timeout=1.0)
            if {name for reply in replies for name in reply} >= set(names):
                return
        raise SystemExit(f"the Celery workers did not answer within {timeout:.0f} s")
    finally:
        app.close()


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def wait_idle(roots: list[int], timeout: float = 60) -> None:
    """Until the receiver's processes (the listener, its ingest child, the workers' pools) stop using CPU: the
    measure is of a running service, not of its start-up (the ingest child sets Django up after the port opens)."""
    deadline, last = time.time() + timeout, None
    while time.time() < deadline:
        now = sum(cpu_ticks(p) for r in roots for p in [r, *descendants(r)])
        if last is not None and now - last <= 2:  # at most 20 ms of CPU in half a second
            return
        last = now
        time.sleep(0.5)


def peak_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s(pid: int, *, reaped: bool = False) -> float:
    """The CPU seconds (user + system) a live process has used; ``reaped``: with those of its children it has waited
    for (storescp --fork reaps one child per association)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if reaped else 0)
    return ticks / TICK


def children(pid: int) -> list[int]:
    out = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return out


def descendants(pid: int) -> list[int]:
    found = children(pid)
    return found + [d for c in found for d in descendants(c)]


def base_env(data_dir: Path, senders: int) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND") and not k.startswith("DOSEREG_")}
    env.update(DOSEREG_DATA_DIR=str(data_dir), DOSEREG_DICOM_BIND="127.0.0.1",
               DOSEREG_LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"), DOSEREG_TIME_ZONE="UTC", DOSEREG_DICOM_MAX_ASSOCIATIONS=str(max(senders, 10)))
    for knob in ("DOSEREG_INGEST_BATCH_SIZE", "DOSEREG_INGEST_BATCH_WAIT_MS", "DOSEREG_INGEST_PROCESS"):
        if knob in os.environ:  # the batching under test may be set from outside
            env[knob] = os.environ[knob]
    return env


def migrated_with_port(env: dict) -> int:
    """The registry of ``env`` migrated, and a free port for the listener set in ``env``; returns the port."""
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=env, check=True,
                   capture_output=True)
    port = free_port()
    env["DOSEREG_DICOM_PORT"] = str(port)
    return port


class Postgres:
    """A fresh database on DATABASE_URL's server and a flushed Redis database for one production run."""

    def __init__(self, name: str, redis_db: int):
        self.server = os.environ.get("DATABASE_URL", "postgresql://dosereg:dosereg@127.0.0.1:5432/dosereg") \
            .rsplit("/", 1)[0]
        self.name = name
        self.url = f"{self.server}/{name}"
        self.redis_url = f"redis://127.0.0.1:6379/{redis_db}"

    def _admin(self, sql: str) -> None:
        import psycopg2

        db = psycopg2.connect(f"{self.server}/postgres")
        db.autocommit = True
        try:
            with db.cursor() as cursor:
                cursor.execute(sql)
        finally:
            db.close()

    def create(self) -> None:
        import redis

        self._admin(f"CREATE DATABASE {self.name}")
        redis.Redis.from_url(self.redis_url).flushdb()

    def drop(self) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")

    def query(self, sql: str) -> list[tuple]:
        import psycopg2

        db = psycopg2.connect(self.url)
        try:
            with db.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall()
        finally:
            db.close()


def _sqlite_query(path: Path):
    def query(sql: str) -> list[tuple]:
        db = sqlite3.connect(path, timeout=30)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()
    return query


def bench_listener(files, senders, work: Path, *, ingest: bool = True, run: int = 1, workers: int = 0,
                   concurrency: int = 2, redis_db: int = 13) -> dict:
    """One run of dicom_listen: embedded (workers 0) or production with ``workers`` Celery workers of ``concurrency`` processes."""
    label = f"{run}-{'ingest' if ingest else 'no-ingest'}-w{workers}"
    data_dir = work / f"dosereg-data-{label}"
    data_dir.mkdir()
    env = base_env(data_dir, senders)
    pg = None
    if workers:
        pg = Postgres(f"dosereg_bench_listener_{os.getpid()}_{label.replace('-', '_')}", redis_db)
        pg.create()
        env.update(DATABASE_URL=pg.url, CELERY_BROKER_URL=pg.redis_url)
        query = pg.query
    else:
        query = _sqlite_query(data_dir / "dosereg.sqlite3")
    procs: list[subprocess.Popen] = []
    try:
        port = migrated_with_port(env)
        log = open(data_dir / "listener.log", "wb")
        names = [f"bench{n}-{os.getpid()}@{socket.gethostname()}" for n in range(workers)]
        for name in names:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "dosereg.celery", "worker", "-c", str(concurrency), "-l", "WARNING",
                 "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", name],
                cwd=REPO, env=env, stdout=log, stderr=log, start_new_session=True))
        listener = subprocess.Popen([sys.executable, "manage.py", "dicom_listen", "--skip-checks"]
                                    + ([] if ingest else ["--no-ingest"]), cwd=REPO, env=env, stdout=log, stderr=log,
                                    start_new_session=True)
        procs.insert(0, listener)
        wait_port(port, listener)
        if workers:
            wait_workers(pg.redis_url, names, procs)
        wait_idle([p.pid for p in procs])
        load = os.getloadavg()[0]
        cpu_before = _role_cpu(listener, procs[1:])
        t0, t_acked, ok, failed, why = send_all(port, "DOSEREG", files, senders)
        waiting = "select count(*) from registry_receivedobject where state = 'received'"
        left, since = None, time.monotonic()
        while ingest and (now := query(waiting)[0][0]):
            if now != left:
                left, since = now, time.monotonic()
            elif time.monotonic() - since > STALL_S:  # nothing ingested for that long: say so, do not wait forever
                why[f"{now} objects still waiting after {STALL_S} s without progress"] = now
                failed += now
                break
            time.sleep(0.1)
        t_ingested = time.perf_counter()
        cpu = {k: v - cpu_before.get(k, 0.0) for k, v in _role_cpu(listener, procs[1:]).items()}
        states = dict(query("select state, count(*) from registry_receivedobject group by state"))
        child = [peak_rss_kib(p) for p in descendants(listener.pid)]
        worker_rss = [peak_rss_kib(p) for w in procs[1:] for p in [w.pid, *descendants(w.pid)]]
        rss = {"listener": peak_rss_kib(listener.pid), "ingest_child": max(child, default=0),
               "worker": max(worker_rss, default=0)}
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if pg is not None:
            pg.drop()
    if os.environ.get("BENCH_KEEP_LOG"):
        shutil.copy(data_dir / "listener.log", Path(os.environ["BENCH_KEEP_LOG"]) / f"listener-{label}.log")
    if failed:  # keep what the listener said about it: the data folder goes with the temporary folder
        why["listener log"] = _log_warnings(data_dir / "listener.log")
    return {"acked_s": t_acked - t0, "ok": ok, "failed": failed, "why": why, "ingested_s": t_ingested - t0,
            "lag_s": t_ingested - t_acked, "states": states, "rss_mib": {k: v / 1024 for k, v in rss.items()},
            "cpu_ms": {k: v * 1000 / max(ok, 1) for k, v in cpu.items()},
            "ingest": ingest, "load": load}


def bench_idle(work: Path, associations: int, seconds: float = 10.0, run: int = 1) -> dict:
    """The listener's own CPU (its ingest child left out) while ``associations`` associations stay open and send
    nothing, against the same time with none open: what waiting for the next object costs."""
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    data_dir = work / f"dosereg-data-idle-{associations}-{run}"
    data_dir.mkdir()
    env = base_env(data_dir, associations)
    port = migrated_with_port(env)
    with open(data_dir / "listener.log", "wb") as log:
        listener = subprocess.Popen([sys.executable, "manage.py", "dicom_listen", "--skip-checks"], cwd=REPO, env=env,
                                    stdout=log, stderr=log, start_new_session=True)
    held = []
    try:
        wait_port(port, listener)
        wait_idle([listener.pid])

        def share(span: float) -> float:  # of one core, the listener process alone
            before = cpu_s(listener.pid)
            time.sleep(span)
            return (cpu_s(listener.pid) - before) / span

        none_open = share(seconds)
        ae = AE(ae_title="BENCHIDLE")
        ae.add_requested_context(Verification)
        for _ in range(associations):
            assoc = ae.associate("127.0.0.1", port, ae_title="DOSEREG")
            if not assoc.is_established:
                raise RuntimeError("the listener refused an association")
            held.append(assoc)
        time.sleep(1)
        some_open = share(seconds)
    finally:
        for assoc in held:
            assoc.release()
        os.killpg(listener.pid, signal.SIGTERM)
        listener.wait(30)
    return {"none": none_open, "open": some_open}


def _role_cpu(listener: subprocess.Popen, workers: list[subprocess.Popen]) -> dict[str, float]:
    """CPU seconds so far of the listener, of its ingest child (embedded) and of the Celery workers with their
    pool processes."""
    return {"listener": cpu_s(listener.pid),
            "ingest_child": sum(cpu_s(p) for p in descendants(listener.pid)),
            "worker": sum(cpu_s(p) for w in workers for p in [w.pid, *descendants(w.pid)])}


def _log_warnings(path: Path, limit: int = 5) -> list[str]:
    """The distinct WARNING/ERROR lines of a log (first ``limit``), without their time stamps."""
    seen: list[str] = []
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return seen
    for line in lines:
        if ("WARNING" in line or "ERROR" in line or "Traceback" in line) and len(seen) < limit:
            text = re.sub(r"^\S+ \S+ ", "", line)[:200]
            if text not in seen:
                seen.append(text)
    return seen


def bench_storescp(files, senders, work: Path, run: int = 1) -> dict:
    storescp = shutil.which("storescp")
    if not storescp:
        return {}
    out = work / f"storescp-out-{run}"
    out.mkdir()
    port = free_port()
    proc = subprocess.Popen([storescp, "--fork", "-od", str(out), "-aet", "STORESCP", str(port)],
                            env={"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_port(port, proc)
        load = os.getloadavg()[0]
        cpu_before = cpu_s(proc.pid, reaped=True)
        t0, t1, ok, failed, why = send_all(port, "STORESCP", files, senders)
        deadline = time.monotonic() + 5  # its last children end after their release: wait until all are reaped
        while descendants(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        cpu = cpu_s(proc.pid, reaped=True) - cpu_before
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    return {"acked_s": t1 - t0, "ok": ok, "failed": failed, "why": why, "files": sum(1 for _ in out.iterdir()),
            "load": load, "cpu_ms": {"storescp": cpu * 1000 / max(ok, 1)}}


def configurations(modes: list[str], workers: list[int], concurrency: int) -> list[tuple[str, bool, int]]:
    """(name, ingest, Celery workers) per DoseReg run of a round; ``both`` is embedded and production."""
    modes = ["embedded", "production"] if modes == ["both"] else modes
    unknown = set(modes) - {"embedded", "production"}
    if unknown:  # a typo must not give a round with only the storescp reference in it
        raise SystemExit(f"--modes: unknown {', '.join(sorted(unknown))}; use embedded, production or both")
    out = []
    if "embedded" in modes:
        out += [("embedded, ingest off", False, 0), ("embedded", True, 0)]
    if "production" in modes:
        out += [(f"production, {n} worker{'s' if n > 1 else ''} × {concurrency}", True, n) for n in workers]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "rdsr")
    parser.add_argument("--sender", choices=["ul", "pynetdicom", "storescu"], default="ul")
    parser.add_argument("--max-size", type=int, default=4_000_000, help="leave out corpus files larger than this")
    parser.add_argument("--rounds", type=int, default=1, help="repeat every configuration this often, interleaved")
    parser.add_argument("--modes", default="embedded", help="embedded, production (comma-separated) or both")
    parser.add_argument("--workers", default="1,2", help="Celery workers per production run")
    parser.add_argument("--concurrency", type=int, default=2, help="processes per Celery worker (docker-compose's "
                        "DOSEREG_WORKER_CONCURRENCY default)")
    parser.add_argument("--redis-db", type=int, default=13, help="Redis database for the broker (flushed)")
    parser.add_argument("--idle", type=int, default=0, metavar="N", help="only the listener's CPU (share of one "
                        "core) with N associations open and sending nothing, and with none, embedded")
    args = parser.parse_args()
    if args.idle:
        with tempfile.TemporaryDirectory(prefix="bench-listener-") as tmp:
            for run in range(1, args.rounds + 1):
                r = bench_idle(Path(tmp), args.idle, run=run)
                print(f"[round {run}] listener CPU, share of one core: {r['none']:.1%} with no association open, "
                      f"{r['open']:.1%} with {args.idle} open and idle", flush=True)
        return
    # SIGTERM as an exit, so each run's finally stops its listener and Celery workers: workers left running would
    # take the next run's tasks from the same Redis database
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ["TCP_NODELAY"] = "1"
    global SENDER
    SENDER = args.sender  # chosen here, in the parent, when the senders' work is handed out
    configs = configurations(args.modes.split(","), [int(w) for w in args.workers.split(",")], args.concurrency)
    with tempfile.TemporaryDirectory(prefix="bench-listener-") as tmp:
        work = Path(tmp)
        load = work / "load"
        load.mkdir()
        files = build_load(args.corpus, args.count, load, args.max_size)
        total_mb = sum(f.stat().st_size for f in files) / 1e6
        print(f"load: {len(files)} objects, {total_mb:.1f} MB, {args.senders} concurrent {args.sender} senders (one "
              f"process and association each); load average {os.getloadavg()[0]:.1f}", flush=True)
        results: dict[str, list[dict]] = {name: [] for name, _, _ in configs}
        results["storescp"] = []
        for run in range(1, args.rounds + 1):  # interleaved, so drift in the machine's speed hits all alike
            dcmtk = bench_storescp(files, args.senders, work, run)
            shutil.rmtree(work / f"storescp-out-{run}", ignore_errors=True)
            results["storescp"].append(dcmtk)
            report(run, "DCMTK storescp --fork", dcmtk, None)
            for name, ingest, workers in configs:
                ours = bench_listener(files, args.senders, work, ingest=ingest, run=run, workers=workers,
                                      concurrency=args.concurrency, redis_db=args.redis_db)
                ours["storescp_rate"] = rate(dcmtk) if dcmtk and not dcmtk["failed"] else None  # this round's
                results[name].append(ours)
                report(run, name, ours, dcmtk)
    summary(results, args.rounds)


def rate(r: dict, key: str = "acked_s") -> float:
    return r["ok"] / r[key]


def report(run: int, name: str, r: dict, dcmtk: dict | None) -> None:
    if not r:
        print(f"[round {run}] {name}: not installed (apt-get install dcmtk)")
        return
    line = f"[round {run}] {name} (load {r['load']:.1f}): {r['ok']} acknowledged in {r['acked_s']:.1f} s = {rate(r):.0f}/s"
    if r["failed"]:
        line += f" ({r['failed']} not Success: {r.get('why')})"
    if r.get("ingest"):
        line += (f"; all ingested after {r['ingested_s']:.1f} s = {rate(r, 'ingested_s'):.0f}/s, "
                 f"{r['lag_s']:.1f} s after the last Success; states {r['states']}")
    if "rss_mib" in r:
        line += "; peak RSS " + ", ".join(f"{k} {v:.0f} MiB" for k, v in r["rss_mib"].items() if v)
    if r.get("cpu_ms"):
        line += "; CPU ms/object " + ", ".join(f"{k} {v:.1f}" for k, v in r["cpu_ms"].items() if v)
    if dcmtk:
        line += f"; acknowledged / storescp {rate(r) / rate(dcmtk):.2f}"
    print(line, flush=True)


def ratio(runs: list[dict], key: str) -> float | None:
    """The median over the rounds of (this rate / storescp's acknowledged rate in the same round)."""
    ratios = [rate(r, key) / r["storescp_rate"] for r in runs if r.get("storescp_rate")]
    return statistics.median(ratios) if ratios else None


def summary(results: dict[str, list[dict]], rounds: int) -> None:
    """The medians per configuration, as a table; the ratios are medians of the per-round ratios against storescp's
    acknowledged rate in the same round (the machine's speed drifts between rounds)."""
    clean_dcmtk = [r for r in results.pop("storescp") if r and not r["failed"]]
    dcmtk = [rate(r) for r in clean_dcmtk]
    ref = statistics.median(dcmtk) if dcmtk else None
    print(f"\nmedian of {rounds} round(s); storescp --fork acknowledged (median) "
          + (f"{ref:.0f}/s, CPU {statistics.median(r['cpu_ms']['storescp'] for r in clean_dcmtk):.1f} ms/object"
             if ref else "(not installed)"))
    print("| run | acknowledged/s | × storescp | ingested/s | × storescp | last Success → all ingested | "
          "CPU ms/object listener / ingest child / worker | peak RSS listener / ingest child / worker (MiB) | "
          "not Success |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, runs in results.items():
        # a run where a sender's association stalled or broke (either receiver; seen on the loaded machine) says
        # nothing about the receiver: left out of the medians while a clean run exists, counted in the last column
        failed = sum(r["failed"] for r in runs)
        clean = [r for r in runs if not r["failed"]]
        runs = clean or runs
        acked = statistics.median(rate(r) for r in runs)
        ingesting = "ingest off" not in name
        ingested = statistics.median(rate(r, "ingested_s") for r in runs) if ingesting else None
        lag = statistics.median(r["lag_s"] for r in runs) if ingesting else None
        mem = [max(r["rss_mib"][k] for r in runs) for k in ("listener", "ingest_child", "worker")]
        acked_x, ingested_x = ratio(runs, "acked_s"), ratio(runs, "ingested_s") if ingesting else None
        print(f"| {name} | {acked:.0f} | " + (f"{acked_x:.2f} | " if acked_x else "– | "), end="")
        print(f"{ingested:.0f} | " + (f"{ingested_x:.2f}" if ingested_x else "–") + f" | {lag:.1f} s | "
              if ingested else "– | – | – | ", end="")
        cpu = [statistics.median(r["cpu_ms"][k] for r in runs) for k in ("listener", "ingest_child", "worker")]
        print(" / ".join(f"{c:.1f}" if c else "–" for c in cpu) + " | ", end="")
        print(" / ".join(f"{m:.0f}" if m else "–" for m in mem) + f" | {failed} ({len(clean)} clean runs) |")


if __name__ == "__main__":
    main()
