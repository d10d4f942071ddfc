"""Every file of ../shared/rdsr imported through import_dose / ingest, checked against expected.json and the
behaviours its README lists."""

from __future__ import annotations

import collections
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from dicomrx import ingest
from dosereg.registry.models import DoseReport, IrradiationEvent, Patient, ReceivedObject, Study
from dosereg.registry.selectors import iter_export_dicts
from tests.conftest import REPO

pytestmark = [pytest.mark.corpus, pytest.mark.django_db]


def close(a, b):
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def run_import(*paths) -> tuple[int, list[str]]:
    out = io.StringIO()
    try:
        call_command("import_dose", *[str(p) for p in paths], stdout=out, stderr=io.StringIO())
        code = 0
    except SystemExit as exc:
        code = exc.code
    except CommandError as exc:  # exit 1 when a file failed
        code = getattr(exc, "returncode", 1)
    return code, out.getvalue().strip().splitlines()


def counts(line: str) -> dict[str, int]:
    return {k: int(v) for k, v in (p.split("=") for p in line.split())}


def export() -> list[dict]:
    return json.loads(json.dumps(list(iter_export_dicts(Study.objects.all()))))


def test_whole_corpus_matches_expected(corpus):
    code, lines = run_import(corpus)
    summary = counts(lines[-1])
    assert code == 0 and summary["failed"] == 0, lines
    expected = json.loads((corpus / "expected.json").read_text())
    dose_files = [n for n, e in expected.items() if e["kind"] != "not-dose"]
    assert summary["imported"] + summary["superseded"] == len(dose_files)
    studies = export()
    by_key = {(s["study_instance_uid"], sop): s for s in studies for sop in s["source_sop_instance_uids"]}
    all_sops = {sop for s in studies for sop in s["source_sop_instance_uids"]}
    groups = collections.defaultdict(list)
    for name, e in expected.items():
        if e["kind"] == "not-dose":
            assert e["sop_instance_uid"] not in all_sops, name
            continue
        study = by_key.get((e["study_instance_uid"], e["sop_instance_uid"]))
        assert study is not None, f"{name} not exported"
        for value in _numbers(study):
            assert isinstance(value, (int, float, type(None))), name
        if e["kind"] == "header":
            _check_header(name, e, study)
        else:
            groups[e["study_instance_uid"]].append((name, e))
    for study_uid, files in groups.items():
        _check_reports_of_study(study_uid, files, by_key[(study_uid, files[0][1]["sop_instance_uid"])])


def _check_header(name: str, e: dict, study: dict) -> None:
    events = study["events"]
    for key in ("kap_gycm2", "agd_mgy", "ctdivol_mgy"):
        if key in e:
            assert any(close(ev[key], e[key]) for ev in events), f"{name}: {key}"
    if "activity_mbq" in e:
        assert close(study["totals"]["activity_mbq"], e["activity_mbq"]) or any(
            close(ev["activity_mbq"], e["activity_mbq"]) for ev in events), name
    if "dlp_total_mgycm" in e:
        assert close(study["totals"]["dlp_total_mgycm"], e["dlp_total_mgycm"]), name


def _check_reports_of_study(study_uid: str, files: list[tuple[str, dict]], study: dict) -> None:
    """Reports of one study combine as compare_export.py says: superseded re-issues drop out, continued ones add up."""
    keep = [(n, e) for n, e in files if not any(
        o is not e and set(e.get("event_uids") or []) and set(e["event_uids"]) <= set(o.get("event_uids") or [])
        and (set(e["event_uids"]) < set(o["event_uids"]) or m < n) for m, o in files)]
    exported = {ev["irradiation_event_uid"] for ev in study["events"] if ev["irradiation_event_uid"]}
    if any(e.get("event_uids") for _, e in files):
        assert exported == set().union(*(set(e.get("event_uids") or []) for _, e in keep)), study_uid
    for key in ("dlp_total_mgycm", "kap_total_gycm2", "ka_r_total_mgy", "fluoro_time_total_s", "activity_mbq"):
        values = [e[key] for _, e in keep if e.get(key) is not None]
        if values:
            assert close(study["totals"][key], sum(values)), f"{study_uid} {key}"
    by_uid = {ev["irradiation_event_uid"]: ev for ev in study["events"]}
    for name, e in keep:
        for side, v in (e.get("agd_total_mgy") or {}).items():
            assert close(study["totals"]["agd_total_mgy"][side], v) or v == study["totals"]["agd_total_mgy"][side]
        uids = e.get("event_uids") or []
        for key, v in (e.get("first_event") or {}).items():
            got = by_uid[uids[0]][key]
            assert (v is None and got is None) or close(got, v), f"{name} first event {key}: {got} != {v}"


