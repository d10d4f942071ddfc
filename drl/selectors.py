"""Aggregates for the DRL comparison, computed in the database.

PostgreSQL: one ``GROUP BY unit, examination`` query with ``percentile_cont(ARRAY[.25,.5,.75]) WITHIN GROUP``; the
comparison asks ``drl_comparison_figures``, one query per value for all its patient groups, both periods and the
studies awaiting confirmation (FILTER clauses), instead of three per group; it groups by hashing, gathers each
group's values into an array and takes the percentiles per array (no sort of every value of every group).  The values
per acquisition (their studies joined to their events) are asked in a second thread, on a connection of its own,
while the values per examination are asked in this one.
SQLite (the embedded mode) has no ordered-set aggregates: a window query numbers each group's values in order
(``ROW_NUMBER() OVER (PARTITION BY ... ORDER BY value)``) and returns only the order statistics the percentiles need
(at most eight rows per group); the interpolation between them is the one ``percentile_cont`` does.  No query
brings every value into Python.  Studies whose values await confirmation (``Study.values_unconfirmed``) are left out
of the aggregates and counted apart.

Also the read-only views of drl's data: the DRL entries in force, a study's position against its DRL, a snapshot's
rows in the ``drl_report`` shape, and the unmapped names with suggestions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import json
import re
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from django.db import connection, connections, transaction
from django.db.models import Count, Q

from dosereg.core.quantities import DRL_QUANTITIES, QUANTITIES
from dosereg.registry.models import IrradiationEvent, StandardExam, Study
from drl.comparison import (
    ADULT_AGE_YEARS,
    PER_ACQUISITION,
    PER_EXAMINATION,
    VIEW_SYNONYMS,
    Band,
    in_band,
    percentile_positions,
    ratio,
    value_column,
)
from drl.models import DrlComparison, DrlEntry, DueComparison

DATA_DIR = Path(__file__).resolve().parent / "data"

PERCENTILES = (0.25, 0.5, 0.75)
# Settings of the comparison's transaction on PostgreSQL (SET LOCAL), measured with bench/drl.py at 3 million studies
# and 12 million events (issue #14): JIT compiling each big query (inlining, optimisation) cost about 2 s and gained
# nothing.  work_mem 64 MB: the hashed grouping of ``_figures_sql`` keeps each group's values in memory (about
# 100 MB for 7 million acquisitions in 4 MB pieces spilled to disk otherwise).  No hash join: joining 9.6 million
# acquisitions to 1.8 million studies through a hash table cost 8 s (its probes miss the cache); a merge join
# along the event index's study order (event_drl_value_idx) took 3.5 s.  A narrow scope (one unit, a few months)
# still gets nested-loop index look-ups.
COMPARISON_SETTINGS = {"jit": "off", "work_mem": "64MB", "enable_hashjoin": "off"}
# Measured again at 3 million studies and 9.6 million events (bench/drl.py --studies 3000000 --ct-events 4, database
# bench_drl3m; 2 cores at load 3-5, issue #14): the comparison 23-28 s, of which the per-acquisition query 15-18 s
# (EXPLAIN ANALYZE: studies read and tagged by two parallel workers 3.8 s, sorted by id 1.9 s spilling 90 MB, the
# event index 3.7 s, merge join 2.5 s, hashed grouping 4.5 s, distinct study counts 1.4 s, percentiles 2.1 s), DLP
# per examination 4.7 s, KAP 2 s, drl_groups 1.5-2 s.  Reading the event index alone costs more than 3 s there, so
# no plan that joins every acquisition to its study gets the comparison under 3 s on that machine.  Tried there and
# not kept: patient classes grouped before tagging (5.0 -> 5.4-6.9 s per examination, 23 -> 26-30 s per acquisition:
# the grouping runs in one process where the tagging runs in the workers); counting a study once by row_number()
# over the event index (+4.3 s); a hash join (31 s); a covering index in study id order (the planner keeps the sort;
# forced, 16.9 s against 14.6 s); partial aggregation in the workers with an array aggregate that combines
# (array_append, array_cat: 20.8 s, each worker reads every study); work_mem 256 MB (the sort in memory, 11.4 ->
# 11.0 s, within the noise); grouping by period and confirmation instead of FILTERs (14.6 -> 13.4 s).
# On a quieter machine (2026-12-07; 3 million studies, 7.2 million events, load 1.8-2.7) the comparison took 9.9-11.5 s
# (medians 10.5, 11.1): per acquisition 5.7-7.2 s, DLP 2.1-2.4 s, KAP 1.1-1.3 s, the groups 0.75 s.  With the values
# per acquisition asked side by side with the others (``_side_by_side``): 7.7-10.3 s (medians 8.7, 8.8).
# At 3 million studies and 12 million events (--ct-events 5: 9.6 million acquisitions; 2026-12-07, load 1-2): 11.9-12.7
# s (medians 12.35, 12.09), the per-acquisition query the longest lane alone (EXPLAIN ANALYZE 12.2 s: studies read and
# tagged 1.3 s, sorted 0.9 s, the event index 2.2 s, merge join to 6.6 s, grouping to 8.9 s, distinct study counts
# 1.2 s, percentiles 2.1 s); DLP per examination 3.1-3.4 s, KAP 1.2-1.4 s and the groups 0.6 s in the other lane.
# Tried there and not kept: each study's values gathered into an array before the join and its first value counting
# the study (11.9 s against 12.2 s: the grouping of the events by study cost what the distinct counts saved).


@dataclass(frozen=True)
class Scope:
    """What a comparison looks at: the period (inclusive), demo studies or not, one unit or all, the weight band."""

    period_start: dt.date
    period_end: dt.date
    include_demo: bool = False
    equipment_id: int | None = None
    standard_size: bool = False
    weight_min_kg: float = 50.0
    weight_max_kg: float = 90.0


@dataclass
class Stats:
    n: int = 0
    n_studies: int = 0
    median: float | None = None
    p25: float | None = None
    p75: float | None = None
    mean: float | None = None
    minimum: float | None = None
    maximum: float | None = None


def _where(scope: Scope, band: Band, exam_ids: list[int] | None, *,
           unconfirmed: bool | None = False) -> tuple[list[str], list]:
    """SQL conditions on the study ``s``; ``unconfirmed``: only studies whose values await confirmation (True),
    only the others (False), or both (None)."""
    conds, params = _scope_where(scope, unconfirmed=unconfirmed)
    band_conds, band_params = _band_where(scope, band, exam_ids)
    return conds + band_conds, params + band_params


def _scope_where(scope: Scope, *, unconfirmed: bool | None) -> tuple[list[str], list]:
    """The conditions of ``_where`` that do not depend on the patient group or the examinations."""
    # "not for DRL" examinations (radiotherapy planning, QA, phantom, research) never enter a median; their ids as
    # constants (a few), not a sub-query probed for every study (about 1 microsecond a study at 3 million)
    not_for_drl = list(StandardExam.objects.filter(not_for_drl=True).order_by("pk").values_list("pk", flat=True))
    conds = ["s.standard_exam_id IS NOT NULL", "s.equipment_id IS NOT NULL", "s.study_date >= %s",
             "s.study_date <= %s"]
    params: list = [scope.period_start, scope.period_end]
    if not_for_drl:
        conds.insert(1, f"s.standard_exam_id NOT IN ({', '.join(['%s'] * len(not_for_drl))})")
        params[:0] = not_for_drl
    if unconfirmed is not None:
        conds.append("s.values_unconfirmed = %s")
        params.append(unconfirmed)
    if not scope.include_demo:
        conds.append("s.demo = %s")
        params.append(False)
    if scope.equipment_id is not None:
        conds.append("s.equipment_id = %s")
        params.append(scope.equipment_id)
    return conds, params


def _band_where(scope: Scope, band: Band, exam_ids: list[int] | None) -> tuple[list[str], list]:
    """The conditions of ``_where`` on the examination and the patient group."""
    conds: list[str] = []
    params: list = []
    if exam_ids is not None:
        conds.append(f"s.standard_exam_id IN ({', '.join(['%s'] * len(exam_ids))})")
        params.extend(exam_ids)
    if band.is_adult:
        conds.append("(s.age_years IS NULL OR s.age_years >= %s)")
        params.append(ADULT_AGE_YEARS)
        if scope.standard_size:
            conds.append("s.weight_kg IS NOT NULL AND s.weight_kg >= %s AND s.weight_kg <= %s")
            params.extend([scope.weight_min_kg, scope.weight_max_kg])
    else:
        for column, lo, hi in (("age_years", band.age_min, band.age_max),
                               ("weight_kg", band.weight_min, band.weight_max)):
            if lo is not None:
                conds.append(f"s.{column} >= %s")
                params.append(lo)
            if hi is not None:
                conds.append(f"s.{column} < %s")
                params.append(hi)
    return conds, params


def _source(quantity: str, per: str) -> tuple[str, str]:
    """(FROM clause, value expression) for a quantity compared per examination or per acquisition."""
    column = value_column(quantity, per)
    if column is None:
        raise ValueError(f"{quantity} per {per} is not comparable")
    study_table = Study._meta.db_table
    if per == PER_EXAMINATION:
        return f"{study_table} s", f"s.{column}"
    event_table = IrradiationEvent._meta.db_table
    # per acquisition: current events only, localizers left out (ICRP 135; CTDIvol per sequence)
    return (f"{study_table} s JOIN {event_table} e ON e.study_id = s.id AND e.is_current = %s "
            f"AND e.is_localizer = %s", f"e.{column}")


def drl_groups(scope: Scope, *bands: Band) -> dict[tuple[int, int], tuple[int, ...]]:
    """(equipment_id, standard_exam_id) -> number of studies in scope (with or without values, confirmed or not) in
    each patient group, in the order given; one pass over the studies for all groups."""
    conds, params = _scope_where(scope, unconfirmed=None)
    counts, either, count_params, either_params = [], [], [], []
    for band in bands:
        band_conds, band_params = _band_where(scope, band, None)
        counts.append(f"COUNT(*) FILTER (WHERE {' AND '.join(band_conds)})")
        either.append(f"({' AND '.join(band_conds)})")
        count_params += band_params
        either_params += band_params
    sql = (f"SELECT s.equipment_id, s.standard_exam_id, {', '.join(counts)} FROM {Study._meta.db_table} s "
           f"WHERE {' AND '.join(conds)} AND ({' OR '.join(either)}) GROUP BY s.equipment_id, s.standard_exam_id")
    with connection.cursor() as cur:
        cur.execute(sql, count_params + params + either_params)
        return {(eq, ex): tuple(n) for eq, ex, *n in cur.fetchall()}


@dataclass(frozen=True)
class _Query:
    from_clause: str
    value: str
    where: str
    params: list
    n_studies: str


Thickness = tuple[float | None, float | None]  # compressed breast thickness band, mm (lower incl., upper excl.)
NO_THICKNESS: Thickness = (None, None)


def _subset_where(per: str, view: str, thickness: Thickness) -> tuple[str, list]:
    """The event conditions of a DRL per radiograph of one projection and/or one compressed-breast-thickness band
    (`` AND ...`` on the joined events ``e``, with its parameters); "" for every event."""
    if not view and thickness == NO_THICKNESS:
        return "", []
    if per != PER_ACQUISITION:
        raise ValueError("a view or a thickness band is compared per acquisition (per image) only")
    sql, params = "", []
    if view:  # only events whose View Position is that projection
        synonyms = VIEW_SYNONYMS[view]
        sql += f" AND UPPER(e.view) IN ({', '.join(['%s'] * len(synonyms))})"
        params += list(synonyms)
    lo, hi = thickness
    if lo is not None:
        sql += " AND e.compression_thickness_mm >= %s"
        params.append(lo)
    if hi is not None:
        sql += " AND e.compression_thickness_mm < %s"
        params.append(hi)
    return sql, params


def _query(scope: Scope, band: Band, quantity: str, per: str, exam_ids: list[int] | None, *,
           unconfirmed: bool, view: str = "", thickness: Thickness = NO_THICKNESS) -> _Query:
    from_clause, value = _source(quantity, per)
    conds, where_params = _where(scope, band, exam_ids, unconfirmed=unconfirmed)
    conds.append(f"{value} IS NOT NULL")
    subset, subset_params = _subset_where(per, view, thickness)
    where = " AND ".join(conds) + subset
    params: list = ([True, False] if per == PER_ACQUISITION else []) + where_params + subset_params
    n_studies = "COUNT(DISTINCT s.id)" if per == PER_ACQUISITION else "COUNT(*)"
    return _Query(from_clause, value, where, params, n_studies)


def drl_aggregates(scope: Scope, band: Band, quantity: str, per: str, exam_ids: list[int] | None = None, *,
                   view: str = "", thickness: Thickness = NO_THICKNESS) -> dict[tuple[int, int], Stats]:
    """Per (equipment_id, standard_exam_id): n, studies, median, p25, p75, mean, min, max of the quantity, over the
    studies whose values are confirmed; ``view``: per radiograph, only the events of that projection;
    ``thickness``: per image, only the events whose compressed breast thickness is in the band."""
    if exam_ids is not None and not exam_ids:
        return {}
    q = _query(scope, band, quantity, per, exam_ids, unconfirmed=False, view=view, thickness=thickness)
    if connection.vendor != "postgresql":
        return _aggregates_windowed(q.from_clause, q.value, q.where, q.params, q.n_studies)
    value = q.value
    sql = (f"SELECT s.equipment_id, s.standard_exam_id, COUNT(*), {q.n_studies}, AVG({value}), MIN({value}), "
           f"MAX({value}), percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY {value}) "
           f"FROM {q.from_clause} WHERE {q.where} GROUP BY s.equipment_id, s.standard_exam_id")
    out = {}
    with connection.cursor() as cur:
        cur.execute(sql, q.params)
        for eq, ex, n, ns, mean, lo, hi, pcts in cur.fetchall():
            out[(eq, ex)] = Stats(n=n, n_studies=ns, mean=mean, minimum=lo, maximum=hi,
                                  p25=pcts[0], median=pcts[1], p75=pcts[2])
    return out


def drl_unconfirmed_counts(scope: Scope, band: Band, quantity: str, per: str, exam_ids: list[int] | None = None, *,
                           view: str = "", thickness: Thickness = NO_THICKNESS) -> dict[tuple[int, int], int]:
    """Per (equipment_id, standard_exam_id): the studies with a value of the quantity that the aggregates leave out
    because their values await confirmation."""
    if exam_ids is not None and not exam_ids:
        return {}
    q = _query(scope, band, quantity, per, exam_ids, unconfirmed=True, view=view, thickness=thickness)
    sql = (f"SELECT s.equipment_id, s.standard_exam_id, COUNT(DISTINCT s.id) FROM {q.from_clause} WHERE {q.where} "
           f"GROUP BY s.equipment_id, s.standard_exam_id")
    with connection.cursor() as cur:
        cur.execute(sql, q.params)
        return {(eq, ex): n for eq, ex, n in cur.fetchall()}


@dataclass(frozen=True)
class FiguresRequest:
    """What one set of comparison rows needs: a quantity per examination or acquisition (per radiograph of one
    ``view``, of one compressed-breast-``thickness`` band) for a patient group and some examinations."""

    band: Band
    quantity: str
    per: str
    exam_ids: tuple[int, ...]
    view: str = ""
    thickness: Thickness = NO_THICKNESS


@dataclass
class Figures:
    """One unit and examination's figures in a comparison: the statistics over the period's confirmed studies, the
    studies left out because their values await confirmation, and the previous period's median."""

    stats: Stats
    n_unconfirmed: int = 0
    previous_median: float | None = None


