"""Synthetic RDSRs built with pydicom (tests/dicomrx/synthetic.py): the parser stays covered without ../shared."""

from __future__ import annotations

import math

import pytest

from dicomrx.parse import parse_dose_object
from dicomrx.units import to_canonical
from dosereg.core.dose_report import DoseParseError, NotADoseObject
from tests.dicomrx import synthetic


@pytest.mark.parametrize("snomed", ["SRT", "SCT"])
@pytest.mark.parametrize("implicit", [False, True])
def test_ct_rdsr(snomed: str, implicit: bool) -> None:
    data = synthetic.build_ct_rdsr(
        study_uid="1.2.3.4", snomed=snomed, implicit=implicit,
        events=[{"uid": "1.2.3.4.1", "acquisition_type": "constant_angle", "ctdivol": None, "dlp": None},
                {"uid": "1.2.3.4.2", "ctdivol": 5.3, "dlp": 251.2, "phantom": "body",
                 "dose_check": {"dlp_alert": 100, "ctdivol_alert": 10, "dlp_forward": 251.2, "reason": "needed",
                                "person": "Doe^Jane"}}],
    )
    report = parse_dose_object(data)
    assert report.source_kind == "rdsr" and report.template == "TID 10011"
    assert report.modality_types == ("CT",)
    assert report.study.study_instance_uid == "1.2.3.4"
    assert report.scope_of_accumulation == "study" and report.scope_uid == "1.2.3.4"
    assert [e.irradiation_event_uid for e in report.events] == ["1.2.3.4.1", "1.2.3.4.2"]
    loc, spiral = report.events
    assert loc.is_localizer and loc.event_type == "constant_angle_acquisition"
    assert "ctdivol_mgy" not in loc.quantities
    assert spiral.event_type == "spiral_acquisition" and not spiral.is_localizer
    assert spiral.event_type_code.scheme == "SCT" and spiral.event_type_code.value == "116152004"
    assert spiral.quantities["ctdivol_mgy"].value == pytest.approx(5.3)
    assert spiral.quantities["dlp_mgycm"].value == pytest.approx(251.2)
    assert spiral.quantities["kvp"].value == 120
    assert spiral.attributes["ctdi_phantom"] == "body"
    assert spiral.target_region.value == "113345001"
    assert report.accumulated[0].quantities["dlp_total_mgycm"].value == pytest.approx(251.2)
    check = report.dose_checks[0]
    assert check.kind == "alert" and check.dlp_configured and check.ctdivol_configured
    assert check.dlp_value_mgycm == 100 and check.ctdivol_value_mgy == 10
    assert check.dlp_forward_estimate_mgycm == pytest.approx(251.2) and check.ctdivol_forward_estimate_mgy is None
    assert check.reason_for_proceeding == "needed" and check.person_name == "Doe^Jane"
    assert report.patient.sex == "F" and report.patient.birth_date.year == 1960


def test_ct_rdsr_from_dataset() -> None:
    ds = synthetic.build_ct_rdsr(events=[{"ctdivol": 1.5, "dlp": 30}], as_dataset=True)
    report = parse_dose_object(ds)
    assert report.events[0].quantities["dlp_mgycm"].value == 30


def test_unknown_unit_on_dlp_refuses() -> None:
    data = synthetic.build_ct_rdsr(events=[{"ctdivol": 5, "dlp": 100, "dlp_unit": "xyz"}])
    with pytest.raises(DoseParseError, match="unknown unit 'xyz' for dlp"):
        parse_dose_object(data)


def test_vendor_units() -> None:
    data = synthetic.build_ct_rdsr(events=[{"ctdivol": 5, "dlp": 100}], dlp_unit="mGycm")
    assert parse_dose_object(data).events[0].quantities["dlp_mgycm"].raw_unit == "mGycm"
    proj = synthetic.build_projection_rdsr(events=[{"event_type": "fluoroscopy", "kap_gym2": "4.334e-005",
                                                    "ka_r_gy": "2.10763e-003"}], kap_unit="Gym2")
    ev = parse_dose_object(proj).events[0]
    assert ev.quantities["kap_gycm2"].value == pytest.approx(0.4334)
    assert ev.quantities["kap_gycm2"].raw_value == "4.334e-005"
    assert ev.quantities["ka_r_mgy"].value == pytest.approx(2.10763)


