import sqlite3

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "dosereg.registry"
    label = "registry"
    verbose_name = "Dose registry"

    def ready(self) -> None:
        # The Celery app is made by the tasks modules (``from dosereg.celery import shared_task``), not here: a
        # command that calls no task starts without Celery.
        from . import checks  # noqa: F401, PLC0415 - registers the system checks (Django: in ready())

        sqlite_bind_plainly()


def _null(value: None) -> None:
    return value


def sqlite_bind_plainly() -> None:
    """Python's sqlite3 binds exact ints, floats and texts as they are, but looks for an adapter for any other
    parameter, None and bool included, and finding none costs an AttributeError raised and formatted each time (its
    protocol has no ``__adapt__``): 10,000 of them to record a 316-event report, whose event rows carry thirty NULL
    columns each.  Adapters for None and bool bind the very values bound without them (NULL; the integer 0 or 1).
    Process-wide, as Django's SQLite backend registers its own adapters."""
    sqlite3.register_adapter(type(None), _null)
    sqlite3.register_adapter(bool, int)