def _numbers(d):
    if isinstance(d, dict):
        for k, v in d.items():
            if isinstance(v, (dict, list)):
                yield from _numbers(v)
            elif k.endswith(("_mgy", "_mgycm", "_gycm2", "_s", "_mbq", "_msv", "_kg", "_years", "_mm")) or k == "kvp":
                yield v
    elif isinstance(d, list):
        for v in d:
            yield from _numbers(v)


def test_siemens_multi_cumulative_then_reimport_changes_nothing(corpus):
    ct = corpus / "ct"
    dlps = []
    for i in (1, 2, 3):
        run_import(ct / f"CT-RDSR-Siemens-Multi-{i}.dcm")
        study = Study.objects.get()
        dlps.append((study.event_count, study.dlp_total_mgycm))
    assert dlps == [(1, 7.46), (2, 77.27), (3, 236.09)]
    before = (IrradiationEvent.objects.count(), DoseReport.objects.count(), ReceivedObject.objects.count())
    code, lines = run_import(ct / "CT-RDSR-Siemens-Multi-1.dcm")
    assert counts(lines[-1])["already_present"] == 1
    assert (IrradiationEvent.objects.count(), DoseReport.objects.count(), ReceivedObject.objects.count()) == before
    assert Study.objects.get().dlp_total_mgycm == 236.09


def test_siemens_multi_in_reverse_order_supersedes(corpus):
    ct = corpus / "ct"
    run_import(ct / "CT-RDSR-Siemens-Multi-3.dcm")
    code, lines = run_import(ct / "CT-RDSR-Siemens-Multi-1.dcm", ct / "CT-RDSR-Siemens-Multi-2.dcm")
    assert counts(lines[-1])["superseded"] == 2
    study = Study.objects.get()
    assert (study.event_count, study.dlp_total_mgycm) == (3, 236.09)
    assert len(export()[0]["source_sop_instance_uids"]) == 3


def test_continued_reports_add_up(corpus):
    run_import(corpus / "ct" / "CT-RDSR-Siemens-Continued-1.dcm", corpus / "ct" / "CT-RDSR-Siemens-Continued-2.dcm")
    study = Study.objects.get()
    assert study.event_count == 4 and study.dlp_total_mgycm == pytest.approx(60.17 + 56.44)


def test_zee_and_adjusted_share_a_sop_uid_in_two_studies(corpus):
    rf = corpus / "rf"
    run_import(rf / "RF-RDSR-Siemens-Zee.dcm", rf / "RF-RDSR-Siemens-Zee_adjusted.dcm")
    assert Study.objects.count() == 2
    assert "sop_instance_uid_reused" in DoseReport.objects.order_by("id").last().flags
    patient = Patient.objects.get()
    sums = Study.objects.filter(patient=patient)
    assert sum(s.kap_total_gycm2 for s in sums) == pytest.approx(0.32)
    assert sum(s.ka_r_total_mgy for s in sums) == pytest.approx(5.04)


def test_mammography_for_processing_and_presentation_count_once(corpus):
    mg = corpus / "mg"
    run_import(mg / "MG-Im-GE_Seno_1_ForProcessing.dcm", mg / "MG-Im-GE_Seno_1_ForPresentation.dcm")
    study = Study.objects.get()
    assert study.event_count == 1
    assert (study.agd_left_mgy or 0) + (study.agd_right_mgy or 0) == pytest.approx(0.547)
    assert len(export()[0]["source_sop_instance_uids"]) == 2


