from django.apps import AppConfig


class DrlConfig(AppConfig):
    name = "drl"
    verbose_name = "Diagnostic reference levels"
