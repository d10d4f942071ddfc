from django.apps import AppConfig


class InteropConfig(AppConfig):
    name = "dosereg.interop"
    label = "interop"
    verbose_name = "FHIR and HL7 v2"
    default_auto_field = "django.db.models.BigAutoField"
