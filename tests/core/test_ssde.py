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
    # lateral + AP = 60 cm -> effective diameter 29.6 cm (Table 1A); f = 3.704369 exp(-0.03671937 x 29.6) = 1.2548
    r = ss.ssde(ctdivol_mgy=10.0, phantom="body", tables=TABLES, lateral_cm=34.0, ap_cm=26.0)
    assert r.method == "113936" and r.diameter_cm == pytest.approx(29.6)
    assert r.value_mgy == pytest.approx(10.0 * 3.704369 * math.exp(-0.03671937 * 29.6))
    # lateral only, 30 cm -> 24.7 cm (Table 1B); between rows: lateral 30.5 -> halfway 24.7 .. 25.6
    assert ss.ssde(ctdivol_mgy=10.0, phantom="body", tables=TABLES, lateral_cm=30.0).diameter_cm == pytest.approx(24.7)
    assert ss.interpolate(TABLES.dimensions["lateral"], 30.5) == pytest.approx((24.7 + 25.6) / 2)
    assert ss.ssde(ctdivol_mgy=10.0, phantom="body", tables=TABLES, ap_cm=20.0).method == "113935"


def test_age_path_needs_a_cited_table():
    # AAPM 204 Table 3 is not in the reference data: no guess
    assert ss.ssde(ctdivol_mgy=10.0, phantom="body", tables=TABLES, age_years=5).reason == ss.NO_SIZE
    with_ages = ss.SsdeTables(TABLES.fits, TABLES.dimensions, ages=((0.0, 12.0), (10.0, 20.0)))  # a test table
    r = with_ages.ages and ss.ssde(ctdivol_mgy=10.0, phantom="body", tables=with_ages, age_years=5)
    assert r.method == "113937" and r.diameter_cm == pytest.approx(16.0)
    assert r.value_mgy == pytest.approx(10.0 * 3.704369 * math.exp(-0.03671937 * 16.0))


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
    assert age["rows"] == [] and "could not be read" in age["note"] and "113937" in age["note"]
    assert "no cited constants" in raw["head_ssde_aapm293"]["note"] and "PMC6367032" in raw["head_ssde_aapm293"]["note"]
    assert TABLES.ages == ()


def test_age_is_the_last_fallback_after_dw_and_dimensions():
    # with an age table (a test table: AAPM 204 Table 3 is not shipped), Dw and dimensions still win; age only when
    # neither is known, labelled 113937
    with_ages = ss.SsdeTables(TABLES.fits, TABLES.dimensions, ages=((0.0, 12.0), (10.0, 20.0)))
    args = {"ctdivol_mgy": 10.0, "phantom": "body", "tables": with_ages, "age_years": 5}
    assert ss.ssde(**args, dw_mm=250.0, lateral_cm=34.0, ap_cm=26.0).method == "113988"
    assert ss.ssde(**args, lateral_cm=34.0, ap_cm=26.0).method == "113936"
    by_age = ss.ssde(**args)
    assert by_age.method == "113937" and by_age.method_meaning.endswith("Estimated From Patient Age")
    assert by_age.value_mgy == pytest.approx(10.0 * 3.704369 * math.exp(-0.03671937 * 16.0))  # 16 cm at 5 years
    # an adult beyond the table's last age takes the last row (the table's oldest band), not an extrapolation
    assert ss.ssde(**{**args, "age_years": 40}).diameter_cm == pytest.approx(20.0)