def drl_comparison_figures(scope: Scope, previous_scope: Scope, requests: list[FiguresRequest], *,
                           side_by_side: bool = True) -> dict[FiguresRequest, dict[tuple[int, int], Figures]]:
    """Per request, per (equipment_id, standard_exam_id): ``drl_aggregates`` over ``scope``, ``drl_unconfirmed_counts``
    and the median of ``drl_aggregates`` over ``previous_scope`` (the same scope over another period).

    PostgreSQL: one query per value (quantity, per, view, thickness band) for every patient group and both periods:
    the studies (and for a value per acquisition, their events) are read once, where a query per group, period and
    count read them about thirty times.  ``side_by_side``: the values per acquisition are asked on a connection of
    their own, in a second thread, while this one asks the values per examination (``_side_by_side``)."""
    if connection.vendor != "postgresql":
        return {r: _figures_apart(scope, previous_scope, r) for r in requests}
    by_value: dict[tuple, list[FiguresRequest]] = defaultdict(list)
    for r in requests:
        if r.exam_ids:
            by_value[(r.quantity, r.per, r.view, r.thickness)].append(r)
    lanes = [[rs for rs in by_value.values() if rs[0].per == PER_ACQUISITION],
             [rs for rs in by_value.values() if rs[0].per != PER_ACQUISITION]]
    lanes = [lane for lane in lanes if lane]
    out: dict[FiguresRequest, dict[tuple[int, int], Figures]] = {r: {} for r in requests}
    if side_by_side and len(lanes) == 2 and not connection.in_atomic_block:
        found = _side_by_side(scope, previous_scope, lanes)
    else:
        found = _figures_of(scope, previous_scope, [values for lane in lanes for values in lane])
    for request, key, figures in found:
        out[request][key] = figures
    return out


