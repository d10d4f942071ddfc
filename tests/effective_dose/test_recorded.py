"""Effective dose and SSDE as the registry records them: corpus files through import_dose, synthetic objects through
the recording service; hand-computed values (Lee et al. 2012 Table XII, ICRP 103; AAPM Report 204/220)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import math

import pytest
from django.core.management import call_command

from dicomrx.parse import parse_dose_object
from dosereg.registry.models import IrradiationEvent, SiteSettings, Study
from dosereg.registry.selectors import study_export_dict
from dosereg.registry.services import effective_dose
from dosereg.registry.services.recording import record_report, studies_update_effective_dose
from tests.dicomrx import synthetic
from tests.factories import PatientInfoFactory
from tests.ingest.factories import ct_event, ct_report, q, received

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_weighting():
    effective_dose.site_weighting_changed()
    yield
    effective_dose.site_weighting_changed()


def run_import(*paths) -> None:
    call_command("import_dose", *[str(p) for p in paths], stdout=io.StringIO(), stderr=io.StringIO())


def test_ct_colonography_icrp103_then_icrp60_by_site_setting(corpus):
    run_import(corpus / "ct" / "CT-ESR-GE_Optima.dcm")
    study = Study.objects.get()
    assert study.effective_dose_msv == pytest.approx(415.82 * 0.0179, rel=1e-6)  # 7.44 mSv
    assert study.effective_dose_coverage == 1.0
    assert study.effective_dose_method.startswith("ICRP 103: CT: DLP x k, NCI/Lee 2012")
    totals = study_export_dict(study, events=False)["totals"]
    assert totals["effective_dose_coverage"] == 1.0 and totals["effective_dose_detail"]["partial"] is False
    site = SiteSettings.load()
    site.effective_dose_weighting = "ICRP 60"
    site.save()
    effective_dose.site_weighting_changed()
    assert studies_update_effective_dose([study.pk], every_event=True) == 1
    study.refresh_from_db()
    assert study.effective_dose_msv == pytest.approx(415.82 * 0.015, rel=1e-6)  # 6.24 mSv, never mixed
    assert study.effective_dose_method.startswith("ICRP 60: CT: DLP x k, AAPM 96/Shrimpton")


def test_flash_qa_heart_acquisitions_make_it_partial(corpus):
    run_import(corpus / "ct" / "CT-RDSR-Siemens_Flash-QA-DS.dcm")
    study = Study.objects.get()
    assert study.effective_dose_msv == pytest.approx(29.67 * 0.0179, rel=1e-4)
    assert study.effective_dose_coverage == pytest.approx(29.67 / 1590.0, rel=1e-4)
    detail = study.effective_dose_detail
    assert detail["partial"] is True and len(detail["left_out"]) == 8
    assert all(x["reason"] == "region_unknown" and "Heart" in x["what"] for x in detail["left_out"])
    assert "partial (2 % covered)" in study.effective_dose_method
    heart = IrradiationEvent.objects.filter(study=study, target_region="Heart").first()
    assert heart.effective_dose_estimate_msv is None and heart.effective_dose_method.startswith("not estimated")


def test_multi3_chest_and_rrdsr_alone(corpus):
    run_import(corpus / "ct" / "CT-RDSR-Siemens-Multi-3.dcm")
    study = Study.objects.get()
    assert study.effective_dose_msv == pytest.approx(236.09 * 0.021, rel=1e-6)
    assert study.effective_dose_coverage == 1.0
    Study.objects.all().delete()


def test_nm_rrdsr_value_named_with_its_basis(corpus):
    run_import(corpus / "nm" / "NM-PetIm-Siemens.dcm", corpus / "nm" / "NM-RRDSR-Siemens.dcm")
    study = Study.objects.get()
    assert study.effective_dose_msv == pytest.approx(7.486)
    assert study.effective_dose_method == "ICRP 60: NM: as reported in the RRDSR (ICRP Publication 128)"
    assert study.effective_dose_coverage == 1.0


def test_projection_and_mammography_have_no_estimate_and_say_why(corpus):
    run_import(corpus / "dx" / "DX-Im-Carestream_DR7500-1.dcm")
    dx = Study.objects.get()
    assert dx.effective_dose_msv is None and dx.effective_dose_coverage == 0.0
    assert dx.effective_dose_detail["left_out"][0]["reason"] == "no_kap_coefficient"


def _ct_with(quantities: dict, *, region=("416775004", "Chest, Abdomen and Pelvis"), phantom="body", patient=None):
    ev = ct_event("1.2.3.4.5.1", 300.0, 10.0, phantom=phantom, region=region)
    ev = dataclasses.replace(ev, quantities={**ev.quantities, **quantities})
    report = ct_report("1.2.3.4.5", [ev], total=300.0, patient=patient)
    record_report(report, received(report))
    return IrradiationEvent.objects.get(irradiation_event_uid="1.2.3.4.5.1")


def test_ssde_from_water_equivalent_diameter_keeps_the_scanners_own():
    row = _ct_with({"water_equivalent_diameter_mm": q(250.0, unit="mm"), "ssde_mgy": q(14.0, unit="mGy")})
    assert row.ssde_method == "113988"
    assert row.ssde_mgy == pytest.approx(10.0 * 3.704369 * math.exp(-0.03671937 * 25.0))  # 14.79 mGy
    assert row.ssde_reported_mgy == 14.0
    exported = study_export_dict(row.study)["events"][0]
    assert exported["ssde_method"] == "113988" and exported["ssde_reported_mgy"] == 14.0


def test_ssde_refused_without_size_or_for_head():
    row = _ct_with({"ssde_mgy": q(9.0, unit="mGy")})  # an adult (born 1970): beyond the AAPM 204 age table
    assert row.ssde_mgy is None and row.ssde_method == "" and row.ssde_reported_mgy == 9.0
    Study.objects.all().delete()
    head = _ct_with({"water_equivalent_diameter_mm": q(160.0, unit="mm")}, region=("69536005", "Head"),
                    phantom="head")
    assert head.ssde_mgy is None  # AAPM Report 293 head constants are not shipped


def test_ssde_of_a_child_without_size_from_the_age_table():
    # born 2017-09-01, examined 2024-03-01: 6.5 years, between 6 y (19.0 cm) and 7 y (19.6 cm) of the AAPM 204 age
    # table -> about 19.3 cm; 32 cm phantom, CTDIvol 10 mGy: SSDE = 10 x 3.704369 exp(-0.03671937 x 19.3) = 18.2 mGy
    child = PatientInfoFactory(patient_id="C1", birth_date=dt.date(2017, 9, 1))
    row = _ct_with({}, patient=child)
    age = row.study.age_years
    assert 6.4 < age < 6.6
    d = 19.0 + (19.6 - 19.0) * (age - 6.0)
    assert row.ssde_method == "113937"
    assert row.ssde_mgy == pytest.approx(10.0 * 3.704369 * math.exp(-0.03671937 * d))
    assert row.ssde_mgy == pytest.approx(18.2, abs=0.1)
    assert study_export_dict(row.study)["events"][0]["ssde_method"] == "113937"


def test_batch_step_estimates_only_the_acquisitions_that_take_the_mapped_exams_region():
    """``studies_update_effective_dose`` (the post-commit step) finds in SQL the CT events without a Target Region
    the factors know, of studies mapped to an exam with a body region; the others are left as recorded."""
    from dosereg.registry.models import StandardExam

    exam = StandardExam.objects.create(code="ct-chest-x", name="CT chest", modality_type="CT", body_region="chest")
    report = ct_report("1.2.3.4242", [ct_event("1.2.3.4242.1", 400.0, region=None),
                                      ct_event("1.2.3.4242.2", 100.0)])
    record_report(report, received(report))
    other = ct_report("1.2.3.4243", [ct_event("1.2.3.4243.1", 300.0, region=None)], sop="1.2.3.4243.9")
    record_report(other, received(other))
    mapped, unmapped = Study.objects.get(study_instance_uid="1.2.3.4242"), Study.objects.get(
        study_instance_uid="1.2.3.4243")
    bare = IrradiationEvent.objects.get(irradiation_event_uid="1.2.3.4242.1")
    chest = IrradiationEvent.objects.get(irradiation_event_uid="1.2.3.4242.2")
    assert bare.effective_dose_estimate_msv is None and chest.effective_dose_estimate_msv is not None
    Study.objects.filter(pk=mapped.pk).update(standard_exam=exam)
    assert studies_update_effective_dose([mapped.pk, unmapped.pk]) == 1  # the unmapped study has no exam region
    bare.refresh_from_db()
    assert bare.effective_dose_estimate_msv == pytest.approx(4 * chest.effective_dose_estimate_msv)  # the same k
    assert chest.effective_dose_method == IrradiationEvent.objects.get(pk=chest.pk).effective_dose_method
    mapped.refresh_from_db()
    assert mapped.effective_dose_msv == pytest.approx(bare.effective_dose_estimate_msv
                                                      + chest.effective_dose_estimate_msv, rel=1e-9)
    assert IrradiationEvent.objects.get(irradiation_event_uid="1.2.3.4243.1").effective_dose_estimate_msv is None


def test_ssde_from_the_patient_dimensions_an_rdsr_states():
    """A synthetic RDSR whose SSDE item (TID 10013) carries Measured Lateral / AP Dimension (DCM 113931 / 113932):
    parsed to mm, recorded, divided by 10 for the AAPM 204 tables, labelled with the CID 10023 code of the path."""
    data = synthetic.build_ct_rdsr(study_uid="1.2.3.77", events=[
        # lateral 340 mm + AP 26 cm = 60 cm -> 29.6 cm (AAPM 204 Table 1A); 32 cm phantom:
        # SSDE = 10 x 3.704369 exp(-0.03671937 x 29.6) = 10 x 1.2493 = 12.49 mGy (the scanner said 12.0)
        {"uid": "1.2.3.77.1", "ctdivol": 10.0, "dlp": 400.0, "ssde": {
            "value": 12.0, "method": "113936", "lateral": ("340", "mm"), "ap": ("26", "cm")}},
        # lateral only, 305 mm -> 30.5 cm, halfway between 30 cm (24.7) and 31 cm (25.6) of Table 1B: 25.15 cm;
        # SSDE = 10 x 3.704369 exp(-0.03671937 x 25.15) = 10 x 1.4711 = 14.71 mGy
        {"uid": "1.2.3.77.2", "ctdivol": 10.0, "dlp": 400.0, "ssde": {"method": "113934", "lateral": ("305", "mm")}},
    ])
    report = parse_dose_object(data)
    record_report(report, received(report))
    both = IrradiationEvent.objects.get(irradiation_event_uid="1.2.3.77.1")
    assert both.attributes["quantities"]["measured_lateral_dimension_mm"] == pytest.approx(340.0)
    assert both.attributes["quantities"]["measured_ap_dimension_mm"] == pytest.approx(260.0)
    assert effective_dose.event_dimensions_cm(both) == (pytest.approx(34.0), pytest.approx(26.0))
    assert both.ssde_method == "113936" and both.ssde_reported_mgy == 12.0
    assert both.ssde_mgy == pytest.approx(10.0 * 3.704369 * math.exp(-0.03671937 * 29.6))
    assert both.ssde_mgy == pytest.approx(12.49, abs=0.01)
    lateral = IrradiationEvent.objects.get(irradiation_event_uid="1.2.3.77.2")
    assert lateral.ssde_method == "113934"
    assert lateral.ssde_mgy == pytest.approx(10.0 * 3.704369 * math.exp(-0.03671937 * 25.15))
    assert lateral.ssde_mgy == pytest.approx(14.71, abs=0.01)
    # the post-commit step (rows loaded with .only()) reads the same dimensions and gives the same figures
    assert studies_update_effective_dose([both.study_id], every_event=True) == 1
    both.refresh_from_db()
    assert both.ssde_method == "113936" and both.ssde_mgy == pytest.approx(12.49, abs=0.01)


def test_dimensions_path_in_the_16cm_phantom_and_no_head_ssde():
    dims = {"measured_lateral_dimension_mm": q(150.0, unit="mm"), "measured_ap_dimension_mm": q(190.0, unit="mm")}
    # a child's body scan reported in the 16 cm phantom: 15 + 19 = 34 cm -> 16.7 cm (AAPM 204 Table 2A);
    # SSDE = 20 x 1.874799 exp(-0.03871313 x 16.7) = 20 x 0.9822 = 19.64 mGy
    ev = ct_event("1.2.3.79.1", 300.0, 20.0, phantom="head", region=("416775004", "Chest, Abdomen and Pelvis"))
    ev = dataclasses.replace(ev, quantities={**ev.quantities, **dims})
    report = ct_report("1.2.3.79", [ev], total=300.0)
    record_report(report, received(report))
    body16 = IrradiationEvent.objects.get(irradiation_event_uid="1.2.3.79.1")
    assert body16.ssde_method == "113936"
    assert body16.ssde_mgy == pytest.approx(20.0 * 1.874799 * math.exp(-0.03871313 * 16.7))
    assert body16.ssde_mgy == pytest.approx(19.64, abs=0.01)
    Study.objects.all().delete()
    head = _ct_with(dims, region=("69536005", "Head"), phantom="head")
    assert head.ssde_mgy is None and head.ssde_method == ""  # dimensions do not lift the head refusal (AAPM 293)
    assert effective_dose.event_ssde(head, age=None).reason == "head_scan"
