"""generate_demo_data: realistic synthetic studies for every modality over a year, marked as demo.

Default: real RDSR objects built with pydicom, kept and imported through the normal import path (parser, recording,
mapping, triggers).  --bulk: the parser's dataclasses handed straight to the same recording service and the same
post-commit steps, without files (benchmark scale).  --purge removes every demo study, unit and object.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import io
import time

from django.db import transaction

from dicomrx.demo import demo_dataset, demo_report, demo_studies
from dosereg.registry.management.base import DoseRegCommand, InputFailed, UsageError


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
        parser.add_argument("--jobs", type=int, default=1, choices=(1, 2),
                            help="--bulk on PostgreSQL: 2 runs the post-commit steps (mapping, triggers) in a second "
                                 "process while the next batch is recorded")

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
        year = options["year"] or dt.date.today().year - 1
        if not 1900 < year < 2200:
            raise UsageError(f"--year {year} is out of range")
        started = time.monotonic()
        generated = demo_studies(count, year=year, seed=options["seed"])
        if options["bulk"]:
            results = self._generate_bulk(generated, count, options["batch_size"], started, options["jobs"])
        else:
            results = {"imported": 0, "failed": 0}
            for study in self.progress(generated, total=count, label="demo studies"):
                ok = _ingest_dicom(study)
                results["imported" if ok else "failed"] += 1
        place_demo_units_in_rooms()
        elapsed = time.monotonic() - started
        rate = count / elapsed if elapsed > 0 else 0.0
        self.stderr.write(f"{count} demo studies for {year} in {elapsed:.1f} s ({rate:.0f} studies/s)")
        post_s = results.pop("post_commit_s", None)
        if post_s is not None and count:  # --bulk in one process: the post-commit steps' share
            self.stderr.write(f"post-commit steps {post_s:.1f} s ({post_s / count * 1000:.2f} ms/study, "
                              f"{count / post_s if post_s else 0:.0f} studies/s on their own)")
        line = f"imported={results['imported']} failed={results['failed']}"
        if results.get("already_present"):
            line += f" already_present={results['already_present']}"
        self.stdout.write(line)

    def _generate_bulk(self, generated, count: int, batch_size: int, started: float, jobs: int) -> dict[str, int]:
        """Batches of ``batch_size`` studies: one recording transaction each, then the post-commit steps — in this
        process, or (``jobs`` 2, PostgreSQL) in a second process that takes each committed batch from a queue while
        this one records the next."""
        with _quiet_gc():
            return self._record_batches(generated, count, batch_size, started, jobs)

    def _record_batches(self, generated, count: int, batch_size: int, started: float, jobs: int) -> dict[str, int]:
        from django.db import connection

        from dosereg.registry.services.recording import record_reports_bulk

        post = _PostCommitWorker() if jobs > 1 and connection.vendor == "postgresql" else None
        results = {"imported": 0, "failed": 0}
        done = 0
        batch = []
        last_note = started
        next_analyze = batch_size  # fresh tables: planner statistics after the first batch, then at x10, x100...
        try:
            for study in generated:
                batch.append(demo_report(study))
                if len(batch) < batch_size and done + len(batch) < count:
                    continue
                outcomes = record_reports_bulk(batch, demo=True, source="demo")
                recorded = [o for o in outcomes if o.status != "already_present"]
                ids = [o.study_id for o in recorded]
                change_ids = [c for o in recorded for c in o.equipment_change_ids]
                if post is not None:
                    post.put(ids, change_ids)
                else:
                    t0 = time.monotonic()
                    _after(ids, change_ids)
                    results["post_commit_s"] = results.get("post_commit_s", 0.0) + time.monotonic() - t0
                for o in outcomes:
                    key = o.status if o.status in ("failed", "already_present") else "imported"
                    results[key] = results.get(key, 0) + 1
                done += len(batch)
                batch = []
                if done >= next_analyze:
                    _analyze()
                    next_analyze *= 10
                now = time.monotonic()
                if now - last_note >= 5 or done == count:
                    last_note = now
                    elapsed = now - started
                    self.stderr.write(f"demo studies: {done}/{count} ({done / elapsed:.0f} studies/s)")
        finally:
            if post is not None:
                post.close()
        return results


@contextlib.contextmanager
def _quiet_gc():
    """A batch holds some 10^5 young objects that live until it is written: at the collector's default threshold
    (700 allocations) it scans them again and again, a quarter of the run's Python time.  What Django loaded is
    frozen out of the scans and collections run a hundred times less often (cycles are still freed); the
    collector's settings are restored afterwards."""
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(70_000, 20, 20)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _after(study_ids: list[int], change_ids: list[int]) -> None:
    from dicomrx.pipeline import after_studies_recorded

    after_studies_recorded(study_ids, change_ids)


class _PostCommitWorker:
    """A forked process that runs the post-commit steps of each committed batch, in order (a bounded queue keeps
    the recorder at most two batches ahead).  Its own database connection; a failure there stops the command."""

    def __init__(self):
        import multiprocessing

        from django.db import connections

        connections.close_all()  # the child must not share the parent's connection
        ctx = multiprocessing.get_context("fork")
        self.queue = ctx.Queue(maxsize=2)
        self.process = ctx.Process(target=_post_commit_loop, args=(self.queue,), daemon=True)
        self.process.start()

    def put(self, study_ids: list[int], change_ids: list[int]) -> None:
        if not self.process.is_alive():
            raise InputFailed(f"the post-commit worker stopped (exit status {self.process.exitcode})")
        self.queue.put((study_ids, change_ids))

    def close(self) -> None:
        self.queue.put(None)
        self.process.join()
        if self.process.exitcode != 0:
            raise InputFailed(f"the post-commit worker failed (exit status {self.process.exitcode})")


def _post_commit_loop(queue) -> None:
    from django.db import connections

    connections.close_all()
    while True:
        item = queue.get()
        if item is None:
            break
        _after(*item)
    connections.close_all()


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
