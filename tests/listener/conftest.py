"""A live listener (``manage.py dicom_listen`` in a subprocess, embedded mode) on a free loopback port.

Each listener gets its own data directory with a migrated SQLite database copied from a session template; tests read
its results straight from that file (pytest-django's test database is another database)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port


def embedded_env(data_dir: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "DOSEREG_TEST_DATABASE_NAME")
           and not k.startswith("DOSEREG_")}
    env.update(DOSEREG_DATA_DIR=str(data_dir), DOSEREG_DICOM_BIND="127.0.0.1", DOSEREG_LOG_LEVEL="INFO",
               DOSEREG_TIME_ZONE="UTC", TCP_NODELAY="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def manage(data_dir: Path, *args: str, check: bool = True, timeout: float = 600, **env: str):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=embedded_env(data_dir, **env),
                          capture_output=True, text=True, timeout=timeout, check=check)


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory) -> Path:
    template = tmp_path_factory.mktemp("listener-template")
    manage(template, "migrate", "--noinput", "-v0")
    return template


def new_data_dir(template: Path, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(template / "dosereg.sqlite3", target / "dosereg.sqlite3")
    shutil.copy2(template / "secret_key", target / "secret_key")
    return target


class LiveListener:
    def __init__(self, data_dir: Path, port: int | None = None, **env: str):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.log = data_dir / "listener.log"

    def start(self) -> LiveListener:
        env = embedded_env(self.data_dir, DOSEREG_DICOM_PORT=str(self.port), **self.env)
        log_from = self.log.stat().st_size if self.log.exists() else 0
        self.proc = subprocess.Popen([sys.executable, "manage.py", "dicom_listen"], cwd=REPO, env=env,
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"), start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the listener exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}")
            if self._says_it_listens(log_from) and self.echo():
                return self
            time.sleep(0.2)
        raise RuntimeError("the listener did not say it listens and answer C-ECHO within 60 s")

    def _says_it_listens(self, log_from: int) -> bool:
        """Its own log says it listens on the port (dicomrx.listener's start-up line): an answer to C-ECHO alone
        could come from another server on that port."""
        with open(self.log, "rb") as f:
            f.seek(log_from)
            return re.search(rb"DICOM listener .+? on 127\.0\.0\.1:%d\b" % self.port, f.read()) is not None

    def echo(self) -> bool:
        from pynetdicom import AE
        from pynetdicom.sop_class import Verification

        ae = AE(ae_title="PROBE")
        ae.add_requested_context(Verification)
        ae.acse_timeout = ae.network_timeout = 2
        assoc = ae.associate("127.0.0.1", self.port, ae_title="DOSEREG")
        if assoc.is_rejected:
            return True  # it answers (an allowlist without PROBE)
        if not assoc.is_established:
            return False
        ok = getattr(assoc.send_c_echo(), "Status", None) == 0
        assoc.release()
        return ok

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def query(self, sql: str, params=()) -> list[tuple]:
        con = sqlite3.connect(self.data_dir / "dosereg.sqlite3", timeout=30)
        try:
            rows = con.execute(sql, params).fetchall()
            con.commit()
            return rows
        finally:
            con.close()

    def wait_ingested(self, expected: int, timeout: float = 180) -> list[tuple]:
        deadline = time.time() + timeout
        while True:
            rows = self.query("select state, count(*) from registry_receivedobject group by state")
            states = dict(rows)
            if sum(states.values()) >= expected and not states.get("received"):
                return rows
            if time.time() > deadline:
                raise AssertionError(f"{expected} objects not ingested within {timeout:.0f} s: {states}; log: "
                                     f"{self.log.read_text()[-2000:]}")
            time.sleep(0.3)


@pytest.fixture
def start_listener(migrated_template, tmp_path):
    started: list[LiveListener] = []

    def _start(name: str = "listener", **env: str) -> LiveListener:
        listener = LiveListener(new_data_dir(migrated_template, tmp_path / name), **env).start()
        started.append(listener)
        return listener

    yield _start
    for listener in started:
        listener.stop()