@pytest.mark.parametrize("snomed", ["SRT", "SCT"])
def test_projection_rdsr(snomed: str) -> None:
    data = synthetic.build_projection_rdsr(
        study_uid="1.2.3.5", snomed=snomed, implicit=snomed == "SCT",
        events=[
            {"uid": "1.2.3.5.1", "event_type": "fluoroscopy", "kap_gym2": 1e-4, "ka_r_gy": 0.002, "kvp": 70,
             "filters": [("aluminum", 1.0, 1.0), ("copper", 0.4, 0.4)], "exposure_uas": 2500},
            {"uid": "1.2.3.5.2", "event_type": "stationary", "kap_gym2": 2e-4, "ka_r_gy": None},
        ],
        totals={"kap_gym2": 5e-4, "ka_r_gy": 0.01, "fluoro_time_s": 12.5},
    )
    report = parse_dose_object(data)
    assert report.template == "TID 10001"
    assert report.modality_types == ("fluoroscopy",)
    acc = report.accumulated[0]
    assert acc.plane == "single"
    assert acc.quantities["kap_total_gycm2"].value == pytest.approx(5.0)  # as written, not the sum of the events
    assert acc.quantities["ka_r_total_mgy"].value == pytest.approx(10)
    assert acc.quantities["fluoro_time_total_s"].value == 12.5
    fl, st = report.events
    assert fl.event_type == "fluoroscopy" and st.event_type == "stationary_acquisition"
    assert fl.event_type_code.scheme == "SCT" and fl.event_type_code.value == "44491008"
    assert fl.quantities["kap_gycm2"].value == pytest.approx(1.0)
    assert fl.quantities["exposure_mas"].value == pytest.approx(2.5)
    assert fl.plane == "single"
    filters = {f["material_code"][1]: f for f in fl.attributes["filters"]}
    assert filters["12503006"]["thickness_max_mm"] == 1.0 and filters["66925006"]["thickness_min_mm"] == 0.4
    assert "ka_r_mgy" not in st.quantities  # empty measured value: missing, not 0


def test_radiography_only() -> None:
    data = synthetic.build_projection_rdsr(events=[{"event_type": "stationary", "kap_gym2": 1e-5, "ka_r_gy": 1e-4}])
    assert parse_dose_object(data).modality_types == ("radiography",)


@pytest.mark.parametrize("snomed", ["SRT", "SCT"])
def test_mammography_laterality(snomed: str) -> None:
    data = synthetic.build_projection_rdsr(
        snomed=snomed, mammography=True,
        events=[{"event_type": "stationary", "agd_mgy": 1.3, "laterality": "left"},
                {"event_type": "stationary", "agd_mgy": 1.28, "laterality": "right"}],
        totals={}, agd_totals={"left": 1.30, "right": 1.28},
    )
    report = parse_dose_object(data)
    acc = report.accumulated[0].quantities
    assert acc["agd_left_mgy"].value == pytest.approx(1.30)
    assert acc["agd_right_mgy"].value == pytest.approx(1.28)
    assert [e.attributes["laterality"] for e in report.events] == ["left", "right"]
    assert "mammography" in report.modality_types


def test_rrdsr() -> None:
    report = parse_dose_object(synthetic.build_rrdsr(activity_mbq=394, effective_dose_msv=7.486))
    assert report.source_kind == "rrdsr" and report.modality_types == ("nuclear_medicine",)
    assert report.accumulated[0].quantities["activity_mbq"].value == 394
    assert report.accumulated[0].quantities["effective_dose_msv"].value == pytest.approx(7.486)
    assert report.patient.height_m == pytest.approx(1.78) and report.patient.weight_kg == 110


