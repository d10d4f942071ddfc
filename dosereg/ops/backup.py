"""Backup and restore of a whole registry: the database, the DICOM inbox and the settings needed to read them.

A backup is a directory:

    manifest.json      format, time, database vendor, applied migrations, the inbox it came from, every file's
                       size and SHA-256
    database.sqlite3   SQLite's online backup (consistent while the listener writes), or
    database.pgdump    pg_dump's custom format
    inbox/...          the received objects, as in DOSEREG_DATA_DIR/inbox
    secret_key         the data directory's generated secret key, when there is one
    settings.json      the DOSEREG_* settings in force (secrets left out; the pseudonym key only as a fingerprint)

It is written to PATH.partial and renamed at the end, so a directory named PATH is always complete.  Restore checks
every checksum before it changes anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection, connections
from django.db.migrations.loader import MigrationLoader
from django.db.models import Value
from django.db.models.functions import Concat, Substr

from dosereg.registry.models import ReceivedObject

FORMAT = "dosereg-backup/1"
MANIFEST = "manifest.json"
SECRET_WORDS = ("KEY", "PASSWORD", "SECRET", "AUTHORIZATION", "TOKEN")


class BackupError(Exception):
    """The backup cannot be written or restored; the message is for the operator."""


@dataclass
class BackupResult:
    path: Path
    vendor: str
    files: int
    bytes: int


@dataclass
class RestoreResult:
    vendor: str
    files: int
    inbox_moved_from: str = ""
    warnings: list[str] = field(default_factory=list)


# --- pure helpers --------------------------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(secret: str) -> str:
    """A short, one-way fingerprint: tells whether two keys are the same without storing the key."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16] if secret else ""


def settings_snapshot(environ: dict[str, str]) -> dict:
    """The DOSEREG_* and database/broker settings worth restoring, secrets left out (pure)."""
    kept = {k: v for k, v in sorted(environ.items())
            if k.startswith("DOSEREG_") and not any(w in k for w in SECRET_WORDS)}
    return {"environment": kept, "pseudonym_key_fingerprint": fingerprint(environ.get("DOSEREG_PSEUDONYM_KEY", ""))}


def verify(backup: Path) -> dict:
    """The manifest, after checking that every listed file is there with its size and SHA-256."""
    try:
        manifest = json.loads((backup / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{backup} is not a DoseReg backup ({MANIFEST} unreadable)") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{backup}: unknown backup format {manifest.get('format')!r}")
    bad = []
    for entry in manifest["files"]:
        path = backup / entry["path"]
        if not path.is_file() or path.stat().st_size != entry["size"] or sha256_file(path) != entry["sha256"]:
            bad.append(entry["path"])
    if bad:
        raise BackupError(f"{len(bad)} file(s) of the backup are missing or damaged, first {bad[0]}")
    return manifest


# --- backup --------------------------------------------------------------------------------------------------------
def _applied_migrations() -> dict[str, list[str]]:
    applied: dict[str, list[str]] = {}
    for app, name in sorted(MigrationLoader(connection, ignore_no_migrations=True).applied_migrations):
        applied.setdefault(app, []).append(name)
    return applied


def _pg_command(program: str, db: dict) -> tuple[list[str], dict]:
    args = [program, "--no-password"]
    for flag, key in (("--host", "HOST"), ("--port", "PORT"), ("--username", "USER")):
        if db.get(key):
            args += [flag, str(db[key])]
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or os.environ.get("PGPASSWORD", "")}
    return args, env


def _run(args: list[str], env: dict) -> None:
    if shutil.which(args[0]) is None:
        raise BackupError(f"{args[0]} is not installed (PostgreSQL client programs are needed)")
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise BackupError(f"{args[0]} failed: {last}")


def _dump_database(target_dir: Path) -> tuple[str, str]:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        out = target_dir / "database.sqlite3"
        dest = sqlite3.connect(out)
        try:
            connection.connection.backup(dest)  # SQLite's online backup API: a consistent copy while others write
        finally:
            dest.close()
        return "sqlite", out.name
    if connection.vendor == "postgresql":
        out = target_dir / "database.pgdump"
        args, env = _pg_command("pg_dump", db)
        _run(args + ["--format=custom", "--no-owner", "--file", str(out), db["NAME"]], env)
        return "postgresql", out.name
    raise BackupError(f"backups of a {connection.vendor} database are not supported")


def _copy_tree(source: Path, target: Path) -> None:
    for path in sorted(source.rglob("*")):
        if path.is_file() and not path.name.startswith(".readyz-"):
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)


