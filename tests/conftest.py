"""Shared fixtures: the real-file corpus, users per role, a real Celery worker when a broker is configured, and the
rule that a test needing an absent program skips locally but fails under CI=true."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
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


_ports_given: set[int] = set()


def free_port() -> int:
    """A port on 127.0.0.1 that is free now and was not handed out before in this run. Two servers started one after
    the other could otherwise be given the same port when the first has not bound it yet; the second then answers
    for the first (a storescp taking a listener's C-MOVE)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def wait_for_port(port: int, timeout: float = 30) -> None:
    """Until something accepts TCP connections on 127.0.0.1:port."""
    if not wait_for(lambda: _accepts(port), timeout=timeout, interval=0.1):
        raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


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
        [sys.executable, "-m", "celery", "-A", "dosereg.celery", "worker", "-P", "threads", "-c", "2", "-l", "WARNING",
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


@pytest.fixture
def tasks_in_process():
    """Celery tasks run in this process for this test, also when a broker is configured: such a test is about what
    a task does, not the transport (the listener tests run a real worker)."""
    from dosereg.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):
    """Poll until predicate() is truthy (work done by a worker or the listener's ingest thread)."""
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value or time.time() > deadline:
            return value
        time.sleep(interval)


def _restore_migration_data() -> None:
    """Re-run every data migration (role groups, permissions, rule packs, DRL sets, standard examinations).

    A transactional test (live server, worker) ends with a flush that empties every table, including what the data
    migrations wrote; later tests expect it, as a real instance has it.  The data migrations are idempotent."""
    from django.apps import apps as global_apps
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.operations.special import RunPython

    loader = MigrationLoader(connection)
    seen = set()
    with connection.schema_editor(atomic=True) as editor:
        for key in loader.graph.leaf_nodes():
            for app_label, name in loader.graph.forwards_plan(key):
                if app_label not in {"registry", "dicomrx", "triggers", "drl"} or (app_label, name) in seen:
                    continue
                seen.add((app_label, name))
                migration = loader.get_migration(app_label, name)
                for op in migration.operations:
                    if isinstance(op, RunPython):
                        op.code(global_apps, editor)


@pytest.fixture(autouse=True)
def _migration_data_present(request, django_db_blocker):
    """Before each database test: if a flush emptied the data-migration rows, put them back."""
    marker = request.node.get_closest_marker("django_db")
    uses_db = marker is not None or {"db", "transactional_db", "live_server"} & set(request.fixturenames)
    if not uses_db:
        yield
        return
    with django_db_blocker.unblock():
        from django.contrib.auth.models import Group

        if not Group.objects.filter(name="admin").exists():
            _restore_migration_data()
    yield


# --- a real browser: Debian's Chromium driven by Playwright (one per test session) -----------------------------------
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="session")
def chromium_browser(live_server):
    """One headless Chromium for the whole session: Playwright's sync API allows one driver per thread.  It asks for
    the live server so that it closes first: its kept-alive connections then end while the server still shares the
    in-memory SQLite connection with its request threads (closed after the server, each thread's last act raised
    'DatabaseWrapper objects created in a thread can only be used in that same thread')."""
    executable = require_program("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the dev extra installs it
        require(False, "playwright is not installed (pip install -e '.[dev]')")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop in this thread
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    wait_for(lambda: not any(t.name.endswith("(process_request_thread)") for t in threading.enumerate()),
             timeout=10, interval=0.05)


@pytest.fixture
def artifacts() -> Path:
    """Screenshots and PDFs from browser tests are kept here (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