def test_non_dose_sr_and_image_refused() -> None:
    ds = synthetic.build_ct_rdsr(as_dataset=True)
    ds.ConceptNameCodeSequence[0].CodeValue = "18748-4"
    ds.ConceptNameCodeSequence[0].CodingSchemeDesignator = "LN"
    with pytest.raises(NotADoseObject):
        parse_dose_object(synthetic.to_bytes(ds))
    img = synthetic.build_ct_rdsr(as_dataset=True)
    del img.ContentSequence
    del img.ConceptNameCodeSequence
    img.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    img.file_meta.MediaStorageSOPClassUID = img.SOPClassUID
    img.Modality = "CT"
    with pytest.raises(NotADoseObject):
        parse_dose_object(synthetic.to_bytes(img))
    img.CTDIvol = 12.5
    img.PatientAge = "058Y"
    report = parse_dose_object(synthetic.to_bytes(img))
    assert report.source_kind == "image_header" and report.events[0].quantities["ctdivol_mgy"].value == 12.5
    assert report.patient.age_years == 58


def test_prdsr_not_supported_yet() -> None:
    ds = synthetic.build_ct_rdsr(as_dataset=True)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.73"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    report = parse_dose_object(synthetic.to_bytes(ds))
    assert report.source_kind == "prdsr" and report.flags == ("not_supported_yet",) and not report.events


def test_garbage() -> None:
    for data in (b"", b"hello", b"\x00" * 200, b"DICM" * 100):
        with pytest.raises(DoseParseError):
            parse_dose_object(data)
    with pytest.raises(DoseParseError):
        parse_dose_object("not bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize(("unit", "value", "name", "expected"), [
    ("Gym2", "1", "kap_gycm2", 1e4), ("Gy.m2", "1", "kap_gycm2", 1e4), ("dGy.cm2", "1", "kap_gycm2", 0.1),
    ("Gy.cm2", "1", "kap_gycm2", 1), ("Gy.cm^2", "0.2359", "kap_gycm2", 0.2359), ("mGy.cm2", "1", "kap_gycm2", 1e-3),
    ("cGy.cm2", "1", "kap_gycm2", 1e-2), ("uGy.m2", "1", "kap_gycm2", 1e-2), ("mGycm", "7", "dlp_mgycm", 7),
    ("mGy.cm", "7", "dlp_mgycm", 7), ("Gy", "0.00210763", "ka_r_mgy", 2.10763), ("dGy", "0.01373", "agd_mgy", 1.373),
    ("uGy", "1", "ka_r_mgy", 1e-3), ("ms", "5", "exposure_time_s", 0.005), ("min", "1", "fluoro_time_total_s", 60),
    ("uAs", "2500", "exposure_mas", 2.5), ("uA.s", "2500", "exposure_mas", 2.5), ("mAs", "2", "exposure_mas", 2),
    ("Bq", "394000000", "activity_mbq", 394), ("mCi", "1", "activity_mbq", 37), ("GBq", "1", "activity_mbq", 1000),
    ("Sv", "0.001", "effective_dose_msv", 1), ("cm", "1", "scanning_length_mm", 10), ("m", "1", "distance_source_to_detector_mm", 1000),
    ("{pulse}/s", "15", "pulse_rate_per_s", 15), ("pulse/s", "15", "pulse_rate_per_s", 15), ("/s", "15", "pulse_rate_per_s", 15),
    ("{X-ray sources}", "2", "number_of_xray_sources", 2), ("{ratio}", "0.8", "pitch_factor", 0.8), ("1", "3", "number_of_pulses", 3),
    ("Gy", "8.664e-005", "ka_r_mgy", 0.08664), ("mGy", "1.5\\2.5", "ctdivol_mgy", 1.5),
])
def test_units(unit: str, value: str, name: str, expected: float) -> None:
    assert to_canonical(name, value, unit).value == pytest.approx(expected)


