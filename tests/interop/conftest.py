"""Interop tests: the live listener fixtures of tests/listener, shared here."""

from tests.listener.conftest import migrated_template, start_listener  # noqa: F401 - pytest fixtures