def _side_by_side(scope: Scope, previous_scope: Scope, lanes: list[list[list[FiguresRequest]]]) -> list[tuple]:
    """The first lane's queries in a second thread, on its own connection (closed when it is done), the second
    lane's here.  Most of a query's time is spent in one server process (grouping, sorting, percentiles) while the
    scans share the other cores: at 3 million studies the join of acquisitions to their studies alone took as long
    as all the values per examination.  Each query sees its own snapshot, as it does in one transaction at READ
    COMMITTED; not inside a caller's transaction, whose rows another connection would not see."""
    there: dict[str, list | BaseException] = {}

    def first_lane():
        try:
            there["found"] = _figures_of(scope, previous_scope, lanes[0])
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            there["error"] = exc
        finally:
            connections.close_all()  # this thread's own connection

    thread = threading.Thread(target=first_lane, name="drl-figures", daemon=True)
    thread.start()
    try:
        here = _figures_of(scope, previous_scope, lanes[1])
    finally:
        thread.join()
    if "error" in there:
        raise there["error"]
    return there["found"] + here


def _figures_of(scope: Scope, previous_scope: Scope, values: list[list[FiguresRequest]]) -> list[tuple]:
    """(request, (equipment_id, standard_exam_id), Figures) of each value's requests, one query per value, in one
    transaction with the comparison's settings on this thread's connection."""
    found = []
    with transaction.atomic(), connection.cursor() as cur:
        for name, value in COMPARISON_SETTINGS.items():  # SET LOCAL: this transaction only
            cur.execute("SELECT set_config(%s, %s, true)", [name, value])
        for wanted in values:
            sql, params = _figures_sql(scope, previous_scope, wanted)
            cur.execute(sql, params)
            for k, eq, ex, n, ns, mean, lo, hi, pcts, n_unconfirmed, previous_median in cur.fetchall():
                pcts = pcts or [None, None, None]
                found.append((wanted[k], (eq, ex), Figures(
                    Stats(n=n, n_studies=ns, mean=mean, minimum=lo, maximum=hi, p25=pcts[0], median=pcts[1],
                          p75=pcts[2]), n_unconfirmed=n_unconfirmed, previous_median=previous_median)))
    return found


