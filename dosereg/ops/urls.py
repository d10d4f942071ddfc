"""Probe and metrics endpoints, mounted at the site root by dosereg/urls.py."""

from django.urls import path

from dosereg.ops import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics_view, name="metrics"),
]
