"""The site's URLs plus the incident pages and API (until they are wired into dosereg/urls.py)."""

from django.urls import include, path

from dosereg.urls import urlpatterns as site_patterns

urlpatterns = [
    path("", include("triggers.incidents.urls")),
    path("api/v1/", include("triggers.incidents.api_urls")),
    *site_patterns,
]
