"""The site's URLs, plus the incident pages and API if dosereg/urls.py does not mount them (it does since they were
wired; this keeps the tests independent of that)."""

from django.urls import include, path

from dosereg.urls import urlpatterns as site_patterns

_mounted = any(getattr(p, "namespace", None) == "incidents" for p in site_patterns)
urlpatterns = list(site_patterns) if _mounted else [
    path("", include("triggers.incidents.urls")),
    path("api/v1/", include("triggers.incidents.api_urls")),
    *site_patterns,
]
