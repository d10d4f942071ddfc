"""SSDE per CT acquisition from each path, against AAPM Report 204/220 computed by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from dosereg.core import ssde as ss

DATA = Path(__file__).resolve().parents[2] / "dosereg" / "registry" / "data"
TABLES = ss.SsdeTables.from_dict(json.loads((DATA / "ssde_aapm204.json").read_text()))


def test_water_equivalent_diameter_path_aapm220():
    # Dw = 250 mm, 32 cm phantom: f = 3.704369 exp(-0.03671937 x 25) = 1.4793
    r = ss.ssde(ctdivol_mgy=10.0, phantom="body", tables=TABLES, dw_mm=250.0)
    assert r.method == "113988" and r.method_meaning == "Estimated from Water Equivalent Diameter"
    assert r.factor == pytest.approx(3.704369 * math.exp(-0.03671937 * 25.0))
    assert r.value_mgy == pytest.approx(14.79, abs=0.01)
    # 16 cm phantom (paediatric body): f(16) = 1.874799 exp(-0.03871313 x 16) = 1.0115
    r16 = ss.ssde(ctdivol_mgy=4.0, phantom="head", tables=TABLES, dw_mm=160.0)
    assert r16.value_mgy == pytest.approx(4.0 * 1.874799 * math.exp(-0.03871313 * 16.0))


def test_fit_matches_the_tabulated_factors():
    # reference-data.md §5: f(8) = 2.76, f(20) = 1.78, f(45) = 0.71 (32 cm); f(6) = 1.49, f(55) = 0.22 (16 cm)
    for phantom, d, f in (("body", 8, 2.76), ("body", 20, 1.78), ("body", 45, 0.71), ("head", 6, 1.49),
                          ("head", 55, 0.22)):
        assert TABLES.fits[phantom].factor(d) == pytest.approx(f, abs=0.005)


def test_dimensions_path_aapm204():
    # lateral + AP = 60 cm -> effective diameter 29.6 cm (Table 1A); f = 3.704369 exp(-0.03671937 x 29.6) = 1.2493
    r = ss.ssde(ctdivol_mgy=10.0, phantom="body", tables=TABLES, lateral_cm=34.0, ap_cm=26.0)
    assert r.method == "113936" and r.diameter_cm == pytest.approx(29.6)
    assert r.value_mgy == pytest.approx(10.0 * 3.704369 * math.exp(-0.03671937 * 29.6))
    assert r.value_mgy == pytest.approx(12.493, abs=0.001)
    # lateral only, 30 cm -> 24.7 cm (Table 1B); between rows: lateral 30.5 -> halfway 24.7 .. 25.6
    assert ss.ssde(ctdivol_mgy=10.0, phantom="body", tables=TABLES, lateral_cm=30.0).diameter_cm == pytest.approx(24.7)
    assert ss.interpolate(TABLES.dimensions["lateral"], 30.5) == pytest.approx((24.7 + 25.6) / 2)
    assert ss.ssde(ctdivol_mgy=10.0, phantom="body", tables=TABLES, ap_cm=20.0).method == "113935"


def test_age_path_aapm204_age_table():
    # AAPM 204 age table (as transcribed in fashni/IndoseCT aapm.db): 5 y -> 18.5 cm (a row), 7 y 19.6, 8 y 20.2
    at_row = ss.ssde(ctdivol_mgy=4.0, phantom="body", tables=TABLES, age_years=5)
    assert at_row.method == "113937" and at_row.diameter_cm == pytest.approx(18.5)
    # f(18.5) = 3.704369 exp(-0.03671937 x 18.5) = 1.8780; SSDE = 4 x 1.8780 = 7.51 mGy
    assert at_row.value_mgy == pytest.approx(7.512, abs=0.001)
    between = ss.ssde(ctdivol_mgy=4.0, phantom="body", tables=TABLES, age_years=7.5)
    assert between.diameter_cm == pytest.approx((19.6 + 20.2) / 2)  # 19.9 cm
    assert between.value_mgy == pytest.approx(4.0 * 3.704369 * math.exp(-0.03671937 * 19.9))  # 7.14 mGy
    assert between.value_mgy == pytest.approx(7.136, abs=0.001)
    # 16 cm phantom (paediatric body): 2 y -> 16.8 cm (a row), f = 1.874799 exp(-0.03871313 x 16.8) = 0.9784
    r16 = ss.ssde(ctdivol_mgy=2.0, phantom="head", tables=TABLES, age_years=2)
    assert r16.method == "113937" and r16.diameter_cm == pytest.approx(16.8)
    assert r16.value_mgy == pytest.approx(1.957, abs=0.001)
    # 1.1 y between 1.0 y (15.1) and 1.2 y (15.6): 15.35 cm, f = 1.0348, SSDE = 2.07 mGy
    r16b = ss.ssde(ctdivol_mgy=2.0, phantom="head", tables=TABLES, age_years=1.1)
    assert r16b.diameter_cm == pytest.approx(15.35)
    assert r16b.value_mgy == pytest.approx(2.0 * 1.874799 * math.exp(-0.03871313 * 15.35))
    assert r16b.value_mgy == pytest.approx(2.070, abs=0.001)


def test_age_table_ends_and_its_bounds():
    assert TABLES.ages[0] == (0.0, 11.2) and TABLES.ages[-1] == (18.0, 29.2) and len(TABLES.ages) == 30
    assert [a for a, _ in TABLES.ages] == sorted(a for a, _ in TABLES.ages)
    newborn = ss.ssde(ctdivol_mgy=1.0, phantom="body", tables=TABLES, age_years=0)
    assert newborn.diameter_cm == pytest.approx(11.2) and newborn.factor == pytest.approx(2.4553, abs=1e-4)
    # the last row is 18 completed years: 18.9 y still takes it (29.2 cm, f = 1.2678); 19 y and adults are refused
    assert ss.ssde(ctdivol_mgy=10.0, phantom="body", tables=TABLES, age_years=18.9).value_mgy == pytest.approx(
        12.678, abs=0.001)
    for age in (19.0, 45.0):
        adult = ss.ssde(ctdivol_mgy=10.0, phantom="body", tables=TABLES, age_years=age)
        assert adult.value_mgy is None and adult.reason == ss.AGE_BEYOND_TABLE and adult.method == "113937"
    assert ss.ssde(ctdivol_mgy=10.0, phantom="body", tables=TABLES, age_years=-1).reason == ss.OUT_OF_RANGE
    assert ss.ssde(ctdivol_mgy=10.0, phantom="body", tables=TABLES).reason == ss.NO_SIZE  # no age either


def test_refusals():
    assert ss.ssde(ctdivol_mgy=None, phantom="body", tables=TABLES, dw_mm=250).reason == ss.NO_CTDIVOL
    assert ss.ssde(ctdivol_mgy=5, phantom="", tables=TABLES, dw_mm=250).reason == ss.PHANTOM_UNKNOWN
    assert ss.ssde(ctdivol_mgy=5, phantom="body", tables=TABLES, dw_mm=600).reason == ss.OUT_OF_RANGE  # 60 cm > 45
    assert ss.ssde(ctdivol_mgy=5, phantom="head", tables=TABLES, head=True, dw_mm=160).reason == ss.HEAD


def test_aapm220_water_equivalent_diameter_formula():
    # a water cylinder (0 HU) of area pi x 15^2 cm^2 has Dw = 30 cm; air-like -1000 HU gives 0
    assert ss.water_equivalent_diameter_cm(mean_hu=0.0, roi_area_cm2=math.pi * 225) == pytest.approx(30.0)
    assert ss.water_equivalent_diameter_cm(mean_hu=-1000.0, roi_area_cm2=100.0) == pytest.approx(0.0)


def test_missing_tables_are_said_in_the_data_not_filled():
    raw = json.loads((DATA / "ssde_aapm204.json").read_text())
    age = raw["effective_diameter_from_age"]
    assert age["verify"] is True and "fashni/IndoseCT" in age["source"] and "AAPM Report 204" in age["source"]
    assert "Equation A-3" in age["cross_check"] and "113937" in age["note"]
    head = raw["head_ssde_aapm293"]
    assert "no cited constants" in head["note"] and "PMC6367032" in head["note"]
    # a lead is recorded, not used: one implementation citing AAPM 293 (IndoseCT), one uncited; no fit range
    assert [lead["why_not"] for lead in head["leads_not_accepted"]] == [
        "one implementation citing AAPM 293; no Dw fit range given",
        "does not cite AAPM 293; not an independent citing implementation"]
    assert "b059fcb8672eb51a5305063ccd9ca5b32a156867" in head["leads_not_accepted"][0]["where"]
    assert {f["phantom"] for f in raw["aapm204_fit"]} == {"body", "head"}  # AAPM 204 only, no head-CT fit


def test_age_rows_agree_with_the_aapm204_age_fit():
    # the cross-check recorded in the data: every row is y = a + b x^1.5 + c x^0.5 + d e^-x rounded to 0.1 cm
    a, b, c, d = 18.788598, 0.19486455, -1.060056, -7.6244784
    for age, diameter in TABLES.ages:
        assert round(a + b * age**1.5 + c * age**0.5 + d * math.exp(-age), 1) == pytest.approx(diameter)


def test_age_is_the_last_fallback_after_dw_and_dimensions():
    # Dw and dimensions win over the age; age only when neither is known, labelled 113937
    args = {"ctdivol_mgy": 10.0, "phantom": "body", "tables": TABLES, "age_years": 5}
    assert ss.ssde(**args, dw_mm=250.0, lateral_cm=34.0, ap_cm=26.0).method == "113988"
    assert ss.ssde(**args, lateral_cm=34.0, ap_cm=26.0).method == "113936"
    by_age = ss.ssde(**args)
    assert by_age.method == "113937" and by_age.method_meaning.endswith("Estimated From Patient Age")
    assert by_age.value_mgy == pytest.approx(10.0 * 3.704369 * math.exp(-0.03671937 * 18.5))  # 18.5 cm at 5 years
    # a table handed in (not the shipped one) is used the same way
    with_ages = ss.SsdeTables(TABLES.fits, TABLES.dimensions, ages=((0.0, 12.0), (10.0, 20.0)))
    assert ss.ssde(**{**args, "tables": with_ages}).diameter_cm == pytest.approx(16.0)
    assert ss.ssde(**{**args, "tables": with_ages, "age_years": 10.5}).diameter_cm == pytest.approx(20.0)
    assert ss.ssde(**{**args, "tables": with_ages, "age_years": 11}).reason == ss.AGE_BEYOND_TABLE
