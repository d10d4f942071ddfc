"""Ingest writes the studies a batch opens already mapped to their standard examination (drl's rules) and with the
effective dose that follows, where before the post-commit steps mapped and estimated them after the commit, one
UPDATE of each new study later: the registry, every table of it, is the same either way (tests/demo/
registry_snapshot.py), a study that other objects of its batch touch included."""

from __future__ import annotations

import json

import pydicom
import pytest
from django.utils import timezone
from pydicom.uid import generate_uid

from dicomrx import ingest, pipeline
from dosereg.registry.models import IrradiationEvent, SiteSettings
from tests.demo.registry_snapshot import registry_marks, registry_reset, registry_snapshot, snapshot_differences

pytestmark = pytest.mark.django_db(transaction=True)


def _files(corpus, tmp_path):
    """Every corpus object, then three DX images of one study (one batch: the first opens the study, the others are
    recorded one by one after it) and two copies of a CT report as two studies."""
    files = sorted(corpus.rglob("*.dcm"))
    study = generate_uid()
    for i, (rel, same_study) in enumerate([("dx/DX-Im-Carestream_DRX.dcm", True)] * 3 +
                                          [("ct/CT-RDSR-Siemens_Flash-QA-DS.dcm", False)] * 2):
        ds = pydicom.dcmread(corpus / rel)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.StudyInstanceUID = study if same_study else generate_uid()
        path = tmp_path / f"extra-{i}.dcm"
        ds.save_as(path)
        files.append(path)
    return files


def _build(files, monkeypatch, *, settle: bool):
    """The files imported into the registry as the test found it: outcomes, the snapshot, the studies the post-commit
    mapping was given; the registry put back."""
    mapped_after: list[int] = []
    map_studies_of = pipeline.map_studies_of

    def mapping(ids):
        mapped_after.extend(ids)
        return map_studies_of(ids)

    monkeypatch.setattr(pipeline, "map_studies_of", mapping)
    if not settle:
        monkeypatch.setattr(ingest, "study_exam_matcher", lambda: None)
    SiteSettings.load()
    marks = registry_marks()
    started = timezone.now()
    outcomes = [o.status for _, o in ingest.import_files(files, batch_size=20)]
    snapshot = _matched_events_resolved(registry_snapshot((started, timezone.now())))
    registry_reset(marks)
    monkeypatch.undo()
    return outcomes, snapshot, mapped_after


def _matched_events_resolved(snapshot: dict) -> dict:
    """An image's ``matched_event_id`` (the event of the same exposure it was matched to) is a row id inside JSON,
    which the snapshot cannot resolve: replaced by that event's report and position."""
    events = {e.pk: [e.report.sop_instance_uid, e.sequence]
              for e in IrradiationEvent.objects.select_related("report")}
    rows = []
    for row in snapshot["registry.IrradiationEvent"]:
        out = []
        for name, value in row:
            if name == "attributes" and isinstance(value, str) and "matched_event_id" in value:
                attributes = json.loads(value)
                attributes["matched_event_id"] = events[attributes["matched_event_id"]]
                value = json.dumps(attributes, sort_keys=True)
            out.append((name, value))
        rows.append(tuple(out))
    snapshot["registry.IrradiationEvent"] = sorted(rows, key=repr)
    return snapshot


def test_studies_written_already_mapped_give_the_registry_mapped_after_the_commit(corpus, tmp_path, monkeypatch):
    files = _files(corpus, tmp_path)
    outcomes, settled, mapped_late = _build(files, monkeypatch, settle=True)
    plain_outcomes, plain, mapped_all = _build(files, monkeypatch, settle=False)
    assert outcomes == plain_outcomes and outcomes.count("imported") > 50
    assert snapshot_differences(settled, plain, limit=5) == [], "\n".join(snapshot_differences(settled, plain, limit=5))
    studies = [dict(row) for row in plain["registry.Study"]]
    assert sum(s["standard_exam"] is not None for s in studies) > 10  # the shipped mapping maps the corpus
    # the mapping after the commit is left only with what the batches could not settle (the DX study of 3 images)
    assert len(set(mapped_late)) < len(set(mapped_all)) and set(mapped_late)
