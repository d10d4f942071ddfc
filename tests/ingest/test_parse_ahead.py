"""Parsing ahead (dicomrx.ingest.ParseAhead): import_files parses each stored batch in a background thread while the
batch before it is recorded; the outcomes and the registry are those of parsing in line."""

from __future__ import annotations

import shutil
import threading

import pydicom
import pytest
from pydicom.uid import generate_uid

from dicomrx import ingest
from dosereg.registry.models import IrradiationEvent, Patient, ReceivedObject, Study

pytestmark = pytest.mark.django_db

KINDS = ("ct/CT-RDSR-GEPixelMed.dcm", "dx/DX-Im-Carestream_DRX.dcm", "negative/ESR_non-dose.dcm")


def _copies(corpus, tmp_path, n: int):
    """n files: fresh-UID copies of a CT report, a DX header and a non-dose SR, in turn."""
    out = []
    for i in range(n):
        ds = pydicom.dcmread(corpus / KINDS[i % len(KINDS)])
        ds.SOPInstanceUID, ds.StudyInstanceUID = generate_uid(), generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        path = tmp_path / f"object-{i}.dcm"
        ds.save_as(path)
        out.append(path)
    return out


def _registry():
    return (sorted(Study.objects.values_list("study_instance_uid", "modality_type", "event_count")),
            sorted(IrradiationEvent.objects.values_list("study__study_instance_uid", "kap_gycm2", "ctdivol_mgy")),
            sorted(ReceivedObject.objects.values_list("sop_instance_uid", "state")))


def test_each_batch_is_parsed_while_the_one_before_is_recorded(corpus, tmp_path, monkeypatch):
    files = _copies(corpus, tmp_path, 6)
    parsing_second = threading.Event()
    parse_stored, record_batch = ingest._parse_stored, ingest.record_batch
    parsed_in: list[str] = []
    overlapped: list[bool] = []

    def parse(path):  # the first batch is parsed in line (nothing to overlap yet); the first call is the second's
        parsed_in.append(threading.current_thread().name)
        parsing_second.set()
        return parse_stored(path)

    def record(batch, **kwargs):
        if not overlapped:  # the first batch: the second is parsed meanwhile, or this waits in vain
            overlapped.append(parsing_second.wait(timeout=20))
        return record_batch(batch, **kwargs)

    monkeypatch.setattr(ingest, "_parse_stored", parse)
    monkeypatch.setattr(ingest, "record_batch", record)
    outcomes = [o.status for _, o in ingest.import_files(files, batch_size=2)]
    assert overlapped == [True]
    assert len(parsed_in) == 4 and all(name.startswith("parse-ahead") for name in parsed_in)  # not the first batch
    assert outcomes == ["imported", "imported", "skipped"] * 2
    assert not any(t.name.startswith("parse-ahead") for t in threading.enumerate())  # the thread ends with the import

    ahead = _registry()  # the same files again into an empty registry, parsed in line (a batch of its own each)
    Study.objects.all().delete()
    Patient.objects.all().delete()
    ReceivedObject.objects.all().delete()
    monkeypatch.undo()
    again = tmp_path / "again"
    again.mkdir()
    for f in files:
        shutil.copy(f, again / f.name)
    rows = [ingest.store_file(again / f.name) for f in files]
    assert [ingest.ingest_received_object(r.pk).status for r in rows] == outcomes
    assert _registry() == ahead


def test_a_result_parsed_ahead_is_used_only_for_the_file_it_was_made_from(corpus):
    ct = ingest.store_file(corpus / "ct" / "CT-RDSR-GEPixelMed.dcm")
    dx = ingest.store_file(corpus / "dx" / "DX-Im-Carestream_DRX.dcm")
    wrong = ingest._parse_stored(dx.file_path)
    [outcome] = ingest.ingest_batch([ct.pk], parsed={ct.pk: ingest.Parsed(dx.file_path, wrong.result)})
    assert outcome.status == "imported"
    assert Study.objects.get(pk=outcome.study_id).study_instance_uid == ct.study_instance_uid


def test_what_went_wrong_ahead_ends_as_it_would_in_line(corpus):
    unread, faulty, not_dose = (ingest.store_file(corpus / "ct" / "CT-RDSR-GEPixelMed.dcm"),
                                ingest.store_file(corpus / "dx" / "DX-Im-Carestream_DRX.dcm"),
                                ingest.store_file(corpus / "negative" / "ESR_non-dose.dcm"))
    parsed = {unread.pk: ingest.Parsed(unread.file_path, unreadable="No such file or directory"),
              faulty.pk: ingest.Parsed(faulty.file_path, ZeroDivisionError("a parser bug")),
              not_dose.pk: ingest._parse_stored(not_dose.file_path)}
    outcomes = ingest.ingest_batch([unread.pk, faulty.pk, not_dose.pk], parsed=parsed)
    assert [(o.status, o.retry) for o in outcomes] == [("failed", True), ("failed", True), ("skipped", False)]
    assert "cannot read the stored object: No such file" in outcomes[0].reason
    assert "parser met a case" in outcomes[1].reason
    states = dict(ReceivedObject.objects.values_list("pk", "state"))
    assert (states[unread.pk], states[faulty.pk], states[not_dose.pk]) == ("received", "received", "rejected")


def test_with_pseudonymisation_on_nothing_is_parsed_ahead(corpus, tmp_path, settings, monkeypatch):
    settings.PSEUDONYM_KEY = "a key for the test"
    calls = []
    parse_stored = ingest._parse_stored
    monkeypatch.setattr(ingest, "_parse_stored", lambda path: calls.append(path) or parse_stored(path))
    files = _copies(corpus, tmp_path, 4)
    outcomes = [o.status for _, o in ingest.import_files(files, batch_size=2)]
    assert outcomes == ["imported", "imported", "skipped", "imported"] and calls == []
    assert Patient.objects.count() and all(p.pseudonymised for p in Patient.objects.all())
