from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "dosereg.web"
    label = "web"
    verbose_name = "Web pages and API"
