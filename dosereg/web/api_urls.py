"""Registry API endpoints (mounted under /api/v1/)."""

from django.urls import path, re_path

from dosereg.web import api

urlpatterns = [
    path("studies/", api.StudyListView.as_view(), name="api-studies"),
    re_path(r"^studies/(?P<study_instance_uid>[^/]+)/$", api.StudyDetailView.as_view(), name="api-study"),
    re_path(r"^patients/(?P<patient_id>.+)/history/$", api.PatientHistoryView.as_view(),
            name="api-patient-history"),
]
