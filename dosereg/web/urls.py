"""Registry pages."""

from django.urls import path

from dosereg.web import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
]