def test_nm_rrdsr_is_the_source_of_activity(corpus):
    nm = corpus / "nm"
    run_import(nm / "NM-PetIm-Siemens.dcm", nm / "NM-RRDSR-Siemens.dcm")
    study = Study.objects.get()
    assert study.activity_mbq == 394.0  # not 788
    assert study.effective_dose_msv == pytest.approx(7.486)
    assert study.modality_types == ["nuclear_medicine"]


def test_dx_carestream_two_images(corpus):
    dx = corpus / "dx"
    run_import(dx / "DX-Im-Carestream_DR7500-1.dcm", dx / "DX-Im-Carestream_DR7500-2.dcm")
    study = Study.objects.get()
    assert study.kap_total_gycm2 == pytest.approx(2.117) and study.event_count == 2


def test_date_missing_imports_with_null_date(corpus):
    code, lines = run_import(corpus / "dx" / "DX-Im-Date-Missing.dcm")
    study = Study.objects.get()
    assert code == 0 and study.study_date is None and "study_date_unknown" in study.flags
    assert export()[0]["study_date"] is None


def test_bad_sequence_imports_with_a_warning(corpus):
    outcome = ingest.import_file(corpus / "ct-image" / "pydicom-data-bad_sequence.dcm")
    assert outcome.status == "imported" and outcome.warnings
    row = ReceivedObject.objects.get()
    assert any("UID" in w for w in row.warnings)
    assert IrradiationEvent.objects.get().ctdivol_mgy == pytest.approx(29.7696282)


def test_non_dose_sr_refused_nothing_stored(corpus):
    code, lines = run_import(corpus / "negative" / "ESR_non-dose.dcm")
    assert counts(lines[-1])["skipped"] == 1 and code == 0
    row = ReceivedObject.objects.get()
    assert row.state == "rejected" and "not a dose" in row.reason and Path(row.file_path).exists()
    assert not Study.objects.exists() and not DoseReport.objects.exists() and not IrradiationEvent.objects.exists()


