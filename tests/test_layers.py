"""The layers of .importlinter hold (CI runs `lint-imports` too; this makes `make test` catch a broken layer)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def test_import_contract_is_kept():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("lint-imports is not installed (pip install -e '.[dev]')")
    result = subprocess.run([exe], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "broken" in result.stdout and "0 broken" in result.stdout


def test_the_core_imports_without_django():
    code = ("import sys; import dosereg.core.quantities, dosereg.core.display, dosereg.core.sanity, "
            "dosereg.core.versions, dosereg.core.dose_report; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'celery', 'rest_framework')]; "
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
