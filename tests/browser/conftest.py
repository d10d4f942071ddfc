"""Browser tests use the session's headless Chromium (``chromium_browser`` and ``artifacts`` in tests/conftest.py)."""