def _figures_apart(scope: Scope, previous_scope: Scope, r: FiguresRequest) -> dict[tuple[int, int], Figures]:
    """One request by the three separate queries (SQLite: no ordered-set aggregates and no FILTER on them)."""
    exam_ids = list(r.exam_ids)
    subset = {"view": r.view, "thickness": r.thickness}
    current = drl_aggregates(scope, r.band, r.quantity, r.per, exam_ids, **subset)
    previous = drl_aggregates(previous_scope, r.band, r.quantity, r.per, exam_ids, **subset)
    left_out = drl_unconfirmed_counts(scope, r.band, r.quantity, r.per, exam_ids, **subset)
    return {key: Figures(current.get(key, Stats()), n_unconfirmed=left_out.get(key, 0),
                         previous_median=previous[key].median if key in previous else None)
            for key in {*current, *previous, *left_out}}


def _figures_sql(scope: Scope, previous_scope: Scope, requests: list[FiguresRequest]) -> tuple[str, list]:
    """The one query of ``drl_comparison_figures`` for requests of one value: the values of both periods, each with
    the request it counts for, grouped by request, unit and examination; FILTERs split the periods and the studies
    awaiting confirmation."""
    first = requests[0]
    column = value_column(first.quantity, first.per)
    if column is None:
        raise ValueError(f"{first.quantity} per {first.per} is not comparable")
    per_exam = first.per == PER_EXAMINATION
    studies, params = _tagged_studies(scope, previous_scope, requests,
                                      f"s.{column} AS v" if per_exam else "s.id AS study_id")
    if per_exam:
        rows = f"SELECT s.* FROM ({studies}) s WHERE s.v IS NOT NULL"
    else:  # per acquisition: current events only, localizers left out, as in _source
        subset, subset_params = _subset_where(first.per, first.view, first.thickness)
        rows = (f"SELECT s.k, s.equipment_id, s.standard_exam_id, s.values_unconfirmed, s.in_current, "
                f"s.in_previous, s.study_id, e.{column} AS v FROM ({studies}) s "
                f"JOIN {IrradiationEvent._meta.db_table} e ON e.study_id = s.study_id AND e.is_current = %s "
                f"AND e.is_localizer = %s AND e.{column} IS NOT NULL{subset}")
        params += [True, False, *subset_params]
    current, unconfirmed = "in_current AND NOT values_unconfirmed", "in_current AND values_unconfirmed"
    # Grouped by hashing, each group's values gathered into arrays, the percentiles then taken over each array: an
    # ordered-set aggregate (or COUNT(DISTINCT)) would make PostgreSQL sort every value of every group first, which
    # at millions of acquisitions spilled to disk and took most of the comparison's time.  A study counts once
    # however many acquisitions it has: per acquisition its ids are gathered too and counted distinct per group.
    if per_exam:
        n_studies, n_unconfirmed, ids = "n", "n_unconfirmed", ""
    else:
        n_studies = "(SELECT COUNT(DISTINCT x) FROM unnest(ids) x)"
        n_unconfirmed = "(SELECT COUNT(DISTINCT x) FROM unnest(unconfirmed_ids) x)"
        ids = (f"array_agg(study_id) FILTER (WHERE {current}) AS ids, "
               f"array_agg(study_id) FILTER (WHERE {unconfirmed}) AS unconfirmed_ids, ")
    sql = (f"SELECT k, equipment_id, standard_exam_id, n, {n_studies}, mean, lo, hi, "
           f"(SELECT percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY x) FROM unnest(vs) x), "
           f"{n_unconfirmed}, (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(previous_vs) x) "
           f"FROM (SELECT k, equipment_id, standard_exam_id, COUNT(*) FILTER (WHERE {current}) AS n, "
           f"AVG(v) FILTER (WHERE {current}) AS mean, MIN(v) FILTER (WHERE {current}) AS lo, "
           f"MAX(v) FILTER (WHERE {current}) AS hi, array_agg(v) FILTER (WHERE {current}) AS vs, {ids}"
           f"COUNT(*) FILTER (WHERE {unconfirmed}) AS n_unconfirmed, "
           f"array_agg(v) FILTER (WHERE in_previous AND NOT values_unconfirmed) AS previous_vs "
           f"FROM ({rows}) r GROUP BY k, equipment_id, standard_exam_id) g")
    return sql, params


