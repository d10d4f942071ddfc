"""Fixtures of the security tests: the web suite's users and data, plus every URL of the URLconf."""

from __future__ import annotations

from tests.web.conftest import _fast_passwords, api_for, history, login  # noqa: F401 - fixtures reused
