"""A live listener (subprocess, embedded mode) and real clients: DCMTK echoscu/storescu and pynetdicom."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from tests.conftest import free_port, require_program, wait_for_port
from tests.listener.conftest import LiveListener, manage, new_data_dir
from tests.listener.helpers import (
    STORESCU_PROPOSAL,
    corpus_files,
    dataset_bytes,
    dcmtk_reads,
    push_files,
    send_raw,
    transfer_syntax,
    with_meta,
)

pytestmark = [pytest.mark.network]

RDSR = "1.2.840.10008.5.1.4.1.1.88.67"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


def test_echo_by_dcmtk_and_by_dicom_echo(start_listener):
    echoscu = require_program("echoscu")
    listener = start_listener()
    result = subprocess.run([echoscu, "-aec", "DOSEREG", "127.0.0.1", str(listener.port)], capture_output=True,
                            env={"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    ok = manage(listener.data_dir, "dicom_echo", "--quiet", check=False, DOSEREG_DICOM_PORT=str(listener.port))
    assert ok.returncode == 0 and ok.stdout == ""
    listener.stop()
    down = manage(listener.data_dir, "dicom_echo", "--timeout", "3", check=False,
                  DOSEREG_DICOM_PORT=str(listener.port))
    assert down.returncode == 1 and "cannot associate" in down.stderr or "aborted" in down.stderr \
        or "no answer" in down.stderr



def test_a_port_held_by_another_dicom_server_is_an_error_not_a_start(migrated_template, tmp_path):
    """The other server (a storescp) answers C-ECHO on that port too: the listener says it cannot listen there and
    exits, and is never taken for started."""
    port = free_port()
    other = subprocess.Popen([require_program("storescp"), "-aet", "OTHER", "-od", str(tmp_path), str(port)],
                             env={"PATH": "/usr/bin:/bin"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        wait_for_port(port)
        listener = LiveListener(new_data_dir(migrated_template, tmp_path / "listener"), port=port)
        with pytest.raises(RuntimeError) as exited:
            listener.start()
        assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in str(exited.value)
        assert "Traceback" not in listener.log.read_text()
    finally:
        other.terminate()
        other.wait(10)

def _export(data_dir) -> dict:
    out = manage(data_dir, "export_doses", "--format", "json").stdout
    studies = json.loads(out)
    return {s["study_instance_uid"]: s for s in studies}


def _comparable(study: dict) -> dict:
    """An exported study without what depends on arrival (ids, times of recording, file names)."""
    drop = {"id", "recorded_at", "received_at", "file", "file_path", "source", "calling_ae", "received_object_id"}

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in drop and not k.endswith("_id")}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return clean(study)


def test_storescu_delivers_the_corpus_and_ingest_matches_the_import_path(start_listener, corpus, tmp_path,
                                                                        migrated_template):
    storescu = require_program("storescu")
    listener = start_listener()
    files = corpus_files(corpus)
    by_option: dict[str, list] = {}
    not_for_dcmtk = []
    for f in files:
        if not dcmtk_reads(f):
            not_for_dcmtk.append(f)  # DCMTK cannot parse it (MG-Im-Hologic-PropProj): pynetdicom sends it
            continue
        by_option.setdefault(STORESCU_PROPOSAL.get(transfer_syntax(f), ""), []).append(f)
    dcmtk_failed = []
    for option, group in by_option.items():
        args = [storescu, "-nh", "-R", "-aet", "MODALITY1", "-aec", "DOSEREG"] + ([option] if option else []) + \
            ["127.0.0.1", str(listener.port)] + [str(f) for f in group]
        result = subprocess.run(args, capture_output=True, text=True, env={"TCP_NODELAY": "1", "PATH": "/usr/bin"})
        assert result.returncode == 0, result.stderr[-2000:]
        dcmtk_failed += [line.split("file: ", 1)[1].rstrip(":") for line in result.stderr.splitlines()
                         if line.startswith("E: Store Failed, file: ")]
    # DCMTK fails client-side on a file whose data set repeats its file meta (fo-dicom-GH1376): it cannot
    # convert it; those few go by pynetdicom, and nothing else may fail
    assert {Path(f).name for f in dcmtk_failed} <= {"fo-dicom-GH1376.dcm"}
    # storescu +sd +r over a whole tree (its default proposal)
    subprocess.run([storescu, "-nh", "-R", "+sd", "+r", "+sp", "*.dcm", "-aec", "DOSEREG", "127.0.0.1",
                    str(listener.port), str(corpus / "ct")], check=True, capture_output=True,
                   env={"TCP_NODELAY": "1", "PATH": "/usr/bin"})
    not_for_dcmtk += [Path(f) for f in dcmtk_failed]
    if not_for_dcmtk:
        assert all(status == 0 for _, status in push_files(listener.port, not_for_dcmtk))
    sent = {(str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)) for f in files}
    rows = listener.query("select sop_instance_uid, calling_ae, source, state, reason from registry_receivedobject")
    assert {r[0] for r in rows} == sent
    assert len(rows) == len(files)  # identical bytes sent twice (the ct/ tree again) are not recorded twice
    assert {r[2] for r in rows} == {"c-store"}
    listener.wait_ingested(len(files))
    states = dict(listener.query("select sop_instance_uid, state from registry_receivedobject"))
    assert "received" not in states.values()
    # the non-dose SR is acknowledged, kept and recorded as rejected with its reason
    nondose = pydicom.dcmread(corpus / "negative" / "ESR_non-dose.dcm", stop_before_pixels=True).SOPInstanceUID
    state, reason = listener.query("select state, reason from registry_receivedobject where sop_instance_uid=?",
                                   (str(nondose),))[0]
    assert state == "rejected" and "not a dose" in reason
    # every dose object is in the registry with what the import path gives for the same files
    imported = tmp_path / "imported"
    imported.mkdir()
    import shutil

    shutil.copy2(migrated_template / "dosereg.sqlite3", imported / "dosereg.sqlite3")
    shutil.copy2(migrated_template / "secret_key", imported / "secret_key")
    manage(imported, "import_dose", str(corpus), check=False)
    received, reference = _export(listener.data_dir), _export(imported)
    assert set(received) == set(reference)
    expected = json.loads((corpus / "expected.json").read_text())
    dose_studies = {v["study_instance_uid"] for v in expected.values() if v.get("kind") != "not-dose"}
    assert dose_studies <= set(received)
    differing = [uid for uid in reference if _comparable(received[uid]) != _comparable(reference[uid])]
    assert differing == []


def test_statuses_garbled_mismatch_and_non_dose(start_listener, corpus, tmp_path):
    listener = start_listener()
    rdsr = pydicom.dcmread(corpus / "ct" / "CT-RDSR-GEPixelMed.dcm")
    body = dataset_bytes(rdsr)
    uid = str(rdsr.SOPInstanceUID)
    statuses = send_raw(listener.port, {
        "garbled": with_meta(RDSR, generate_uid(), b"\x08\x00\x16\x00UI\xff\x7f" + b"\x13garbage" * 50),
        "class_mismatch": with_meta(CT_IMAGE, uid, body),
        "instance_mismatch": with_meta(RDSR, generate_uid(), body),
        "good": with_meta(RDSR, uid, body),
        "nondose": (corpus / "negative" / "ESR_non-dose.dcm").read_bytes(),
    }, tmp_path)
    assert statuses["garbled"].Status == 0xC000 and statuses["garbled"].ErrorComment
    assert statuses["class_mismatch"].Status == 0xA900 and "SOP Class" in statuses["class_mismatch"].ErrorComment
    assert statuses["instance_mismatch"].Status == 0xC000
    assert "SOP Instance" in statuses["instance_mismatch"].ErrorComment
    assert statuses["good"].Status == 0x0000
    assert statuses["nondose"].Status == 0x0000
    rows = listener.query("select sop_instance_uid from registry_receivedobject")
    assert len(rows) == 2 and uid in {r[0] for r in rows}  # refused objects never reach the inbox
    refused = listener.query("select kind, status, reason from dicomrx_refusedobject order by id")
    assert [r[1] for r in refused] == [0xC000, 0xA900, 0xC000]
    listener.wait_ingested(2)
    assert listener.query("select count(*) from registry_study where study_instance_uid=?",
                          (str(rdsr.StudyInstanceUID),)) == [(1,)]


def test_unknown_calling_ae_is_rejected_when_an_allowlist_is_set(start_listener):
    listener = start_listener(DOSEREG_ALLOWED_CALLING_AETS="MODALITY1,PACS@127.0.0.1,PACS2@192.0.2.1")

    def associate(calling: str):
        ae = AE(ae_title=calling)
        ae.add_requested_context(Verification)
        ae.acse_timeout = ae.network_timeout = 10
        return ae.associate("127.0.0.1", listener.port, ae_title="DOSEREG")

    for calling in ("MODALITY1", "PACS"):
        assoc = associate(calling)
        assert assoc.is_established, calling
        assoc.release()
    for calling in ("STRANGER", "PACS2"):  # PACS2 only from another host
        assoc = associate(calling)
        assert assoc.is_rejected
        rj = assoc.acceptor.primitive
        assert (rj.result, rj.result_source, rj.diagnostic) == (0x01, 0x01, 0x03)
    refused = listener.query("select kind, calling_ae, reason from dicomrx_refusedobject")
    assert {r[1] for r in refused} - {"PROBE"} == {"STRANGER", "PACS2"}  # PROBE: the fixture's start-up echo
    assert all(r[0] == "association" and "not recognised" in r[2] for r in refused)
    # an administrator adds an entry: accepted at once, no restart
    listener.query("insert into dicomrx_allowedcallingae (ae_title, host, active, note, created_at) "
                   "values ('NEWROOM', '', 1, 'room 4', '2026-01-01')")
    con_rows = listener.query("select count(*) from dicomrx_allowedcallingae")
    assert con_rows == [(1,)]
    assoc = associate("NEWROOM")
    assert assoc.is_established
    assoc.release()


def test_sigkill_after_the_last_success_loses_nothing(start_listener, corpus, tmp_path):
    from tests.listener.helpers import fresh_copy

    listener = start_listener()
    sources = [corpus / "ct" / "CT-RDSR-GEPixelMed.dcm", corpus / "dx" / "DX-RDSR-Canon_CXDI.dcm",
               corpus / "mg" / "MG-RDSR-Hologic_2D.dcm"]
    batch = []
    for i in range(30):
        dst = tmp_path / f"copy{i}.dcm"
        fresh_copy(sources[i % len(sources)], dst)
        batch.append(dst)
    results = push_files(listener.port, batch)
    listener.kill()  # right after the last Success
    acknowledged = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)
                    for f, status in results if status == 0}
    assert len(acknowledged) == 30
    listener.start()
    rows = listener.wait_ingested(30)
    assert dict(rows).get("received", 0) == 0
    stored = listener.query("select sop_instance_uid, count(*) from registry_receivedobject group by sop_instance_uid")
    assert {uid for uid, _ in stored} == acknowledged and all(n == 1 for _, n in stored)
    reports = listener.query("select sop_instance_uid, count(*) from registry_dosereport group by sop_instance_uid")
    assert {uid for uid, _ in reports} == acknowledged and all(n == 1 for _, n in reports)
    time.sleep(0)  # nothing timed is asserted
