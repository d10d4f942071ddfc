"""Writing many rows at once: multi-row INSERT (PostgreSQL: COPY), UPDATE ... FROM VALUES, and
SQLite's real bound-parameter limit.  Django's bulk_create spends most of its time compiling one giant SQL text of
20,000 placeholders for a 300-event report; these helpers keep a report to one statement per table."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from operator import itemgetter, methodcaller

from django.db import connection, models
from django.db.models import NOT_PROVIDED
from psycopg2.extras import execute_values

# a row's {attname: (value, its json.dumps text)} for JSON columns its builder has serialised already (to check the
# value): the text is written as it is while the column still holds that very value
JSON_TEXTS = "json_texts"


def insert_rows(model, objs: list, *, returning: bool = False) -> None:
    """Insert many rows in one statement (PostgreSQL: COPY; SQLite: executemany of one prepared statement).  Django's
    bulk_create spends most of its time compiling one giant SQL text of 20,000 placeholders for a 300-event report.
    With ``returning`` each object gets its new primary key (PostgreSQL: the ids are taken from the sequence first,
    in one query, and written with the rows; SQLite: a multi-row INSERT ... RETURNING).

    COPY at every size: against a multi-row INSERT (execute_values, which it replaced below 200 rows), DX headers
    on PostgreSQL took 0.82, 0.92 and 0.94 of the time per object in batches of 50, 10 and 1, with less CPU both
    here and in the server's backend; small CT reports 0.73-0.91 (bench/ingest_ab.py, paired rounds, 2026-12-08)."""
    if not objs:
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    for f in fields:  # auto_now_add and defaults, as Model.save would
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            for obj in objs:
                f.pre_save(obj, add=True)
    qn = connection.ops.quote_name
    pk = model._meta.pk
    # the raw cursor's errors as Django's (IntegrityError): a concurrent worker's new patient is then taken, not fatal
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor, connection.wrap_database_errors:
            if returning:  # the new ids first (one round trip), then COPY writes them with the rows
                cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                               [model._meta.db_table, pk.column, len(objs)])
                for obj, (new_id,) in zip(objs, sorted(cursor.fetchall()), strict=True):
                    setattr(obj, pk.attname, new_id)
                fields = [pk, *fields]
            _copy_rows(cursor.cursor, qn(model._meta.db_table), fields, objs)
    else:
        params = _params(fields, objs)
        head = f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) VALUES "
        with connection.cursor() as cursor, connection.wrap_database_errors:
            if returning:
                _insert_returning_sqlite(cursor, head, objs, params, pk)
            else:
                fields, params = _sent_columns(fields, params)
                cursor.executemany(f"INSERT INTO {qn(model._meta.db_table)} "
                                   f"({', '.join(qn(f.column) for f in fields)}) "
                                   f"VALUES ({', '.join(['%s'] * len(fields))})", params)
    if returning:
        _mark_saved(objs)


def _mark_saved(objs: list) -> None:
    """Model instances among the rows are saved ones now (plain rows of ``rows.row_class`` have no state)."""
    for obj in objs:
        if isinstance(obj, models.Model):
            obj._state.adding, obj._state.db = False, connection.alias


def _params(fields: list, objs: list) -> list[list]:
    """The query parameters of ``objs`` for these columns: the values read in one call per row, then only the
    columns that need it converted (chosen once per column): JSON (its text made once, see ``JSON_TEXTS``),
    dates and times."""
    get = itemgetter(*[f.attname for f in fields])
    json_columns, converted = [], []
    for i, f in enumerate(fields):
        prep = _prep_for(f)
        if prep is json.dumps:
            json_columns.append((i, f.attname))
        elif prep is not None:
            converted.append((i, prep))
    params = []
    for obj in objs:
        values = obj.__dict__
        row = list(get(values)) if len(fields) > 1 else [get(values)]
        for i, prep in converted:
            if row[i] is not None:
                row[i] = prep(row[i])
        texts = values.get(JSON_TEXTS) or {}
        for i, name in json_columns:
            value = row[i]
            if value is not None:
                known = texts.get(name)
                row[i] = known[1] if known is not None and known[0] is value else json.dumps(value)
        params.append(row)
    return params


def _sent_columns(fields: list, params: list[list]) -> tuple[list, list]:
    """The columns NULL in every row left out of a SQLite insert: a column without a database default is NULL when
    left out, and each NULL parameter costs sqlite3 an adapter look-up (most of an event row's sixty columns hold
    another modality's quantities: 28 of them are NULL throughout a fluoroscopy report)."""
    sent = [i for i, column in enumerate(zip(*params, strict=True))
            if column.count(None) != len(column) or fields[i].db_default is not NOT_PROVIDED]
    if len(sent) == len(fields) or len(sent) < 2:
        return fields, params
    pick = itemgetter(*sent)
    return [fields[i] for i in sent], [pick(row) for row in params]