def test_truncated_and_flipped_copies_refused_batch_carries_on(corpus, tmp_path):
    src = (corpus / "rf" / "RF-RDSR-Siemens-Zee.dcm").read_bytes()
    (tmp_path / "a_truncated.dcm").write_bytes(src[: len(src) * 2 // 3])
    flipped = bytearray(src)
    for i in range(len(flipped) // 2, len(flipped) // 2 + 400, 7):
        flipped[i] ^= 0xFF
    (tmp_path / "b_flipped.dcm").write_bytes(bytes(flipped))
    (tmp_path / "c_good.dcm").write_bytes((corpus / "ct" / "CT-RDSR-Siemens-Multi-1.dcm").read_bytes())
    (tmp_path / "d_text.txt").write_text("not dicom")
    code, lines = run_import(tmp_path)
    summary = counts(lines[-1])
    assert summary["imported"] == 1 and summary["skipped"] == 1
    assert summary["failed"] + summary["imported"] + summary["skipped"] >= 3
    assert code == (1 if summary["failed"] else 0)
    for line in lines[:-1]:
        assert line.startswith("failed ") and ": " in line
    assert Study.objects.count() == 1  # nothing from the refused copies
    for row in ReceivedObject.objects.exclude(state="ingested"):
        assert row.state == "rejected" and row.reason


def test_idempotent_reimport_of_the_corpus_folder(corpus):
    run_import(corpus / "rf", corpus / "mg")
    snapshot = export()
    code, lines = run_import(corpus / "rf", corpus / "mg")
    summary = counts(lines[-1])
    assert summary["imported"] == 0 and summary["superseded"] == 0 and summary["already_present"] > 0
    assert export() == snapshot


def test_pseudonym_mode_stores_no_names(corpus, settings):
    settings.PSEUDONYM_KEY = "k" * 32
    run_import(corpus / "ct" / "CT-RDSR-Toshiba_DoseCheck.dcm", corpus / "nm" / "NM-RRDSR-Siemens.dcm")
    for p in Patient.objects.all():
        assert p.pseudonymised and p.name == "" and p.birth_date is None and len(p.patient_id) == 64
    assert Study.objects.get(modality_type="nuclear_medicine").age_years == 63.0


def test_query_count_per_object_is_bounded(corpus, django_assert_max_num_queries):
    big = corpus / "rf" / "RF-Pat-Orientation-Modifier-Missing.dcm"
    with django_assert_max_num_queries(40):
        outcome = ingest.import_file(big)
    assert outcome.status == "imported"
    assert IrradiationEvent.objects.count() == 316
    assert Study.objects.get().ka_r_total_mgy == pytest.approx(7688.97349461299)


def test_equipment_identity_falls_back_to_the_sr_observer(corpus):
    run_import(corpus / "rf" / "RF-Pat-Orientation-Modifier-Missing.dcm")
    unit = Study.objects.get().equipment
    assert unit.device_observer_uid and unit.model == "Allura Xper"


def test_reprocess_replays_stored_objects(corpus):
    run_import(corpus / "ct" / "CT-RDSR-Siemens-Multi-2.dcm", corpus / "ct" / "CT-RDSR-Siemens-Multi-3.dcm")
    out = io.StringIO()
    call_command("reprocess", stdout=out, stderr=io.StringIO())
    assert out.getvalue().strip().splitlines()[-1].startswith("imported=")
    study = Study.objects.get()
    assert (study.event_count, study.dlp_total_mgycm) == (3, 236.09)
    assert DoseReport.objects.filter(state="current").count() == 1


def test_export_doses_command_json_and_csv(corpus, tmp_path):
    run_import(corpus / "ct" / "CT-RDSR-Siemens-Multi-3.dcm", corpus / "dx" / "DX-Im-Carestream_DR7500-1.dcm")
    call_command("export_doses", "--format", "json", "--modality", "CT", "--output", str(tmp_path / "x.json"))
    data = json.loads((tmp_path / "x.json").read_text())
    assert [d["modality_type"] for d in data] == ["CT"]
    assert data[0]["totals"]["dlp_total_mgycm"] == 236.09
    call_command("export_doses", "--format", "csv", "--output", str(tmp_path / "x.csv"))
    rows = (tmp_path / "x.csv").read_text().splitlines()
    assert rows[0].startswith("study_instance_uid,") and len(rows) == 3


def test_check_corpus_tool_passes(corpus):
    tool = corpus.parent / "tools" / "check-corpus"
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    proc = subprocess.run(["bash", str(tool), sys.executable], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    last = proc.stdout.strip().splitlines()[-1]
    assert proc.returncode == 0, proc.stdout[-2000:]
    good, total = last.split()[0].split("/")
    assert good == total, last


def test_fuzzed_copies_never_crash_the_import(corpus, tmp_path):
    import random

    rng = random.Random(20240301)
    sources = [corpus / "ct" / "CT-RDSR-Toshiba_DoseCheck.dcm", corpus / "rf" / "RF-RDSR-GE.dcm",
               corpus / "dx" / "DX-Im-Carestream_DR7500-1.dcm", corpus / "nm" / "NM-RRDSR-Siemens.dcm"]
    for n in range(24):
        data = bytearray(sources[n % len(sources)].read_bytes())
        if n % 3 == 0:
            data = data[: rng.randrange(140, len(data))]
        for _ in range(rng.randrange(1, 40)):
            i = rng.randrange(132, len(data))
            data[i] = rng.randrange(256)
        (tmp_path / f"fuzz{n:02d}.dcm").write_bytes(bytes(data))
    for path in sorted(tmp_path.glob("fuzz*.dcm")):
        outcome = ingest.import_file(path)
        assert outcome.status in ("imported", "superseded", "already_present", "skipped", "failed")
        if outcome.status in ("failed", "skipped"):
            assert outcome.reason
    for row in ReceivedObject.objects.filter(state="rejected"):
        assert row.reason and not DoseReport.objects.filter(received_object=row).exists()
