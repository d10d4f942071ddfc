"""Thin Celery tasks of the triggers app (each wraps a plain service function)."""

import datetime as dt

from dosereg.celery import shared_task
from triggers.services import check_study, check_triggers_period


@shared_task
def check_study_task(study_id: int) -> list[int]:
    return check_study(study_id)


@shared_task
def check_triggers_period_task(since: str | None = None) -> dict:
    return check_triggers_period(dt.date.fromisoformat(since) if since else None)
