"""Radiopharmaceutical agents coded SNOMED RT (``SRT``, older modalities) or SNOMED CT (``SCT``): an RRDSR built
either way, parsed and estimated (parser -> registry adapter -> dose core), gets the same coefficient, figure and
method text; an SRT code the standard gives no SCT equivalent gets no estimate, with the reason, unless the table
lists that SRT form.

Hand values (mSv/MBq, from dosereg/registry/data/nm_coefficients.json with the sources cited there): 18F sodium
fluoride 0.009 (Andersson et al. 2016, ICRP 103); 99mTc MDP 0.0057 (ICRP 80 via J Nucl Med, ICRP 60); 11C acetate
0.00365 (Andersson 2014/erratum 2015 (E/A0)3, ICRP 103) and 0.0035 (ICRP 106 via Andersson 2015, ICRP 60); 18F FLT
0.015 (Andersson 2016); 18F L-dopa 0.0157 (Andersson 2014/2015).  Code pairs: PS3.16 CID 18/25/4020/4021, see
``dicomrx.codes.RADIOPHARMACEUTICAL_SRT_TO_SCT``."""

from __future__ import annotations

import ast
import inspect
import json

import pytest
from pydicom.sr._snomed_dict import mapping as pydicom_snomed

from dicomrx import codes
from dicomrx.parse import parse_dose_object
from dosereg.core import effective_dose as ed
from dosereg.registry.services import effective_dose as service
from tests.dicomrx import synthetic

TABLE = codes.RADIOPHARMACEUTICAL_SRT_TO_SCT


def _rrdsr_estimate(scheme: str, value: str, meaning: str, activity_mbq: float, weighting: str) -> ed.StudyEstimate:
    """An RRDSR without an effective dose whose agent is (scheme, value, meaning), parsed and estimated on
    ``weighting`` as the totals do (``recording.totals._effective_dose_parts``)."""
    ds = synthetic.build_rrdsr(activity_mbq=activity_mbq, effective_dose_msv=None, as_dataset=True)
    agent = ds.ContentSequence[0].ContentSequence[0].ConceptCodeSequence[0]  # 113502 > Radiopharmaceutical agent
    agent.CodeValue, agent.CodingSchemeDesignator, agent.CodeMeaning = value, scheme, meaning
    (event,) = parse_dose_object(synthetic.to_bytes(ds)).events
    admin = service.nm_administration({"effective_dose_msv": None, "activity_mbq": event.quantities["activity_mbq"].value,
                                       "attributes": event.attributes}, from_header=False)
    return ed.study_estimate(factors=service.factor_set(weighting), nm=[admin], nm_table=service.nm_coefficients())


@pytest.mark.parametrize(("srt", "sct", "meaning", "activity", "weighting", "msv", "method"), [
    # 370 MBq x 0.009 mSv/MBq = 3.33 mSv
    ("C-B1032", "129501009", "Sodium fluoride F^18^", 370.0, "ICRP 103", 3.33,
     "ICRP 103: NM: activity x coefficient, Andersson 2016: 18F fluoride (NaF) 0.009 mSv/MBq"),
    # 740 MBq x 0.0057 mSv/MBq = 4.218 mSv
    ("C-B1218", "96390006", "Technetium Tc^99m^ medronate", 740.0, "ICRP 60", 4.218,
     "ICRP 60: NM: activity x coefficient, ICRP 80 via J Nucl Med (verify): 99mTc MDP 0.0057 mSv/MBq"),
    # 370 MBq x 0.00365 mSv/MBq = 1.3505 mSv; on ICRP 60, 370 MBq x 0.0035 mSv/MBq = 1.295 mSv
    ("C-B1043", "129513004", "Acetate C^11^", 370.0, "ICRP 103", 1.3505,
     "ICRP 103: NM: activity x coefficient, Andersson 2014/2015: 11C acetate 0.00365 mSv/MBq"),
    ("C-B1043", "129513004", "Acetate C^11^", 370.0, "ICRP 60", 1.295,
     "ICRP 60: NM: activity x coefficient, ICRP 106 via Andersson 2015 (verify): 11C acetate 0.0035 mSv/MBq"),
    # FLT by its earlier CID 4021 code (SRT C-B1036 -> SCT 129502002): 200 MBq x 0.015 mSv/MBq = 3.0 mSv
    ("C-B1036", "129502002", "Thymidine F^18^", 200.0, "ICRP 103", 3.0,
     "ICRP 103: NM: activity x coefficient, Andersson 2016: 18F FLT 0.015 mSv/MBq"),
    # 18F L-dopa by its current SRT code (C-E0241 -> 5811000122108): 200 MBq x 0.0157 mSv/MBq = 3.14 mSv
    ("C-E0241", "5811000122108", "Fluoro-L-dopa F^18^", 200.0, "ICRP 103", 3.14,
     "ICRP 103: NM: activity x coefficient, Andersson 2014/2015: 18F FDOPA 0.0157 mSv/MBq"),
])
def test_srt_and_sct_coded_agent_get_the_same_figure_by_hand(srt, sct, meaning, activity, weighting, msv, method):
    # a meaning the table's names do not contain, so the code alone must find the coefficient
    for scheme, value in (("SRT", srt), ("SCT", sct)):
        est = _rrdsr_estimate(scheme, value, "Radiopharmaceutical", activity, weighting)
        assert est.value_msv == pytest.approx(msv, rel=1e-9), (scheme, value)
        assert est.method == method and est.coverage == 1.0 and est.weighting == weighting and not est.left_out
    assert _rrdsr_estimate("SRT", srt, meaning, activity, weighting).method == method  # and with its own meaning


