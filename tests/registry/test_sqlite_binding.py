"""None and bool query parameters on SQLite: bound through the adapters the registry registers
(``dosereg.registry.apps.sqlite_bind_plainly``), as the very values sqlite3 binds without them."""

from __future__ import annotations

import sqlite3

import pytest
from django.db import connection
from django.db.models import NOT_PROVIDED

from dosereg.registry.services.recording.bulk_sql import _sent_columns, insert_rows


def test_none_and_bool_have_adapters_that_bind_them_as_null_and_integers():
    assert sqlite3.adapters[(type(None), sqlite3.PrepareProtocol)](None) is None
    assert sqlite3.adapters[(bool, sqlite3.PrepareProtocol)] is int


@pytest.mark.django_db
def test_none_and_bool_parameters_are_stored_as_null_and_0_or_1():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's parameter binding")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE bound (a, b, c)")
        cursor.executemany("INSERT INTO bound VALUES (%s, %s, %s)", [[None, True, False], [None, False, True]])
        cursor.execute("SELECT a, typeof(a), b, typeof(b), c, typeof(c) FROM bound ORDER BY rowid")
        assert cursor.fetchall() == [(None, "null", 1, "integer", 0, "integer"),
                                     (None, "null", 0, "integer", 1, "integer")]
        cursor.execute("DROP TABLE bound")


class _Column:
    def __init__(self, name, db_default=NOT_PROVIDED):
        self.name, self.db_default = name, db_default


def test_columns_null_in_every_row_are_left_out_unless_they_have_a_database_default():
    fields = [_Column("a"), _Column("b"), _Column("c"), _Column("d", db_default=0)]
    params = [[1, None, None, None], [2, None, "x", None]]
    sent, rows = _sent_columns(fields, params)
    assert [f.name for f in sent] == ["a", "c", "d"]
    assert [list(row) for row in rows] == [[1, None, None], [2, "x", None]]
    every = [[1, 2, 3, 4]]
    assert _sent_columns(fields, every) == (fields, every)


@pytest.mark.django_db
def test_a_column_left_out_is_stored_null():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's insert")
    from dosereg.registry.models import Patient  # noqa: PLC0415 - a plain table with nullable columns

    rows = [Patient(patient_id=f"p{i}", issuer="", name="", sex="", birth_date=None) for i in range(2)]
    insert_rows(Patient, rows)
    assert list(Patient.objects.filter(patient_id__in=["p0", "p1"]).order_by("patient_id").values_list(
        "patient_id", "birth_date")) == [("p0", None), ("p1", None)]
