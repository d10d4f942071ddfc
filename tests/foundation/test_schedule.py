"""Every Celery beat schedule entry names a task the worker knows."""

from django.conf import settings

from dosereg.celery import app


def test_beat_schedule_tasks_are_registered():
    app.loader.import_default_modules()
    assert settings.CELERY_BEAT_SCHEDULE
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, name
