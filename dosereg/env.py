"""Typed helpers that read settings from environment variables and stop start-up with one line on a bad value."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse


class ConfigError(Exception):
    """A configuration value in the environment is not acceptable."""


def fail(message: str) -> None:
    """Stop start-up with a one-line message (no traceback): configuration errors are the operator's, not bugs."""
    print(f"DoseReg configuration error: {message}", file=sys.stderr)
    raise SystemExit(2)


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    fail(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")
    return default


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        fail(f"{name}={raw!r} is not a whole number")
    if minimum is not None and value < minimum or maximum is not None and value > maximum:
        fail(f"{name}={value} is out of range ({minimum}..{maximum})")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_path(name: str, default: str) -> Path:
    return Path(os.environ.get(name, "").strip() or default).expanduser().resolve()


def ae_title(name: str, default: str) -> str:
    """An AE title: 1 to 16 characters of the DICOM default repertoire, no backslash or control characters."""
    raw = os.environ.get(name, default)
    value = raw.strip()
    if not value or len(value) > 16 or not value.isascii() or "\\" in value or any(ord(c) < 32 for c in value):
        fail(f"{name}={raw!r} is not a valid AE title (1 to 16 ASCII characters, no backslash)")
    return value


def local_time_zone() -> str:
    """The machine's IANA zone name (from $TZ or /etc/localtime or /etc/timezone), else UTC."""
    tz = os.environ.get("TZ", "").strip().lstrip(":")
    if tz and "/" in tz or tz == "UTC":
        return tz
    try:
        target = os.path.realpath("/etc/localtime")
        if "/zoneinfo/" in target:
            return target.split("/zoneinfo/", 1)[1]
    except OSError:
        pass
    try:
        name = Path("/etc/timezone").read_text().strip()
        if name:
            return name
    except OSError:
        pass
    return "UTC"


def database_from_url(url: str, data_dir: Path) -> dict:
    """A Django DATABASES entry from DATABASE_URL (postgres://, postgresql://, sqlite:///path); empty means SQLite."""
    if not url:
        return sqlite_database(data_dir / "dosereg.sqlite3")
    parsed = urlparse(url)
    if parsed.scheme in {"postgres", "postgresql", "pgsql"}:
        options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")) or "dosereg",
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": options,
            "TEST": {"NAME": os.environ.get("DOSEREG_TEST_DATABASE_NAME") or None},
        }
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path)
        if url.startswith("sqlite:////"):
            path = "/" + path.lstrip("/")
        elif url.startswith("sqlite:///"):
            path = path[1:]
        return sqlite_database(Path(path or (data_dir / "dosereg.sqlite3")))
    fail(f"DATABASE_URL scheme {parsed.scheme!r} is not supported (use postgres:// or sqlite:///)")
    return {}


def sqlite_database(path: Path) -> dict:
    # WAL lets readers run beside the writer; FULL synchronous makes a commit durable before the listener
    # answers Success; IMMEDIATE transactions take the write lock up front, so two writers wait (busy timeout)
    # instead of failing with "database is locked" on lock upgrade.
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        },
        "TEST": {"NAME": None},
    }
