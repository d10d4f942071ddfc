"""Effective dose (ICRP 103 by default): factor tables from cited data, acquisitions and study composition with
coverage, hand-computed from the corpus's values (reference-data.md §4.1; Lee et al. 2012 Table XII)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dosereg.core import effective_dose as ed

DATA = Path(__file__).resolve().parents[2] / "dosereg" / "registry" / "data"


def load(name: str) -> ed.FactorSet:
    return ed.FactorSet.from_dict(json.loads((DATA / name).read_text()))


ICRP103 = load("k_factors_icrp103.json")
ICRP60 = load("k_factors.json")


def test_tables_load_with_weighting_and_sources():
    assert ICRP103.weighting == "ICRP 103" and ICRP60.weighting == "ICRP 60"
    k = ICRP103.factors["abdomen_pelvis"]["adult"]
    assert k.value == 0.0179 and "Lee C et al., Med Phys 2012" in k.source and k.verify is False
    neck = ICRP103.factors["neck"]["adult"]
    assert neck.value == 0.0051 and neck.verify is True  # single secondary transcription: shown as verify
    assert ICRP60.factors["chest"]["adult"].value == 0.014
    for fs in (ICRP103, ICRP60):
        assert fs.sources and all(fs.sources)
        for bands in fs.factors.values():
            assert all(k.source for k in bands.values())


def test_ct_colonography_icrp103_vs_icrp60():
    # CT-ESR-GE_Optima: two non-localizer acquisitions, Target Region Abdomen (SCT 113345001), body phantom
    dlps = (155.97, 259.85)
    e103 = [ed.ct_acquisition(dlp_mgycm=d, region=ed.region_for("113345001"), age_years=None, phantom="body",
                              factors=ICRP103) for d in dlps]
    e60 = [ed.ct_acquisition(dlp_mgycm=d, region=ed.region_for("113345001"), age_years=None, phantom="body",
                             factors=ICRP60) for d in dlps]
    assert sum(e.value_msv for e in e103) == pytest.approx(415.82 * 0.0179)  # 7.44 mSv
    assert sum(e.value_msv for e in e60) == pytest.approx(415.82 * 0.015)  # 6.24 mSv
    assert "NCI/Lee 2012" in e103[0].method and "k=0.0179" in e103[0].method


def test_multi3_chest_with_topogram():
    # CT-RDSR-Siemens-Multi-3: topogram 7.46, 4DCT 69.81 and 158.82 mGy·cm, Chest, age 60, body phantom
    acqs = []
    for dlp in (7.46, 69.81, 158.82):
        e = ed.ct_acquisition(dlp_mgycm=dlp, region="chest", age_years=60, phantom="body", factors=ICRP103)
        acqs.append(ed.CtAcquisition(dlp, e.value_msv, reason=e.reason, method=e.method))
    study = ed.study_estimate(factors=ICRP103, ct=acqs)
    assert study.value_msv == pytest.approx(236.09 * 0.021)  # 4.96 mSv
    assert study.coverage == pytest.approx(1.0) and not study.partial
    assert study.method.startswith("ICRP 103: CT: DLP x k, NCI/Lee 2012")


def test_uncovered_region_lowers_coverage_flash_qa():
    # CT-RDSR-Siemens_Flash-QA-DS: one Abdomen acquisition (29.67) and eight Heart acquisitions (1 560.33 mGy·cm);
    # Heart (SCT 80891009) is not a region of the factor set
    heart = (84.28, 21.18, 129.89, 50.58, 24.05, 65.68, 815.33, 369.34)
    acqs = []
    for dlp, code in [(29.67, "113345001"), *((d, "80891009") for d in heart)]:
        e = ed.ct_acquisition(dlp_mgycm=dlp, region=ed.region_for(code), age_years=100, phantom="body",
                              factors=ICRP103)
        acqs.append(ed.CtAcquisition(dlp, e.value_msv, label="Heart" if code == "80891009" else "Abdomen",
                                     reason=e.reason, method=e.method))
    study = ed.study_estimate(factors=ICRP103, ct=acqs)
    assert study.value_msv == pytest.approx(29.67 * 0.0179)
    assert study.coverage == pytest.approx(29.67 / 1590.0)
    assert study.partial and "partial (2 % covered)" in study.method
    assert len(study.left_out) == 8 and {x["reason"] for x in study.left_out} == {ed.REGION_UNKNOWN}
    assert sum(x["dlp_mgycm"] for x in study.left_out) == pytest.approx(1590.0 - 29.67)


def test_pet_ct_parts_added_only_on_one_basis():
    # NM-RRDSR-Siemens: 7.486 mSv after ICRP Publication 128 (ICRP 60 weighting); a CT part of 668 mGy·cm trunk
    nm = [ed.NmAdministration(7.486, "ICRP Publication 128", "FDG")]
    for factors, k in ((ICRP103, 0.018), (ICRP60, 0.015)):
        e = ed.ct_acquisition(dlp_mgycm=668.0, region="trunk", age_years=63, phantom="body", factors=factors)
        study = ed.study_estimate(factors=factors, ct=[ed.CtAcquisition(668.0, e.value_msv, method=e.method)],
                                  nm=nm)
        ct_part, nm_part = study.parts
        assert ct_part.value_msv == pytest.approx(668.0 * k)
        assert nm_part.value_msv == pytest.approx(7.486)  # each part shown
        if factors is ICRP60:  # same basis: added, complete
            assert study.value_msv == pytest.approx(668.0 * k + 7.486) and study.coverage == 1.0
            assert "NM: as reported in the RRDSR (ICRP Publication 128)" in study.method
        else:  # ICRP 60 NM value is not added to an ICRP 103 figure: shown beside it, estimate partial
            assert study.value_msv == pytest.approx(668.0 * k) and study.coverage == 0.0
            assert study.left_out[0]["reason"] == ed.OTHER_BASIS and study.left_out[0]["weighting"] == "ICRP 60"


def test_age_band_phantom_and_reasons():
    # 7-year-old chest: band 5y (nearest tabulated age at or below), NCI k = 0.024; paediatric phantom not stated
    e = ed.ct_acquisition(dlp_mgycm=100.0, region="chest", age_years=7, phantom="head", factors=ICRP103)
    assert e.band == "5y" and e.value_msv == pytest.approx(2.4)
    assert ed.ct_acquisition(dlp_mgycm=100.0, region="neck", age_years=7, phantom="head",
                             factors=ICRP103).reason == ed.NO_FACTOR  # neck: adult factor only
    assert ed.ct_acquisition(dlp_mgycm=100.0, region="chest", age_years=40, phantom="head",
                             factors=ICRP103).reason == ed.PHANTOM_MISMATCH
    assert ed.ct_acquisition(dlp_mgycm=100.0, region="chest", age_years=40, phantom="",
                             factors=ICRP103).reason == ed.PHANTOM_UNKNOWN
    assert ed.ct_acquisition(dlp_mgycm=100.0, region=None, age_years=40, phantom="body",
                             factors=ICRP103).method.startswith("not estimated: body region")


def test_projection_and_mammography_say_why_there_is_none():
    dx = ed.study_estimate(factors=ICRP103, kap_gycm2=0.12)
    assert dx.value_msv is None and dx.coverage == 0.0 and dx.left_out[0]["reason"] == ed.NO_KAP_COEFFICIENT
    mg = ed.study_estimate(factors=ICRP103, mammography=True)
    assert mg.value_msv is None and mg.coverage is None and mg.left_out[0]["reason"] == ed.MAMMOGRAPHY
    nm_only = ed.study_estimate(factors=ICRP103, activity_mbq=221.6)  # PET image header, no RRDSR
    assert nm_only.value_msv is None and nm_only.left_out[0]["reason"] == ed.NO_NM_VALUE


def test_nm_only_study_is_given_on_the_rrdsr_basis_and_named():
    # NM-RRDSR-Siemens alone: nothing on the site's ICRP 103 basis; the figure is the RRDSR's, named ICRP 60
    study = ed.study_estimate(factors=ICRP103, nm=[ed.NmAdministration(7.486, "ICRP Publication 128")])
    assert study.value_msv == pytest.approx(7.486) and study.coverage == 1.0 and study.weighting == "ICRP 60"
    assert study.method == "ICRP 60: NM: as reported in the RRDSR (ICRP Publication 128)"
    unknown = ed.study_estimate(factors=ICRP103, nm=[ed.NmAdministration(3.0, "")])
    assert unknown.value_msv == 3.0 and unknown.method.startswith("weighting not stated: NM")


@pytest.mark.parametrize(("authority", "basis"), [("ICRP Publication 128", "ICRP 60"), ("ICRP 106", "ICRP 60"),
                                                  ("", None), ("vendor table", None)])
def test_weighting_of_authority(authority, basis):
    assert ed.weighting_of_authority(authority) == basis


def test_population_tally_counts_complete_only_unless_chosen():
    t = ed.Tally()
    for value, cov, sid in ((1.0, 1.0, 1), (2.0, 0.5, 2), (None, None, 3), (4.0, None, 4)):
        t.add(value, cov, sid)
    assert (t.total_msv, t.complete, t.partial, t.skipped) == (5.0, 2, 1, [2])
    t2 = ed.Tally(include_partial=True)
    t2.add(2.0, 0.5, 2)
    assert (t2.total_msv, t2.partial_counted) == (2.0, 1)


# --- cited coefficients: NM activity x e(radiopharmaceutical), KAP x coefficient(examination) ---------------------
def table(name: str) -> ed.CoefficientTable:
    return ed.CoefficientTable.from_dict(json.loads((DATA / name).read_text()))


NM = table("nm_coefficients.json")
KAP = table("kap_coefficients.json")


def test_coefficient_tables_load_with_their_sources_and_say_what_is_missing():
    fdg103 = NM.lookup("ICRP 103", codes=["SCT:35321007"])
    assert fdg103.value == 0.0171 and fdg103.weighting == "ICRP 103" and fdg103.verify is False
    assert "Andersson" in fdg103.source and "s40658-015-0121-4" in fdg103.source and "(E/A0)3" in fdg103.source
    fdg60 = NM.lookup("ICRP 60", codes=["SCT:35321007"])
    assert fdg60.value == 0.019 and fdg60.verify is True and "ICRP Publication 106" in fdg60.source
    assert NM.unit == "mSv/MBq" and "99mTc" in NM.note  # bone agents: said to be missing, not guessed
    pci = KAP.lookup("ICRP 103", codes=["xa-pci"])
    assert pci.value == 0.24 and pci.verify is True and "10.1088/1361-6560/ac5670" in pci.source
    assert KAP.lookup("ICRP 60", codes=["xa-pci"]) is None  # an ICRP 103 value never serves another basis
    assert KAP.lookup("ICRP 103", codes=["dx-chest"]) is None and "HPA-CRCE-028" in KAP.note  # said to be missing


def test_projection_part_kap_times_coefficient_age_and_basis():
    est = ed.study_estimate(factors=ICRP103, kap_gycm2=40.0, kap_table=KAP, exam="PCI chest", exam_codes=["xa-pci"],
                            age_years=64)
    assert est.value_msv == pytest.approx(40.0 * 0.24) and est.coverage == 1.0 and est.left_out == ()
    assert est.method == "ICRP 103: KAP x coefficient, Brambilla 2022 (verify): " + (
        "cardiac interventional fluoroscopy procedure (adult) 0.24 mSv/(Gy*cm2)")
    child = ed.study_estimate(factors=ICRP103, kap_gycm2=40.0, kap_table=KAP, exam_codes=["xa-pci"], age_years=17.9)
    assert child.value_msv is None and child.left_out[0]["reason"] == ed.KAP_AGE
    icrp60 = ed.study_estimate(factors=ICRP60, kap_gycm2=40.0, kap_table=KAP, exam_codes=["xa-pci"], age_years=64)
    assert icrp60.value_msv is None and icrp60.left_out[0]["reason"] == ed.KAP_OTHER_BASIS
    chest = ed.study_estimate(factors=ICRP103, kap_gycm2=0.1, kap_table=KAP, exam_codes=["dx-chest"], age_years=64)
    assert chest.value_msv is None and chest.left_out[0]["reason"] == ed.NO_KAP_COEFFICIENT


def test_header_text_matches_by_word_not_by_substring():
    assert NM.lookup("ICRP 103", text="FDG -- fluorodeoxyglucose").value == 0.0171  # NM-PetIm-GE header
    assert NM.lookup("ICRP 103", text="Fluorodeoxyglucose").value == 0.0171  # NM-PetIm-Siemens header
    assert NM.lookup("ICRP 103", text="DPD") is None  # NM-NmIm-Siemens bone scan: no cited coefficient
    assert NM.lookup("ICRP 103", text="FDGX") is None


def test_nm_from_activity_times_cited_coefficient_on_each_basis():
    # NM-PetIm-GE: FDG, 221 596 288 Bq in the PET header = 221.596288 MBq, no RRDSR
    pet = [ed.NmAdministration(None, label="FDG", activity_mbq=221.596288, agent_text="FDG -- fluorodeoxyglucose",
                               from_header=True)]
    for factors, e_per_a in ((ICRP103, 0.0171), (ICRP60, 0.019)):
        study = ed.study_estimate(factors=factors, nm=pet, nm_table=NM)
        assert study.value_msv == pytest.approx(221.596288 * e_per_a) and study.coverage == 1.0
        assert study.weighting == factors.weighting
    assert "activity x coefficient, Andersson 2014/2015: 18F FDG 0.0171 mSv/MBq" in ed.study_estimate(
        factors=ICRP103, nm=pet, nm_table=NM).method


def test_nm_without_cited_coefficient_gives_no_value_and_says_why():
    # NM-NmIm-Siemens: Tc-99m DPD, 764 MBq
    bone = ed.study_estimate(factors=ICRP103, nm_table=NM, nm=[
        ed.NmAdministration(None, label="DPD", activity_mbq=764.0, agent_text="DPD", from_header=True)])
    assert bone.value_msv is None and bone.coverage == 0.0 and bone.method == "ICRP 103: no estimate"
    assert bone.left_out[0]["reason"] == ed.NO_NM_COEFFICIENT and bone.left_out[0]["activity_mbq"] == 764.0


def test_rrdsr_is_the_source_over_the_header_copy_of_the_same_injection():
    # NM-PetIm-Siemens (394 MBq header) + NM-RRDSR-Siemens (394 MBq, 7.486 mSv, ICRP 128): the header is not counted
    nm = [ed.NmAdministration(None, label="FDG", activity_mbq=394.0, agent_text="Fluorodeoxyglucose", from_header=True),
          ed.NmAdministration(7.486, "ICRP Publication 128", "FDG", activity_mbq=394.0, agent_codes=("SCT:35321007",))]
    study = ed.study_estimate(factors=ICRP60, nm=nm, nm_table=NM)
    assert study.value_msv == pytest.approx(7.486) and study.coverage == 1.0
    assert 394.0 * 0.019 == pytest.approx(7.486)  # the ICRP 60 coefficient reproduces the RRDSR's own value


def test_kap_times_examination_coefficient_with_coverage_and_age():
    synthetic = ed.CoefficientTable.from_dict({"kind": "KAP", "unit": "mSv/(Gy*cm2)", "sets": [{
        "set": "test set", "short": "test", "weighting": "ICRP 103", "source": "test source", "verify": True,
        "min_age_years": 16, "values": [{"name": "chest PA", "exam_codes": ["dx-chest-pa"], "names": ["chest"],
                                         "value": 0.1}]}]})
    # DX-Im-Carestream_DR7500-1 + -2: study KAP 2.117 Gy·cm²
    dx = ed.study_estimate(factors=ICRP103, kap_gycm2=2.117, kap_table=synthetic, exam="Chest PA",
                           exam_codes=["dx-chest-pa"], age_years=40)
    assert dx.value_msv == pytest.approx(2.117 * 0.1) and dx.coverage == 1.0
    assert dx.method == "ICRP 103: KAP x coefficient, test (verify): chest PA 0.1 mSv/(Gy*cm2)"
    child = ed.study_estimate(factors=ICRP103, kap_gycm2=2.117, kap_table=synthetic, exam="Chest PA", age_years=8)
    assert child.value_msv is None and child.left_out[0]["reason"] == ed.KAP_AGE
    knee = ed.study_estimate(factors=ICRP103, kap_gycm2=0.05, kap_table=synthetic, exam="Knee")
    assert knee.value_msv is None and knee.coverage == 0.0 and knee.left_out[0]["reason"] == ed.NO_KAP_COEFFICIENT
    shipped = ed.study_estimate(factors=ICRP103, kap_gycm2=2.117, kap_table=KAP, exam="Chest PA")
    assert shipped.value_msv is None and shipped.parts[0].method == "KAP: no cited coefficient"
