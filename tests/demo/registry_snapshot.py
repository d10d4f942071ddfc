"""Every row the registry holds, in a form two databases built the same way compare equal in.

A row is its column values without its surrogate id; a foreign key is replaced by the row it points to (in this same
form, so two databases that numbered their rows differently still agree); a JSON value is its text with sorted keys
(PostgreSQL's jsonb and SQLite's text keep keys in different orders); a date/time the clock wrote during the run
(``within``: creation, processing and last-seen times) is replaced by a marker saying only that it was set.  A table
is the sorted list of its rows.  Demo data dates are in a past year, so a date/time inside the run's own interval
can only come from the clock.
"""

from __future__ import annotations

import datetime as dt
import json

from django.apps import apps
from django.db import models
from django.db.models import ProtectedError

# the apps whose tables the recording and the post-commit steps write (Django's own: users, sessions, permissions)
APPS = ("registry", "dicomrx", "triggers", "drl", "interop")
CLOCK = "<set by the clock during the run>"


def registry_models() -> list[type[models.Model]]:
    return [m for label in APPS for m in apps.get_app_config(label).get_models()
            if m._meta.managed and not m._meta.proxy]


class _Rows:
    """The rows of every table, read once; a row's comparable form made on demand and kept."""

    def __init__(self, within: tuple[dt.datetime, dt.datetime]):
        self.within = within
        self.values = {m: {row["pk"]: row for row in m._base_manager.values("pk", *[
            f.attname for f in m._meta.concrete_fields if not f.primary_key])} for m in registry_models()}
        self.done: dict[tuple[type, object], tuple] = {}

    def form(self, model: type[models.Model], pk) -> tuple:
        key = (model, pk)
        if key not in self.done:
            self.done[key] = ("<cycle>",)  # a row reached again through its own references
            self.done[key] = self._form(model, self.values[model][pk])
        return self.done[key]

    def _form(self, model, row: dict) -> tuple:
        out = []
        for f in model._meta.concrete_fields:
            if f.primary_key:
                continue
            value = row[f.attname]
            if f.is_relation and value is not None:
                target = f.related_model._meta.concrete_model
                # a user or content type (outside the registry): only which table it is in
                value = self.form(target, value) if target in self.values else ("<outside>", target._meta.label)
            elif isinstance(value, dt.datetime) and self.within[0] <= value <= self.within[1]:
                value = CLOCK
            elif isinstance(value, (dict, list)):  # a JSON value: its keys in one order, whatever wrote them
                value = json.dumps(value, sort_keys=True)
            out.append((f.name, value))
        return tuple(out)


def registry_snapshot(within: tuple[dt.datetime, dt.datetime]) -> dict[str, list[tuple]]:
    """{table label: its rows' comparable forms, sorted (by their text)}."""
    rows = _Rows(within)
    return {model._meta.label: sorted((rows.form(model, pk) for pk in values), key=repr)
            for model, values in rows.values.items()}


def _columns(form: tuple, prefix: str = "") -> dict[str, object]:
    """A row's form as {column path: value}, the rows it refers to spread out (``study.patient.sex``)."""
    out = {}
    for name, value in form:
        if isinstance(value, tuple) and value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            out.update(_columns(value, f"{prefix}{name}."))
        else:
            out[prefix + name] = value
    return out


def snapshot_differences(a: dict[str, list[tuple]], b: dict[str, list[tuple]], limit: int = 3) -> list[str]:
    """What differs between two snapshots, table by table: the row counts and, for the first few rows of each side
    that the other lacks (paired in sorted order), the columns whose values differ."""
    out = []
    for table in sorted(set(a) | set(b)):
        left, right = a.get(table, []), b.get(table, [])
        if left == right:
            continue
        in_left, in_right = set(left), set(right)
        only_left = [row for row in left if row not in in_right]
        only_right = [row for row in right if row not in in_left]
        pairs = []
        for one, other in list(zip(only_left, only_right, strict=False))[:limit]:  # the shorter side's rows paired
            x, y = _columns(one), _columns(other)
            pairs.append({k: (x.get(k), y.get(k)) for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k)})
        extra = only_left[len(only_right):][:limit] or only_right[len(only_left):][:limit]
        out.append(f"{table}: {len(left)} rows vs {len(right)}, {len(only_left)} and {len(only_right)} unmatched; "
                   f"differing columns: {pairs}; unpaired: {extra}")
    return out


def registry_marks() -> dict[type[models.Model], int]:
    """The highest id of each table now: what :func:`registry_reset` keeps."""
    return {m: m._base_manager.aggregate(top=models.Max("pk"))["top"] or 0 for m in registry_models()}


def registry_reset(marks: dict[type[models.Model], int]) -> None:
    """Delete every row added since ``marks`` (with what cascades from them), so the next run starts from the same
    registry.  A row the run changed but did not add is not restored: compare a snapshot taken after this with one
    taken before the run to know the two runs started alike."""
    pending = dict(marks)
    for _ in range(len(pending) + 1):  # a row another model protects goes on a later pass, after that model's
        for model, top in list(pending.items()):
            try:
                model._base_manager.filter(pk__gt=top).delete()
            except ProtectedError:
                continue
            del pending[model]
        if not pending:
            return
    raise AssertionError(f"rows that could not be deleted: {sorted(m._meta.label for m in pending)}")
