"""DoseReg: a hospital radiation dose registry.

The Celery app (``dosereg.celery``) is loaded by the registry's ``AppConfig.ready`` and by ``celery -A
dosereg.celery``, not here: the Django-free core (``dosereg.core``) must import without Celery or Django.
"""