def _prep_for(field):
    """The column's conversion to a query parameter (None: the value as it is), chosen once per column: Django's
    ``get_db_prep_save`` per value was most of a batch's insert time (a connection lookup for every JSON value)."""
    if isinstance(field, (models.FloatField, models.BooleanField, models.IntegerField, models.CharField,
                          models.ForeignKey)):
        return None
    if isinstance(field, models.JSONField) and field.encoder is None:
        return json.dumps  # what Django writes for a JSON column (None stays SQL NULL)
    if isinstance(field, models.DateTimeField) and connection.vendor == "sqlite" and connection.timezone is not None:
        return partial(_sqlite_datetime, field, connection.timezone)
    return lambda value: field.get_db_prep_save(value, connection)


def _sqlite_datetime(field, tz: dt.tzinfo, value):
    """What Django's SQLite backend writes for an aware date/time (the text of it made naive in the connection's
    zone, ``adapt_datetimefield_value``), without its per-value checks; anything else takes the field's own way."""
    if type(value) is dt.datetime and value.utcoffset() is not None:
        return str(value.astimezone(tz).replace(tzinfo=None))
    return field.get_db_prep_save(value, connection)


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
    """Update these fields of many rows.  PostgreSQL: one ``UPDATE ... FROM (VALUES ...)`` per 1,000 rows; SQLite:
    executemany of one prepared ``UPDATE ... WHERE id = ?``.  Django's bulk_update builds a CASE expression per
    field and row: a third of a batch's recording time for 50 small reports, seconds for a few hundred rows."""
    if not objs:
        return
    qn = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in field_names]
    pk = model._meta.pk
    if connection.vendor != "postgresql":
        sets = ", ".join(f"{qn(f.column)} = %s" for f in fields)
        convert = [(f.attname, _prep_for(f)) for f in fields]
        params = []
        for obj in objs:
            values = [getattr(obj, name) for name, _ in convert]
            params.append([v if conv is None or v is None else conv(v)
                           for v, (_, conv) in zip(values, convert, strict=True)] + [obj.pk])
        with connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {qn(model._meta.db_table)} SET {sets} WHERE {qn(pk.column)} = %s", params)
        return
    sets = ", ".join(f"{qn(f.column)} = v.{qn(f.column)}::{f.db_type(connection)}" for f in fields)
    names = ", ".join([qn(pk.column)] + [qn(f.column) for f in fields])
    sql = (f"UPDATE {qn(model._meta.db_table)} AS t SET {sets} FROM (VALUES %s) AS v ({names}) "
           f"WHERE t.{qn(pk.column)} = v.{qn(pk.column)}")
    params = [[obj.pk] + [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields] for obj in objs]
    with connection.cursor() as cursor:
        execute_values(cursor.cursor, sql, params, page_size=1000)



_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_EMPTY_JSON = {dict: "{}", list: "[]"}


def _copy_escaped(v) -> str:
    """A value (text, or anything its ``str`` gives) as COPY's text format reads it back: backslash, tab and line
    breaks escaped.  Most text has none of them (two C-level checks instead of translating it character by
    character)."""
    text = v if type(v) is str else str(v)
    if text.isprintable() and "\\" not in text:
        return text
    return text.translate(_COPY_ESCAPES)


def _copy_num(v) -> str:
    return repr(v) if isinstance(v, float) else str(int(v))


def _copy_json(v) -> str:
    empty = _EMPTY_JSON.get(type(v))  # the defaults of most rows' JSON columns
    return empty if empty is not None and not v else _copy_escaped(json.dumps(v))


def _copy_bool(v) -> str:
    return "t" if v else "f"


def _copy_text(field):
    """How a value of this column is written in COPY's text format (PostgreSQL's text input functions).  A float
    column's values (floats, or ints from a default) are written by ``repr`` itself, and dates by their own
    ``isoformat``: no Python call per cell for the cells most rows are made of (a 316-event report has 20,000)."""
    kind = _copy_kind(field)
    if kind == "num":
        return repr if isinstance(field, models.FloatField) else _copy_num
    return {"bool": _copy_bool, "json": _copy_json, "date": methodcaller("isoformat")}.get(kind, _copy_escaped)


def _copy_kind(f) -> str:
    if isinstance(f, models.JSONField):
        return "json"
    if isinstance(f, models.BooleanField):
        return "bool"
    if isinstance(f, (models.FloatField, models.IntegerField, models.ForeignKey)):
        return "num"
    if isinstance(f, (models.DateTimeField, models.DateField)):
        return "date"
    return "text"


