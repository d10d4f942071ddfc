"""The real dose objects in ../shared/rdsr against expected.json (values read independently per file), plus the
vendor quirks listed in its README.  Skips cleanly when ../shared/rdsr is absent."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from dicomrx.parse import parse_dose_object
from dosereg.core.dose_report import SOURCE_IMAGE_HEADER, DoseReport, NotADoseObject

pytestmark = [pytest.mark.corpus]

CORPUS = Path(__file__).parents[2] / ".." / "shared" / "rdsr"
EXPECTED_PATH = CORPUS / "expected.json"
HAVE_CORPUS = EXPECTED_PATH.is_file()
EXPECTED = json.loads(EXPECTED_PATH.read_text()) if HAVE_CORPUS else {}
skip_no_corpus = pytest.mark.skipif(not HAVE_CORPUS, reason=f"corpus not found at {CORPUS} (../shared/rdsr)")

_cache: dict[str, DoseReport] = {}


def parse(name: str) -> DoseReport:
    if name not in _cache:
        _cache[name] = parse_dose_object((CORPUS / name).read_bytes(), filename=name)
    return _cache[name]


def close(a, b, rel=1e-6):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


def acc_value(report: DoseReport, name: str, plane_first: bool = True):
    for acc in report.accumulated:
        if name in acc.quantities:
            return acc.quantities[name].value
    return None


def qv(event, name):
    q = event.quantities.get(name)
    return q.value if q is not None else None


@skip_no_corpus
@pytest.mark.parametrize("name", sorted(EXPECTED) or ["(no corpus)"])  # one clearly skipped case when absent
def test_corpus_file(name: str) -> None:
    exp = EXPECTED[name]
    kind = exp["kind"]
    if kind == "not-dose":
        with pytest.raises(NotADoseObject):
            parse(name)
        return
    report = parse(name)
    assert report.study.study_instance_uid == exp["study_instance_uid"]
    assert report.sop_instance_uid == exp["sop_instance_uid"]
    if kind == "header":
        assert report.source_kind == SOURCE_IMAGE_HEADER
        for key in ("ctdivol_mgy", "kap_gycm2", "agd_mgy", "activity_mbq"):
            if key in exp:
                assert any(close(qv(e, key), exp[key]) for e in report.events), (key, exp[key])
        if "dlp_total_mgycm" in exp:
            assert close(acc_value(report, "dlp_total_mgycm"), exp["dlp_total_mgycm"])
        return
    if "events" in exp:
        assert len(report.events) == exp["events"]
    if "event_uids" in exp:
        assert [e.irradiation_event_uid for e in report.events] == exp["event_uids"]
    for key in ("dlp_total_mgycm", "kap_total_gycm2", "ka_r_total_mgy", "fluoro_time_total_s", "activity_mbq"):
        if key in exp:
            assert close(acc_value(report, key), exp[key]), (key, acc_value(report, key), exp[key])
    if "agd_total_mgy" in exp:
        for side, value in exp["agd_total_mgy"].items():
            assert close(acc_value(report, f"agd_{side}_mgy"), value), side
    if "first_event" in exp:
        first = report.events[0]
        if exp["first_event"] == {}:
            assert not any(k in first.quantities for k in ("ctdivol_mgy", "dlp_mgycm", "kap_gycm2", "agd_mgy"))
        for key, value in exp["first_event"].items():
            assert close(qv(first, key), value), (key, qv(first, key), value)


@skip_no_corpus
def test_kinds_and_modality_types() -> None:
    assert parse("ct/CT-RDSR-Siemens-Multi-1.dcm").modality_types == ("CT",)
    assert parse("rf/RF-RDSR-GE.dcm").modality_types[0] == "fluoroscopy"
    assert "mammography" in parse("mg/MG-RDSR-Hologic_2D.dcm").modality_types
    assert parse("dx/DX-RDSR-Carestream_DRXEvolution.dcm").modality_types == ("radiography",)
    nm = parse("nm/NM-RRDSR-Siemens.dcm")
    assert nm.source_kind == "rrdsr" and nm.modality_types == ("nuclear_medicine",)


@skip_no_corpus
def test_enhanced_sr_ct_and_mgycm_unit() -> None:
    report = parse("ct/CT-ESR-GE_Optima.dcm")
    assert report.template == "TID 10011"
    assert report.sop_class_uid == "1.2.840.10008.5.1.4.1.1.88.22"
    dosed = [e for e in report.events if "ctdivol_mgy" in e.quantities]
    pairs = sorted((qv(e, "ctdivol_mgy"), qv(e, "dlp_mgycm")) for e in dosed)
    assert pairs == [pytest.approx((3.23, 155.97)), pytest.approx((5.3, 259.85))]
    assert dosed[0].quantities["dlp_mgycm"].raw_unit == "mGycm"
    assert report.events[0].is_localizer and report.events[0].event_type == "constant_angle_acquisition"
    assert sum(e.is_localizer for e in report.events) == 4


@skip_no_corpus
def test_dose_check_toshiba() -> None:
    report = parse("ct/CT-RDSR-Toshiba_DoseCheck.dcm")
    alerts = [c for c in report.dose_checks if c.kind == "alert"]
    assert len(alerts) == 2
    assert all(c.dlp_configured and c.ctdivol_configured for c in alerts)
    assert all(close(c.dlp_value_mgycm, 100) and close(c.ctdivol_value_mgy, 10) for c in alerts)
    assert [c.dlp_forward_estimate_mgycm for c in alerts] == [pytest.approx(251.2), pytest.approx(502.4)]
    assert alerts[0].irradiation_event_uid == report.events[0].irradiation_event_uid
    notes = [c for c in report.dose_checks if c.kind == "notification"]
    assert notes and not notes[0].dlp_configured
    assert report.events[0].attributes["ctdi_phantom"] == "body"
    assert report.events[0].event_type == "spiral_acquisition"


@skip_no_corpus
def test_dose_check_spectrum_dynamics_forward_estimates() -> None:
    report = parse("ct/CT-RDSR-SpectrumDynamics.dcm")
    forwards = sorted(c.dlp_forward_estimate_mgycm for c in report.dose_checks
                      if c.dlp_forward_estimate_mgycm is not None)
    for value in (21.64, 47.0858, 172.421, 243.091):
        assert any(close(f, value) for f in forwards), value
    assert "\\" in report.equipment.software_versions


@skip_no_corpus
def test_dual_source_ct() -> None:
    report = parse("ct/CT-RDSR-Siemens_Flash-QA-DS.dcm")
    dual = [e for e in report.events if len(e.attributes.get("xray_sources", [])) == 2]
    assert dual, "expected dual-source events"
    ev = dual[0]
    assert ev.quantities["kvp"].value == ev.attributes["xray_sources"][0]["kvp"]


@skip_no_corpus
def test_projection_units_and_quirks() -> None:
    ge = parse("rf/RF-RDSR-GE.dcm")
    ev4 = ge.events[3]
    assert close(qv(ev4, "kap_gycm2"), 0.4334)
    assert close(qv(ev4, "ka_r_mgy"), 2.10763)
    zee = parse("rf/RF-RDSR-Siemens-Zee.dcm")
    assert zee.events[0].quantities["kap_gycm2"].raw_unit == "Gym2"
    canon = parse("dx/DX-RDSR-Canon_CXDI.dcm")
    assert "ka_r_mgy" not in canon.events[0].quantities
    assert acc_value(canon, "ka_r_total_mgy") is None


@skip_no_corpus
def test_philips_u104_two_planes_total_as_written() -> None:
    report = parse("rf/PySkinDose-philips_allura_clarity_u104.dcm")
    planes = {a.plane: a for a in report.accumulated}
    assert set(planes) == {"A", "B"}
    assert planes["B"].quantities["kap_total_gycm2"].value == 0
    total = planes["A"].quantities["kap_total_gycm2"].value
    assert close(total, 0.078391324289)
    assert not close(total, sum(qv(e, "kap_gycm2") or 0 for e in report.events))
    filters = report.events[0].attributes["filters"]
    thick = {f["material"].lower(): f["thickness_max_mm"] for f in filters}
    assert any("alumin" in m and close(t, 1.0) for m, t in thick.items())
    assert any("copper" in m and close(t, 0.4) for m, t in thick.items())


@skip_no_corpus
def test_siemens_axiom_copper_filters() -> None:
    report = parse("rf/PySkinDose-siemens_axiom_artis.dcm")
    expected = [0.6, 0.9, 0.9, 0.9, 0.9, 0.9, 0.6, 0.9, 0.9, 0.9, 0.9, 0.9, 0.6, 0.9, 0.9, 0.3, 0.6, 0.3, 0.9, 0.9, 0.6]
    cu = []
    for ev in report.events:
        cu.append(next(f["thickness_max_mm"] for f in ev.attributes["filters"] if "copper" in f["material"].lower()))
    assert cu == pytest.approx(expected)


@skip_no_corpus
def test_mammography_laterality_hologic() -> None:
    report = parse("mg/MG-RDSR-Hologic_2D.dcm")
    assert close(acc_value(report, "agd_left_mgy"), 1.30)
    assert close(acc_value(report, "agd_right_mgy"), 1.28)
    first = report.events[0]
    assert close(qv(first, "esak_mgy"), 3.65)
    assert close(qv(first, "hvl_mmal"), 0.535)
    assert first.attributes.get("laterality") in ("left", "right")


@skip_no_corpus
def test_header_sources() -> None:
    sc = parse("ct/CT-SC-Philips_Brilliance16P.dcm")
    assert len(sc.events) == 4
    assert [e.event_type for e in sc.events].count("spiral_acquisition") == 3
    assert sum(e.is_localizer for e in sc.events) == 1
    pet = parse("nm/NM-PetIm-GE.dcm")
    assert pet.events[0].quantities["activity_mbq"].raw_unit == "Bq"
    nm = parse("nm/NM-NmIm-Siemens.dcm")
    assert nm.events[0].quantities["activity_mbq"].raw_unit == "MBq"
    a = parse("mg/MG-Im-GE_Seno_1_ForPresentation.dcm")
    b = parse("mg/MG-Im-GE_Seno_1_ForProcessing.dcm")
    assert a.events[0].exposure_key == b.events[0].exposure_key is not None
    assert a.sop_instance_uid != b.sop_instance_uid
    bad = parse("ct-image/pydicom-data-bad_sequence.dcm")
    assert any("StudyInstanceUID" in w and "SOPInstanceUID" in w for w in bad.warnings)
    missing = parse("dx/DX-Im-Date-Missing.dcm")
    assert missing.study.study_date is None


@skip_no_corpus
def test_summary_and_rrdsr() -> None:
    varic = parse("rf/RF-ESR-Siemens-Varic.dcm")
    assert varic.source_kind == "private_summary" and "private_template" in varic.flags and not varic.events
    assert close(acc_value(varic, "kap_total_gycm2"), 0.2359) and close(acc_value(varic, "fluoro_time_total_s"), 34.427)
    assert acc_value(varic, "ka_r_total_mgy") is None  # qualifier only: missing, not 0
    nm = parse("nm/NM-RRDSR-Siemens.dcm")
    ev = nm.events[0]
    assert close(qv(ev, "activity_mbq"), 394) and close(qv(ev, "effective_dose_msv"), 7.486)
    assert close(acc_value(nm, "effective_dose_msv"), 7.486)
    assert ev.attributes["radionuclide"][1] == "77004003"
    assert nm.patient.age_years == 63 and nm.patient.weight_kg == 110 and nm.patient.height_m == pytest.approx(1.78)
    assert len(ev.attributes["organ_doses"]) > 10


@skip_no_corpus
def test_equipment_and_charsets() -> None:
    blank = parse("rf/RF-Pat-Orientation-Modifier-Missing.dcm")
    assert blank.equipment.manufacturer or blank.equipment.model  # from the SR device observer items
    allura = parse("rf/RF-RDSR-Philips_Allura.dcm")
    assert allura.study.study_instance_uid
    canon = parse("dx/DX-RDSR-Canon_CXDI.dcm")
    assert canon.patient.age_years is not None and 58 <= canon.patient.age_years < 59 or canon.patient.birth_date


@skip_no_corpus
def test_tomosynthesis_ge_pristina() -> None:
    """One DBT sweep: one event, laterality from the Laterality modifier of Anatomical structure, per-pulse values."""
    report = parse("mg/MG-RDSR-GEPristina-DBT.dcm")
    (event,) = report.events
    assert event.event_type == "rotational_acquisition"
    assert event.attributes["laterality"] == "right"
    assert close(qv(event, "agd_mgy"), 1.09)
    assert len(event.attributes["kvp_values"]) == 10
