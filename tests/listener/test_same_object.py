"""The same report pushed over DICOM and later imported from disk is one report: ``already_present``, no conflict.

The listener writes its own file meta header (implementation class and version) around the dataset it receives, so
the stored bytes differ from the file on disk; the SOP Instance UID and the dose content are the same."""

from __future__ import annotations

import pytest

from tests.listener.conftest import manage
from tests.listener.helpers import push_files

pytestmark = [pytest.mark.network, pytest.mark.corpus]


def test_pushed_then_imported_from_disk_is_already_present(start_listener, corpus):
    path = corpus / "ct" / "CT-RDSR-Siemens-Multi-3.dcm"
    listener = start_listener()
    assert push_files(listener.port, [path]) == [(path, 0x0000)]
    listener.wait_ingested(1)
    result = manage(listener.data_dir, "import_dose", str(path))
    assert "already_present=1" in result.stdout and "imported=0" in result.stdout, result.stdout
    states = sorted(s for (s,) in listener.query("select state from registry_receivedobject"))
    assert states == ["duplicate", "ingested"]
    reports = listener.query("select state, flags from registry_dosereport")
    assert len(reports) == 1 and reports[0][0] == "current" and "sop_instance_uid_reused" not in reports[0][1]
    assert listener.query("select event_count from registry_study") == [(3,)]


def test_an_object_unreadable_beyond_its_uids_is_refused_not_acknowledged(start_listener, corpus, tmp_path):
    """Garbage after valid UIDs: 0xC000 at C-STORE time (the sender knows), nothing stored to fail later; the
    association and the listener carry on."""
    from tests.listener.helpers import send_raw

    data = (corpus / "ct" / "CT-RDSR-Siemens-Multi-3.dcm").read_bytes()
    listener = start_listener()
    statuses = send_raw(listener.port, {"broken": data[:len(data) // 2] + b"\x01\x02garbage", "good": data},
                        tmp_path)
    assert statuses["broken"].Status == 0xC000
    assert "beyond its top level" in str(statuses["broken"].get("ErrorComment", ""))
    assert statuses["good"].Status == 0x0000
    assert listener.query("select count(*) from registry_receivedobject") == [(1,)]
