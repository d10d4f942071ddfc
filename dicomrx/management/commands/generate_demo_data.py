"""generate_demo_data: realistic synthetic studies for every modality over a year, marked as demo.

Default: real RDSR objects built with pydicom, kept and imported through the normal import path (parser, recording,
mapping, triggers).  --bulk: the parser's dataclasses handed straight to the same recording service and the same
post-commit steps, without files (benchmark scale); on PostgreSQL each study is written with its examination mapping
and the effective dose that follows from it, settled in memory by the same functions (``--writer copy``: one COPY per
table per batch, no UPDATE of the rows just written), the other post-commit steps batched after it.  --purge removes
every demo study, unit and object.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import itertools
import signal
import threading
import time

from django.db import transaction

from dicomrx.demo import UNITS, demo_dataset, demo_report, demo_studies
from dosereg.core.gc_pause import collector_relaxed
from dosereg.registry.management.base import DoseRegCommand, InputFailed, UsageError

WRITERS = ("copy", "service")


class Command(DoseRegCommand):
    help = "Generate synthetic demo studies (marked demo) for all modalities over one year."

    def add_arguments(self, parser):
        parser.add_argument("--studies", type=int, default=None, help="number of studies to generate")
        parser.add_argument("--year", type=int, default=None, help="calendar year (default: the previous one)")
        parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same studies)")
        parser.add_argument("--bulk", action="store_true", help="skip DICOM encoding and parsing (benchmark scale)")
        parser.add_argument("--purge", action="store_true", help="remove all demo data")
        parser.add_argument("--batch-size", type=int, default=2000,
                            help="--bulk: studies per recording transaction (default 2000)")
        parser.add_argument("--writer", choices=WRITERS, default=None,
                            help="--bulk: 'copy' settles the mapping and effective dose in memory and writes each "
                                 "table once per batch (default on PostgreSQL); 'service' maps and estimates after "
                                 "the batch is written, as every other import does (default on SQLite)")
        parser.add_argument("--jobs", type=int, default=1,
                            help="--bulk on PostgreSQL: N recording processes, each taking the studies of every N-th "
                                 "patient of the seeded sequence (same seed, same studies); the post-commit steps "
                                 "(mapping, triggers) run in this process, on the studies in the sequence's order")

    def handle(self, *args, **options):
        if options["purge"]:
            counts = purge_demo_data()
            self.stdout.write(" ".join(f"{k}={v}" for k, v in counts.items()))
            if options["studies"] is None:
                return
        count = options["studies"]
        if count is None:
            raise UsageError("--studies N is required (or --purge)")
        if count < 0:
            raise UsageError("--studies must be 0 or more")
        if options["batch_size"] < 1:
            raise UsageError("--batch-size must be 1 or more")
        if options["jobs"] < 1:
            raise UsageError("--jobs must be 1 or more")
        year = options["year"] or dt.date.today().year - 1
        if not 1900 < year < 2200:
            raise UsageError(f"--year {year} is out of range")
        started = time.monotonic()
        if options["bulk"]:
            # a batch holds ~10^5 young objects until it is written: scanning them again and again cost a quarter
            # of the run's Python time
            with collector_relaxed(), _indexes_deferred() as deferred:
                results = self._generate_bulk(count, year, options["seed"], options["batch_size"], started,
                                              options["jobs"], options["writer"] or _default_writer())
                built = time.monotonic()
            if deferred:
                _analyze()  # the statistics of the loaded tables and of the expression indexes just built
                self.stderr.write(f"{len(deferred)} secondary indexes left out while loading into the empty "
                                  f"registry, built again and analysed in {time.monotonic() - built:.1f} s")
        else:
            results = {"imported": 0, "failed": 0}
            generated = demo_studies(count, year=year, seed=options["seed"])
            for study in self.progress(generated, total=count, label="demo studies"):
                ok = _ingest_dicom(study)
                results["imported" if ok else "failed"] += 1
        place_demo_units_in_rooms()
        elapsed = time.monotonic() - started
        rate = count / elapsed if elapsed > 0 else 0.0
        writer = f", --writer {options['writer'] or _default_writer()}" if options["bulk"] else ""
        self.stderr.write(f"{count} demo studies for {year} in {elapsed:.1f} s ({rate:.0f} studies/s{writer})")
        post_s = results.pop("post_commit_s", None)
        if post_s is not None and count:  # --bulk in one process: the post-commit steps' share
            self.stderr.write(f"post-commit steps {post_s:.1f} s ({post_s / count * 1000:.2f} ms/study, "
                              f"{count / post_s if post_s else 0:.0f} studies/s on their own)")
        line = f"imported={results['imported']} failed={results['failed']}"
        if results.get("already_present"):
            line += f" already_present={results['already_present']}"
        self.stdout.write(line)

    def _generate_bulk(self, count: int, year: int, seed: int, batch_size: int, started: float,
                       jobs: int, writer: str) -> dict[str, int]:
        """Batches of ``batch_size`` studies: one recording transaction each, then the post-commit steps of the
        batch.  ``jobs`` > 1 on PostgreSQL: that many recording processes (``_record_part``), the post-commit steps
        here, on the batches one process would have made, each once all its studies are committed (``_parts``; a
        bounded queue keeps the recorders about two batches each ahead)."""
        from django.db import connection

        if jobs > 1 and connection.vendor == "postgresql":
            batches = _parts(count, year, seed, batch_size, jobs, writer)
        else:
            batches = _record_batches(demo_studies(count, year=year, seed=seed), batch_size, writer)
        results = {"imported": 0, "failed": 0, "post_commit_s": 0.0}
        done, last_note, next_analyze = 0, started, batch_size  # planner statistics at 1, 10, 100... batches
        for ids, change_ids, counts, settled in batches:
            t0 = time.monotonic()
            _after(ids, change_ids, settled)
            results["post_commit_s"] += time.monotonic() - t0
            for key, n in counts.items():
                results[key] = results.get(key, 0) + n
                done += n
            if done >= next_analyze:
                _analyze()
                next_analyze *= 10
            now = time.monotonic()
            if now - last_note >= 5 or done == count:
                last_note = now
                self.stderr.write(f"demo studies: {done}/{count} ({done / (now - started):.0f} studies/s)")
        return results


def _default_writer() -> str:
    from django.db import connection

    return "copy" if connection.vendor == "postgresql" else "service"


def _record_batches(studies, batch_size: int, writer: str):
    """Record ``studies`` in batches; yields per committed batch (recorded study ids, equipment change ids,
    {outcome: count}, ids of the studies written with their exam settled)."""
    for recorded in _recorded_studies(studies, batch_size, writer):
        yield _post_commit_batch(recorded)


def _recorded_studies(studies, batch_size: int, writer: str):
    """Record ``studies`` in batches; yields per committed batch, per study in order, (its position in the seeded
    sequence, its outcome: imported, failed or already_present, its study id, its equipment change ids, whether
    its exam was settled in memory: ``--writer copy``)."""
    from dosereg.registry.services.recording import record_reports_bulk
    from drl.services import study_exam_matcher

    batch, positions = [], []
    for study in itertools.chain(studies, [None]):
        if study is not None:
            batch.append(demo_report(study))
            positions.append(study.position)
            if len(batch) < batch_size:
                continue
        if not batch:
            break
        # the rules read for each batch, as the post-commit mapping reads them
        exam_of = study_exam_matcher() if writer == "copy" else None
        outcomes = record_reports_bulk(batch, demo=True, source="demo", exam_of=exam_of)
        yield [(position, o.status if o.status in ("failed", "already_present") else "imported", o.study_id,
                list(o.equipment_change_ids), o.exam_settled) for position, o in zip(positions, outcomes, strict=True)]
        batch, positions = [], []


def _post_commit_batch(recorded: list[tuple[int, str, int, list[int], bool]]):
    """(study ids, equipment change ids, {outcome: count}, ids of the studies with their exam settled) of recorded
    studies, in their order: an object already present has no post-commit steps."""
    counts: dict[str, int] = {}
    for _, key, _, _, _ in recorded:
        counts[key] = counts.get(key, 0) + 1
    kept = [r for r in recorded if r[1] != "already_present"]
    return ([sid for _, _, sid, _, _ in kept], [c for _, _, _, changes, _ in kept for c in changes], counts,
            {sid for _, _, sid, _, settled in kept if settled})


def _parts(count: int, year: int, seed: int, batch_size: int, jobs: int, writer: str):
    """``_recorded_studies`` in ``jobs`` forked processes, each on its part of the seeded sequence (every jobs-th
    patient: a patient's studies in one process, in their order; no two processes write the same patient row).
    What depends on the order studies come in is kept in the sequence's order, as one process has it: the units
    are recorded here first, from the first study of each (``_units_first_met``), and the committed studies are
    put back into the sequence's order and yielded as the batches one process would have made (``_InOrder``), so
    the post-commit steps (first-seen protocols, DRL comparisons made due) follow them in that order.  A process
    that fails stops the command."""
    import multiprocessing
    import queue as queues

    from django.db import connections

    in_order = _InOrder(count, batch_size, jobs, _units_first_met(count, year, seed))
    connections.close_all()  # the children must not share this process's connection
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue(maxsize=2 * jobs)
    procs = [ctx.Process(target=_record_part, args=(results, (k, jobs), count, year, seed, batch_size, writer),
                         daemon=True) for k in range(jobs)]
    for proc in procs:
        proc.start()
    running = jobs
    try:
        while running:
            try:
                kind, payload = results.get(timeout=5)
            except queues.Empty:
                if not any(proc.is_alive() for proc in procs):
                    raise InputFailed("the recording processes stopped without finishing") from None
                continue
            if kind == "failed":
                raise InputFailed(f"a recording process failed: {payload}")
            part, recorded = payload
            if kind == "done":
                running -= 1
                in_order.done(part)
            else:
                in_order.add(part, recorded)
            yield from in_order.ready()
    finally:
        for proc in procs:
            if running:
                proc.terminate()
            proc.join()
    if any(proc.exitcode for proc in procs):
        raise InputFailed(f"a recording process failed (exit status {[p.exitcode for p in procs]})")


def _record_part(results, part: tuple[int, int], count: int, year: int, seed: int, batch_size: int,
                 writer: str) -> None:
    from django.db import connections

    connections.close_all()
    try:
        for recorded in _recorded_studies(demo_studies(count, year=year, seed=seed, part=part), batch_size, writer):
            results.put(("batch", (part[0], recorded)))
    except Exception as exc:
        results.put(("failed", f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        connections.close_all()
    results.put(("done", (part[0], None)))


def _units_first_met(count: int, year: int, seed: int) -> dict[int, list[int]]:
    """Record each demo unit from the first study of the sequence that meets it, as one process does on that
    study (``equipment_for``: the new unit's change dated by that study); the processes then find their units
    known.  Returns {position of that study: its equipment change ids}."""
    from dosereg.registry.fields import TextFitter
    from dosereg.registry.services.recording.identity import equipment_for

    changes: dict[int, list[int]] = {}
    met: set[str] = set()
    with transaction.atomic():
        for study in demo_studies(count, year=year, seed=seed):
            if study.unit.key in met:
                continue
            met.add(study.unit.key)
            report = demo_report(study)
            _, changes[study.position] = equipment_for(report, report.study.study_date, True, TextFitter())
            if len(met) == len(UNITS):
                break
    return changes


class _InOrder:
    """The recording processes' committed studies put back into the sequence's order: the batch of positions
    [k * size, (k + 1) * size) is yielded once every process has committed past its end (or finished), as
    (study ids, equipment change ids, {outcome: count}) in position order, the units' first changes at the
    position of the study that met them."""

    def __init__(self, count: int, size: int, jobs: int, unit_changes: dict[int, list[int]]):
        self.count, self.size, self.start = count, size, 0
        self.reached = dict.fromkeys(range(jobs), -1)  # part -> the last position it committed
        self.studies: dict[int, tuple[int, str, int, list[int], bool]] = {}
        self.unit_changes = unit_changes

    def add(self, part: int, recorded: list[tuple[int, str, int, list[int], bool]]) -> None:
        for item in recorded:
            self.studies[item[0]] = item
        if recorded:
            self.reached[part] = recorded[-1][0]

    def done(self, part: int) -> None:
        self.reached[part] = self.count

    def ready(self):
        while self.start < self.count:
            end = min(self.start + self.size, self.count)
            if min(self.reached.values()) < end - 1:
                return
            batch = []
            for position in range(self.start, end):
                position, key, sid, changes, settled = self.studies.pop(position)
                batch.append((position, key, sid, self.unit_changes.pop(position, []) + changes, settled))
            self.start = end
            yield _post_commit_batch(batch)


def _after(study_ids: list[int], change_ids: list[int], settled: set[int]) -> None:
    from dicomrx.pipeline import after_studies_recorded

    after_studies_recorded(study_ids, change_ids, exam_settled=settled)


@contextlib.contextmanager
def _indexes_deferred():
    """PostgreSQL, an empty registry: its secondary indexes left out while the batches are written and built again
    at the end (``secondary_indexes_deferred``), except the one-column indexes of what the recording and the
    post-commit steps look rows up by: SOP Instance UIDs (objects already recorded), patient IDs (known patients),
    a study's patient (the trigger windows), the rows of a study or report (totals, mapping, checks)."""
    from dosereg.registry.models import (
        AccumulatedDose,
        DoseCheckOverride,
        DoseReport,
        IrradiationEvent,
        Patient,
        ReceivedObject,
        Study,
    )
    from dosereg.registry.services.recording.bulk_sql import secondary_indexes_deferred

    with _terminate_as_exit(), secondary_indexes_deferred({
            Patient: ("patient_id",), Study: ("patient",), ReceivedObject: ("sop_instance_uid",),
            DoseReport: ("sop_instance_uid", "study"), IrradiationEvent: ("study", "report"),
            AccumulatedDose: ("report",), DoseCheckOverride: ("report",)}) as deferred:
        yield deferred


@contextlib.contextmanager
def _terminate_as_exit():
    """SIGTERM (``kill``, a container stopping) ends the block with SystemExit, as Ctrl-C does with
    KeyboardInterrupt, so what the block holds is undone on the way out (the indexes built again).  In the main
    thread only (where Python handles signals); the previous handler is restored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _analyze() -> None:
    """Refresh PostgreSQL's planner statistics of the registry tables (autovacuum lags behind bulk loads; plans made
    on an 'empty' table scan sequentially)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    from dosereg.registry.models import AccumulatedDose, DoseReport, IrradiationEvent, Patient, Study

    with connection.cursor() as cursor:
        for model in (Patient, Study, DoseReport, AccumulatedDose, IrradiationEvent):
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def _ingest_dicom(study) -> bool:
    from dicomrx.ingest import ingest_received_object
    from dicomrx.storage import TopLevel, store_received_object

    buf = io.BytesIO()
    demo_dataset(study).save_as(buf, enforce_file_format=True)
    top = TopLevel(sop_instance_uid=study.sop_uid, sop_class_uid="", study_instance_uid=study.study_uid, modality="SR")
    received, _ = store_received_object(buf.getvalue(), top, source="demo")
    outcome = ingest_received_object(received.pk, demo=True)
    return outcome.status not in ("failed", "skipped")


DEMO_ROOM_PREFIX = "Demo room "


def place_demo_units_in_rooms() -> int:
    """Put each demo unit not yet in a room into a room of its own ("Demo room CT1"), as a site would map its units:
    the room filter, the units page and the per-room DRL views then have something to show."""
    from dosereg.registry.models import Equipment, Room

    placed = 0
    for unit in Equipment.objects.filter(demo=True, room__isnull=True):
        name = DEMO_ROOM_PREFIX + (unit.station_name.removeprefix("DEMO-") or str(unit.pk))
        unit.room, _ = Room.objects.get_or_create(name=name[:100], defaults={"description": "demo data"})
        unit.save(update_fields=["room"])
        placed += 1
    return placed


def purge_demo_data() -> dict[str, int]:
    """Delete demo studies (with their reports, events and alerts), demo objects and files, demo-only units."""
    from pathlib import Path

    from dosereg.registry.models import Equipment, Patient, ReceivedObject, Room, Study

    with transaction.atomic():
        studies = Study.objects.filter(demo=True)
        n_studies = studies.count()
        paths = list(ReceivedObject.objects.filter(source="demo").exclude(file_path="").values_list("file_path", flat=True))
        studies.delete()
        n_objects, _ = ReceivedObject.objects.filter(source="demo").delete()
        Patient.objects.filter(issuer="DEMO", studies__isnull=True).delete()
        n_units, _ = Equipment.objects.filter(demo=True, studies__isnull=True).delete()
        Room.objects.filter(name__startswith=DEMO_ROOM_PREFIX, units__isnull=True).delete()
    for path in paths:
        Path(path).unlink(missing_ok=True)
    return {"purged_studies": n_studies, "purged_objects": n_objects, "purged_units": n_units}
