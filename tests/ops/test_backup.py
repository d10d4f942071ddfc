"""backup/restore and move_to_postgres round trips, run as an operator runs them (manage.py in a subprocess on a
real data directory), compared by ``export_doses`` before and after."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO, require

PG = "postgresql://postgres@127.0.0.1:5432"


def manage(data_dir: Path, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND") and not k.startswith("DOSEREG_")}
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, capture_output=True, text=True,
                          env={**base, "DOSEREG_DATA_DIR": str(data_dir), "DOSEREG_TIME_ZONE": "UTC", **env},
                          timeout=300)
    if check:
        assert done.returncode == 0, done.stderr[-2000:]
    return done


def export(data_dir: Path, **env: str) -> list:
    # compared as JSON values: PostgreSQL's jsonb keeps keys in its own order
    return json.loads(manage(data_dir, "export_doses", **env).stdout)


@pytest.fixture(scope="module")
def registry(corpus, tmp_path_factory) -> Path:
    """An embedded registry holding the CT and DX corpus files."""
    data_dir = tmp_path_factory.mktemp("source")
    manage(data_dir, "migrate", "--noinput")
    # real objects into the inbox (whatever ingest makes of them), and studies with events and alerts made by the
    # factories, so the round trip does not depend on today's parser
    manage(data_dir, "import_dose", str(corpus / "ct"), str(corpus / "dx"), check=False)
    manage(data_dir, "shell", "-c", "from tests.factories import IrradiationEventFactory, AlertFactory\n"
           "for _ in range(12): IrradiationEventFactory(); AlertFactory()")
    return data_dir


def test_backup_restore_round_trip(registry, tmp_path):
    before = export(registry)
    assert len(before) >= 10
    backup = tmp_path / "backup"
    manage(registry, "backup", str(backup))
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["database"]["vendor"] == "sqlite"
    assert any(f["path"].startswith("inbox/") for f in manifest["files"])
    assert "DOSEREG_SECRET_KEY" not in (backup / "settings.json").read_text()

    fresh = tmp_path / "fresh"  # another machine: an empty data directory
    done = manage(fresh, "restore", str(backup))
    assert "inbox paths moved" in done.stderr
    assert export(fresh) == before
    # the received objects point at the new inbox, and the files are there
    paths = manage(fresh, "shell", "-c", "from dosereg.registry.models import ReceivedObject as R; "
                   "print('\\n'.join(R.objects.values_list('file_path', flat=True)))").stdout.splitlines()
    moved = [p for p in paths if p.startswith(str(fresh / "inbox"))]
    assert moved and all(Path(p).is_file() for p in moved)
    assert not [p for p in paths if p.startswith(str(registry))]
    assert (fresh / "secret_key").read_text() == (registry / "secret_key").read_text()


def test_restore_refuses_a_damaged_backup_and_changes_nothing(registry, tmp_path):
    backup = tmp_path / "backup"
    manage(registry, "backup", str(backup))
    target = tmp_path / "target"
    manage(target, "migrate", "--noinput")
    victim = next(p for p in (backup / "inbox").rglob("*.dcm"))
    victim.write_bytes(victim.read_bytes()[:-10])
    done = manage(target, "restore", str(backup), check=False)
    assert done.returncode == 1
    assert "missing or damaged" in done.stderr and "Traceback" not in done.stderr
    assert export(target) == []


def test_backup_refuses_a_non_empty_target(registry, tmp_path):
    (tmp_path / "something").write_text("x")
    done = manage(registry, "backup", str(tmp_path), check=False)
    assert done.returncode == 1 and "not an empty directory" in done.stderr
    assert not (tmp_path.with_name(tmp_path.name + ".partial")).exists()


@pytest.fixture
def pg_database():
    require(shutil.which("psql") is not None, "psql is not installed (PostgreSQL client)")
    name = f"dosereg_ops_{uuid.uuid4().hex[:10]}"
    created = subprocess.run(["psql", PG + "/postgres", "-qc", f"CREATE DATABASE {name}"], capture_output=True)
    require(created.returncode == 0, "PostgreSQL at 127.0.0.1:5432 is not reachable")
    yield f"{PG}/{name}"
    subprocess.run(["psql", PG + "/postgres", "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                   capture_output=True)


def test_move_to_postgres_round_trip(registry, pg_database, tmp_path):
    before = export(registry)
    done = manage(registry, "move_to_postgres", pg_database)
    assert "every table verified equal" in done.stderr
    assert export(registry, DATABASE_URL=pg_database) == before
    # a second move into a database that now holds data is refused, not merged
    again = manage(registry, "move_to_postgres", pg_database, check=False)
    assert again.returncode == 1 and "already holds DoseReg data" in again.stderr
    # and the PostgreSQL registry backs up and restores too (pg_dump / pg_restore)
    backup = tmp_path / "pg-backup"
    manage(registry, "backup", str(backup), DATABASE_URL=pg_database)
    manage(registry, "shell", "-c", "from dosereg.registry.models import Study; Study.objects.all().delete()",
           DATABASE_URL=pg_database)
    assert export(registry, DATABASE_URL=pg_database) == []
    manage(registry, "restore", str(backup), DATABASE_URL=pg_database)
    assert export(registry, DATABASE_URL=pg_database) == before
    # the content columns come back as json, lz4-compressed where this server has lz4 (registry migration 0016)
    columns = subprocess.run(
        ["psql", pg_database, "-Atc", "SELECT DISTINCT format_type(atttypid, atttypmod) || ' ' || attcompression::text || "
         "' ' || (SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression')::text "
         "FROM pg_attribute WHERE attrelid = 'registry_irradiationevent'::regclass "
         "AND attname IN ('raw', 'attributes', 'content')"], capture_output=True, text=True, check=True).stdout.split()
    assert columns in (["json", "l", "true"], ["json", "false"])
