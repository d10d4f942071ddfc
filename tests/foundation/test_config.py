"""Configuration from the environment: bad values stop start-up with one line; migrate gives a working instance."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import REPO, free_port


def run_manage(*args, env=None, timeout=120):
    full_env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize(
    ("variable", "value", "needle"),
    [
        ("DOSEREG_DICOM_PORT", "abc", "DOSEREG_DICOM_PORT='abc' is not a whole number"),
        ("DOSEREG_DICOM_PORT", "70000", "out of range"),
        ("DOSEREG_AE_TITLE", "A" * 20, "is not a valid AE title"),
        ("DOSEREG_DEBUG", "maybe", "is not a boolean"),
        ("DOSEREG_TIME_ZONE", "Mars/Olympus", "is not a known time zone"),
        ("DATABASE_URL", "mysql://x@y/z", "is not supported"),
    ],
)
def test_bad_configuration_stops_with_one_line(tmp_path, variable, value, needle):
    result = run_manage("check", env={"DOSEREG_DATA_DIR": str(tmp_path), variable: value})
    assert result.returncode != 0
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_migrate_on_empty_data_dir_gives_working_instance(tmp_path):
    result = run_manage("migrate", "--noinput", env={"DOSEREG_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dosereg.sqlite3").exists()
    assert (tmp_path / "inbox").is_dir()
    script = (
        "from django.contrib.auth.models import Group;"
        "print(sorted(Group.objects.values_list('name', flat=True)))"
    )
    shell = run_manage("shell", "-c", script, env={"DOSEREG_DATA_DIR": str(tmp_path)})
    assert shell.returncode == 0, shell.stderr
    for role in ("admin", "api_client", "physicist", "practitioner", "qa_committee", "radiographer"):
        assert role in shell.stdout
    # the SQLite file runs in WAL mode with the documented pragmas
    wal = run_manage("shell", "-c", "from django.db import connection; c=connection.cursor();"
                     "c.execute('PRAGMA journal_mode'); print(c.fetchone()[0])",
                     env={"DOSEREG_DATA_DIR": str(tmp_path)})
    assert wal.stdout.strip().splitlines()[-1] == "wal"


def test_serve_answers_with_login_page_and_stops_on_sigterm(tmp_path):
    """What `make run` starts: the web application (and the listener) on the configured port, embedded mode."""
    http_port, dicom_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env.update(DOSEREG_DATA_DIR=str(tmp_path), DOSEREG_HTTP_PORT=str(http_port), DOSEREG_DICOM_PORT=str(dicom_port),
               DOSEREG_DICOM_BIND="127.0.0.1", DOSEREG_ADMIN_PASSWORD="a-long-test-password")
    assert run_manage("migrate", "--noinput", env=env).returncode == 0
    created = run_manage("ensure_admin", env=env)
    assert "Created administrator 'admin'" in created.stdout
    proc = subprocess.Popen([sys.executable, "manage.py", "serve"], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        body = ""
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/", timeout=2) as resp:
                    body = resp.read().decode()
                    final_url = resp.geturl()
                break
            except OSError:
                time.sleep(0.5)
        assert "Log in to DoseReg" in body
        assert "/accounts/login/" in final_url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_a_command_starts_without_what_it_does_not_need(tmp_path):
    """import_dose with nothing to import loads neither Celery, the REST framework (pagination check: requests,
    markdown) nor the directory backends, yet runs DoseReg's own checks (issue 14: quick start-up)."""
    assert run_manage("migrate", "--noinput", env={"DOSEREG_DATA_DIR": str(tmp_path)}).returncode == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    script = ("import sys, runpy; sys.argv = ['manage.py', 'import_dose', sys.argv[1]]\n"
              "try:\n    runpy.run_path('manage.py', run_name='__main__')\nfinally:\n"
              "    print('MODULES', ' '.join(sorted(sys.modules)), file=sys.stderr)\n")
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env["DOSEREG_DATA_DIR"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-c", script, str(empty)], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = set(result.stderr.rsplit("MODULES ", 1)[1].split())
    for heavy in ("celery", "kombu", "rest_framework.pagination", "requests", "markdown", "ldap", "django_auth_ldap",
                  "mozilla_django_oidc"):
        assert heavy not in loaded, f"{heavy} imported by a command that does not need it"
    # DoseReg's own checks (tagged for every command) are still among the command's checks
    from django.core.checks import registry  # noqa: PLC0415

    from dosereg.registry.checks import DOSEREG_CHECKS  # noqa: PLC0415
    assert {c.__name__ for c in registry.registry.get_checks() if DOSEREG_CHECKS in c.tags} == {
        "dicom_configuration", "private_files"}
    from dosereg.registry.management.base import DoseRegCommand  # noqa: PLC0415
    assert DOSEREG_CHECKS in DoseRegCommand.requires_system_checks
