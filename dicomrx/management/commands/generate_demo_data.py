"""generate_demo_data: realistic synthetic studies for every modality over a year, marked as demo.

Default: real RDSR objects built with pydicom, kept and imported through the normal import path (parser, recording,
mapping, triggers).  --bulk: the parser's dataclasses handed straight to the same recording service and the same
post-commit steps, without files (benchmark scale).  --purge removes every demo study, unit and object.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import time

from django.db import transaction

from dicomrx.demo import demo_dataset, demo_report, demo_studies
from dosereg.registry.management.base import DoseRegCommand, UsageError


class Command(DoseRegCommand):
    help = "Generate synthetic demo studies (marked demo) for all modalities over one year."

    def add_arguments(self, parser):
        parser.add_argument("--studies", type=int, default=None, help="number of studies to generate")
        parser.add_argument("--year", type=int, default=None, help="calendar year (default: the previous one)")
        parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same studies)")
        parser.add_argument("--bulk", action="store_true", help="skip DICOM encoding and parsing (benchmark scale)")
        parser.add_argument("--purge", action="store_true", help="remove all demo data")

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
        year = options["year"] or dt.date.today().year - 1
        if not 1900 < year < 2200:
            raise UsageError(f"--year {year} is out of range")
        started = time.monotonic()
        generated = demo_studies(count, year=year, seed=options["seed"])
        results = {"imported": 0, "failed": 0}
        ingest = _ingest_bulk if options["bulk"] else _ingest_dicom
        for study in self.progress(generated, total=count, label="demo studies"):
            ok = ingest(study)
            results["imported" if ok else "failed"] += 1
        elapsed = time.monotonic() - started
        self.stderr.write(f"{count} demo studies for {year} in {elapsed:.1f} s")
        self.stdout.write(f"imported={results['imported']} failed={results['failed']}")


def _ingest_dicom(study) -> bool:
    from dicomrx.ingest import ingest_received_object
    from dicomrx.storage import TopLevel, store_received_object

    buf = io.BytesIO()
    demo_dataset(study).save_as(buf, enforce_file_format=True)
    top = TopLevel(sop_instance_uid=study.sop_uid, sop_class_uid="", study_instance_uid=study.study_uid, modality="SR")
    received, _ = store_received_object(buf.getvalue(), top, source="demo")
    outcome = ingest_received_object(received.pk, demo=True)
    return outcome.status not in ("failed", "skipped")


def _ingest_bulk(study) -> bool:
    from dicomrx.pipeline import after_study_recorded
    from dosereg.registry.models import ReceivedObject
    from dosereg.registry.services.recording import record_report

    report = demo_report(study)
    with transaction.atomic():
        received = ReceivedObject.objects.create(
            sop_instance_uid=study.sop_uid, sop_class_uid=report.sop_class_uid,
            sha256=hashlib.sha256(study.sop_uid.encode()).hexdigest(), study_instance_uid=study.study_uid,
            modality="SR", source="demo")
        outcome = record_report(report, received, demo=True)
    study_id = getattr(outcome, "study_id", None)
    if study_id:
        after_study_recorded(study_id, list(getattr(outcome, "equipment_change_ids", []) or []))
    return True


def purge_demo_data() -> dict[str, int]:
    """Delete demo studies (with their reports, events and alerts), demo objects and files, demo-only units."""
    from pathlib import Path

    from dosereg.registry.models import Equipment, Patient, ReceivedObject, Study

    with transaction.atomic():
        studies = Study.objects.filter(demo=True)
        n_studies = studies.count()
        paths = list(ReceivedObject.objects.filter(source="demo").exclude(file_path="").values_list("file_path", flat=True))
        studies.delete()
        n_objects, _ = ReceivedObject.objects.filter(source="demo").delete()
        Patient.objects.filter(issuer="DEMO", studies__isnull=True).delete()
        n_units, _ = Equipment.objects.filter(demo=True, studies__isnull=True).delete()
    for path in paths:
        Path(path).unlink(missing_ok=True)
    return {"purged_studies": n_studies, "purged_objects": n_objects, "purged_units": n_units}
