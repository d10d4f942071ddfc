from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "dosereg.web"
    label = "web"
    verbose_name = "Web pages and API"

    def ready(self):
        # connect the sign-in failure receivers; the directory role mapping and its check only where LDAP or OpenID
        # Connect is configured (its packages are slow to import, and a command has no sign-in)
        from django.conf import settings  # noqa: PLC0415

        from dosereg.web import signin  # noqa: F401, PLC0415

        if directory_configured(settings):
            from dosereg.web import directory  # noqa: F401, PLC0415


def directory_configured(settings) -> bool:
    """LDAP or OpenID Connect sign-in is on, or a role mapping for one is set."""
    backends = " ".join(settings.AUTHENTICATION_BACKENDS).lower()
    return ("ldap" in backends or "oidc" in backends or bool(getattr(settings, "LDAP_ROLE_GROUPS", None))
            or bool(getattr(settings, "OIDC_ROLE_GROUPS", None)))

