"""Queries of fixed SQL, compiled once per database connection.

Every ingest batch asks the same few queries: the small tables read whole (the active mapping and trigger rules, the
standard examinations, to learn whether what was built from their rows is still current) and look-ups of the batch's
ids or UIDs.  Django builds and compiles a queryset each time it runs, which cost more than running these statements;
here a query is compiled once per connection and each call runs that statement again, its columns converted as Django
converts them.  For a look-up, the one list of values (``field__in``) is the only part that changes: its placeholder
is widened to the values given.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterable

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet
from django.db.models.query import (
    FlatValuesListIterable,
    ModelIterable,
    ValuesIterable,
    ValuesListIterable,
    get_related_populators,
)

# connection -> {queryset function: _Statement}; Django keeps one connection per thread, and its entries go with it
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# compiled with this one value in its list, a look-up's placeholder is the parameter equal to it; a value of the
# other type could not be prepared by the field (an integer column converts its values with int())
_MARKERS = {int: -2_000_000_017, str: "\x00dosereg look-up marker\x00"}
_PLACEHOLDER = re.compile(r"%%|%s")  # Django's SQL: %s a parameter, %% a literal percent sign


class _Statement:
    """A compiled query: its SQL split at the parameter of its list (when it has one), and how its rows are made
    into what the queryset gives (values, tuples, or model objects with those of their select_related)."""

    def __init__(self, queryset: QuerySet, connection, marker=None):
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()  # also works out the selected columns (compiler.select)
        self.compiler = compiler
        self.converters = compiler.get_converters([column for column, _, _ in compiler.select[:compiler.col_count]])
        self.shape = queryset._iterable_class
        if self.shape is ModelIterable:
            self._models_of(queryset)
        elif self.shape not in (ValuesListIterable, FlatValuesListIterable, ValuesIterable):
            raise TypeError("a fixed query is a model, values or values_list queryset")
        self.names = [*queryset.query.extra_select, *queryset.query.values_select,
                      *queryset.query.annotation_select]
        self.sql, self.params, self.before, self.after = sql, tuple(params), None, None
        if marker is not None:
            self._split_at(marker)

    def _models_of(self, queryset: QuerySet) -> None:
        """What Django's ModelIterable works out from the compiled query, for a queryset without annotations,
        known related objects or prefetches."""
        if (queryset.query.annotation_select or queryset._known_related_objects or queryset._prefetch_related_lookups
                or queryset.query.extra_select):
            raise TypeError("a fixed model query has no annotations, extras, prefetches or known related objects")
        select, info = self.compiler.select, self.compiler.klass_info
        self.model, self.db = info["model"], queryset.db
        self.model_columns = slice(info["select_fields"][0], info["select_fields"][-1] + 1)
        self.init_list = [column[0].target.attname for column in select[self.model_columns]]
        self.related_populators = get_related_populators(info, select, self.db)

    def _split_at(self, marker) -> None:
        at = [i for i, p in enumerate(self.params) if type(p) is type(marker) and p == marker]
        tokens = [m for m in _PLACEHOLDER.finditer(self.sql) if m.group() == "%s"]
        if len(at) != 1 or len(tokens) != len(self.params):
            raise ValueError("the look-up's list is not one parameter of its SQL")
        token = tokens[at[0]]
        self.before, self.after = self.sql[:token.start()], self.sql[token.end():]
        self.params_before, self.params_after = self.params[:at[0]], self.params[at[0] + 1:]

    def rows(self, values: list | None = None) -> list:
        sql, params = self.sql, self.params
        if values is not None:
            sql = self.before + ", ".join(["%s"] * len(values)) + self.after
            params = (*self.params_before, *values, *self.params_after)
        connection = self.compiler.connection
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if self.converters:
            rows = self.compiler.apply_converters(rows, self.converters)
        if self.shape is ModelIterable:
            return [self._model(row) for row in rows]
        if self.shape is FlatValuesListIterable:
            return [row[0] for row in rows]
        if self.shape is ValuesIterable:
            return [dict(zip(self.names, row, strict=True)) for row in rows]
        return [tuple(row) for row in rows]

    def _model(self, row):
        obj = self.model.from_db(self.db, self.init_list, row[self.model_columns])
        for populator in self.related_populators:
            populator.populate(row, obj)
        return obj


def _statement(key, queryset: Callable[[], QuerySet], marker=None) -> _Statement:
    connection = connections[DEFAULT_DB_ALIAS]
    compiled = _COMPILED.setdefault(connection, {})
    found = compiled.get(key)
    if found is None:
        found = compiled[key] = _Statement(queryset(), connection, marker)
    return found


def fixed_rows(queryset: Callable[[], QuerySet]) -> tuple[tuple, ...]:
    """The rows of ``queryset()`` as tuples: a ``values_list`` queryset on the default database whose SQL and
    parameters are always the same.  ``queryset`` is called once per connection, to compile it."""
    statement = _statement(queryset, queryset)
    if statement.shape is not ValuesListIterable:
        raise TypeError("fixed_rows takes a values_list queryset")
    return tuple(statement.rows())


def rows_in(queryset: Callable[[list], QuerySet], values: Iterable[int] | Iterable[str]) -> list:
    """``list(queryset(values))``: a queryset on the default database (model objects, values or tuples) whose one list
    of values is ``values``, a filter ``field__in=values`` that every row must pass (integers or strings); compiled
    once per connection.  As Django, the values are taken once each, None left out, and no query is made for none."""
    values = [v for v in dict.fromkeys(values) if v is not None]
    if not values:
        return []
    marker = _MARKERS.get(type(values[0]))
    if marker is None or any(type(v) is not type(marker) for v in values):
        raise TypeError("rows_in takes a list of integers or of strings")
    return _statement((queryset, type(marker)), lambda: queryset([marker]), marker).rows(values)
