"""PACS pull against a real PACS: DCMTK's dcmqrscp loaded with dose SRs, a non-dose SR and an object already held."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import pydicom
import pytest

from tests.conftest import free_port, require_program
from tests.listener.conftest import manage
from tests.listener.helpers import push_files

pytestmark = [pytest.mark.network]

NEW = ["ct/CT-RDSR-GEPixelMed.dcm", "dx/DX-RDSR-Canon_CXDI.dcm"]
HELD = "mg/MG-RDSR-Hologic_2D.dcm"
NON_DOSE = "negative/ESR_non-dose.dcm"
STORAGE = {  # the SR classes of the test objects (Enhanced SR: the non-dose report)
    "1.2.840.10008.5.1.4.1.1.88.67": "RDSR", "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR",
}
UNCOMPRESSED = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]

ASSOC_CONFIG = """
[[TransferSyntaxes]]
[Uncompressed]
TransferSyntax1 = 1.2.840.10008.1.2.1
TransferSyntax2 = 1.2.840.10008.1.2

[[PresentationContexts]]
[QueryRetrieve]
PresentationContext1 = 1.2.840.10008.5.1.4.1.2.2.1\\Uncompressed
PresentationContext2 = 1.2.840.10008.5.1.4.1.2.2.2\\Uncompressed
PresentationContext3 = 1.2.840.10008.5.1.4.1.2.2.3\\Uncompressed
PresentationContext4 = 1.2.840.10008.1.1\\Uncompressed
PresentationContext5 = 1.2.840.10008.5.1.4.1.1.88.67\\Uncompressed
PresentationContext6 = 1.2.840.10008.5.1.4.1.1.88.22\\Uncompressed
[Storage]
PresentationContext1 = 1.2.840.10008.5.1.4.1.1.88.67\\Uncompressed
PresentationContext2 = 1.2.840.10008.5.1.4.1.1.88.22\\Uncompressed

[[SCPSCURoleSelection]]
[GetRoles]
Role1 = 1.2.840.10008.5.1.4.1.1.88.67\\SCP
Role2 = 1.2.840.10008.5.1.4.1.1.88.22\\SCP

[[Profiles]]
[In]
PresentationContexts = QueryRetrieve
SCPSCURoleSelection = GetRoles
[Out]
PresentationContexts = Storage
"""


@pytest.fixture
def pacs(tmp_path, corpus):
    """dcmqrscp on a free port holding the test objects; yields (port, listener-port setter)."""
    dcmqrscp = require_program("dcmqrscp")
    dcmqridx = require_program("dcmqridx")
    db = tmp_path / "pacs-db"
    db.mkdir()
    for rel in NEW + [HELD, NON_DOSE]:
        dst = db / rel.replace("/", "_")
        shutil.copy2(corpus / rel, dst)
        subprocess.run([dcmqridx, str(db), str(dst)], check=True, capture_output=True)
    port = free_port()
    procs = []

    def start(listener_port: int) -> int:
        cfg = tmp_path / "dcmqrscp.cfg"
        cfg.write_text(f"""NetworkTCPPort = {port}
MaxPDUSize = 16384
MaxAssociations = 16
HostTable BEGIN
dosereg = (DOSEREG, 127.0.0.1, {listener_port})
HostTable END
VendorTable BEGIN
VendorTable END
AETable BEGIN
PACS {db} RW (100, 1024mb) ANY
AETable END
""")
        assoc_cfg = tmp_path / "assoc.cfg"
        assoc_cfg.write_text(ASSOC_CONFIG)
        proc = subprocess.Popen([dcmqrscp, "-c", str(cfg), "-xf", str(assoc_cfg), "In", "Out"],
                                env={"TCP_NODELAY": "1", "PATH": "/usr/bin"}, stdout=subprocess.DEVNULL,
                                stderr=open(tmp_path / "dcmqrscp.log", "ab"), start_new_session=True)
        procs.append(proc)
        time.sleep(0.5)
        assert proc.poll() is None, (tmp_path / "dcmqrscp.log").read_text()
        return port

    yield start
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def _uid(path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


@pytest.mark.parametrize("retrieve", ["move", "get"])
def test_pull_fetches_dose_objects_not_held_and_skips_non_dose(retrieve, pacs, start_listener, corpus):
    listener = start_listener()
    pacs_port = pacs(listener.port)
    assert push_files(listener.port, [corpus / HELD])[0][1] == 0  # already held before the pull
    env = dict(DOSEREG_PACS_HOST="127.0.0.1", DOSEREG_PACS_PORT=str(pacs_port), DOSEREG_PACS_AE_TITLE="PACS",
               DOSEREG_PACS_RETRIEVE=retrieve, DOSEREG_DICOM_PORT=str(listener.port))
    run = manage(listener.data_dir, "pacs_pull", "--since", "1990-01-01", "--arrival-timeout", "60", check=False,
                 **env)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout)[0]
    assert summary["candidates"] == 4 and summary["already_held"] == 1
    assert summary["requested"] == 3 and summary["arrived"] == 3 and summary["missing"] == 0
    rows = dict((uid, (state, source, n)) for uid, state, source, n in listener.query(
        "select sop_instance_uid, state, source, count(*) from registry_receivedobject group by sop_instance_uid"))
    for rel in NEW:
        state, source, n = rows[_uid(corpus / rel)]
        assert state == "ingested" and n == 1
        assert source == ("c-store" if retrieve == "move" else "query-retrieve")
    assert rows[_uid(corpus / HELD)][2] == 1  # not fetched again
    assert rows[_uid(corpus / NON_DOSE)][0] == "skipped"
    reports = listener.query("select count(*) from registry_dosereport")
    assert reports == [(3,)]
    again = manage(listener.data_dir, "pacs_pull", "--since", "1990-01-01", check=False, **env)
    assert again.returncode == 0, again.stderr[-2000:]
    summary = json.loads(again.stdout)[0]
    assert summary["already_held"] == 4 and summary["requested"] == 0
