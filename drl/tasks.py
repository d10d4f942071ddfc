"""Celery tasks of drl: thin wrappers around services.

Scheduled yearly by Celery beat (see README: ``CELERY_BEAT_SCHEDULE['drl-yearly-comparison']``; the date comes from
DOSEREG_DRL_YEARLY_MONTH / DOSEREG_DRL_YEARLY_DAY, default 15 January, so late reports of December have arrived);
due re-comparisons daily (``drl-due-comparisons``).
"""

from __future__ import annotations

from dosereg.celery import shared_task
from drl.services import drl_due_comparisons_run, drl_yearly_run


@shared_task(name="drl.yearly_comparison", acks_late=True)
def drl_yearly_comparison(year: int | None = None) -> int:
    """Compare the last calendar year (or ``year``) with the DRLs; returns the snapshot id."""
    return drl_yearly_run(year).pk


@shared_task(name="drl.due_comparisons", acks_late=True)
def drl_due_comparisons() -> list[int]:
    """Run the due comparisons whose period since the change holds enough patients; returns the snapshot ids."""
    return [run.pk for run in drl_due_comparisons_run()]