def _tagged_studies(scope: Scope, previous_scope: Scope, requests: list[FiguresRequest],
                    column: str) -> tuple[str, list]:
    """The studies in scope over both periods, one row per request each falls in (``k``: the request's index; a
    study can fall in several patient groups), with ``column`` and whether it lies in either period."""
    if dataclasses.replace(previous_scope, period_start=scope.period_start, period_end=scope.period_end) != scope:
        raise ValueError("the previous scope differs from the scope in more than its period")
    both = dataclasses.replace(scope, period_start=min(scope.period_start, previous_scope.period_start),
                               period_end=max(scope.period_end, previous_scope.period_end))
    conds, where_params = _scope_where(both, unconfirmed=None)
    exam_ids = sorted({ex for r in requests for ex in r.exam_ids})
    conds.append(f"s.standard_exam_id IN ({', '.join(['%s'] * len(exam_ids))})")
    tags, params = [], [scope.period_start, scope.period_end, previous_scope.period_start, previous_scope.period_end]
    for k, r in enumerate(requests):
        band_conds, band_params = _band_where(scope, r.band, list(r.exam_ids))
        tags.append(f"CASE WHEN {' AND '.join(band_conds)} THEN {k} END")
        params += band_params
    sql = (f"SELECT s.equipment_id, s.standard_exam_id, s.values_unconfirmed, {column}, "
           f"s.study_date >= %s AND s.study_date <= %s AS in_current, "
           f"s.study_date >= %s AND s.study_date <= %s AS in_previous, "
           f"unnest(array_remove(ARRAY[{', '.join(tags)}], NULL)) AS k "
           f"FROM {Study._meta.db_table} s WHERE {' AND '.join(conds)}")
    return sql, params + where_params + exam_ids


