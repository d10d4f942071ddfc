"""Shared fixtures: the real-file corpus, users per role, a real Celery worker when a broker is configured, and the
rule that a test needing an absent program skips locally but fails under CI=true."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = (REPO / ".." / "shared" / "rdsr").resolve()
IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip with a one-line reason when something external is missing; under CI=true that is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


def require_program(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed (apt-get install {'dcmtk' if name.endswith('scu') or name.startswith('dcm') else name})")
    return path


@pytest.fixture(scope="session")
def corpus() -> Path:
    """../shared/rdsr: real dose objects; tests that need them skip where the folder is absent."""
    if not CORPUS.is_dir():
        pytest.skip(f"the real-file corpus {CORPUS} is absent")
    return CORPUS


@pytest.fixture
def make_user(db, django_user_model):
    """make_user('physicist') -> a user in that role group."""
    from django.contrib.auth.models import Group

    def _make(role: str | None = None, username: str | None = None, **extra):
        name = username or f"{role or 'nobody'}-{django_user_model.objects.count() + 1}"
        user = django_user_model.objects.create_user(username=name, password="correct horse battery", **extra)
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return _make


def _test_database_url() -> str:
    from django.conf import settings
    from django.db import connection

    db = settings.DATABASES["default"]
    name = connection.settings_dict["NAME"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    host = db["HOST"] or "localhost"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgresql://{auth}@{host}{port}/{name}"


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """A real Celery worker on the configured broker, against the test database (production shape).

    In the embedded mode (no CELERY_BROKER_URL) tasks run eagerly and this yields None."""
    from django.conf import settings

    if not settings.CELERY_BROKER_URL:
        yield None
        return
    require(settings.DATABASES["default"]["ENGINE"].endswith("postgresql"), "a worker needs PostgreSQL")
    with django_db_blocker.unblock():
        env = dict(os.environ, DATABASE_URL=_test_database_url())
    from dosereg.celery import app

    app.control.purge()
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "dosereg", "worker", "-P", "threads", "-c", "2", "-l", "WARNING",
         "--without-gossip", "--without-mingle", "-n", f"test-{os.getpid()}@%h"],
        cwd=REPO, env=env, start_new_session=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if app.control.inspect(timeout=1).ping():
                break
        except Exception:  # noqa: BLE001 - broker not answering yet
            pass
        time.sleep(0.5)
    else:
        os.killpg(proc.pid, signal.SIGTERM)
        pytest.fail("the Celery worker did not start within 30 s")
    yield proc
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):
    """Poll until predicate() is truthy (work done by a worker or the listener's ingest thread)."""
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value or time.time() > deadline:
            return value
        time.sleep(interval)
