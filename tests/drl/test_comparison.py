"""The comparison on crafted data, against values computed independently here with the statistics module."""

from __future__ import annotations

import datetime as dt
import json
import random
import statistics
from io import StringIO

import pytest
from django.core.management import call_command

from dosereg.registry.models import SiteSettings
from drl import comparison as rules
from drl.models import DrlComparison
from drl.selectors import drl_position, drl_report_rows
from drl.services import drl_comparison_run
from tests.drl.factories import study, unit

pytestmark = pytest.mark.django_db
YEAR = (dt.date(2024, 1, 1), dt.date(2024, 12, 31))


def _p75(values):
    return statistics.quantiles(values, n=4, method="inclusive")[2]


def _row(run, *, equipment, exam="ct-chest", quantity="dlp_total_mgycm", per="examination", group="adult"):
    matches = [r for r in drl_report_rows(run) if r["equipment_id"] == equipment.pk and r["standard_exam"] == exam
               and r["quantity"] == quantity and r["per"] == per and r["patient_group"] == group]
    assert len(matches) == 1, matches
    return matches[0]


@pytest.fixture
def ct_data():
    rng = random.Random(7)
    a = unit("Scanner A")
    adult_dlp, ctdi = [], []
    for k in range(25):
        dlp = round(rng.uniform(150, 450), 1)
        c1, c2 = round(rng.uniform(4, 14), 2), round(rng.uniform(4, 14), 2)
        age = None if k % 5 == 0 else rng.uniform(18, 90)  # unknown age counts as adult
        study(a, age=age, dlp=dlp, events=[
            {"ctdivol_mgy": 500.0, "is_localizer": True, "protocol": "Topogram"},  # left out
            {"ctdivol_mgy": c1, "protocol": "Chest"}, {"ctdivol_mgy": c2, "protocol": "Chest"}])
        adult_dlp.append(dlp)
        ctdi += [c1, c2]
    for _ in range(4):  # children and demo studies are left out
        study(a, age=9, dlp=5000.0, events=[{"ctdivol_mgy": 90.0}])
        study(a, age=40, dlp=6000.0, demo=True, events=[{"ctdivol_mgy": 95.0}])
    study(a, age=40, dlp=7000.0, date=dt.date(2025, 1, 1))  # outside the period
    return a, adult_dlp, ctdi


def test_median_p75_mean_adults_localizers(ct_data):
    a, adult_dlp, ctdi = ct_data
    run = drl_comparison_run(period_start=YEAR[0], period_end=YEAR[1])
    row = _row(run, equipment=a)
    assert row["n"] == 25 and row["n_studies"] == 25
    assert row["median"] == pytest.approx(statistics.median(adult_dlp))
    assert row["p75"] == pytest.approx(_p75(adult_dlp))
    assert row["mean"] == pytest.approx(statistics.fmean(adult_dlp))
    assert row["drl"] == 290  # UK NDRL chest (lung cancer), lowest priority number among the active sets
    assert row["ratio"] == pytest.approx(statistics.median(adult_dlp) / 290)
    assert row["status"] == ("above" if statistics.median(adult_dlp) > 290 else "below")
    assert row["verify"] is False and row["size_filter"] is False and row["unit"] == "mGy·cm"

    acq = _row(run, equipment=a, quantity="ctdivol_mgy", per="acquisition")
    assert acq["n"] == 50 and acq["n_studies"] == 25  # the 25 localizers at 500 mGy are not counted
    assert acq["median"] == pytest.approx(statistics.median(ctdi))
    assert acq["p75"] == pytest.approx(_p75(ctdi))
    assert acq["mean"] == pytest.approx(statistics.fmean(ctdi))
    assert acq["drl"] == 8.5


def test_standard_size_band(ct_data):
    a = unit("Scanner B")
    weights = [None, 45, 49.9, 50, 70, 90, 90.1, 120] + [60 + k for k in range(20)]
    values = {}
    for k, w in enumerate(weights):
        dlp = 100.0 + 7 * k
        study(a, age=30, weight=w, dlp=dlp)
        values[w if w is not None else "none"] = dlp
    site = SiteSettings.load()
    site.drl_standard_size = True
    site.save()
    run = drl_comparison_run(period_start=YEAR[0], period_end=YEAR[1])
    expected = [100.0 + 7 * k for k, w in enumerate(weights) if w is not None and 50 <= w <= 90]
    row = _row(run, equipment=a)
    assert row["size_filter"] is True and row["n"] == len(expected) == 23
    assert row["median"] == pytest.approx(statistics.median(expected))
    assert row["p75"] == pytest.approx(_p75(expected))
    assert run.standard_size and run.weight_min_kg == 50


def test_minimum_n_no_drl_and_min_setting():
    a = unit("Small scanner")
    for k in range(5):
        study(a, dlp=300 + k)
        study(a, exam="dx-chest", description="XR CHEST", modality_type="radiography", kap=0.1 + k / 100)
    run = drl_comparison_run(period_start=YEAR[0], period_end=YEAR[1])
    assert _row(run, equipment=a)["status"] == "insufficient_data"
    assert _row(run, equipment=a)["median"] == pytest.approx(302)
    dx = _row(run, equipment=a, exam="dx-chest", quantity="kap_total_gycm2")
    assert dx["status"] == "no_drl" and dx["drl"] is None and dx["median"] == pytest.approx(0.12)
    site = SiteSettings.load()
    site.drl_min_patients = 5
    site.save()
    run2 = drl_comparison_run(period_start=YEAR[0], period_end=YEAR[1])
    assert _row(run2, equipment=a)["status"] == "above"  # 302 > 290
    assert run2.pk != run.pk and _row(run, equipment=a)["status"] == "insufficient_data"  # first snapshot unchanged