def _aggregates_windowed(from_clause: str, value: str, where: str, params: list, n_studies: str):
    summary_sql = (f"SELECT s.equipment_id, s.standard_exam_id, COUNT(*), {n_studies}, AVG({value}), "
                   f"MIN({value}), MAX({value}) FROM {from_clause} WHERE {where} "
                   f"GROUP BY s.equipment_id, s.standard_exam_id")
    wanted = " OR ".join(f"rn = CAST((cnt - 1) * {p} AS INTEGER) + {k}" for p in PERCENTILES for k in (1, 2))
    order_sql = (f"WITH t AS (SELECT s.equipment_id AS eq, s.standard_exam_id AS ex, {value} AS v, "
                 f"ROW_NUMBER() OVER (PARTITION BY s.equipment_id, s.standard_exam_id ORDER BY {value}) AS rn, "
                 f"COUNT(*) OVER (PARTITION BY s.equipment_id, s.standard_exam_id) AS cnt "
                 f"FROM {from_clause} WHERE {where}) SELECT eq, ex, rn, v FROM t WHERE {wanted}")
    out: dict[tuple[int, int], Stats] = {}
    with connection.cursor() as cur:
        cur.execute(summary_sql, params)
        for eq, ex, n, ns, mean, lo, hi in cur.fetchall():
            out[(eq, ex)] = Stats(n=n, n_studies=ns, mean=mean, minimum=lo, maximum=hi)
        cur.execute(order_sql, params)
        order_stats: dict[tuple[int, int], dict[int, float]] = defaultdict(dict)
        for eq, ex, rn, v in cur.fetchall():
            order_stats[(eq, ex)][rn - 1] = v
    for key, stats in out.items():
        values = order_stats[key]
        pcts = []
        for p in PERCENTILES:
            lo, hi, frac = percentile_positions(stats.n, p)
            pcts.append(values[lo] + frac * (values[hi] - values[lo]))
        stats.p25, stats.median, stats.p75 = pcts
    return out


