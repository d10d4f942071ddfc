"""Browser tests use the session's headless Chromium (``chromium_browser`` and ``artifacts`` in tests/conftest.py);
the per-role page screenshots go to var/screenshots/ (gitignored; CI keeps them as artefacts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture
def screenshots() -> Path:
    path = REPO / "var" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
