"""Celery tasks of drl: thin wrappers around services.

Scheduled yearly by Celery beat (see README: ``CELERY_BEAT_SCHEDULE['drl-yearly-comparison']``; the date comes from
DOSEREG_DRL_YEARLY_MONTH / DOSEREG_DRL_YEARLY_DAY, default 15 January, so late reports of December have arrived).
"""

from __future__ import annotations

from celery import shared_task

from drl.services import drl_yearly_run


@shared_task(name="drl.yearly_comparison", acks_late=True)
def drl_yearly_comparison(year: int | None = None) -> int:
    """Compare the last calendar year (or ``year``) with the DRLs; returns the snapshot id."""
    return drl_yearly_run(year).pk
