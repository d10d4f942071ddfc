from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "dosereg.web"
    label = "web"
    verbose_name = "Web pages and API"

    def ready(self):
        # connect the sign-in failure receivers and the directory role mapping, register its check
        from dosereg.web import directory, signin  # noqa: F401, PLC0415