def test_units_refuse() -> None:
    with pytest.raises(DoseParseError, match="unknown unit 'xyz' for dlp_mgycm"):
        to_canonical("dlp_mgycm", "1", "xyz")
    for text in ("abc", "1,5", "1_000", "", "1.2.3", "٣"):  # not DICOM numbers (the last: an Arabic-Indic digit)
        with pytest.raises(DoseParseError, match="unreadable number"):
            to_canonical("ctdivol_mgy", text, "mGy")
    with pytest.raises(DoseParseError):
        to_canonical("kap_gycm2", "1", None)
    assert to_canonical("kap_gycm2", "1", "Gy.m2", scheme="UCM").value == 1e4


@pytest.mark.parametrize(("name", "text", "unit", "check"), [
    ("kap_gycm2", "1e308", "Gy.m2", lambda v: v == math.inf),  # finite as sent, beyond the float range converted
    ("ctdivol_mgy", "NaN", "mGy", math.isnan),
    ("ctdivol_mgy", "-inf", "mGy", lambda v: v == -math.inf),
    ("dlp_mgycm", "-12.5", "mGy.cm", lambda v: v == -12.5),
    ("ka_r_mgy", " -0.002 ", "Gy", lambda v: v == pytest.approx(-2.0)),
])
def test_units_pass_non_finite_and_negative_values(name: str, text: str, unit: str, check) -> None:
    """The registry's border (dosereg.core.sanity) judges these; the parser reports them as sent."""
    q = to_canonical(name, text, unit)
    assert check(q.value)
    assert q.raw_value == text.strip() and q.raw_unit == unit


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")  # pydicom, writing 'NaN' and 'inf'
def test_report_kept_with_non_finite_and_negative_values() -> None:
    data = synthetic.build_ct_rdsr(events=[{"ctdivol": "NaN", "dlp": "-251.2"}, {"ctdivol": "inf", "dlp": 10}],
                                   dlp_total=-241.2)
    report = parse_dose_object(data)
    first, second = report.events
    assert math.isnan(first.quantities["ctdivol_mgy"].value)
    assert first.quantities["dlp_mgycm"].value == pytest.approx(-251.2)
    assert second.quantities["ctdivol_mgy"].value == math.inf
    assert report.accumulated[0].quantities["dlp_total_mgycm"].value == pytest.approx(-241.2)
    proj = synthetic.build_projection_rdsr(events=[{"event_type": "stationary", "kap_gym2": "1e308", "ka_r_gy": "-1"}],
                                           totals={"kap_gym2": "1e308"})
    report = parse_dose_object(proj)
    assert report.events[0].quantities["kap_gycm2"].value == math.inf
    assert report.events[0].quantities["ka_r_mgy"].value == -1000
    assert report.accumulated[0].quantities["kap_total_gycm2"].value == math.inf


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.5])
def test_image_header_passes_non_finite_and_negative_values(value: float) -> None:
    img = synthetic.build_ct_rdsr(as_dataset=True)
    del img.ContentSequence
    del img.ConceptNameCodeSequence
    img.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    img.file_meta.MediaStorageSOPClassUID = img.SOPClassUID
    img.Modality = "CT"
    img.CTDIvol = value  # FD: the float as stored
    got = parse_dose_object(synthetic.to_bytes(img)).events[0].quantities["ctdivol_mgy"].value
    assert math.isnan(got) if math.isnan(value) else got == value


def test_unreadable_number_on_a_typed_quantity_still_refuses() -> None:
    data = synthetic.build_ct_rdsr(events=[{"ctdivol": "7.25", "dlp": 1}])  # pydicom refuses to write "abc" as DS
    for text in ("abc", "1,5"):
        with pytest.raises(DoseParseError, match=f"unreadable number '{text}' for ctdivol_mgy"):
            parse_dose_object(data.replace(b"7.25", f"{text} ".encode()))


