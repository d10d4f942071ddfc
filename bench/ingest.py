"""Ingest benchmark.

usage: python bench/ingest.py [CORPUS]                 per file of the corpus: parse ms, import ms, queries
       python bench/ingest.py --many N [--batch B] [--kind K] [--rounds R]  N fresh-UID copies of each object kind
                                                       (or of the kinds whose name contains K, e.g. "RF"), in
                                                       batches of B, R rounds per kind and their medians
       python bench/ingest.py --bulk-record N [--batch B]  record_reports_bulk of N demo studies (batches of B,
                                                       default 2000), against COPY of the same rows in the same run

SQLite by default (a fresh temporary data folder); PostgreSQL when DATABASE_URL is set (a scratch test database is
created on that server and dropped afterwards).  ``--many`` prints, per kind, objects/s end to end (durable store +
batch ingest + post-commit steps), ms and queries per object (the time storing and the time ingesting apart; CPU
ms of this process, every thread, and of its PostgreSQL backend: steadier than wall time on a shared machine), then ms
per object to import the same files again (an
interrupted import run again: found by identity, neither parsed nor written), with the references measured in the
same run: a naive pydicom walk of the same object (read, then every element's value) and DCMTK ``dcmdump`` of the
316-event report (whole process).  ``--bulk-record`` times ``record_reports_bulk`` alone (what ``generate_demo_data --bulk`` records;
the demo reports are built before the clock starts, the post-commit steps are not run) and, as the reference, a
PostgreSQL ``COPY`` into empty copies of the same tables of the very rows it wrote.  ``--code PATH`` imports the
application from another checkout (``bench/ingest_ab.py`` runs two alternately).  Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _code_dir() -> Path:
    """``--code PATH``, read before Django starts: the checkout whose application this bench imports (another
    worktree, for a before/after comparison with ``bench/ingest_ab.py``); this one by default."""
    for i, arg in enumerate(sys.argv):
        if arg == "--code" and i + 1 < len(sys.argv):
            return Path(sys.argv[i + 1]).resolve()
        if arg.startswith("--code="):
            return Path(arg.split("=", 1)[1]).resolve()
    return Path(__file__).resolve().parents[1]


REPO = Path(__file__).resolve().parents[1]
CODE = _code_dir()
sys.path.insert(0, str(CODE))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dosereg.settings")
os.environ.pop("CELERY_BROKER_URL", None)
if not os.environ.get("DATABASE_URL"):
    os.environ["DOSEREG_DATA_DIR"] = tempfile.mkdtemp(prefix="bench-ingest-")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

BIG = "rf/RF-Pat-Orientation-Modifier-Missing.dcm"
KINDS = {  # kind -> corpus file
    "small CT (3 events)": "ct/CT-RDSR-GEPixelMed.dcm",
    "CT Flash-QA (9 events)": "ct/CT-RDSR-Siemens_Flash-QA-DS.dcm",
    "DX header": "dx/DX-Im-Carestream_DRX.dcm",
    "MG header": "mg/MG-Im-GE_Seno_1_ForPresentation.dcm",
    "NM RRDSR": "nm/NM-RRDSR-Siemens.dcm",
    "RF 316 events": BIG,
}


def main() -> int:
    import logging

    logging.disable(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="?", default=str(REPO / ".." / "shared" / "rdsr"))
    parser.add_argument("--many", type=int, default=0, metavar="N")
    parser.add_argument("--batch", type=int, default=0, metavar="B")
    parser.add_argument("--kind", default="", metavar="K", help="--many: only the kinds whose name contains K")
    parser.add_argument("--rounds", type=int, default=1, metavar="R",
                        help="--many: each kind R times over (fresh copies each time), then the medians")
    parser.add_argument("--bulk-record", type=int, default=0, metavar="N")
    parser.add_argument("--code", metavar="PATH", help="import the application from this checkout (default: this one)")
    parser.add_argument("--json", action="store_true", help="--many: also a JSON line per kind and round")
    args = parser.parse_args()
    JSON_LINES[0] = args.json
    corpus = Path(args.corpus).resolve()
    if not corpus.is_dir():
        print(f"corpus {corpus} is absent")
        return 1
    from django.test.utils import setup_databases, teardown_databases

    settings.INBOX_DIR = Path(tempfile.mkdtemp(prefix="bench-inbox-"))
    old = setup_databases(verbosity=0, interactive=False, aliases=["default"]) if os.environ.get("DATABASE_URL") \
        else None
    if old is None:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    try:
        if args.bulk_record:
            run_bulk_record(args.bulk_record, args.batch or 2000)
        elif args.many:
            run_many(corpus, args.many, args.batch or settings.INGEST_BATCH_SIZE, args.kind, max(args.rounds, 1))
        else:
            run(corpus)
    finally:
        if old is not None:
            teardown_databases(old, verbosity=0)
    return 0


JSON_LINES = [False]  # --json


# --- post-commit steps, timed apart -----------------------------------------------------------------------------------
POST = {"ms": 0.0, "queries": 0}


def _time_post_commit() -> None:
    from dicomrx import pipeline

    original = pipeline.after_studies_recorded

    def timed(study_ids, change_ids=(), **options):  # mapping, effective dose, triggers, DRL tracking
        with CaptureQueriesContext(connection) as c:
            t0 = time.perf_counter()
            original(study_ids, change_ids, **options)
            POST["ms"] += (time.perf_counter() - t0) * 1000
        POST["queries"] += len(c.captured_queries)

    pipeline.after_studies_recorded = timed


STORE = {"ms": 0.0}
INGEST = {"ms": 0.0}


def _time_store() -> None:
    """The time import_files spends storing (durable files and rows) and ingesting (parse, record, post-commit
    steps), each apart."""
    from dicomrx import ingest

    ingest.store_files, ingest.ingest_batch = _timed(ingest.store_files, STORE), _timed(ingest.ingest_batch, INGEST)


def _timed(function, into: dict):
    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            into["ms"] += (time.perf_counter() - t0) * 1000

    return timed


# --- --many N ---------------------------------------------------------------------------------------------------------
def _copies(path: Path, n: int, into: Path) -> list[Path]:
    import pydicom
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(path)
    out = []
    for i in range(n):
        ds.SOPInstanceUID, ds.StudyInstanceUID = generate_uid(), generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        target = into / f"{path.stem}-{i}.dcm"
        ds.save_as(target)
        out.append(target)
    return out


def _naive_walk_ms(path: Path, repeat: int = 5) -> float:
    """Reading the object with pydicom and touching every element's value: what any DICOM consumer pays."""
    import pydicom

    data = path.read_bytes()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        ds = pydicom.dcmread(io.BytesIO(data))
        for elem in ds.iterall():
            _ = elem.value
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def _dcmdump_ms(path: Path, repeat: int = 5) -> float | None:
    exe = shutil.which("dcmdump")
    if exe is None:
        return None
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([exe, str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def _backend_cpu_s() -> float | None:
    """CPU seconds so far of this connection's PostgreSQL backend (None on SQLite, or when its /proc entry cannot be
    read: another machine or user)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_many(corpus: Path, n: int, batch: int, only: str = "", rounds: int = 1) -> None:
    from dicomrx import ingest

    _time_post_commit()
    _time_store()
    print(f"database: {connection.vendor}; {n} fresh-UID copies per kind, batches of {batch}, {rounds} round(s); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'kind':24} {'objects/s':>9} {'ms/object':>9} {'store ms':>8} {'ingest ms':>9} {'post ms':>7} "
          f"{'cpu ms':>6} {'pg cpu ms':>9} {'queries/obj':>11} {'of which post':>13} {'naive pydicom ms':>16} "
          f"{'again ms':>8}  statuses")
    work = Path(tempfile.mkdtemp(prefix="bench-many-"))
    try:
        for kind, rel in KINDS.items():
            source = corpus / rel
            if not source.exists() or only not in kind:
                continue
            runs = [_many_once(ingest, kind, source, n, batch, work) for _ in range(rounds)]
            if rounds > 1:  # the machine is shared: single runs vary by a fifth, their medians much less
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if isinstance(runs[0][k], float)}
                print(f"{'  median of ' + str(rounds):24} {n / (med['total'] / 1000):9.0f} {med['total'] / n:9.2f} "
                      f"{med['store']:8.2f} {med['ingest']:9.2f} {med['post']:7.2f} {med['cpu']:6.2f} "
                      + (f"{med['pg_cpu']:9.2f}" if 'pg_cpu' in med else f"{'–':>9}"))
        dump = _dcmdump_ms(corpus / BIG)
        if dump is not None:
            print(f"reference: DCMTK dcmdump of {BIG} (whole process) {dump:.0f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _many_once(ingest, kind: str, source: Path, n: int, batch: int, work: Path) -> dict:
    """One round of ``--many`` for one kind: ``n`` fresh copies imported, then imported again; prints its row."""
    files = _copies(source, n, work)
    # warm (import_files is a generator: consumed): the unit and the patient exist, code paths loaded
    list(ingest.import_files(files[:1], batch_size=1))
    files = files[1:] + _copies(source, 1, work)
    # the copies just written are still dirty in the page cache: the import's one flush of the file system
    # (syncfs) would write them out too, a cost of this bench, not of importing files that lie on disk
    os.sync()
    POST.update(ms=0.0, queries=0)
    STORE["ms"] = 0.0
    INGEST["ms"] = 0.0
    statuses: dict[str, int] = {}
    pg0 = _backend_cpu_s()
    with CaptureQueriesContext(connection) as c:  # the real import path: stored, parsed ahead, recorded
        cpu0 = time.process_time()  # every thread of this process: a store-ahead thread's work counts too
        t0 = time.perf_counter()
        for _, o in ingest.import_files(files, batch_size=batch):
            statuses[o.status] = statuses.get(o.status, 0) + 1
        t2 = time.perf_counter()
        cpu = (time.process_time() - cpu0) * 1000 / n
    pg1 = _backend_cpu_s()
    store_ms, ingest_ms = STORE["ms"] / n, INGEST["ms"] / n  # before the import below adds to them
    # the same files imported again (an interrupted import run again): found, not parsed or written
    again = time.perf_counter()
    for _, o in ingest.import_files(files, batch_size=batch):
        statuses[f"again {o.status}"] = statuses.get(f"again {o.status}", 0) + 1
    again = (time.perf_counter() - again) * 1000 / n
    total = (t2 - t0) * 1000
    out = {"total": total, "store": store_ms, "ingest": ingest_ms, "post": POST["ms"] / n, "cpu": cpu}
    if pg0 is not None and pg1 is not None:
        out["pg_cpu"] = (pg1 - pg0) * 1000 / n  # this connection's backend (a store-ahead thread's is not counted)
    print(f"{kind:24} {n / (total / 1000):9.0f} {total / n:9.2f} {store_ms:8.2f} {ingest_ms:9.2f} "
          f"{out['post']:7.2f} {cpu:6.2f} " + (f"{out['pg_cpu']:9.2f}" if "pg_cpu" in out else f"{'–':>9}")
          + f" {len(c.captured_queries) / n:11.2f} {POST['queries'] / n:13.2f} {_naive_walk_ms(source):16.2f} "
          f"{again:8.2f}  {statuses}", flush=True)
    if JSON_LINES[0]:
        print("JSON " + json.dumps({"kind": kind, "n": n, **out, "queries": len(c.captured_queries) / n,
                                    "post_queries": POST["queries"] / n}), flush=True)
    for f in files:
        f.unlink()
    return out


# --- --bulk-record N --------------------------------------------------------------------------------------------------
BULK_TABLES = ("registry_patient", "registry_receivedobject", "registry_study", "registry_dosereport",
               "registry_irradiationevent", "registry_accumulateddose")


def _last_ids() -> dict[str, int]:
    with connection.cursor() as cursor:
        out = {}
        for table in BULK_TABLES:
            cursor.execute(f"SELECT coalesce(max(id), 0) FROM {table}")
            out[table] = cursor.fetchone()[0]
    return out


def _rows_after(last: dict[str, int]) -> dict[str, int]:
    with connection.cursor() as cursor:
        out = {}
        for table in BULK_TABLES:
            cursor.execute(f"SELECT count(*) FROM {table} WHERE id > %s", [last[table]])
            out[table] = cursor.fetchone()[0]
    return out


def _copy_reference_s(last: dict[str, int]) -> float:
    """COPY FROM STDIN of the rows written (ids after ``last``) into empty copies of their tables (same columns,
    defaults, constraints and indexes): what PostgreSQL itself takes to load these rows, timed apart from reading
    them out."""
    total = 0.0
    with connection.cursor() as cursor:
        raw = cursor.cursor
        for table in BULK_TABLES:
            data = io.StringIO()
            raw.copy_expert(f"COPY (SELECT * FROM {table} WHERE id > {int(last[table])}) TO STDOUT", data)
            cursor.execute(f"CREATE TEMP TABLE ref_{table} (LIKE {table} INCLUDING ALL)")
            data.seek(0)
            t = time.perf_counter()
            raw.copy_expert(f"COPY ref_{table} FROM STDIN", data)
            total += time.perf_counter() - t
            cursor.execute(f"DROP TABLE ref_{table}")
    return total


def run_bulk_record(n: int, batch: int) -> None:
    from django.db import transaction

    from dicomrx.demo import demo_report, demo_studies
    from dosereg.registry.services.recording import record_reports_bulk

    reports = [demo_report(s) for s in demo_studies(n, year=2023, seed=7)]
    warm = [demo_report(s) for s in demo_studies(50, year=2022, seed=8)]
    record_reports_bulk(warm, demo=True)  # units exist, code paths loaded: the steady state of a long load
    last = _last_ids()
    with CaptureQueriesContext(connection) as c:
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, n, batch):
            record_reports_bulk(reports[i:i + batch], demo=True)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    rows = _rows_after(last)
    print(f"database: {connection.vendor}; record_reports_bulk of {n} demo studies in batches of {batch}; load "
          f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("rows written: " + ", ".join(f"{t.removeprefix('registry_')} {v}" for t, v in rows.items())
          + f" ({sum(rows.values())} in all, {sum(rows.values()) / n:.1f} per study)")
    print(f"record_reports_bulk: {elapsed:.2f} s, {n / elapsed:.0f} studies/s, {sum(rows.values()) / elapsed:.0f} "
          f"rows/s, {len(c.captured_queries) / (n / batch):.1f} queries per batch; this process's CPU {cpu:.2f} s "
          f"({n / cpu:.0f} studies per CPU second; the rest is the database and waiting for a core)")
    if connection.vendor == "postgresql":
        with transaction.atomic():
            ref = _copy_reference_s(last)
        print(f"reference: COPY of the same {sum(rows.values())} rows {ref:.2f} s = {n / ref:.0f} studies/s, "
              f"{sum(rows.values()) / ref:.0f} rows/s; record_reports_bulk at {ref / elapsed:.2f}x COPY's rate")


# --- per file of the corpus ---------------------------------------------------------------------------------------------
def run(corpus: Path) -> None:
    from dicomrx.ingest import import_file
    from dicomrx.parse import parse_dose_object
    from dosereg.core.dose_report import DoseParseError, NotADoseObject

    _time_post_commit()
    files = sorted(p for p in corpus.rglob("*.dcm"))
    print(f"database: {connection.vendor}; {len(files)} files; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs")
    print(f"{'file':58} {'events':>6} {'parse ms':>9} {'import ms':>10} {'cpu ms':>8} {'queries':>8} "
          f"{'of which post-commit':>21}  status")
    rows = []
    for path in files:
        data = path.read_bytes()
        t = time.perf_counter()
        try:
            events = len(parse_dose_object(data).events)
        except (NotADoseObject, DoseParseError):
            events = 0
        parse_ms = (time.perf_counter() - t) * 1000
        POST.update(ms=0.0, queries=0)
        with CaptureQueriesContext(connection) as ctx:
            t, c0 = time.perf_counter(), time.process_time()
            outcome = import_file(path)
            import_ms = (time.perf_counter() - t) * 1000
            cpu_ms = (time.process_time() - c0) * 1000
        rows.append((str(path.relative_to(corpus)), events, parse_ms, import_ms, len(ctx.captured_queries),
                     outcome.status, POST["ms"], POST["queries"], cpu_ms))
    for rel, events, p, i, q, status, pm, pq, cpu in rows:
        print(f"{rel[:58]:58} {events:6d} {p:9.1f} {i:10.1f} {cpu:8.1f} {q:8d} {pm:11.1f} ms {pq:4d} q  {status}")
    print(f"{'TOTAL':58} {sum(r[1] for r in rows):6d} {sum(r[2] for r in rows):9.1f} {sum(r[3] for r in rows):10.1f} "
          f"{sum(r[8] for r in rows):8.1f} {sum(r[4] for r in rows):8d} {sum(r[6] for r in rows):11.1f} ms "
          f"{sum(r[7] for r in rows):4d} q")
    print(f"median import per file: {statistics.median(r[3] for r in rows):.1f} ms")
    big = next((r for r in rows if r[0] == BIG), None)
    if big:
        print(f"{BIG}: {big[1]} events, parse {big[2]:.0f} ms, end-to-end import {big[3]:.0f} ms "
              f"(CPU {big[8]:.0f} ms), {big[4]} queries (of which post-commit {big[6]:.0f} ms, {big[7]} queries)")


if __name__ == "__main__":
    sys.exit(main())
