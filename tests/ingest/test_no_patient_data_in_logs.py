"""Logs carry UIDs, AE titles and reasons, never patient names, IDs or birth dates."""

from __future__ import annotations

import io
import logging

import pydicom
import pytest
from django.core.management import call_command

from dosereg.registry.models import Patient


@pytest.mark.corpus
@pytest.mark.django_db
def test_import_logs_no_patient_identifiers(corpus, tasks_in_process, django_capture_on_commit_callbacks):
    files = [corpus / "rf" / "RF-RDSR-Siemens-Zee.dcm", corpus / "ct" / "CT-RDSR-Toshiba_DoseCheck.dcm",
             corpus / "nm" / "NM-RRDSR-Siemens.dcm", corpus / "negative" / "ESR_non-dose.dcm"]
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            call_command("import_dose", *map(str, files), stdout=io.StringIO(), stderr=io.StringIO())
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert Patient.objects.count() >= 3
    secrets = set()
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for value in (ds.get("PatientID"), ds.get("PatientName"), ds.get("PatientBirthDate")):
            text = str(value or "").strip()
            if len(text) >= 4:  # very short values ('M', '1') would match unrelated text
                secrets.add(text)
                secrets.update(part for part in text.split("^") if len(part) >= 4)
    assert secrets
    logged = "\n".join(record.getMessage() for record in records)
    assert logged  # the import did log (UIDs, states)
    leaked = sorted(s for s in secrets if s in logged)
    assert not leaked, f"patient data in the log: {leaked}"