# --- DRL entries -----------------------------------------------------------------------------------------------------
def drl_entries_in_force() -> dict[tuple[int, str, str, str], DrlEntry]:
    """(exam_id, patient_group, quantity, per) -> the entry of the active set with the lowest priority number
    (entries for every view and thickness; the per-projection or per-band ones are in
    ``drl_view_entries_in_force``)."""
    chosen: dict[tuple[int, str, str, str], DrlEntry] = {}
    for entry in (DrlEntry.objects.filter(drl_set__active=True, view="", thickness_min_mm__isnull=True,
                                          thickness_max_mm__isnull=True).select_related("drl_set")
                  .order_by("drl_set__priority", "drl_set_id", "id")):
        chosen.setdefault((entry.standard_exam_id, entry.patient_group, entry.quantity, entry.per), entry)
    return chosen


def drl_view_entries_in_force() -> dict[tuple, DrlEntry]:
    """(exam_id, patient_group, quantity, per, view, thickness_min_mm, thickness_max_mm) -> the entry in force for
    one radiographic projection and/or compressed-breast-thickness band (a DRL per radiograph of chest PA, per
    mammogram of CC views of 40-<60 mm ...), lowest set priority number first."""
    chosen: dict[tuple, DrlEntry] = {}
    subset = ~Q(view="") | Q(thickness_min_mm__isnull=False) | Q(thickness_max_mm__isnull=False)
    for entry in (DrlEntry.objects.filter(subset, drl_set__active=True).select_related("drl_set")
                  .order_by("drl_set__priority", "drl_set_id", "id")):
        chosen.setdefault((entry.standard_exam_id, entry.patient_group, entry.quantity, entry.per, entry.view,
                           entry.thickness_min_mm, entry.thickness_max_mm), entry)
    return chosen


def entry_band(entry: DrlEntry) -> Band:
    """The patient group an entry applies to."""
    if entry.patient_group == "adult":
        return Band("adult")
    return Band(entry.patient_group, entry.age_min_years, entry.age_max_years, entry.weight_min_kg,
                entry.weight_max_kg)


# --- a study's position against its DRL ----------------------------------------------------------------------------
POSITION_NOTE = "a single study above the DRL is not a breach: DRLs apply to the median of a patient group"


def _position(study: Study, group: str, quantity: str, entry: DrlEntry) -> dict | None:
    column = value_column(quantity, PER_EXAMINATION)
    value = getattr(study, column) if column else None
    if value is None:
        return None
    return {
        "standard_exam": study.standard_exam.code, "exam_name": study.standard_exam.name,
        "patient_group": group, "quantity": quantity, "label": QUANTITIES[column].label,
        "unit": QUANTITIES[quantity].unit_symbol, "per": PER_EXAMINATION, "value": value, "drl": entry.value,
        "ratio": ratio(value, entry.value), "status": "above" if value > entry.value else "below",
        "drl_set": entry.drl_set.name, "source": entry.drl_set.source,
        "verify": bool(entry.verify or entry.drl_set.verify), "unconfirmed": study.values_unconfirmed,
        "note": POSITION_NOTE,
    }


def drl_position(study_id: int) -> dict | None:
    """The study's per-examination value against the DRL of its mapped examination (adult or its band), or None
    when the study is unmapped or no DRL applies.  ``positions`` lists every quantity that has one, in catalogue
    order; ``unconfirmed`` says the study's values await a physicist's confirmation."""
    study = Study.objects.select_related("standard_exam").filter(pk=study_id).first()
    if study is None or study.standard_exam is None:
        return None
    positions = []
    for (ex, group, quantity, per), entry in drl_entries_in_force().items():
        if ex != study.standard_exam_id or per != PER_EXAMINATION:
            continue
        if not in_band(entry_band(entry), study.age_years, study.weight_kg):
            continue
        position = _position(study, group, quantity, entry)
        if position is not None:
            positions.append(position)
    if not positions:
        return None
    positions.sort(key=lambda p: DRL_QUANTITIES.index(p["quantity"]))
    result = dict(positions[0])
    result["positions"] = positions
    return result


