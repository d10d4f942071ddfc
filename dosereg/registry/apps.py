from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "dosereg.registry"
    label = "registry"
    verbose_name = "Dose registry"

    def ready(self) -> None:
        # The Celery app is made by the tasks modules (``from dosereg.celery import shared_task``), not here: a
        # command that calls no task starts without Celery.
        from . import checks  # noqa: F401, PLC0415 - registers the system checks (Django: in ready())
