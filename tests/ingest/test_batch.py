"""Batch ingest: record_batch gives what record_report gives object by object; a bad object is refused alone; the
retry policy; the embedded dispatcher ingests in batches."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io

import pytest
from django.utils import timezone

from dicomrx import ingest, tasks
from dicomrx.pipeline import after_studies_recorded
from dosereg.registry.models import ReceivedObject, Study
from dosereg.registry.services.recording import record_batch, record_report
from tests.ingest.factories import ct_event, ct_report, received
from tests.ingest.test_bulk import _reports, _rules, _state, _wipe

pytestmark = pytest.mark.django_db


def _per_object(reports):
    for r in reports:
        outcome = record_report(r, received(r), demo=True)
        after_studies_recorded([outcome.study_id], outcome.equipment_change_ids)


def _batched(reports, batch: int):
    for i in range(0, len(reports), batch):
        chunk = reports[i:i + batch]
        outcomes = record_batch([(r, received(r)) for r in chunk], demo=True)
        assert all(o.status in ("imported", "replaced", "superseded") for o in outcomes), outcomes
        after_studies_recorded([o.study_id for o in outcomes], [c for o in outcomes for c in o.equipment_change_ids])


def test_record_batch_gives_the_same_registry_as_the_per_object_path():
    _rules()
    reports = _reports()
    _per_object(reports)
    expected = _state()
    _wipe()
    _batched(reports, batch=40)
    got = _state()
    assert len(expected["export"]) == 150 and expected["alerts"]
    for key in expected:
        assert got[key] == expected[key], key
    assert not ReceivedObject.objects.filter(state="received").exists()


def test_a_bad_object_is_refused_alone_and_the_rest_of_its_batch_commits():
    good = [ct_report(f"8.{i}", [ct_event("1", 10.0 * i)], sop=f"8.{i}.1") for i in range(1, 4)]
    broken = dataclasses.replace(good[0], sop_instance_uid="8.9.1", study=dataclasses.replace(
        good[0].study, study_instance_uid="8.9", study_date="2024-13-45"))  # a value the registry cannot hold
    items = [(r, received(r)) for r in (good[0], broken, good[1], good[2])]
    outcomes = record_batch(items)
    assert isinstance(outcomes[1], TypeError)
    assert [o.status for i, o in enumerate(outcomes) if i != 1] == ["imported"] * 3
    assert sorted(Study.objects.values_list("study_instance_uid", flat=True)) == ["8.1", "8.2", "8.3"]
    assert Study.objects.get(study_instance_uid="8.2").dlp_total_mgycm == 20.0


def test_the_same_object_twice_in_a_batch_is_already_present_the_second_time():
    report = ct_report("8.20", [ct_event("1", 10.0)], sop="8.20.1")
    first, second = record_batch([(report, received(report)), (report, received(report))])
    assert (first.status, second.status) == ("imported", "already_present")
    assert second.study_id == first.study_id and Study.objects.get().event_count == 1


def test_ingest_batch_refuses_unreadable_and_non_dose_objects_alone(corpus, tmp_path):
    rows = [ingest.store_file(corpus / "ct" / "CT-RDSR-GEPixelMed.dcm"),
            ingest.store_file(corpus / "negative" / "ESR_non-dose.dcm"),
            ingest.store_file(corpus / "dx" / "DX-Im-Carestream_DRX.dcm")]
    gone = ReceivedObject.objects.create(sop_instance_uid="1.2.3.404", sha256="0" * 64, source="import",
                                         file_path=str(tmp_path / "gone.dcm"))
    outcomes = ingest.ingest_batch([rows[0].pk, gone.pk, rows[1].pk, rows[2].pk, rows[0].pk])
    assert [o.status for o in outcomes] == ["imported", "failed", "skipped", "imported", "already_present"]
    assert outcomes[1].retry and not outcomes[2].retry
    gone.refresh_from_db()
    assert gone.state == "received" and gone.attempts == 1 and "cannot read" in gone.reason
    assert ReceivedObject.objects.get(pk=rows[1].pk).state == "rejected"  # a non-dose SR


def test_retry_policy_waits_longer_after_each_attempt_and_gives_up(settings):
    policy = tasks.RetryPolicy(max_attempts=3, delay_s=60)
    assert [policy.delay_after(n) for n in range(4)] == [0.0, 60.0, 120.0, None]
    settings.INGEST_MAX_ATTEMPTS, settings.INGEST_RETRY_DELAY_S = 3, 60
    now = timezone.now()
    rows = {}
    for attempts, ago in ((1, 59), (1, 61), (2, 119), (2, 121), (3, 10_000)):
        rows[(attempts, ago)] = ReceivedObject.objects.create(
            sop_instance_uid=f"1.2.{attempts}.{ago}", sha256=f"{attempts}{ago}", source="c-store",
            attempts=attempts, processed_at=now - dt.timedelta(seconds=ago)).pk
    assert sorted(tasks.due_for_retry(100)) == sorted([rows[(1, 61)], rows[(2, 121)]])


def test_import_dose_jobs_needs_postgresql_and_a_second_run_finds_everything_present(corpus, tmp_path):
    from django.core.management import CommandError, call_command
    from django.db import connection

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("CT-RDSR-GEPixelMed.dcm", "CT-RDSR-ToshibaPixelMed.dcm"):
        (folder / name).write_bytes((corpus / "ct" / name).read_bytes())
    if connection.vendor == "sqlite":
        with pytest.raises(CommandError, match="--jobs needs PostgreSQL"):
            call_command("import_dose", str(folder), "--jobs", "2")
    out = io.StringIO()
    call_command("import_dose", str(folder), "--batch-size", "1", stdout=out)
    assert out.getvalue().splitlines()[-1].startswith("imported=2 ")
    out = io.StringIO()
    call_command("import_dose", str(folder), stdout=out)  # resumed: nothing parsed again
    assert "imported=0 corrected=0 already_present=2 " in out.getvalue()


def test_progress_line_shows_the_rate_and_the_time_left():
    from dosereg.registry.management.base import progress_line

    assert progress_line("import", 120, 600, 3.0, width=10) == "import [##........] 120/600 40/s 0:12 left"
    assert progress_line("import", 7, None, 2.0) == "import 7 4/s"


def test_fifos_sockets_and_broken_links_are_counted_as_skipped_with_their_reason(tmp_path, corpus):
    import io
    import os
    import socket

    from django.core.management import call_command

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "report.dcm").write_bytes((corpus / "ct" / "CT-RDSR-Siemens-Multi-3.dcm").read_bytes())
    os.mkfifo(folder / "pipe")  # never opened: it would block the import
    (folder / "gone").symlink_to(tmp_path / "nowhere")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "sock"))
    try:
        out, err = io.StringIO(), io.StringIO()
        call_command("import_dose", str(folder), stdout=out, stderr=err)
    finally:
        sock.close()
    assert "imported=1" in out.getvalue() and "skipped=3" in out.getvalue(), out.getvalue()
    reasons = err.getvalue()
    assert "a FIFO (named pipe)" in reasons and "a broken symbolic link" in reasons and "a socket" in reasons


def test_ingest_batch_runs_with_the_collector_paused_and_turns_it_on_again(corpus, monkeypatch):
    import gc

    seen = []
    record = ingest.record_batch

    def watching(*args, **kwargs):
        seen.append(gc.isenabled())
        return record(*args, **kwargs)

    monkeypatch.setattr(ingest, "record_batch", watching)
    row = ingest.store_file(corpus / "ct" / "CT-RDSR-GEPixelMed.dcm")
    was = gc.isenabled()
    gc.enable()
    try:
        assert [o.status for o in ingest.ingest_batch([row.pk])] == ["imported"]
        assert seen == [False] and gc.isenabled()
    finally:
        if not was:
            gc.disable()
