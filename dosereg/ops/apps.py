from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "dosereg.ops"
    label = "ops"
    verbose_name = "Operations"
