"""Helpers for the triggers tests: import real files through the ingestion command (when it exists)."""

from __future__ import annotations

import importlib.util

import pytest


@pytest.fixture
def import_dose(django_capture_on_commit_callbacks):
    """import_dose(path) -> runs `manage.py import_dose` with on-commit steps (mapping, triggers) executed."""
    from django.core.management import call_command

    if importlib.util.find_spec("dicomrx.ingest") is None:
        pytest.skip("the ingestion engineer's import_dose command is not available yet")

    def _import(*paths):
        import io

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
