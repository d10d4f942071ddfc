"""Every figure of a comparison row, on crafted data of two units over two years, against values computed here with
the statistics module: n, studies, median, p25, p75, mean, minimum, maximum, the studies left out (values awaiting
confirmation) and the previous period's median, per unit, examination, patient group (adult, weight and age bands)
and view; and ``drl_comparison_figures`` (on PostgreSQL one query per value for every group and both periods)
against the separate queries it replaces (``drl_aggregates`` per period, ``drl_unconfirmed_counts``)."""

from __future__ import annotations

import datetime as dt
import random
import statistics
import threading
import time

import pytest
from django.db import connection

from dosereg.registry.models import SiteSettings, StandardExam, Study
from drl import comparison as rules
from drl import selectors
from drl.models import DrlEntry
from drl.selectors import (
    FiguresRequest,
    Scope,
    drl_aggregates,
    drl_comparison_figures,
    drl_unconfirmed_counts,
    entry_band,
)
from drl.services import drl_comparison_run, previous_period
from tests.drl.factories import study, unit

pytestmark = pytest.mark.django_db
YEAR = (dt.date(2024, 1, 1), dt.date(2024, 12, 31))
CT_EXAMS = ("ct-chest", "ct-head-stroke", "ct-abdomen")
VIEWS = ("PA", "LAT", "LL", "AP", "")


