"""Copy an embedded (SQLite) registry into PostgreSQL and prove the copy equal, table by table.

The target gets DoseReg's schema by ``migrate``, its tables are emptied, and every row is copied with its primary
key, through Django's field conversions (booleans, JSON, dates) but not through ``save()``, so ``auto_now`` fields
keep their values.  PostgreSQL checks foreign keys at commit (Django declares them DEFERRABLE INITIALLY DEFERRED),
so tables are copied in any order inside one transaction.  Verification reads both databases through the same
models and compares a SHA-256 of every table's rows in primary-key order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.core.management.color import no_style
from django.db import connections, transaction
from django.db.migrations.executor import MigrationExecutor

from dosereg.env import database_from_url

TARGET = "move_target"
BATCH = 2000


class MoveError(Exception):
    """The move cannot be done or did not verify; the message is for the operator."""


@dataclass(frozen=True)
class TableCopy:
    table: str
    rows: int


def copied_models() -> list:
    """Every concrete, managed model, with the automatic many-to-many tables (group permissions, ...)."""
    return [m for m in apps.get_models(include_auto_created=True)
            if m._meta.managed and not m._meta.proxy]


def _rows(model, alias: str) -> Iterator[tuple]:
    columns = [f.attname for f in model._meta.concrete_fields]
    yield from model._base_manager.using(alias).order_by("pk").values_list(*columns).iterator(chunk_size=BATCH)


def canonical(value) -> str:
    """One spelling per value whichever database it came from: jsonb reorders keys, time zones differ in type."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, memoryview):
        return repr(bytes(value))
    return repr(value)


def table_digest(model, alias: str) -> tuple[int, str]:
    """Row count and SHA-256 over the rows' values (as the models read them) in primary-key order."""
    digest, count = hashlib.sha256(), 0
    for row in _rows(model, alias):
        digest.update("\x1f".join(canonical(v) for v in row).encode() + b"\x1e")
        count += 1
    return count, digest.hexdigest()


def add_target(url: str) -> None:
    config = database_from_url(url, data_dir=None)  # type: ignore[arg-type] - a PostgreSQL URL needs no data dir
    if config.get("ENGINE") != "django.db.backends.postgresql":
        raise MoveError("the target must be a postgresql:// URL")
    connections.settings[TARGET] = {**connections.settings["default"], **config, "CONN_MAX_AGE": 0,
                                    "TEST": {}, "ATOMIC_REQUESTS": False, "AUTOCOMMIT": True, "TIME_ZONE": None}
    try:
        connections[TARGET].ensure_connection()
    except Exception as exc:  # noqa: BLE001 - unreachable server, missing database, refused login
        raise MoveError(f"cannot connect to the target database: {str(exc).strip().splitlines()[0]}") from exc


def _copy_table(model) -> int:
    target = connections[TARGET]
    fields = model._meta.concrete_fields
    columns = ", ".join(target.ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {target.ops.quote_name(model._meta.db_table)} ({columns}) VALUES ({placeholders})"
    count, batch = 0, []
    with target.cursor() as cursor:
        for row in _rows(model, "default"):
            batch.append([f.get_db_prep_save(v, connection=target) for f, v in zip(fields, row, strict=True)])
            if len(batch) >= BATCH:
                cursor.executemany(sql, batch)
                count, batch = count + len(batch), []
        if batch:
            cursor.executemany(sql, batch)
            count += len(batch)
    return count


def _migrate_target(url: str) -> None:
    """``migrate`` in a process of its own whose default database is the target: data migrations write through
    the default alias, so ``migrate --database`` would send their rows to the embedded database."""
    done = subprocess.run([sys.executable, str(settings.BASE_DIR / "manage.py"), "migrate", "--noinput", "-v", "0",
                           "--skip-checks"], env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise MoveError(f"migrate on the target failed: {last}")


def move(url: str, *, force: bool = False) -> list[TableCopy]:
    if connections["default"].vendor != "sqlite":
        raise MoveError("this registry is not the embedded (SQLite) one; nothing to move")
    executor = MigrationExecutor(connections["default"])
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise MoveError("the embedded database has unapplied migrations: run 'manage.py migrate' first")
    add_target(url)
    target = connections[TARGET]
    models = copied_models()
    tables = [m._meta.db_table for m in models]
    existing = set(target.introspection.table_names())
    if not force and any(target_has_rows(m) for m in models if m._meta.db_table in existing):
        raise MoveError("the target database already holds DoseReg data (use --force to replace it)")
    _migrate_target(url)
    copies = []
    with transaction.atomic(using=TARGET):
        quoted = ", ".join(target.ops.quote_name(t) for t in tables)
        with target.cursor() as cursor:
            cursor.execute(f"TRUNCATE {quoted} CASCADE")  # migrate's content types and permissions, too
        for model in models:
            copies.append(TableCopy(model._meta.db_table, _copy_table(model)))
        with target.cursor() as cursor:
            for statement in target.ops.sequence_reset_sql(no_style(), models):
                cursor.execute(statement)
    return copies


def target_has_rows(model) -> bool:
    if model._meta.app_label in {"contenttypes", "auth"} and model._meta.model_name in {"contenttype", "permission"}:
        return False  # migrate creates these itself
    return model._base_manager.using(TARGET).exists()


def verify() -> list[str]:
    """Tables whose rows differ between the embedded database and the target (empty when the copy is equal)."""
    return [m._meta.db_table for m in copied_models() if table_digest(m, "default") != table_digest(m, TARGET)]
