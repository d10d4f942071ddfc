from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "dosereg.registry"
    label = "registry"
    verbose_name = "Dose registry"

    def ready(self) -> None:
        from dosereg import celery  # noqa: F401  (binds @shared_task to DoseReg's Celery app)

        from . import checks  # noqa: F401  (registers the DICOM configuration checks)