def _patient(rng: random.Random, k: int) -> tuple[float | None, float | None]:
    """Adults (some of unknown age), children of every weight band (ct-chest, ct-abdomen) and age band
    (ct-head-stroke), a child of unknown weight."""
    kind = k % 6
    if kind == 0:
        return None, rng.choice([None, 70.0])
    if kind in (1, 2):
        return rng.uniform(18, 90), rng.uniform(45, 110)
    if kind == 3:
        return (0.1, 0.5, 3.0, 10.0)[k // 6 % 4], (4.0, 10.0, 20.0, 40.0, 60.0)[k // 6 % 5]
    if kind == 4:
        return rng.uniform(6, 17.9), rng.choice([None, 29.9, 30.0, 50.0, 79.9])
    return 17.99, 15.0


@pytest.fixture
def registry():
    """Studies as written, and the same as records for the expected values: equal values (ties) among them, a
    not-for-DRL examination and a study without a unit, which no figure counts."""
    rng = random.Random(14)
    records = []
    StandardExam.objects.update_or_create(code="ct-qa-phantom", defaults={
        "name": "CT QA phantom", "modality_type": "CT", "not_for_drl": True})
    for unit_name in ("CT A", "CT B"):
        ct = unit(unit_name)
        for k in range(60):
            date = dt.date(2024 if k % 5 else 2023, 1 + k % 12, 1 + k % 28)
            age, weight = _patient(rng, k)
            unconfirmed, demo = k % 11 == 0, k % 17 == 0
            events = [{"ctdivol_mgy": 400.0, "is_localizer": True}]
            events += [{"ctdivol_mgy": round(rng.uniform(1, 30), 3) if j % 2 else rng.choice([7.5, 12.0])}
                       for j in range(1 + k % 4)]
            events += [{"ctdivol_mgy": None}, {"ctdivol_mgy": 999.0, "is_current": False}]
            dlp = None if k % 13 == 0 else round(rng.uniform(20, 900), 2)
            s = study(ct, exam=CT_EXAMS[k % 3], date=date, age=age, weight=weight, dlp=dlp, events=events, demo=demo)
            if unconfirmed:
                Study.objects.filter(pk=s.pk).update(values_unconfirmed=True)
            records.append({"unit": ct.pk, "exam": CT_EXAMS[k % 3], "date": date, "age": age, "weight": weight,
                            "unconfirmed": unconfirmed, "demo": demo, "dlp_total_mgycm": dlp, "events": events})
        for exam, equipment in (("ct-qa-phantom", ct), ("ct-chest", None)):  # never counted
            study(equipment, exam=exam, date=dt.date(2024, 3, 3), age=50.0, dlp=5000.0,
                  events=[{"ctdivol_mgy": 500.0}])
    dx = unit("DX 1")
    for k in range(40):
        date = dt.date(2024 if k % 4 else 2023, 1 + k % 12, 2)
        events = [{"kap_gycm2": round(rng.uniform(0.01, 0.5), 4), "view": VIEWS[(k + j) % len(VIEWS)]}
                  for j in range(1 + k % 3)]
        kap = round(sum(e["kap_gycm2"] for e in events), 4)
        study(dx, exam="dx-chest", description="XR CHEST", modality_type="radiography", date=date, age=40.0,
              kap=kap, events=events)
        records.append({"unit": dx.pk, "exam": "dx-chest", "date": date, "age": 40.0, "weight": None,
                        "unconfirmed": False, "demo": False, "kap_total_gycm2": kap, "events": events})
    return records


def _values(records, row: dict, band: rules.Band, period: tuple[dt.date, dt.date], *, unconfirmed: bool,
            include_demo: bool = False, site: SiteSettings | None = None):
    """(values, studies contributing) of the row's quantity, as the comparison defines them (``site``: its
    standard-size option for the adult group)."""
    values, studies = [], 0
    for r in records:
        if (r["unit"] != row["equipment_id"] or r["exam"] != row["standard_exam"] or (r["demo"] and not include_demo)
                or r["unconfirmed"] != unconfirmed or not period[0] <= r["date"] <= period[1]
                or not rules.in_band(band, r["age"], r["weight"])):
            continue
        if (site is not None and site.drl_standard_size and band.is_adult
                and not rules.in_standard_size(r["weight"], site.drl_weight_min_kg, site.drl_weight_max_kg)):
            continue
        if row["per"] == rules.PER_EXAMINATION:
            found = [r[row["quantity"]]] if r.get(row["quantity"]) is not None else []
        else:
            column = rules.value_column(row["quantity"], row["per"])
            synonyms = rules.VIEW_SYNONYMS[row["view"]] if row["view"] else None
            found = [e[column] for e in r["events"] if e.get(column) is not None and e.get("is_current", True)
                     and not e.get("is_localizer") and (synonyms is None or e.get("view", "").upper() in synonyms)]
        values += found
        studies += bool(found)
    return sorted(values), studies


def _bands() -> dict[str, rules.Band]:
    bands = {"adult": rules.Band("adult")}
    for entry in DrlEntry.objects.filter(drl_set__active=True).exclude(patient_group="adult"):
        bands[entry.patient_group] = entry_band(entry)
    return bands


@pytest.mark.parametrize("standard_size, include_demo, one_unit", [(False, False, False), (True, True, False),
                                                                   (True, False, True)])
def test_every_figure_of_every_row(registry, standard_size, include_demo, one_unit):
    site = SiteSettings.load()
    site.drl_standard_size, site.drl_weight_min_kg, site.drl_weight_max_kg = standard_size, 60.0, 85.0
    site.save()
    equipment_id = registry[0]["unit"] if one_unit else None
    run = drl_comparison_run(period_start=YEAR[0], period_end=YEAR[1], include_demo=include_demo,
                             equipment_id=equipment_id)
    rows = list(run.rows.select_related("standard_exam").all())
    assert {r.equipment_id for r in rows} == ({equipment_id} if one_unit else {r["unit"] for r in registry})
    bands, previous = _bands(), previous_period(*YEAR)
    seen = set()
    for r in rows:
        row = {"equipment_id": r.equipment_id, "standard_exam": r.exam_code, "quantity": r.quantity, "per": r.per,
               "view": r.view}
        band = bands[r.patient_group]
        how = {"include_demo": include_demo, "site": site}
        values, n_studies = _values(registry, row, band, YEAR, unconfirmed=False, **how)
        _, n_unconfirmed = _values(registry, row, band, YEAR, unconfirmed=True, **how)
        before, _ = _values(registry, row, band, previous, unconfirmed=False, **how)
        assert r.size_filter == (standard_size and band.is_adult)
        where = (r.equipment_name, r.exam_code, r.patient_group, r.quantity, r.per, r.view)
        assert (r.n, r.n_studies, r.n_unconfirmed) == (len(values), n_studies, n_unconfirmed), where
        if values:
            assert r.median == pytest.approx(statistics.median(values), rel=1e-12), where
            assert r.p25 == pytest.approx(rules.percentile_cont(values, 0.25), rel=1e-12), where
            assert r.p75 == pytest.approx(rules.percentile_cont(values, 0.75), rel=1e-12), where
            assert r.mean == pytest.approx(statistics.fmean(values), rel=1e-12), where
            assert (r.minimum, r.maximum) == (values[0], values[-1]), where
        else:
            assert (r.median, r.p25, r.p75, r.mean, r.minimum, r.maximum) == (None,) * 6, where
        assert r.previous_median == (pytest.approx(statistics.median(before), rel=1e-12) if before else None), where
        seen.add((r.patient_group, r.quantity, r.per, r.view, bool(values), bool(before), bool(n_unconfirmed)))
    groups = {g for g, *_ in seen}
    assert {"adult", "child 5-15 kg", "child 30-50 kg", "child 6-18 y"} <= groups  # weight and age bands
    if not one_unit:
        assert {v for _, _, _, v, *_ in seen} >= {"PA", "LAT"}  # per radiograph of a view (LL counts as LAT)
    assert "ct-qa-phantom" not in {r.exam_code for r in rows}
    assert any(s[2] == "acquisition" and s[4] and s[5] and s[6] for s in seen)  # all three figures on one row


def _requests() -> list[FiguresRequest]:
    """Requests of every kind: per examination and per acquisition, per radiograph of a view, every patient group,
    and one without examinations (the last of the adult ones)."""
    exams = {code: pk for code, pk in
             Study.objects.filter(standard_exam__isnull=False).values_list("standard_exam__code", "standard_exam_id")}
    bands = _bands()
    ct = tuple(sorted(exams[c] for c in CT_EXAMS))
    requests = [FiguresRequest(bands["adult"], "dlp_total_mgycm", "examination", ct),
                FiguresRequest(bands["adult"], "ctdivol_mgy", "acquisition", ct),
                FiguresRequest(bands["adult"], "kap_total_gycm2", "examination", (exams["dx-chest"],)),
                FiguresRequest(bands["adult"], "kap_total_gycm2", "acquisition", (exams["dx-chest"],), "LAT"),
                FiguresRequest(bands["adult"], "kap_total_gycm2", "acquisition", (exams["dx-chest"],), "AP/PA"),
                FiguresRequest(bands["adult"], "ctdivol_mgy", "acquisition", ())]
    return requests + [FiguresRequest(band, quantity, per, ct) for label, band in bands.items() if label != "adult"
                       for quantity, per in (("dlp_total_mgycm", "examination"), ("ctdivol_mgy", "acquisition"))]


def test_one_pass_equals_the_separate_queries(registry):
    scope = Scope(*YEAR)
    previous = Scope(*previous_period(*YEAR))
    requests = _requests()
    empty = next(r for r in requests if not r.exam_ids)
    figures = drl_comparison_figures(scope, previous, requests)
    assert figures[empty] == {}  # no examination, no figures
    checked = 0
    for request in requests:
        args = (request.band, request.quantity, request.per, list(request.exam_ids))
        current = drl_aggregates(scope, *args, view=request.view)
        before = drl_aggregates(previous, *args, view=request.view)
        left_out = drl_unconfirmed_counts(scope, *args, view=request.view)
        got = figures[request]
        assert {k for k, f in got.items() if f.stats.n} == set(current)
        assert {k: f.n_unconfirmed for k, f in got.items() if f.n_unconfirmed} == left_out
        for key, stats in current.items():
            mine = got[key].stats
            assert (mine.n, mine.n_studies, mine.minimum, mine.maximum) == (stats.n, stats.n_studies,
                                                                          stats.minimum, stats.maximum)
            for name in ("median", "p25", "p75", "mean"):
                assert getattr(mine, name) == pytest.approx(getattr(stats, name), rel=1e-12), (request, key, name)
            checked += 1
        for key in {*current, *before}:
            expected = before[key].median if key in before else None
            assert (got[key].previous_median if key in got else None) == (
                pytest.approx(expected, rel=1e-12) if expected is not None else None)
    assert checked > 20


def _backends() -> int:
    """Connections to this database other than this one (a connection closed leaves within a moment)."""
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> "
                    "pg_backend_pid()")
        return cur.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_values_per_acquisition_asked_side_by_side(registry, monkeypatch):
    """PostgreSQL, outside a transaction: the values per acquisition are asked in a second thread on a connection of
    its own while this one asks the values per examination.  The figures are those asked one after the other; the
    second connection is closed afterwards; its error is raised here."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite asks the separate queries, in this thread")
    scope, previous, requests = Scope(*YEAR), Scope(*previous_period(*YEAR)), _requests()
    lanes = []
    figures_of = selectors._figures_of

    def noted(scope, previous_scope, values):
        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            lanes.append((threading.current_thread().name, {rs[0].per for rs in values}, cur.fetchone()[0]))
        return figures_of(scope, previous_scope, values)

    monkeypatch.setattr(selectors, "_figures_of", noted)
    before = _backends()
    together = drl_comparison_figures(scope, previous, requests)
    for _ in range(100):
        if _backends() == before:
            break
        time.sleep(0.02)
    assert _backends() == before  # the second thread's connection is gone
    names = {name for name, _, _ in lanes}
    assert len(lanes) == 2 and len(names) == 2 and len({pid for _, _, pid in lanes}) == 2
    assert {(name == threading.current_thread().name, frozenset(per)) for name, per, _ in lanes} == {
        (False, frozenset({"acquisition"})), (True, frozenset({"examination"}))}
    lanes.clear()
    apart = drl_comparison_figures(scope, previous, requests, side_by_side=False)
    assert len(lanes) == 1 and lanes[0][0] == threading.current_thread().name
    assert together.keys() == apart.keys()
    for request, by_key in apart.items():
        assert together[request].keys() == by_key.keys(), request
        for key, expected in by_key.items():
            got = together[request][key]
            assert (got.stats.n, got.stats.n_studies, got.n_unconfirmed) == (
                expected.stats.n, expected.stats.n_studies, expected.n_unconfirmed)
            for name in ("median", "p25", "p75", "mean", "minimum", "maximum"):
                want = getattr(expected.stats, name)
                assert getattr(got.stats, name) == (pytest.approx(want, rel=1e-12) if want is not None else None)
            assert got.previous_median == (pytest.approx(expected.previous_median, rel=1e-12)
                                           if expected.previous_median is not None else None)
    assert sum(len(v) for v in apart.values()) > 20

    figures_sql = selectors._figures_sql

    def failing(scope, previous_scope, wanted):
        if wanted[0].per == "acquisition":
            raise ValueError("the second lane failed")
        return figures_sql(scope, previous_scope, wanted)

    monkeypatch.setattr(selectors, "_figures_sql", failing)
    with pytest.raises(ValueError, match="second lane failed"):
        drl_comparison_figures(scope, previous, requests)