def test_snapshot_is_immutable_and_trend():
    a = unit()
    for k in range(20):
        study(a, dlp=200 + k, date=dt.date(2023, 3, 1))
        study(a, dlp=300 + k, date=dt.date(2024, 3, 1))
    run = drl_comparison_run(period_start=YEAR[0], period_end=YEAR[1])
    row = run.rows.get(exam_code="ct-chest", quantity="dlp_total_mgycm")
    assert row.previous_median == pytest.approx(209.5) and row.trend == pytest.approx(309.5 / 209.5)
    with pytest.raises(ValueError):
        run.note = "edited"
        run.save()


def test_rules_match_statistics_module():
    rng = random.Random(3)
    for n in (1, 2, 3, 4, 7, 20, 101):
        values = sorted(rng.uniform(0, 100) for _ in range(n))
        assert rules.percentile_cont(values, 0.5) == pytest.approx(statistics.median(values))
        if n > 1:
            q = statistics.quantiles(values, n=4, method="inclusive")
            assert rules.percentile_cont(values, 0.25) == pytest.approx(q[0])
            assert rules.percentile_cont(values, 0.75) == pytest.approx(q[2])
    assert rules.is_adult(None) and rules.is_adult(18) and not rules.is_adult(17.9)
    assert rules.in_standard_size(50, 50, 90) and not rules.in_standard_size(None, 50, 90)
    assert rules.comparison_status(median=10, drl=None, n_patients=100, min_patients=20) == "no_drl"
    assert rules.comparison_status(median=10, drl=5, n_patients=19, min_patients=20) == "insufficient_data"
    assert rules.comparison_status(median=10, drl=5, n_patients=20, min_patients=20) == "above"
    assert rules.comparison_status(median=5, drl=5, n_patients=20, min_patients=20) == "below"


def test_bad_units_and_bands_refused():
    with pytest.raises(rules.DrlValidationError, match="does not fit dlp_total_mgycm"):
        rules.entry_check(quantity="dlp_total_mgycm", unit="mGy", per="examination", value=100)
    assert rules.entry_check(quantity="kap_total_gycm2", unit="Gy.cm2", per="examination", value=1) == \
        rules.CheckedEntry("kap_total_gycm2", 1.0, "Gy·cm²")
    assert rules.entry_check(quantity="kap_gycm2", unit="cGy·cm²", per="examination", value=250) == \
        rules.CheckedEntry("kap_total_gycm2", 2.5, "Gy·cm²")  # the old key, a unit the catalogue converts
    with pytest.raises(rules.DrlValidationError, match="ctdivol_mgy cannot be compared per examination"):
        rules.entry_check(quantity="ctdivol_mgy", unit="mGy", per="examination", value=10)
    with pytest.raises(rules.DrlValidationError, match="unknown quantity 'max_ctdivol_mgy'"):
        rules.entry_check(quantity="max_ctdivol_mgy", unit="mGy", per="acquisition", value=10)
    with pytest.raises(rules.DrlValidationError, match="overlap"):
        rules.bands_check([rules.Band("0-5 y", 0, 5), rules.Band("4-10 y", 4, 10)])
    rules.bands_check([rules.Band("0-5 y", 0, 5), rules.Band("5-10 y", 5, 10), rules.Band("adult")])


def test_drl_report_json_fields_and_formats(tmp_path):
    a = unit()
    for k in range(21):
        study(a, dlp=100 + k, events=[{"ctdivol_mgy": 3.0}], demo=k == 0)
    out = StringIO()
    call_command("drl_report", "--year", "2024", "--format", "json", stdout=out)
    rows = json.loads(out.getvalue())
    assert isinstance(rows, list) and rows
    assert list(rows[0]) == ["equipment", "equipment_id", "standard_exam", "patient_group", "quantity", "unit", "per",
                             "view", "thickness_min_mm", "thickness_max_mm", "n", "n_studies", "median", "p75", "mean",
                             "drl", "drl_set", "drl_source", "ratio", "status", "size_filter", "verify"]
    dlp = next(r for r in rows if r["quantity"] == "dlp_total_mgycm")
    assert dlp["equipment_id"] == a.pk and dlp["standard_exam"] == "ct-chest" and dlp["n"] == 20  # demo left out
    assert dlp["equipment"] == a.display_name and dlp["status"] == "below"
    out = StringIO()
    call_command("drl_report", "--year", "2024", "--format", "json", "--include-demo", stdout=out)
    assert next(r for r in json.loads(out.getvalue()) if r["quantity"] == "dlp_total_mgycm")["n"] == 21
    assert DrlComparison.objects.count() == 2  # the first report was reused? no: include-demo is another snapshot
    call_command("drl_report", "--year", "2024", "--format", "csv", "--output", str(tmp_path / "r.csv"))
    assert DrlComparison.objects.count() == 2  # the issued report is reused
    assert (tmp_path / "r.csv").read_text().splitlines()[0].startswith("equipment,equipment_id,standard_exam")
    call_command("drl_report", "--year", "2024", "--format", "pdf", "--output", str(tmp_path / "r.pdf"))
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")


def test_drl_position():
    a = unit()
    s = study(a, dlp=580.0)
    pos = drl_position(s.pk)
    assert pos["quantity"] == "dlp_total_mgycm" and pos["unit"] == "mGy·cm"
    assert pos["drl"] == 290 and pos["ratio"] == pytest.approx(2.0)
    assert pos["status"] == "above" and pos["standard_exam"] == "ct-chest"
    assert drl_position(study(a, exam=None, dlp=10).pk) is None
