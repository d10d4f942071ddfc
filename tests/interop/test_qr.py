"""DICOM query/retrieve against a live listener, with DCMTK's findscu, movescu (to a storescp) and getscu."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pydicom
import pytest
from django.test import override_settings

from dicomrx.qr import matches
from dosereg.registry.services.pseudonyms import patient_pseudonym
from tests.conftest import free_port, require_program, wait_for_port
from tests.listener.helpers import push_files

pytestmark = [pytest.mark.network, pytest.mark.corpus]

DCMTK_ENV = {"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"}
FILES = ("ct/CT-ESR-GE_Optima.dcm", "rf/Dual-RDSR-RF.dcm", "nm/NM-NmIm-Siemens.dcm")


def _dcmtk(program: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([require_program(program), *args], capture_output=True, text=True, env=DCMTK_ENV,
                          cwd=cwd, timeout=120)


def _find(port: int, out: Path, *keys: str, root: str = "-S") -> list[pydicom.Dataset]:
    out.mkdir(parents=True, exist_ok=True)
    args = [root, "-aec", "DOSEREG", "-X", "-od", str(out)]
    for key in keys:
        args += ["-k", key]
    result = _dcmtk("findscu", *args, "127.0.0.1", str(port))
    assert result.returncode == 0, result.stderr
    return [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


def _dose_objects(corpus: Path) -> list[tuple[Path, pydicom.Dataset]]:
    """The corpus dose SRs used here (whole RDSRs of three modalities)."""
    out = []
    for name in FILES:
        path = corpus / name
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if str(ds.SOPClassUID).startswith("1.2.840.10008.5.1.4.1.1.88."):
            out.append((path, ds))
    assert len(out) >= 2
    return out


@pytest.fixture
def loaded(start_listener, corpus, tmp_path):
    """A listener holding the dose objects, and a storescp to move them to."""
    storescp_port = free_port()
    received = tmp_path / "moved"
    received.mkdir()
    storescp = subprocess.Popen([require_program("storescp"), "-aet", "STORESCP", "-od", str(received),
                                 str(storescp_port)], env=DCMTK_ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_port(storescp_port)
    listener = start_listener(DOSEREG_QR_DESTINATIONS=f"STORESCP@127.0.0.1:{storescp_port}")
    objects = _dose_objects(corpus)
    statuses = push_files(listener.port, [p for p, _ in objects])
    assert {s for _, s in statuses} == {0}
    listener.wait_ingested(len(objects))
    yield listener, objects, received
    os.killpg(storescp.pid, 15)
    storescp.wait(10)


def test_find_at_every_level_in_both_models(loaded, tmp_path):
    listener, objects, _ = loaded
    path, ds = objects[0]
    studies = _find(listener.port, tmp_path / "s", "QueryRetrieveLevel=STUDY", "StudyInstanceUID", "PatientID",
                    "ModalitiesInStudy", "NumberOfStudyRelatedInstances", "StudyDate")
    assert {str(r.StudyInstanceUID) for r in studies} == {str(d.StudyInstanceUID) for _, d in objects}
    mine = next(r for r in studies if r.StudyInstanceUID == ds.StudyInstanceUID)
    assert mine.PatientID == ds.PatientID and mine.NumberOfStudyRelatedInstances == 1
    assert mine.StudyDate == ds.StudyDate

    by_modality = _find(listener.port, tmp_path / "mod", "QueryRetrieveLevel=STUDY", f"ModalitiesInStudy={ds.Modality}",
                        "StudyInstanceUID")
    assert ds.StudyInstanceUID in {r.StudyInstanceUID for r in by_modality}
    assert _find(listener.port, tmp_path / "nomod", "QueryRetrieveLevel=STUDY", "ModalitiesInStudy=ZZ") == []

    one = _find(listener.port, tmp_path / "one", "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={ds.StudyInstanceUID}")
    assert [r.StudyInstanceUID for r in one] == [ds.StudyInstanceUID]

    patients = _find(listener.port, tmp_path / "p", "QueryRetrieveLevel=PATIENT", f"PatientID={ds.PatientID}",
                     "PatientName", "NumberOfPatientRelatedStudies", root="-P")
    assert len(patients) == 1 and patients[0].PatientID == ds.PatientID

    series = _find(listener.port, tmp_path / "se", "QueryRetrieveLevel=SERIES",
                   f"StudyInstanceUID={ds.StudyInstanceUID}", "SeriesInstanceUID", "Modality")
    assert [(r.SeriesInstanceUID, r.Modality) for r in series] == [(ds.SeriesInstanceUID, ds.Modality)]

    images = _find(listener.port, tmp_path / "im", "QueryRetrieveLevel=IMAGE",
                   f"StudyInstanceUID={ds.StudyInstanceUID}", f"SeriesInstanceUID={ds.SeriesInstanceUID}",
                   "SOPInstanceUID", "SOPClassUID")
    assert [(r.SOPInstanceUID, r.SOPClassUID) for r in images] == [(ds.SOPInstanceUID, ds.SOPClassUID)]

    # the study date as a single value and as a range, and the accession number, find it
    day = _find(listener.port, tmp_path / "day", "QueryRetrieveLevel=STUDY", f"StudyDate={ds.StudyDate}",
                "StudyInstanceUID")
    assert ds.StudyInstanceUID in {r.StudyInstanceUID for r in day}
    span = _find(listener.port, tmp_path / "span", "QueryRetrieveLevel=STUDY", f"StudyDate={ds.StudyDate}-",
                 "StudyInstanceUID")
    assert ds.StudyInstanceUID in {r.StudyInstanceUID for r in span}
    if ds.get("AccessionNumber"):
        acc = _find(listener.port, tmp_path / "acc", "QueryRetrieveLevel=STUDY", f"AccessionNumber={ds.AccessionNumber}",
                    "StudyInstanceUID")
        assert [r.StudyInstanceUID for r in acc] == [ds.StudyInstanceUID]
    # a date range that excludes every study finds nothing; a wildcard on the patient finds its studies
    assert _find(listener.port, tmp_path / "none", "QueryRetrieveLevel=STUDY", "StudyDate=19000101-19000102") == []
    wild = _find(listener.port, tmp_path / "w", "QueryRetrieveLevel=STUDY", f"PatientID={ds.PatientID[:2]}*",
                 "StudyInstanceUID")
    assert ds.StudyInstanceUID in {r.StudyInstanceUID for r in wild}


def test_find_with_a_bad_level_gets_a_failure_status_not_a_crash(loaded, tmp_path):
    listener, _, _ = loaded
    result = _dcmtk("findscu", "-v", "-S", "-aec", "DOSEREG", "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID",
                    "127.0.0.1", str(listener.port))
    assert "error: datasetdoesnotmatchsopclass" in (result.stdout + result.stderr).lower()  # 0xA900
    assert listener.echo()  # still answering


def test_move_to_a_storescp_and_get(loaded, tmp_path):
    listener, objects, received = loaded
    path, ds = objects[0]
    result = _dcmtk("movescu", "-S", "-aec", "DOSEREG", "-aem", "STORESCP", "-k", "QueryRetrieveLevel=STUDY",
                    "-k", f"StudyInstanceUID={ds.StudyInstanceUID}", "127.0.0.1", str(listener.port))
    assert result.returncode == 0, result.stderr
    deadline = time.time() + 20
    while not list(received.iterdir()) and time.time() < deadline:
        time.sleep(0.2)
    moved = [pydicom.dcmread(p) for p in received.iterdir()]
    assert [m.SOPInstanceUID for m in moved] == [ds.SOPInstanceUID]
    assert moved[0].ContentSequence == pydicom.dcmread(path).ContentSequence  # the whole object, unchanged

    unknown = _dcmtk("movescu", "-v", "-S", "-aec", "DOSEREG", "-aem", "NOBODY", "-k", "QueryRetrieveLevel=STUDY",
                     "-k", f"StudyInstanceUID={ds.StudyInstanceUID}", "127.0.0.1", str(listener.port))
    text = (unknown.stdout + unknown.stderr).lower()
    assert "0xa801" in text or "movedestinationunknown" in text, text

    got = tmp_path / "got"
    got.mkdir()
    other_path, other = objects[1]
    result = _dcmtk("getscu", "-S", "-aec", "DOSEREG", "-od", str(got), "-k", "QueryRetrieveLevel=IMAGE",
                    "-k", f"StudyInstanceUID={other.StudyInstanceUID}", "-k", f"SOPInstanceUID={other.SOPInstanceUID}",
                    "127.0.0.1", str(listener.port))
    assert result.returncode == 0, result.stderr
    fetched = [pydicom.dcmread(p) for p in got.iterdir()]
    assert [f.SOPInstanceUID for f in fetched] == [other.SOPInstanceUID]
    assert fetched[0].PatientID == other.PatientID


def test_pseudonymised_query_and_retrieve(start_listener, corpus, tmp_path):
    key = "qr-test-key"
    listener = start_listener(DOSEREG_PSEUDONYM_KEY=key)
    path, ds = _dose_objects(corpus)[0]
    assert {s for _, s in push_files(listener.port, [path])} == {0}
    listener.wait_ingested(1)
    issuer = str(ds.get("IssuerOfPatientID", "") or "")
    pseudonym = _pseudonym(key, str(ds.PatientID), issuer)
    # asked by the hospital's Patient ID: hashed with the same key; answered with the pseudonym only
    found = _find(listener.port, tmp_path / "f", "QueryRetrieveLevel=STUDY", f"PatientID={ds.PatientID}",
                  "PatientName", "PatientBirthDate", "StudyInstanceUID")
    assert [(r.PatientID, str(r.PatientName), r.PatientBirthDate) for r in found] == [(pseudonym, "", "")]
    got = tmp_path / "got"
    got.mkdir()
    result = _dcmtk("getscu", "-S", "-aec", "DOSEREG", "-od", str(got), "-k", "QueryRetrieveLevel=STUDY",
                    "-k", f"StudyInstanceUID={ds.StudyInstanceUID}", "127.0.0.1", str(listener.port))
    assert result.returncode == 0, result.stderr
    fetched = pydicom.dcmread(next(got.iterdir()))
    assert fetched.PatientID == pseudonym and str(fetched.PatientName) == "" and "PatientBirthDate" not in fetched
    assert fetched.PatientIdentityRemoved == "YES"


def _pseudonym(key: str, pid: str, issuer: str) -> str:
    with override_settings(PSEUDONYM_KEY=key):
        return patient_pseudonym(pid, issuer)


@pytest.mark.parametrize(("keyword", "value", "pattern", "expected"), [
    ("PatientID", "ABC123", "", True),
    ("PatientID", "ABC123", "ABC*", True),
    ("PatientID", "ABC123", "abc*", False),
    ("PatientName", "Doe^John", "doe*", True),
    ("PatientID", "ABC123", "AB?123", True),
    ("StudyInstanceUID", "1.2.3", "1.2.4\\1.2.3", True),
    ("StudyInstanceUID", "1.2.3", "1.2.4\\1.2.5", False),
    ("StudyDate", "20200315", "20200101-20201231", True),
    ("StudyDate", "20200315", "-20200314", False),
    ("StudyDate", "20200315", "20200315-", True),
    ("StudyDate", "", "20200101-", False),
    ("StudyTime", "101530", "1015", True),
    ("PatientID", "A[1]", "A[1]", True),
])
def test_matching_rules(keyword, value, pattern, expected):
    assert matches(keyword, value, pattern) is expected