def test_an_srt_code_without_an_sct_equivalent_matches_only_its_listed_srt_form():
    """18F L-dopa's PS3.16-2019a code C-B1034 has no SCT equivalent: the parser keeps it as ``SCT:C-B1034`` and the
    adapter offers its SRT form, which the table lists (200 MBq x 0.0157 mSv/MBq = 3.14 mSv)."""
    est = _rrdsr_estimate("SRT", "C-B1034", "Radiopharmaceutical", 200.0, "ICRP 103")
    assert est.value_msv == pytest.approx(3.14, rel=1e-9)
    assert est.method == "ICRP 103: NM: activity x coefficient, Andersson 2014/2015: 18F FDOPA 0.0157 mSv/MBq"
    assert service.agent_codes(["SCT", "C-B1034", "x"]) == ("SCT:C-B1034", "SRT:C-B1034")
    assert service.agent_codes(["SCT", "5811000122108", "x"]) == ("SCT:5811000122108",)


@pytest.mark.parametrize(("value", "meaning"), [
    ("C-B1046", "Germanium Ge^68^"),  # CID 4021 in PS3.16-2019a, no SCT equivalent in the standard
    ("C-B9999", "Radiopharmaceutical"),  # no such code
])
def test_an_unknown_srt_code_gets_no_estimate_and_says_why(value, meaning):
    for weighting in ed.WEIGHTINGS:
        est = _rrdsr_estimate("SRT", value, meaning, 150.0, weighting)
        assert est.value_msv is None and est.coverage == 0.0 and est.method == f"{weighting}: no estimate"
        (left,) = est.left_out
        assert left["reason"] == ed.NO_NM_COEFFICIENT and left["activity_mbq"] == 150.0
        assert left["why"] == ("no effective dose reported and no cited coefficient for the radiopharmaceutical on "
                               "this weighting basis")


def test_the_table_agrees_with_a_second_source_pair_by_pair():
    """pydicom's SNOMED mapping is generated from PS3.16 independently of the FHIR ConceptMap the table was read
    from; the four 2019a SRT codes without an SCT equivalent stay unmapped rather than guessed."""
    assert len(TABLE) == 202
    assert {srt: pydicom_snomed["SRT"].get(srt) for srt in TABLE} == TABLE
    assert {"C-B1034", "C-B1046", "C-B1047", "C-B07E6"}.isdisjoint(codes.SRT_TO_SCT)
    assert codes.normalise("SRT", "C-B1218") == ("SCT", "96390006")  # Technetium Tc^99m^ medronate
    assert codes.normalise("SRT", "C-163AB") == ("SCT", "424299003")  # Technetium Tc^99m^ sestamibi
    assert codes.normalise("SRT", "C-111A1") == ("SCT", "77004003")  # ^18^Fluorine


def test_the_table_is_merged_whole_and_overrides_no_other_mapping():
    """Dict literals drop a repeated key silently, and the merge (``**``) would overwrite a general entry: read the
    literals themselves."""
    tree = ast.parse(inspect.getsource(codes))
    literals = {node.targets[0].id if isinstance(node, ast.Assign) else node.target.id: node.value
                for node in tree.body if isinstance(node, ast.Assign | ast.AnnAssign)
                and isinstance(node.value, ast.Dict)}
    radio = [k.value for k in literals["RADIOPHARMACEUTICAL_SRT_TO_SCT"].keys]
    general = [k.value for k in literals["SRT_TO_SCT"].keys if k is not None]
    assert len(radio) == len(set(radio)) == len(TABLE) and len(general) == len(set(general))
    assert not set(radio) & set(general)
    assert all(codes.SRT_TO_SCT[srt] == sct for srt, sct in TABLE.items())


def test_no_coefficient_row_lists_an_srt_code_the_parser_maps():
    rows = json.loads(service.NM_FILE.read_text(encoding="utf-8"))
    srt = [(v["name"], c) for s in rows["sets"] for v in s["values"] for scheme, c in v.get("codes", ()) if
           scheme == "SRT"]
    assert srt == [("18F FDOPA", "C-B1034"), ("18F FDOPA", "C-B1034")]  # ICRP 103 and ICRP 60 rows
    assert not {c for _name, c in srt} & set(codes.SRT_TO_SCT)
