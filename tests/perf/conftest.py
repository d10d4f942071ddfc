import pytest


@pytest.fixture(autouse=True)
def _private_inbox(settings, tmp_path):
    """Stored objects go to a per-test inbox, never the developer's data folder."""
    settings.INBOX_DIR = tmp_path / "inbox"
