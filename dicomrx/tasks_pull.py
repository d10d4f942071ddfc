"""The scheduled PACS pull (Celery beat) for rooms that cannot push: a thin task around dicomrx.pull."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone

from dicomrx import pull
from dosereg.celery import shared_task

log = logging.getLogger("dicomrx.pull")


def pacs_pull_recent(days: int = 2) -> dict:
    """Pull the dose objects of the last ``days`` days (today included) not yet held; {} without a PACS."""
    if not settings.PACS_HOST:
        log.info("scheduled PACS pull skipped: DOSEREG_PACS_HOST is not set")
        return {}
    since = timezone.localdate() - dt.timedelta(days=max(days, 1) - 1)
    return pull.PacsPull().run(since).as_dict()


@shared_task(name="dicomrx.pacs_pull_recent", acks_late=True, autoretry_for=(OSError,), retry_backoff=True,
             max_retries=3)
def pacs_pull_recent_task(days: int = 2) -> dict:
    try:
        return pacs_pull_recent(days)
    except pull.PullError as exc:  # PACS or listener down: the next scheduled run tries again
        log.warning("scheduled PACS pull failed: %s", exc)
        return {"error": str(exc)}