def create_backup(path: Path, *, now: dt.datetime | None = None) -> BackupResult:
    path = Path(path).resolve()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise BackupError(f"{path} exists and is not an empty directory")
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        # the database first: every object it names was written to the inbox before its row was committed
        vendor, db_file = _dump_database(partial)
        _copy_tree(settings.INBOX_DIR, partial / "inbox")
        key_file = settings.DATA_DIR / "secret_key"
        if key_file.is_file():
            shutil.copy2(key_file, partial / "secret_key")
        (partial / "settings.json").write_text(json.dumps(settings_snapshot(dict(os.environ)), indent=2))
        files = [{"path": str(p.relative_to(partial)), "size": p.stat().st_size, "sha256": sha256_file(p)}
                 for p in sorted(partial.rglob("*")) if p.is_file()]
        manifest = {"format": FORMAT, "created_at": (now or dt.datetime.now(dt.UTC)).isoformat(),
                    "database": {"vendor": vendor, "file": db_file}, "migrations": _applied_migrations(),
                    "inbox_dir": str(settings.INBOX_DIR), "files": files}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if path.exists():
            path.rmdir()
        partial.rename(path)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return BackupResult(path, vendor, len(files), sum(f["size"] for f in files))


# --- restore -------------------------------------------------------------------------------------------------------
def _check_migrations(manifest: dict) -> None:
    known = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    newer = [f"{app}.{name}" for app, names in manifest["migrations"].items() for name in names
             if (app, name) not in known]
    if newer:
        raise BackupError(f"the backup comes from a newer DoseReg ({len(newer)} unknown migration(s), "
                          f"first {newer[0]}); upgrade first")


def _restore_database(backup: Path, manifest: dict) -> None:
    vendor, db_file = manifest["database"]["vendor"], manifest["database"]["file"]
    if vendor != connection.vendor:
        raise BackupError(f"the backup holds a {vendor} database and this DoseReg uses {connection.vendor} "
                          f"(to move an embedded registry to PostgreSQL use move_to_postgres)")
    if vendor == "sqlite":
        connection.ensure_connection()
        source = sqlite3.connect(backup / db_file)
        try:
            source.backup(connection.connection)  # page by page into the live file, under SQLite's own locks
        finally:
            source.close()
        connections.close_all()
        return
    db = connection.settings_dict
    compression = _toast_compression_args()
    connections.close_all()
    args, env = _pg_command("pg_restore", db)
    _run(args + ["--clean", "--if-exists", "--no-owner", "--single-transaction", *compression, "--dbname",
                 db["NAME"], str(backup / db_file)], env)


def _toast_compression_args() -> list[str]:
    """The dump sets lz4 compression on the content columns (registry migration 0016) where its server had lz4; a
    server without it (built without lz4, or before PostgreSQL 14) would refuse that statement and with it the
    whole single-transaction restore: there the columns keep the server's default compression."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
                       "AND 'lz4' = ANY(enumvals)")
        return [] if cursor.fetchone() else ["--no-toast-compression"]


def _move_inbox_paths(old_inbox: str) -> str:
    """Rows name their file by absolute path: point them at this data directory's inbox."""
    new_inbox = str(settings.INBOX_DIR)
    if old_inbox == new_inbox:
        return ""
    ReceivedObject.objects.filter(file_path__startswith=old_inbox + os.sep).update(
        file_path=Concat(Value(new_inbox), Substr("file_path", len(old_inbox) + 1)))
    return old_inbox


def restore_backup(backup: Path) -> RestoreResult:
    backup = Path(backup).resolve()
    manifest = verify(backup)
    _check_migrations(manifest)
    result = RestoreResult(vendor=manifest["database"]["vendor"], files=len(manifest["files"]))
    _restore_database(backup, manifest)
    if (backup / "inbox").is_dir():
        _copy_tree(backup / "inbox", settings.INBOX_DIR)
    result.inbox_moved_from = _move_inbox_paths(manifest["inbox_dir"])
    key_file = settings.DATA_DIR / "secret_key"
    if (backup / "secret_key").is_file():
        if os.environ.get("DOSEREG_SECRET_KEY"):
            result.warnings.append("DOSEREG_SECRET_KEY is set: the backup's secret_key file was not restored")
        else:
            shutil.copy2(backup / "secret_key", key_file)
            key_file.chmod(0o600)
    saved = json.loads((backup / "settings.json").read_text()) if (backup / "settings.json").is_file() else {}
    if saved.get("pseudonym_key_fingerprint", "") != fingerprint(os.environ.get("DOSEREG_PSEUDONYM_KEY", "")):
        result.warnings.append("DOSEREG_PSEUDONYM_KEY differs from the backup's: new objects of a known patient "
                               "would not match the restored pseudonyms; set the key the backup was made with")
    return result
