"""Helpers for the triggers tests: import real files through the ingestion command."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from dosereg.celery import app


def eager(celery_app=app) -> None:
    """Run Celery tasks in this process for the rest of the test (restored by the autouse fixture below)."""
    celery_app.conf.task_always_eager = True


@pytest.fixture(autouse=True)
def _restore_eager():
    before = app.conf.task_always_eager
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def import_dose(django_capture_on_commit_callbacks):
    """import_dose(path) -> runs `manage.py import_dose` with on-commit steps (mapping, triggers) executed in this
    process (also when a broker is configured: these tests are about the alerts, not the Celery transport)."""
    eager()

    def _import(*paths):
        out = io.StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            try:
                call_command("import_dose", *[str(p) for p in paths], stdout=out)
            except SystemExit:
                pass
        return out.getvalue()

    return _import


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
