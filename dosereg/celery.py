"""The Celery app.  Without CELERY_BROKER_URL tasks run eagerly in the caller (the embedded mode).

Tasks modules take ``shared_task`` from here, so that the app (with DoseReg's settings: eager in the embedded mode) is
made before any task can be called, and only by code that has tasks: a command that calls none starts without Celery.
"""

import os

from celery import Celery, shared_task
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dosereg.settings")

__all__ = ["app", "shared_task"]


def beat_schedule(entries: dict) -> dict:
    """settings.CELERY_BEAT_SCHEDULE with each ``{"crontab": {...}}`` schedule made a crontab (settings hold plain
    data and import no Celery)."""
    out = {}
    for name, entry in entries.items():
        schedule = entry["schedule"]
        if isinstance(schedule, dict):
            schedule = crontab(**schedule["crontab"])
        out[name] = {**entry, "schedule": schedule}
    return out


app = Celery("dosereg")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_schedule = beat_schedule(app.conf.beat_schedule or {})
app.autodiscover_tasks()
