"""Listener throughput: objects per second acknowledged and ingested, against DCMTK's storescp on the same load.

    .venv/bin/python bench/listener.py [--count 3000] [--senders 4] [--rounds 3] [--corpus ../shared/rdsr]

The load: copies of the corpus dose SRs with fresh SOP Instance and Study Instance UIDs (same-length byte
substitution, so nothing is re-encoded), written once to a temporary folder.  Each sender is a separate process with
one association that sends the pre-encoded files (pynetdicom chunked send with TCP_NODELAY: the bytes go as they
are; ``--sender storescu`` uses DCMTK's storescu, which parses each file first).
The same senders send the same files to ``manage.py dicom_listen`` (embedded mode: SQLite, in-process ingest
thread) and to ``storescp`` (``--fork``: one process per association, as DCMTK handles concurrent senders; it
parses every object and writes it to disk).  Both run with TCP_NODELAY=1.  Prints both rates, the ratio and the
listener's peak RSS (VmHWM).  ``--rounds N`` repeats storescp, DoseReg with ingest off and DoseReg with ingest on,
interleaved, and prints the medians: on a shared 2-core machine single runs vary by a third.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import os
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

SENDER = os.environ.get("BENCH_SENDER", "pynetdicom")
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


def _sender(args) -> tuple[int, int]:
    """One pynetdicom association streaming pre-encoded files (chunked send: no decoding), TCP_NODELAY set.  An
    association that ends early (aborted by either side) is counted as failures for the files it did not send."""
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
        return 0, len(files)
    assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ok = failed = 0
    for i, f in enumerate(files):
        if not assoc.is_established:
            print(f"sender: association ended after {i} of {len(files)} objects", file=sys.stderr)
            return ok, failed + len(files) - i
        status = assoc.send_c_store(f)
        if getattr(status, "Status", None) == 0:
            ok += 1
        else:
            failed += 1
    assoc.release()
    return ok, failed


def _storescu(args) -> tuple[int, int]:
    port, called, files = args
    proc = subprocess.run([shutil.which("storescu"), "-nh", "-R", "-aet", "BENCHSCU", "-aec", called, "127.0.0.1",
                           str(port), *map(str, files)], capture_output=True, text=True,
                          env={"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"})
    failed = sum(1 for line in proc.stderr.splitlines() if line.startswith("E: Store Failed"))
    failed += sum(1 for line in proc.stderr.splitlines() if "Store SCU Failed" in line)
    return len(files) - failed, failed


def send_all(port: int, called: str, files: list[Path], senders: int) -> tuple[float, int, int]:
    """Send with ``senders`` concurrent processes: pynetdicom (default; it sends the bytes as they are) or DCMTK
    storescu (``--sender storescu``; it parses every file before sending it, which dominates for large SRs)."""
    shares = [files[i::senders] for i in range(senders)]
    worker = _storescu if SENDER == "storescu" else _sender
    with mp.get_context("spawn").Pool(senders) as pool:
        t0 = time.perf_counter()
        results = pool.map(worker, [(port, called, share) for share in shares])
        elapsed = time.perf_counter() - t0
    return elapsed, sum(r[0] for r in results), sum(r[1] for r in results)


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


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def bench_listener(files, senders, work: Path, ingest: bool = True, run: int = 1) -> dict:
    data_dir = work / f"dosereg-data-{run}-{'ingest' if ingest else 'no-ingest'}"
    data_dir.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL") and not k.startswith("DOSEREG_")}
    env.update(DOSEREG_DATA_DIR=str(data_dir), DOSEREG_DICOM_BIND="127.0.0.1", DOSEREG_LOG_LEVEL="WARNING",
               DOSEREG_TIME_ZONE="UTC", DOSEREG_DICOM_MAX_ASSOCIATIONS=str(max(senders, 10)))
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=env, check=True,
                   capture_output=True)
    port = free_port()
    env["DOSEREG_DICOM_PORT"] = str(port)
    log = open(data_dir / "listener.log", "wb")
    proc = subprocess.Popen([sys.executable, "manage.py", "dicom_listen"] + ([] if ingest else ["--no-ingest"]),
                            cwd=REPO, env=env, stdout=log,
                            stderr=log, start_new_session=True)
    try:
        wait_port(port, proc)
        t0 = time.perf_counter()
        acked_s, ok, failed = send_all(port, "DOSEREG", files, senders)
        db = sqlite3.connect(data_dir / "dosereg.sqlite3", timeout=30)
        while ingest:
            waiting = db.execute("select count(*) from registry_receivedobject where state='received'").fetchone()[0]
            if not waiting:
                break
            time.sleep(0.2)
        ingested_s = time.perf_counter() - t0
        states = dict(db.execute("select state, count(*) from registry_receivedobject group by state").fetchall())
        rss = peak_rss_kib(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    return {"acked_s": acked_s, "ok": ok, "failed": failed, "ingested_s": ingested_s, "states": states,
            "peak_rss_mib": rss / 1024}


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
        acked_s, ok, failed = send_all(port, "STORESCP", files, senders)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    return {"acked_s": acked_s, "ok": ok, "failed": failed, "files": sum(1 for _ in out.iterdir())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "rdsr")
    parser.add_argument("--sender", choices=["pynetdicom", "storescu"], default="pynetdicom")
    parser.add_argument("--max-size", type=int, default=4_000_000, help="leave out corpus files larger than this")
    parser.add_argument("--rounds", type=int, default=1, help="repeat storescp / DoseReg (ingest off, on) this often")
    args = parser.parse_args()
    os.environ["TCP_NODELAY"] = "1"
    os.environ["BENCH_SENDER"] = args.sender  # read by the spawned sender processes
    with tempfile.TemporaryDirectory(prefix="bench-listener-") as tmp:
        work = Path(tmp)
        load = work / "load"
        load.mkdir()
        files = build_load(args.corpus, args.count, load, args.max_size)
        total_mb = sum(f.stat().st_size for f in files) / 1e6
        print(f"load: {len(files)} objects, {total_mb:.1f} MB, {args.senders} concurrent {args.sender} senders (one "
              f"process and association each)")
        rounds = []
        for run in range(1, args.rounds + 1):  # interleaved, so drift in the machine's speed hits all three alike
            dcmtk = bench_storescp(files, args.senders, work, run)
            receive_only = bench_listener(files, args.senders, work, ingest=False, run=run)
            ours = bench_listener(files, args.senders, work, run=run)
            rounds.append((ours, receive_only, dcmtk))
            shutil.rmtree(work / f"storescp-out-{run}", ignore_errors=True)
            report(run, len(files), ours, receive_only, dcmtk)
    if args.rounds > 1:
        rate = lambda r: r["ok"] / r["acked_s"]  # noqa: E731
        ours_rates = [rate(o) for o, _, _ in rounds]
        off_rates = [rate(r) for _, r, _ in rounds]
        line = (f"median of {args.rounds} rounds: DoseReg {statistics.median(ours_rates):.0f} objects/s acknowledged "
                f"(ingest off {statistics.median(off_rates):.0f})")
        clean = [(o, d) for o, r, d in rounds if d and not (o["failed"] or r["failed"] or d["failed"])]
        if clean:  # a round where a sender's association broke (either receiver) says nothing about the receivers
            ratios = [rate(o) / rate(d) for o, d in clean]
            line += (f", storescp {statistics.median(rate(d) for _, d in clean):.0f}; ratio per clean round "
                     f"{', '.join(f'{x:.2f}' for x in ratios)}, median {statistics.median(ratios):.2f} "
                     f"({len(rounds) - len(clean)} rounds with failed sends left out)")
        print(line)


def report(run: int, n: int, ours: dict, receive_only: dict, dcmtk: dict) -> None:
    ack_rate = ours["ok"] / ours["acked_s"]
    print(f"[round {run}] DoseReg listener: {ours['ok']} acknowledged in {ours['acked_s']:.2f} s = {ack_rate:.0f} "
          f"objects/s ({ours['failed']} not Success); all ingested after {ours['ingested_s']:.2f} s = "
          f"{n / ours['ingested_s']:.0f} objects/s; states {ours['states']}; peak RSS {ours['peak_rss_mib']:.0f} MiB")
    print(f"[round {run}] DoseReg listener, ingest off (--no-ingest): {receive_only['ok']} acknowledged in "
          f"{receive_only['acked_s']:.2f} s = {receive_only['ok'] / receive_only['acked_s']:.0f} objects/s "
          f"({receive_only['failed']} not Success); peak RSS {receive_only['peak_rss_mib']:.0f} MiB")
    if dcmtk:
        dcmtk_rate = dcmtk["ok"] / dcmtk["acked_s"]
        print(f"[round {run}] DCMTK storescp --fork: {dcmtk['ok']} acknowledged in {dcmtk['acked_s']:.2f} s = "
              f"{dcmtk_rate:.0f} objects/s ({dcmtk['failed']} not Success, {dcmtk['files']} files written)")
        print(f"[round {run}] ratio acknowledged DoseReg / storescp: {ack_rate / dcmtk_rate:.2f}", flush=True)
    else:
        print("storescp is not installed (apt-get install dcmtk): no comparison")


if __name__ == "__main__":
    main()
