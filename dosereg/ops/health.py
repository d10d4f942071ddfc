"""Readiness checks: each answers ok or not with a short reason that names no host, path or patient."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

from dicomrx.models import ListenerStatus

# A listener writes its heartbeat every 10 s (dicomrx.listener.Listener); three missed beats mean it is gone.
LISTENER_STALE_AFTER = dt.timedelta(seconds=30)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    reason: str = ""


def database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return Check("database", False, type(exc).__name__)
    return Check("database", True)


def broker() -> Check | None:
    """None in the embedded mode (no broker configured)."""
    if not settings.CELERY_BROKER_URL:
        return None
    from dosereg.celery import app  # noqa: PLC0415 - only the production mode needs a broker connection

    try:
        with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return Check("broker", False, type(exc).__name__)
    return Check("broker", True)


def inbox(path: Path | None = None) -> Check:
    """The listener's inbox takes a file (creating one proves more than os.access: a read-only mount, a full disk)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".readyz-", dir=path or settings.INBOX_DIR)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        return Check("inbox", False, os.strerror(exc.errno) if exc.errno else type(exc).__name__)
    return Check("inbox", True)


def listener(now: dt.datetime | None = None) -> Check:
    fresh = (now or timezone.now()) - LISTENER_STALE_AFTER
    try:
        alive = ListenerStatus.objects.filter(stopped_at__isnull=True, heartbeat_at__gte=fresh).exists()
    except Exception as exc:  # noqa: BLE001 - the database check reports the cause
        return Check("listener", False, type(exc).__name__)
    return Check("listener", alive, "" if alive else "no listener heartbeat in the last 30 s")


def readiness(*, with_listener: bool = False) -> list[Check]:
    checks = [database(), broker(), inbox()]
    if with_listener:
        checks.append(listener())
    return [c for c in checks if c is not None]
