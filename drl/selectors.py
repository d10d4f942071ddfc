"""Aggregates for the DRL comparison, computed in the database.

PostgreSQL: one ``GROUP BY unit, examination`` query with ``percentile_cont(ARRAY[.25,.5,.75]) WITHIN GROUP``.
SQLite (the embedded mode) has no ordered-set aggregates: a window query numbers each group's values in order
(``ROW_NUMBER() OVER (PARTITION BY ... ORDER BY value)``) and returns only the order statistics the percentiles need
(at most eight rows per group); the interpolation between them is the one ``percentile_cont`` does.  No query
brings every value into Python.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db import connection

from dosereg.registry.models import IrradiationEvent, Study
from drl.comparison import ADULT_AGE_YEARS, Band, percentile_positions, value_column

PERCENTILES = (0.25, 0.5, 0.75)


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


def _where(scope: Scope, band: Band, exam_ids: list[int] | None) -> tuple[list[str], list]:
    conds = ["s.standard_exam_id IS NOT NULL", "s.equipment_id IS NOT NULL", "s.study_date >= %s",
             "s.study_date <= %s"]
    params: list = [scope.period_start, scope.period_end]
    if not scope.include_demo:
        conds.append("s.demo = %s")
        params.append(False)
    if scope.equipment_id is not None:
        conds.append("s.equipment_id = %s")
        params.append(scope.equipment_id)
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
    if per == "examination":
        return f"{study_table} s", f"s.{column}"
    event_table = IrradiationEvent._meta.db_table
    # per acquisition: current events only, localizers left out (ICRP 135; CTDIvol per sequence)
    return (f"{study_table} s JOIN {event_table} e ON e.study_id = s.id AND e.is_current = %s "
            f"AND e.is_localizer = %s", f"e.{column}")


def drl_groups(scope: Scope, band: Band) -> dict[tuple[int, int], int]:
    """(equipment_id, standard_exam_id) -> number of studies in scope (with or without values)."""
    conds, params = _where(scope, band, None)
    sql = (f"SELECT s.equipment_id, s.standard_exam_id, COUNT(*) FROM {Study._meta.db_table} s "
           f"WHERE {' AND '.join(conds)} GROUP BY s.equipment_id, s.standard_exam_id")
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return {(eq, ex): n for eq, ex, n in cur.fetchall()}


def drl_aggregates(scope: Scope, band: Band, quantity: str, per: str,
                   exam_ids: list[int] | None = None) -> dict[tuple[int, int], Stats]:
    """Per (equipment_id, standard_exam_id): n, studies, median, p25, p75, mean, min, max of the quantity."""
    if exam_ids is not None and not exam_ids:
        return {}
    from_clause, value = _source(quantity, per)
    conds, where_params = _where(scope, band, exam_ids)
    conds.append(f"{value} IS NOT NULL")
    params: list = ([True, False] if per == "acquisition" else []) + where_params
    where = " AND ".join(conds)
    n_studies = "COUNT(DISTINCT s.id)" if per == "acquisition" else "COUNT(*)"
    if connection.vendor == "postgresql":
        sql = (f"SELECT s.equipment_id, s.standard_exam_id, COUNT(*), {n_studies}, AVG({value}), MIN({value}), "
               f"MAX({value}), percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY {value}) "
               f"FROM {from_clause} WHERE {where} GROUP BY s.equipment_id, s.standard_exam_id")
        out = {}
        with connection.cursor() as cur:
            cur.execute(sql, params)
            for eq, ex, n, ns, mean, lo, hi, pcts in cur.fetchall():
                out[(eq, ex)] = Stats(n=n, n_studies=ns, mean=mean, minimum=lo, maximum=hi,
                                      p25=pcts[0], median=pcts[1], p75=pcts[2])
        return out
    return _aggregates_windowed(from_clause, value, where, params, n_studies)


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
