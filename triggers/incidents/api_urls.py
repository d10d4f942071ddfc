"""Incident report API, under /api/v1/ (include: ``path("api/v1/", include("triggers.incidents.api_urls"))``)."""

from django.urls import path

from triggers.incidents import api

urlpatterns = [
    path("incidents/", api.IncidentList.as_view(), name="api-incidents"),
    path("incidents/<int:pk>/", api.IncidentDetail.as_view(), name="api-incident"),
]
