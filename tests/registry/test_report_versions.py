"""Report versions with real objects: a corrected re-issue, the same object twice, image headers beside an RDSR.

The objects are built from corpus files in the test (a value changed in the SR tree, a header moved into the RDSR's
study); nothing is copied into the project."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from dicomrx import ingest
from dosereg.core.sanity import CORRECTED
from dosereg.registry.models import DoseReport, IrradiationEvent, ReceivedObject, Study
from triggers.models import Alert, TriggerRule

pytestmark = [pytest.mark.django_db, pytest.mark.corpus]

DLP = ("DCM", "113838")  # Dose-Length Product (TID 10013)
DLP_TOTAL = ("DCM", "113813")  # CT Dose Length Product Total (TID 10012)


def _items(ds):
    for item in getattr(ds, "ContentSequence", []):
        yield item
        yield from _items(item)


def _concept(item) -> tuple[str, str]:
    code = item.ConceptNameCodeSequence[0]
    return str(code.CodingSchemeDesignator), str(code.CodeValue)


def _scale(ds, concept, factor: float) -> list[float]:
    """Multiply every numeric item of ``concept`` by ``factor``; the new values."""
    out = []
    for item in _items(ds):
        if getattr(item, "ValueType", "") == "NUM" and _concept(item) == concept:
            mv = item.MeasuredValueSequence[0]
            mv.NumericValue = f"{float(mv.NumericValue) * factor:.4f}"
            out.append(float(mv.NumericValue))
    return out


def _write(ds, path: Path, syntax=ExplicitVRLittleEndian) -> Path:
    ds.file_meta.TransferSyntaxUID = syntax
    ds.save_as(path, enforce_file_format=True)
    return path


def _import(path: Path, capture=None):
    if capture is not None:  # run the post-commit steps (mapping, triggers) as production does after the commit
        with capture(execute=True):
            outcome = ingest.import_file(path)
    else:
        outcome = ingest.import_file(path)
    assert outcome.status != ingest.FAILED, outcome.reason
    return outcome


@pytest.fixture
def multi3(corpus) -> Path:
    return corpus / "ct" / "CT-RDSR-Siemens-Multi-3.dcm"


def test_a_corrected_reissue_replaces_the_values_and_reevaluates_alerts(multi3, tmp_path, tasks_in_process,
                                                                       django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    TriggerRule.objects.create(key="dlp-200", name="DLP 200", quantity="dlp_total_mgycm", threshold=200,
                               unit="mGy·cm", scope="study", severity="notification", modality_type="CT",
                               source="test")
    first = _import(multi3, capture)
    study = Study.objects.get(pk=first.study_id)
    assert study.dlp_total_mgycm == pytest.approx(236.09)
    assert Alert.objects.filter(study=study, rule__key="dlp-200").count() == 1

    ds = pydicom.dcmread(multi3)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.ContentDate = (dt.date.today()).strftime("%Y%m%d")  # re-issued later
    ds.ContentTime = "235959"
    new_total = _scale(ds, DLP_TOTAL, 0.75)[0]
    _scale(ds, DLP, 0.75)
    second = _import(_write(ds, tmp_path / "reissue.dcm"), capture)
    assert second.status == ingest.CORRECTED and second.study_id == study.pk

    study.refresh_from_db()
    assert study.dlp_total_mgycm == pytest.approx(new_total)
    assert study.event_count == 3
    assert CORRECTED in study.flags
    detail = next(d for d in study.flag_details if d["flag"] == CORRECTED and d.get("quantity") == "dlp_total_mgycm")
    assert detail["old"] == pytest.approx(236.09) and detail["new"] == pytest.approx(new_total)
    old, new = DoseReport.objects.filter(study=study).order_by("id")
    assert (old.state, old.superseded_by_id, new.state) == ("superseded", new.pk, "current")  # the old one is kept
    assert {c["quantity"] for c in new.corrections} >= {"dlp_total_mgycm"}
    assert not IrradiationEvent.objects.filter(report=old, is_current=True).exists()
    # the alert was re-evaluated on the corrected value (177 mGy·cm is below 200)
    alert = Alert.objects.get(study=study, rule__key="dlp-200")
    assert alert.still_exceeds is False  # kept with its history, marked as no longer exceeded
    assert alert.details["no_longer_exceeds"]["value"] == pytest.approx(new_total)

    # the earlier version arriving again changes nothing
    again = _import(multi3, capture)
    assert again.status == ingest.ALREADY_PRESENT
    study.refresh_from_db()
    assert study.dlp_total_mgycm == pytest.approx(new_total)


def test_the_same_object_in_another_transfer_syntax_is_already_present(multi3, tmp_path):
    first = _import(multi3)
    ds = pydicom.dcmread(multi3)
    ds.file_meta.ImplementationVersionName = "OTHER_SCU"
    second = _import(_write(ds, tmp_path / "implicit.dcm", ImplicitVRLittleEndian))
    assert second.status == ingest.ALREADY_PRESENT and second.study_id == first.study_id
    assert DoseReport.objects.count() == 1
    states = sorted(ReceivedObject.objects.values_list("state", flat=True))
    assert states == sorted([ReceivedObject.STATE_INGESTED, ReceivedObject.STATE_DUPLICATE])
    assert not any("sop_instance_uid_reused" in r.flags for r in DoseReport.objects.all())


def _header_of(study_ds, header_path: Path, out: Path) -> Path:
    """A real image header moved into the RDSR's study (same patient and Study Instance UID)."""
    ds = pydicom.dcmread(header_path)
    for keyword in ("StudyInstanceUID", "PatientID", "PatientName", "PatientBirthDate", "StudyDate"):
        if keyword in study_ds:
            setattr(ds, keyword, getattr(study_ds, keyword))
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(out, enforce_file_format=True)
    return out


@pytest.mark.parametrize("header_first", [False, True], ids=["rdsr-then-header", "header-then-rdsr"])
@pytest.mark.parametrize(("rdsr", "header"), [
    ("ct/CT-RDSR-Siemens-Multi-3.dcm", "ct-image/fo-dicom-IM-0001-0001-0001.dcm"),
    ("dx/DX-RDSR-Canon_CXDI.dcm", "dx/DX-Im-Carestream_DR7500-1.dcm"),
])
def test_an_image_header_never_adds_an_event_to_a_study_with_an_rdsr(corpus, tmp_path, rdsr, header,
                                                                    header_first):
    rdsr_path = corpus / rdsr
    alone = _import(rdsr_path)
    study = Study.objects.get(pk=alone.study_id)
    expected = (study.event_count, study.max_ctdivol_mgy, study.dlp_total_mgycm, study.kap_total_gycm2)
    header_path = _header_of(pydicom.dcmread(rdsr_path, stop_before_pixels=True), corpus / header,
                             tmp_path / "header.dcm")
    if header_first:  # a fresh registry: the header arrives before the RDSR
        DoseReport.objects.all().delete()
        ReceivedObject.objects.all().delete()
        Study.objects.all().delete()
        _import(header_path)
        _import(rdsr_path)
    else:
        _import(header_path)
    study = Study.objects.get(study_instance_uid=study.study_instance_uid)
    assert (study.event_count, study.max_ctdivol_mgy, study.dlp_total_mgycm, study.kap_total_gycm2) == expected
    header_report = DoseReport.objects.get(study=study, source_kind="image_header")
    assert header_report.state == "current"  # kept, and shown, but it does not count
    assert not IrradiationEvent.objects.filter(report=header_report, is_current=True).exists()
