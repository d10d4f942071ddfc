"""Writing many rows at once: multi-row INSERT (PostgreSQL: COPY or execute_values), UPDATE ... FROM VALUES, and
SQLite's real bound-parameter limit.  Django's bulk_create spends most of its time compiling one giant SQL text of
20,000 placeholders for a 300-event report; these helpers keep a report to one statement per table."""

from __future__ import annotations

import io
import json
import sqlite3

from django.db import connection, models
from psycopg2.extras import execute_values

COPY_MIN_ROWS = 200  # below this a multi-row INSERT is as quick as COPY

def insert_rows(model, objs: list, *, returning: bool = False) -> None:
    """Insert many rows in one statement (PostgreSQL: COPY, or execute_values; SQLite: executemany of one prepared
    statement).  Django's bulk_create spends most of its time compiling one giant SQL text of 20,000 placeholders
    for a 300-event report.  With ``returning`` each object gets its new primary key (PostgreSQL: ``RETURNING id``,
    rows come back in the order of the VALUES list, as Django's bulk_create also relies on; SQLite: a multi-row
    INSERT ... RETURNING)."""
    if not objs:
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    for f in fields:  # auto_now_add and defaults, as Model.save would
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            for obj in objs:
                f.pre_save(obj, add=True)
    if connection.vendor == "postgresql" and not returning and len(objs) >= COPY_MIN_ROWS:
        with connection.cursor() as cursor:
            _copy_rows(cursor.cursor, connection.ops.quote_name(model._meta.db_table),
                       [connection.ops.quote_name(f.column) for f in fields], fields, objs)
        return
    plain = (models.FloatField, models.BooleanField, models.IntegerField, models.CharField, models.ForeignKey)
    convert = [None if isinstance(f, plain) else f for f in fields]
    attnames = [f.attname for f in fields]
    params = []
    for obj in objs:
        values = []
        for attname, conv in zip(attnames, convert, strict=True):
            value = getattr(obj, attname)
            values.append(value if conv is None else conv.get_db_prep_save(value, connection))
        params.append(values)
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    head = f"INSERT INTO {qn(model._meta.db_table)} ({columns}) VALUES "
    pk = model._meta.pk
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if returning:
                ids = execute_values(cursor.cursor, head + "%s RETURNING " + qn(pk.column), params, page_size=1000,
                                     fetch=True)
                for obj, (new_id,) in zip(objs, ids, strict=True):
                    setattr(obj, pk.attname, new_id)
            else:
                execute_values(cursor.cursor, head + "%s", params, page_size=1000)
        elif returning:
            _insert_returning_sqlite(cursor, head, objs, params, pk)
        else:
            cursor.executemany(head + "(" + ", ".join(["%s"] * len(fields)) + ")", params)
    if returning:
        for obj in objs:
            obj._state.adding, obj._state.db = False, connection.alias


def _insert_returning_sqlite(cursor, head: str, objs: list, params: list[list], pk) -> None:
    """SQLite >= 3.35: one multi-row INSERT ... RETURNING per chunk the bound-parameter limit allows; rows come back
    in the order of the VALUES list, as Django's bulk_create on SQLite relies on too."""
    width = len(params[0])
    one = "(" + ", ".join(["%s"] * width) + ")"
    step = max(1, connection.features.max_query_params // max(1, width))
    for start in range(0, len(objs), step):
        chunk = params[start:start + step]
        cursor.execute(head + ", ".join([one] * len(chunk)) + " RETURNING " + connection.ops.quote_name(pk.column),
                       [v for values in chunk for v in values])
        for obj, (new_id,) in zip(objs[start:start + step], cursor.fetchall(), strict=True):
            setattr(obj, pk.attname, new_id)


def update_rows(model, objs: list, field_names: list[str]) -> None:
    """Update these fields of many rows.  PostgreSQL: one ``UPDATE ... FROM (VALUES ...)`` per 1,000 rows (Django's
    bulk_update builds a CASE expression per field and row, which costs seconds for a few hundred rows); elsewhere
    bulk_update."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objs, field_names, batch_size=500)
        return
    qn = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in field_names]
    pk = model._meta.pk
    sets = ", ".join(f"{qn(f.column)} = v.{qn(f.column)}::{f.db_type(connection)}" for f in fields)
    names = ", ".join([qn(pk.column)] + [qn(f.column) for f in fields])
    sql = (f"UPDATE {qn(model._meta.db_table)} AS t SET {sets} FROM (VALUES %s) AS v ({names}) "
           f"WHERE t.{qn(pk.column)} = v.{qn(pk.column)}")
    params = [[obj.pk] + [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields] for obj in objs]
    with connection.cursor() as cursor:
        execute_values(cursor.cursor, sql, params, page_size=1000)



_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_rows(cursor, table: str, columns: list[str], fields: list, objs: list) -> None:
    """PostgreSQL COPY FROM STDIN in the text format: the fastest way to load many rows (no SQL to parse, no
    placeholders to bind).  Values are written as PostgreSQL's text input functions read them."""
    kinds = []
    for f in fields:
        if isinstance(f, models.JSONField):
            kinds.append("json")
        elif isinstance(f, models.BooleanField):
            kinds.append("bool")
        elif isinstance(f, (models.FloatField, models.IntegerField, models.ForeignKey)):
            kinds.append("num")
        elif isinstance(f, (models.DateTimeField, models.DateField)):
            kinds.append("date")
        else:
            kinds.append("text")
    attnames = [f.attname for f in fields]
    lines = []
    for obj in objs:
        out = []
        for attname, kind in zip(attnames, kinds, strict=True):
            value = getattr(obj, attname)
            if value is None:
                out.append("\\N")
            elif kind == "num":
                out.append(repr(value) if isinstance(value, float) else str(int(value)))
            elif kind == "bool":
                out.append("t" if value else "f")
            elif kind == "json":
                out.append(json.dumps(value).translate(_COPY_ESCAPES))
            elif kind == "date":
                out.append(value.isoformat())
            else:
                out.append(str(value).translate(_COPY_ESCAPES))
        lines.append("\t".join(out))
    data = io.StringIO("\n".join(lines) + "\n")
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", data)


def widen_sqlite_batches() -> None:
    """Django 5.2 assumes SQLite's old limit of 999 bound parameters (a dozen events per INSERT); modern SQLite
    allows 32766: use the real limit, so a 300-event report is one INSERT, not 25."""
    if connection.vendor != "sqlite" or getattr(connection.features, "_dosereg_widened", False):
        return
    connection.ensure_connection()
    try:
        limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except (AttributeError, sqlite3.Error):
        return
    connection.features.max_query_params = max(999, limit)
    connection.features._dosereg_widened = True
