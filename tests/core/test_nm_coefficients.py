"""NM coefficients (mSv/MBq) as shipped in dosereg/registry/data/nm_coefficients.json: every value loads with its
source and basis; administered activity x coefficient by hand, per weighting basis, for an agent given by its code
and by the image header's text; a value on one basis never makes a figure on the other.

Hand values: Andersson et al. 2016 (Radiat Prot Dosimetry 169:253, abstract; ICRP 103): 18F-fluoride 9.0E-03,
18F-choline 2.0E-02 mSv/MBq; ICRP 80 (ICRP 60) via secondary tables: 99mTc-MDP 0.0057, 123I-MIBG 1.30E-02 mSv/MBq;
Andersson et al. 2014, erratum 2015, Table 1: (E/A0)3 (ICRP 103) 11C methionine 5.11E-03, 15O water 9.33E-04,
18F L-dopa 1.57E-02, 11C acetate 3.65E-03 mSv/MBq; (E/A0)1 (ICRP 106, ICRP 60) 11C methionine 8.4E-03, 18F L-dopa
2.5E-02, 67Ga citrate 1.0E-01 mSv/MBq."""

from __future__ import annotations

import json

import pytest

from dosereg.core import effective_dose as ed
from dosereg.registry.services import effective_dose as service

RAW = json.loads(service.NM_FILE.read_text(encoding="utf-8"))
TABLE = ed.CoefficientTable.from_dict(RAW)
NAF, MDP, MIBG = "SCT:129501009", "SCT:96390006", "SCT:395787009"
MET, GA67 = "SCT:129510001", "SCT:73065000"  # CID 4021 Methionine C^11^, CID 25 Gallium^67^ citrate


def test_every_shipped_coefficient_loads_with_its_source_and_basis():
    shipped = [(s, v) for s in RAW["sets"] for v in s["values"]]
    assert len(TABLE.entries) == len(shipped) >= 8
    for (s, v), (coef, codes, names) in zip(shipped, TABLE.entries, strict=True):
        assert coef.weighting == s["weighting"] in ed.WEIGHTINGS
        assert coef.value == v["value"] and 0 < coef.value <= 0.1  # mSv/MBq of diagnostic agents (67Ga citrate: 0.1)
        assert coef.source == s["source"] and len(coef.source) > 60 and coef.short
        assert codes or names
        # a set's basis is named in its title, so the two weightings cannot be confused when reading the file
        assert s["weighting"] in s["set"] or s["weighting"] == "ICRP 60" and "ICRP 80" in s["set"] + s["source"]
    assert "no cited coefficient" in TABLE.note and "sestamibi" in TABLE.note  # what is missing stays said


@pytest.mark.parametrize(("codes", "text", "weighting", "activity", "expected", "short"), [
    ((NAF,), "", "ICRP 103", 250.0, 250.0 * 0.009, "Andersson 2016"),  # 2.25 mSv, by code
    ((), "F-18 Sodium Fluoride", "ICRP 103", 250.0, 250.0 * 0.009, "Andersson 2016"),  # by header text
    # an SRT form is listed only where the standard has no SCT equivalent (the parser maps the others to SCT)
    (("SRT:C-B1034",), "", "ICRP 103", 200.0, 200.0 * 0.0157, "Andersson 2014/2015"),  # 18F L-dopa, 3.14 mSv
    ((), "18F-Choline", "ICRP 103", 300.0, 300.0 * 0.020, "Andersson 2016"),  # 6.0 mSv
    ((MDP,), "", "ICRP 60", 700.0, 700.0 * 0.0057, "ICRP 80 via J Nucl Med"),  # 3.99 mSv
    ((), "Tc99m MDP", "ICRP 60", 740.0, 740.0 * 0.0057, "ICRP 80 via J Nucl Med"),  # 4.218 mSv
    ((), "I-123 MIBG", "ICRP 60", 370.0, 370.0 * 0.013, "ICRP 80 via EJNMMI Res 2014"),  # 4.81 mSv
    ((MET,), "", "ICRP 103", 400.0, 400.0 * 0.00511, "Andersson 2014/2015"),  # 2.044 mSv, by code
    ((MET,), "", "ICRP 60", 400.0, 400.0 * 0.0084, "ICRP 106 via Andersson 2015"),  # 3.36 mSv
    ((), "C-11 Methionine", "ICRP 103", 400.0, 400.0 * 0.00511, "Andersson 2014/2015"),
    ((), "O-15 Water", "ICRP 103", 800.0, 800.0 * 0.000933, "Andersson 2014/2015"),  # 0.7464 mSv
    ((), "18F-FDOPA", "ICRP 103", 200.0, 200.0 * 0.0157, "Andersson 2014/2015"),  # 3.14 mSv
    ((), "Fluoro-L-dopa F^18^", "ICRP 60", 200.0, 200.0 * 0.025, "ICRP 106 via Andersson 2015"),  # 5.0 mSv
    ((GA67,), "", "ICRP 60", 185.0, 185.0 * 0.1, "ICRP 106 via Andersson 2015"),  # 18.5 mSv
])
def test_activity_times_coefficient_by_hand(codes, text, weighting, activity, expected, short):
    admin = ed.NmAdministration(None, activity_mbq=activity, agent_codes=codes, agent_text=text, from_header=True)
    value, coef = ed._from_activity(admin, weighting, TABLE)
    assert value == pytest.approx(expected) and coef.weighting == weighting and coef.short == short


