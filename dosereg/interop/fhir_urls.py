"""/fhir/: the read-only FHIR R4 API (dosereg.interop.fhir_views)."""

from django.urls import path, re_path

from dosereg.interop import fhir_views as views

app_name = "fhir"
urlpatterns = [
    path("metadata", views.MetadataView.as_view(), name="metadata"),
    path("Observation", views.ObservationSearchView.as_view(), name="observation-search"),
    path("Observation/<str:pk>", views.ObservationReadView.as_view(), name="observation"),
    path("Patient/<str:pk>", views.PatientReadView.as_view(), name="patient"),
    path("ImagingStudy/<str:pk>", views.ImagingStudyReadView.as_view(), name="imaging-study"),
    path("Device/<str:pk>", views.DeviceReadView.as_view(), name="device"),
    re_path(r"^(?P<rest>.*)$", views.UnknownView.as_view(), name="unknown"),
]
