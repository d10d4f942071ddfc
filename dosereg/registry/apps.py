from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "dosereg.registry"
    label = "registry"
    verbose_name = "Dose registry"

    def ready(self) -> None:
        from dosereg import celery  # noqa: F401, PLC0415 - binds @shared_task to DoseReg's Celery app once apps load

        from . import checks  # noqa: F401, PLC0415 - registers the system checks (Django: in ready())