# --- snapshots -------------------------------------------------------------------------------------------------------
def drl_report_rows(run: DrlComparison) -> list[dict]:
    """The rows of a snapshot in the ``drl_report`` JSON shape (``quantity``: the catalogue key; ``unit``: its
    unit symbol)."""
    out = []
    for r in run.rows.all().order_by("exam_code", "equipment_name", "patient_group", "quantity", "per", "view",
                                     "thickness_min_mm"):
        out.append({
            "equipment": r.equipment_name, "equipment_id": r.equipment_id, "standard_exam": r.exam_code,
            "patient_group": r.patient_group, "quantity": r.quantity, "unit": r.unit, "per": r.per,
            "view": r.view or None, "thickness_min_mm": r.thickness_min_mm, "thickness_max_mm": r.thickness_max_mm,
            "n": r.n,
            "n_studies": r.n_studies, "median": r.median, "p75": r.p75, "mean": r.mean, "drl": r.drl,
            "drl_set": r.drl_set_name or None, "drl_source": r.drl_source or None, "ratio": r.ratio,
            "status": r.status, "size_filter": r.size_filter, "verify": r.verify,
        })
    return out


def drl_latest_for_year(year: int, *, include_demo: bool = False) -> DrlComparison | None:
    return (DrlComparison.objects.filter(period_start=dt.date(year, 1, 1), period_end=dt.date(year, 12, 31),
                                         equipment__isnull=True, include_demo=include_demo)
            .order_by("-created_at", "-id").first())


# --- due comparisons ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DueUnit:
    """A unit's unresolved due comparisons: one line on the DRL page (``first``: the earliest, whose run covers
    them all)."""

    equipment: object
    since: dt.date
    dues: list
    first: object


def due_by_unit() -> list[DueUnit]:
    """Unresolved due comparisons grouped by unit, the earliest change first within a unit, units by name."""
    per_unit: dict[int, list] = defaultdict(list)
    for due in (DueComparison.objects.filter(resolved_by__isnull=True).select_related("equipment")
                .order_by("since", "id")):
        per_unit[due.equipment_id].append(due)
    units = [DueUnit(dues[0].equipment, dues[0].since, dues, dues[0]) for dues in per_unit.values()]
    return sorted(units, key=lambda u: (u.equipment.display_name, u.equipment.pk))


# --- unmapped names --------------------------------------------------------------------------------------------------
def unmapped_names(limit: int = 200) -> list[dict]:
    """Names of unmapped studies by frequency (grouped in the database), each with the number of units that sent
    it and suggested standard exams."""
    rows = list(Study.objects.filter(standard_exam__isnull=True).values("modality_type", "study_description")
                .annotate(n=Count("id"), units=Count("equipment", distinct=True)).order_by("-n")[:limit])
    exams = list(StandardExam.objects.all())
    examples = _default_examples()
    for row in rows:
        row["name"] = row["study_description"] or ""
        row["suggestions"] = suggest_exams(row["name"], row["modality_type"], exams=exams, examples=examples)
    return rows


def _default_examples() -> dict[str, list[str]]:
    data = json.loads((DATA_DIR / "default_mapping.json").read_text(encoding="utf-8"))
    out: dict[str, list[str]] = defaultdict(list)
    for rule in data["rules"]:
        out[rule["exam"]].extend(rule.get("examples", []))
    return out


def suggest_exams(name: str, modality_type: str, *, exams=None, examples=None, limit: int = 3) -> list[StandardExam]:
    """Standard examinations whose name or known examples look most like ``name`` (same modality type first)."""
    exams = exams if exams is not None else list(StandardExam.objects.all())
    examples = examples if examples is not None else _default_examples()
    words = set(re.findall(r"[a-z]{3,}", name.lower())) - {"with", "without", "contrast", "adult"}
    scored = []
    for exam in exams:
        if modality_type and exam.modality_type != modality_type:
            continue
        candidates = [exam.name, *examples.get(exam.code, [])]
        best = max(difflib.SequenceMatcher(None, name.lower(), c.lower()).ratio() for c in candidates)
        cand_words = set(re.findall(r"[a-z]{3,}", " ".join(candidates).lower()))
        best += 0.3 * len(words & cand_words) / max(len(words), 1)
        scored.append((best, exam))
    scored.sort(key=lambda t: -t[0])
    return [exam for score, exam in scored[:limit] if score > 0.3]
