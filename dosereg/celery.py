"""The Celery app.  Without CELERY_BROKER_URL tasks run eagerly in the caller (the embedded mode)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dosereg.settings")

app = Celery("dosereg")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