@pytest.mark.parametrize(("codes", "text"), [
    ((), "I-131 MIBG"),  # another radionuclide of the same molecule
    ((), "C-11 Choline"),
    ((), "Tc99m DPD"),  # the corpus bone scan's agent: ICRP 80's phosphonate row is not read for DPD
    (("SCT:424299003",), "Tc99m Sestamibi"),
    ((), "Ga-68 Citrate"),  # another gallium isotope: the 67Ga names are isotope-specific
])
def test_agents_without_a_read_value_have_none(codes, text):
    for weighting in ed.WEIGHTINGS:
        assert TABLE.lookup(weighting, codes=codes, text=text) is None


def test_67ga_citrate_has_an_icrp_60_value_only():
    """Its erratum (E/A0)3 (ICRP 103) row was not read: no ICRP 103 figure, not the ICRP 60 value relabelled."""
    assert TABLE.lookup("ICRP 103", codes=(GA67,), text="Ga-67 Citrate") is None
    assert TABLE.lookup("ICRP 60", text="Ga-67 Citrate").value == 0.1


def test_a_value_on_one_basis_never_makes_a_figure_on_the_other():
    factors = {w: service.factor_set(w) for w in ed.WEIGHTINGS}
    naf = ed.NmAdministration(None, activity_mbq=250.0, agent_codes=(NAF,), from_header=True, label="NaF")
    mdp = ed.NmAdministration(None, activity_mbq=700.0, agent_codes=(MDP,), from_header=True, label="MDP")
    on_103 = ed.study_estimate(factors=factors["ICRP 103"], nm=[naf], activity_mbq=250.0, nm_table=TABLE)
    assert on_103.value_msv == pytest.approx(2.25) and on_103.coverage == 1.0
    assert on_103.method == "ICRP 103: NM: activity x coefficient, Andersson 2016: 18F fluoride (NaF) 0.009 mSv/MBq"
    # NaF has no ICRP 60 coefficient: on the ICRP 60 basis there is no figure (not the ICRP 103 one relabelled)
    on_60 = ed.study_estimate(factors=factors["ICRP 60"], nm=[naf], activity_mbq=250.0, nm_table=TABLE)
    assert on_60.value_msv is None and on_60.coverage == 0.0
    assert [x["reason"] for x in on_60.left_out] == [ed.NO_NM_COEFFICIENT]
    # and the reverse: MDP (ICRP 60 only) gives no ICRP 103 figure
    mdp_103 = ed.study_estimate(factors=factors["ICRP 103"], nm=[mdp], activity_mbq=700.0, nm_table=TABLE)
    assert mdp_103.value_msv is None and mdp_103.left_out[0]["reason"] == ed.NO_NM_COEFFICIENT
    mdp_60 = ed.study_estimate(factors=factors["ICRP 60"], nm=[mdp], activity_mbq=700.0, nm_table=TABLE)
    assert mdp_60.value_msv == pytest.approx(3.99)
    assert mdp_60.method.startswith("ICRP 60: NM: activity x coefficient, ICRP 80 via J Nucl Med (verify)")
    # two administrations, one with a coefficient on the basis: the figure covers half of them and says partial
    both = ed.study_estimate(factors=factors["ICRP 103"], nm=[naf, mdp], activity_mbq=950.0, nm_table=TABLE)
    assert both.value_msv == pytest.approx(2.25) and both.coverage == 0.5 and both.partial
    assert [x["what"] for x in both.left_out] == ["MDP"]


def test_rrdsr_agent_code_and_header_text_reach_the_table_through_the_service():
    """An RRDSR administration without an effective dose (its agent as a code) and an image header's copy (its
    Radiopharmaceutical text) are read by the registry's adapter and find the same coefficient."""
    rrdsr = service.nm_administration({"activity_mbq": 250.0, "attributes": {
        "radiopharmaceutical": ["SCT", "129501009", "Sodium fluoride F^18^"]}}, from_header=False)
    header = service.nm_administration({"activity_mbq": 250.0, "attributes": {"Radiopharmaceutical": "NaF"}},
                                       from_header=True)
    assert rrdsr.agent_codes == (NAF,) and header.agent_codes == ()
    for admin in (rrdsr, header):
        value, coef = ed._from_activity(admin, "ICRP 103", service.nm_coefficients())
        assert value == pytest.approx(2.25) and coef.name == "18F fluoride (NaF)"


def test_rrdsr_agent_recorded_before_its_srt_mapping_finds_its_value_by_the_code_meaning():
    """An event recorded before ``RADIOPHARMACEUTICAL_SRT_TO_SCT`` keeps the SRT value under SCT (``SCT:C-B1043``):
    it finds its coefficient through the code meaning (CID 4021 'Acetate C^11^'); ``manage.py reprocess`` stores the
    SCT code."""
    admin = service.nm_administration({"activity_mbq": 370.0, "attributes": {
        "radiopharmaceutical": ["SCT", "C-B1043", "Acetate C^11^"]}}, from_header=False)
    value, coef = ed._from_activity(admin, "ICRP 103", service.nm_coefficients())
    assert value == pytest.approx(370.0 * 0.00365) and coef.name == "11C acetate"  # 1.3505 mSv