# --- Predecessor Documents Sequence (0040,A360) ---------------------------------------------------------------------
def test_predecessors_at_any_nesting() -> None:
    ds = synthetic.build_ct_rdsr(as_dataset=True)
    synthetic.add_predecessors(ds, [
        ("1.2.3", [("1.2.3.1", ["1.2.3.1.1", "1.2.3.1.2"]), ("1.2.3.2", ["1.2.3.2.1"])]),
        ("1.2.4", [("1.2.4.1", ["1.2.4.1.1", "1.2.3.1.1"])]),  # the same document named twice: once
    ])
    report = parse_dose_object(synthetic.to_bytes(ds))
    assert report.predecessor_sop_uids == ("1.2.3.1.1", "1.2.3.1.2", "1.2.3.2.1", "1.2.4.1.1")
    assert parse_dose_object(synthetic.build_ct_rdsr()).predecessor_sop_uids == ()


@pytest.mark.parametrize("implicit", [False, True])
def test_predecessors_of_projection_and_radiopharmaceutical_reports(implicit: bool) -> None:
    ds = synthetic.build_projection_rdsr(implicit=implicit, as_dataset=True)
    synthetic.add_predecessors(ds, [("1.2.3", [("1.2.3.1", ["1.2.3.1.9"])])])
    assert parse_dose_object(synthetic.to_bytes(ds)).predecessor_sop_uids == ("1.2.3.1.9",)
    ds = synthetic.build_rrdsr(as_dataset=True)
    synthetic.add_predecessors(ds, [("1.2.3", [("1.2.3.1", ["1.2.3.1.8"])])])
    assert parse_dose_object(synthetic.to_bytes(ds)).predecessor_sop_uids == ("1.2.3.1.8",)


# --- tomosynthesis (TID 10003 events with several projections) ----------------------------------------------------
def _tomo(event: dict, snomed: str = "SRT"):
    event = {"event_type": "rotational", "agd_mgy": 1.09, **event}
    return parse_dose_object(synthetic.build_projection_rdsr(snomed=snomed, mammography=True, events=[event],
                                                             totals={}, agd_totals={"right": 1.09})).events[0]


def test_tomosynthesis_exposure_is_the_sum_of_its_projections() -> None:
    ev = _tomo({"exposures_uas": [2010, 2740, 2740, 2730]})
    assert ev.quantities["exposure_mas"].value == pytest.approx(10.22)
    assert ev.quantities["exposure_mas"].raw_value == "10220" and ev.quantities["exposure_mas"].raw_unit == "uA.s"
    assert ev.attributes["exposure_mas_projections"] == pytest.approx([2.01, 2.74, 2.74, 2.73])
    nested = _tomo({"projections_uas": [1000, 1500, 500]})  # one container per projection
    assert nested.quantities["exposure_mas"].value == pytest.approx(3.0)
    assert nested.attributes["exposure_mas_projections"] == pytest.approx([1.0, 1.5, 0.5])
    single = _tomo({"exposure_uas": 125000})  # a 2D exposure: one value, no per-projection list
    assert single.quantities["exposure_mas"].value == pytest.approx(125)
    assert single.quantities["exposure_mas"].raw_value == "125000"
    assert "exposure_mas_projections" not in single.attributes


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")
def test_tomosynthesis_exposure_in_mas_and_a_non_finite_projection() -> None:
    ev = _tomo({"exposures_uas": ["2.5", "2.5"], "exposure_unit": "mA.s"})
    assert ev.quantities["exposure_mas"].value == 5.0 and ev.quantities["exposure_mas"].raw_unit == "mA.s"
    bad = _tomo({"exposures_uas": [1000, "NaN"]})
    assert math.isnan(bad.quantities["exposure_mas"].value)  # passed on for the registry to record as invalid


@pytest.mark.parametrize("snomed", ["SRT", "SCT"])
@pytest.mark.parametrize("side", ["left", "right", "both"])
def test_laterality_as_modifier_of_target_region(snomed: str, side: str) -> None:
    ev = _tomo({"target_laterality": side}, snomed)
    assert ev.attributes["laterality"] == side
    assert ev.target_region.value == "76752008"  # Breast


@pytest.mark.parametrize("concept", [("DCM", "G-C171"), ("SRT", "G-C171"), ("SCT", "272741003")])
def test_laterality_concept_spellings(concept: tuple[str, str]) -> None:
    assert _tomo({"target_laterality": "left", "laterality_concept": concept}).attributes["laterality"] == "left"


