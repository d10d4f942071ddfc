"""bench/ul_sender.py, the listener benchmark's sender, against DCMTK's storescp: what it sends is what was stored."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from tests.conftest import free_port, require_program
from tests.listener.helpers import part10, with_meta

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import ul_sender  # noqa: E402

XRAY_DOSE_SR = "1.2.840.10008.5.1.4.1.1.88.67"


def _sr(text_length: int, syntax: str) -> bytes:
    ds = Dataset()
    ds.SOPClassUID = XRAY_DOSE_SR
    uid = generate_uid()
    ds.SOPInstanceUID = uid if len(uid) % 2 else uid[:-1]  # an odd length: the sender pads it in the command set
    ds.StudyInstanceUID = generate_uid()
    ds.Modality = "SR"
    ds.PatientID = "BENCH"
    ds.TextValue = "x" * text_length
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    return part10(ds)


def _wait_port(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail("storescp did not start listening")


@pytest.fixture
def storescp(tmp_path):
    out = tmp_path / "received"
    out.mkdir()
    port = free_port()
    proc = subprocess.Popen([require_program("storescp"), "--fork", "-aet", "STORESCP", "-od", str(out), str(port)],
                            env={"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_port(port, proc)
        yield port, out
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_every_file_is_stored_as_sent_fragmented_to_the_peers_pdu_length(storescp, tmp_path):
    port, out = storescp
    # storescp's default maximum PDU is 16 kB: the 100 kB text goes in several fragments; both transfer syntaxes
    files = []
    for k, (length, syntax) in enumerate([(10, ExplicitVRLittleEndian), (100_000, ExplicitVRLittleEndian),
                                          (51, ImplicitVRLittleEndian)]):
        path = tmp_path / f"{k}.dcm"
        path.write_bytes(_sr(length, syntax))
        files.append(path)
    assert ul_sender.send_files(port, "STORESCP", files) == (3, 0, {})
    stored = {str(ds.SOPInstanceUID): ds for ds in (pydicom.dcmread(p) for p in out.iterdir())}
    for path in files:
        sent = pydicom.dcmread(path)
        assert stored[str(sent.SOPInstanceUID)] == sent


def test_a_context_the_peer_rejects_is_counted_not_sent(storescp, tmp_path):
    port, out = storescp
    good = tmp_path / "good.dcm"
    good.write_bytes(_sr(10, ExplicitVRLittleEndian))
    odd = tmp_path / "odd.dcm"  # a SOP class no Storage SCP offers
    odd.write_bytes(with_meta("1.2.3.4.5", generate_uid(), b""))
    assert ul_sender.send_files(port, "STORESCP", [odd, good]) == (1, 1, {"presentation context rejected": 1})
    assert len(list(out.iterdir())) == 1
