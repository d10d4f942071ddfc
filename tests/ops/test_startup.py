"""Start-up hygiene, as an operator sees it: one line for a bad setting or a taken port, one open-allowlist warning,
no kombu warning in the embedded mode, gunicorn's control socket in the data directory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port


def env(data_dir: Path, **extra: str) -> dict:
    base = {k: v for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND") and not k.startswith("DOSEREG_")}
    return {**base, "DOSEREG_DATA_DIR": str(data_dir), "DOSEREG_TIME_ZONE": "UTC", "PYTHONUNBUFFERED": "1", **extra}


def manage(data_dir: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env(data_dir, **extra),
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("startup")
    done = manage(path, "migrate", "--noinput")
    assert done.returncode == 0, done.stderr[-2000:]
    return path


def test_a_bad_log_level_is_one_line(tmp_path):
    done = manage(tmp_path, "check", DOSEREG_LOG_LEVEL="LOUD")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "DoseReg configuration error: DOSEREG_LOG_LEVEL='LOUD' is not a log level "
        "(use DEBUG, INFO, WARNING, ERROR or CRITICAL)"]


def test_a_bad_metrics_allow_entry_is_one_line(tmp_path):
    done = manage(tmp_path, "check", DOSEREG_METRICS_ALLOW="127.0.0.1,intranet")
    assert done.returncode == 2 and "DOSEREG_METRICS_ALLOW entry 'intranet'" in done.stderr
    assert "Traceback" not in done.stderr


def test_embedded_tasks_do_not_warn_about_a_broker(data_dir):
    # an eager task (a notification retry, an interop push) used to log kombu's "Reverting to default 'localhost'"
    done = manage(data_dir, "shell", "-c", "from dosereg.registry.tasks import retry_pending_notifications as t\n"
                                           "t.delay()")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "kombu" not in done.stderr and "Reverting" not in done.stderr


def test_no_allowlist_warning_from_ordinary_commands(data_dir):
    done = manage(data_dir, "check")
    assert done.returncode == 0 and "calling AE" not in done.stderr


def _read_until(proc: subprocess.Popen, needle: str, timeout: float) -> str:
    """stderr of ``proc`` up to the line holding ``needle`` (or its end)."""
    seen, deadline = [], time.time() + timeout
    os.set_blocking(proc.stderr.fileno(), False)
    while time.time() < deadline:
        line = proc.stderr.readline()
        if line:
            seen.append(line)
            if needle in line:
                break
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.1)
    return "".join(seen)


def test_serve_once_then_a_second_instance_is_one_line(data_dir):
    http, dicom = free_port(), free_port()
    ports = dict(DOSEREG_HTTP_PORT=str(http), DOSEREG_DICOM_PORT=str(dicom), DOSEREG_DICOM_BIND="127.0.0.1")
    first = subprocess.Popen([sys.executable, "manage.py", "serve"], cwd=REPO, env=env(data_dir, **ports),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        output = _read_until(first, "DoseReg web on", 90)
        assert "DoseReg web on" in output, output[-3000:]
        output += _read_until(first, "never printed", 3)  # the listener's start-up lines
        assert output.count("any calling AE title may store objects") == 1, output
        assert (data_dir / "gunicorn.ctl").exists()
        for port in (http, dicom):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()  # up when it says so

        second = manage(data_dir, "serve", **ports)
        assert second.returncode == 1
        assert second.stderr.strip().splitlines()[-1].endswith(f"port {http} is already in use "
                                                              f"(is DoseReg already running?)")
        assert "DoseReg web on" not in second.stderr and "Traceback" not in second.stderr
        assert first.poll() is None  # the first instance is untouched
    finally:
        os.killpg(first.pid, signal.SIGINT)
        try:
            first.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(first.pid, signal.SIGKILL)
    assert first.returncode == 0