def _copy_rows(cursor, table: str, fields: list, objs: list) -> None:
    """PostgreSQL COPY FROM STDIN in the text format: the fastest way to load many rows (no SQL to parse, no
    placeholders to bind).  One writer per column, chosen once; a row's plain values read in one call.  The JSON
    columns go last, each written from the text the row's builder made when the column still holds that very value
    (``JSON_TEXTS``), else serialised here."""
    qn = connection.ops.quote_name
    plain = [f for f in fields if _copy_kind(f) != "json"]
    json_names = [f.attname for f in fields if _copy_kind(f) == "json"]
    names = [f.attname for f in plain]
    get = itemgetter(*names) if len(names) > 1 else (lambda values: (values[names[0]],))
    writers = [_copy_text(f) for f in plain]

    def line(obj) -> str:
        values = obj.__dict__
        cells = ["\\N" if v is None else write(v) for write, v in zip(writers, get(values), strict=True)]
        texts = values.get(JSON_TEXTS) or {}
        for name in json_names:
            value = values[name]
            known = texts.get(name)
            if value is None:
                cells.append("\\N")
            elif known is not None and known[0] is value:
                cells.append(_copy_escaped(known[1]))
            else:
                cells.append(_copy_json(value))
        return "\t".join(cells) + "\n"

    columns = ", ".join(qn(f.column) for f in plain) + "".join(
        ", " + qn(f.column) for f in fields if _copy_kind(f) == "json")
    cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", _CopySource(map(line, objs)), size=_COPY_CHUNK)


# COPY's data goes to the server in chunks of this many characters, each made when the last has gone: the server
# parses and stores one chunk (its own process, the other core) while this one is being written
_COPY_CHUNK = 64 * 1024


class _CopySource:
    """The file ``copy_expert`` reads COPY's data from, made as it is read (``lines``: an iterator of lines).  Made
    whole first, the rows' text was written, then sent, then stored by the server, one after the other: made as it
    is read, the server stores the first chunks while the next are written (a 316-event report's events: 1 MB)."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._rest = ""

    def read(self, size: int = -1) -> str:
        parts, have = [self._rest], len(self._rest)
        while size < 0 or have < size:
            text = next(self._lines, None)
            if text is None:
                break
            parts.append(text)
            have += len(text)
        data = "".join(parts)
        if 0 <= size < have:
            data, self._rest = data[:size], data[size:]
        else:
            self._rest = ""
        return data


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


# the secondary indexes of an empty table a bulk load may leave out while it writes (PostgreSQL): every index that is
# not a constraint's (primary key, unique) and not the plain one-column index of a column the load looks rows up by
_DEFERRABLE_INDEXES = """
    SELECT i.relname, pg_get_indexdef(x.indexrelid), t.relname, a.attname, x.indnatts = 1 AND x.indexprs IS NULL
           AND x.indpred IS NULL AND x.indclass[0] = (SELECT oid FROM pg_opclass oc WHERE oc.opcdefault
           AND oc.opcmethod = am.oid AND oc.opcintype = a.atttypid LIMIT 1)
    FROM pg_index x
    JOIN pg_class i ON i.oid = x.indexrelid
    JOIN pg_class t ON t.oid = x.indrelid
    JOIN pg_am am ON am.oid = i.relam
    LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
    WHERE t.relname = ANY(%s) AND t.relnamespace = current_schema()::regnamespace
      AND NOT x.indisunique AND NOT x.indisprimary
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
    ORDER BY t.relname, i.relname"""


@contextmanager
def secondary_indexes_deferred(lookups: dict[type[models.Model], tuple[str, ...]]) -> Iterator[list[str]]:
    """For a bulk load into empty tables (PostgreSQL): the secondary indexes of these models dropped for the block
    and built again at its end, from the definitions PostgreSQL gave for them (the schema is then exactly what the
    migrations made).  Kept: the indexes of constraints (primary keys, unique: what the registry guarantees is
    checked row by row as before) and the plain one-column index of each column ``lookups`` names (what the load
    itself looks rows up by: without them each batch would scan the tables).  One sorted build per index at the end
    costs far less than keeping ~40 indexes up to date row by row (the study row alone has 23, and each post-commit
    UPDATE of it writes a new entry in most of them).  Yields the names of the dropped indexes: none when a table
    holds a row (the load does not own it), inside a transaction (the caller's: DROP INDEX would keep the tables
    locked to its end, and CREATE INDEX is refused while foreign-key checks are pending) or on SQLite.  Built again
    on any exception too; a process killed in between leaves them missing (load again from a fresh ``migrate``)."""
    if (connection.vendor != "postgresql" or connection.in_atomic_block
            or any(model._base_manager.exists() for model in lookups)):
        yield []
        return
    keep = {model._meta.db_table: {model._meta.get_field(name).column for name in names}
            for model, names in lookups.items()}
    with connection.cursor() as cursor:
        cursor.execute(_DEFERRABLE_INDEXES, [list(keep)])
        deferrable = [(name, definition) for name, definition, table, column, plain in cursor.fetchall()
                      if not (plain and column in keep[table])]
    dropped: list[tuple[str, str]] = []
    try:
        with connection.cursor() as cursor:
            for name, definition in deferrable:
                cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
                dropped.append((name, definition))
        yield [name for name, _ in dropped]
    finally:
        _indexes_build(definition for _, definition in dropped)


def _indexes_build(definitions) -> None:
    """CREATE INDEX IF NOT EXISTS for each definition (``pg_get_indexdef``), with room to sort in memory."""
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem TO '256MB'")
        try:
            for definition in definitions:
                cursor.execute(definition.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1))
        finally:
            cursor.execute("RESET maintenance_work_mem")