def test_laterality_anatomical_structure_wins_over_target_region() -> None:
    ev = _tomo({"laterality": "right", "target_laterality": "right"})
    assert ev.attributes["laterality"] == "right"
    data = synthetic.build_projection_rdsr(mammography=True, totals={}, events=[
        {"event_type": "rotational", "agd_mgy": 1, "laterality": "right", "target_laterality": "left"}])
    report = parse_dose_object(data)
    assert report.events[0].attributes["laterality"] == "right"
    assert any("more than one laterality" in w for w in report.warnings)


def test_reason_for_the_requested_procedure_is_read_from_the_request():
    import io

    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    def rdsr():
        return pydicom.dcmread(io.BytesIO(synthetic.build_ct_rdsr()))

    ds = rdsr()
    request = Dataset()
    request.RequestedProcedureDescription = "CT Thorax"
    request.ReasonForTheRequestedProcedure = "V.a. Lungenembolie"
    ds.RequestAttributesSequence = Sequence([request])
    report = parse_dose_object(synthetic.to_bytes(ds))
    assert report.study.reason_for_study == "V.a. Lungenembolie"
    assert report.study.requested_procedure_description == "CT Thorax"
    coded = rdsr()
    reason = Dataset()
    reason.CodeValue, reason.CodingSchemeDesignator, reason.CodeMeaning = "59282003", "SCT", "Pulmonary embolism"
    coded.ReasonForRequestedProcedureCodeSequence = Sequence([reason])
    assert parse_dose_object(synthetic.to_bytes(coded)).study.reason_for_study == "Pulmonary embolism"
    assert parse_dose_object(synthetic.build_ct_rdsr()).study.reason_for_study == ""


@pytest.mark.parametrize("snomed", ["SRT", "SCT"])
def test_ssde_patient_size_items_read_by_concept_code(snomed: str) -> None:
    # TID 10013 SSDE item (DCM 113930) with its size items: 113931 lateral, 113932 AP, 113933 derived effective
    # diameter; each unit as sent (cm or mm) becomes mm
    data = synthetic.build_ct_rdsr(snomed=snomed, events=[{"ctdivol": 10.0, "dlp": 400.0, "ssde": {
        "value": 12.5, "method": "113936", "lateral": ("34", "cm"), "ap": ("260", "mm"), "deff": ("29.6", "cm")}}])
    ev = parse_dose_object(data).events[0]
    q = ev.quantities
    assert q["measured_lateral_dimension_mm"].value == pytest.approx(340.0)
    assert q["measured_lateral_dimension_mm"].raw_value == "34" and q["measured_lateral_dimension_mm"].raw_unit == "cm"
    assert q["measured_ap_dimension_mm"].value == pytest.approx(260.0)
    assert q["derived_effective_diameter_mm"].value == pytest.approx(296.0)
    assert q["ssde_mgy"].value == 12.5 and "water_equivalent_diameter_mm" not in q
    method = [c for c in ev.attributes["ssde_content"] if "113936" in str(c)]
    assert len(method) == 1 and len(ev.attributes["ssde_content"]) == 1  # the method; the sizes are typed


def test_ssde_size_item_with_an_unknown_unit_is_kept_as_content() -> None:
    data = synthetic.build_ct_rdsr(events=[{"ctdivol": 10.0, "dlp": 400.0, "ssde": {
        "method": "113934", "lateral": ("34", "inch"), "dw": ("250", "mm")}}])
    report = parse_dose_object(data)
    ev = report.events[0]
    assert "measured_lateral_dimension_mm" not in ev.quantities  # not a typed dose quantity: kept, not refused
    assert ev.quantities["water_equivalent_diameter_mm"].value == 250.0
    assert any("113931" in str(c) for c in ev.attributes["ssde_content"])
    assert any("unknown unit 'inch' for measured_lateral_dimension_mm" in w for w in report.warnings)
