"""The patient search by the beginning of an ID: the patients whose ID starts with what was typed (LIKE's wildcards
taken literally), and on PostgreSQL a prefix range on patient_id_prefix_idx (``varchar_pattern_ops``), not a scan
of every patient: under a non-C collation a plain btree cannot serve ``LIKE 'B1798%'`` (bench/web.py, 3 million
patients: 200 ms before the index)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dosereg.web.selectors import patient_search
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def _ids(rows) -> set[str]:
    return {r["patient_id"] for r in rows}


def test_search_finds_the_ids_that_start_with_the_query():
    for pid in ("B1798", "B17981", "B1798-7", "B1799", "A1798", "B17_8", "B17%8"):
        PatientFactory(patient_id=pid, name="")
    assert _ids(patient_search(query="B1798")) == {"B1798", "B17981", "B1798-7"}
    assert _ids(patient_search(query="B17_")) == {"B17_8"}  # "_" is not LIKE's any-character here
    assert _ids(patient_search(query="B17%")) == {"B17%8"}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the operator class is PostgreSQL's")
def test_prefix_search_is_a_range_on_the_pattern_index():
    PatientFactory(patient_id="B1798", name="")
    with CaptureQueriesContext(connection) as ctx:
        patient_search(query="B1798")
    sql = next(q["sql"] for q in ctx.captured_queries
               if "registry_patient" in q["sql"] and "LIKE" in q["sql"] and "registry_study" not in q["sql"])
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")  # a test table is tiny: the planner would read it whole
        cur.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "patient_id_prefix_idx" in plan, plan
    assert "~>=~ 'B1798'" in plan and "~<~ 'B1799'" in plan, plan  # a range of the index, not a filter on it
