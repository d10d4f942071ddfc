"""Registry API endpoints (mounted under /api/v1/)."""

from django.urls import path, re_path

from dosereg.web import api, skin_map

urlpatterns = [
    path("studies/", api.StudyListView.as_view(), name="api-studies"),
    re_path(r"^studies/(?P<study_instance_uid>[^/]+)/$", api.StudyDetailView.as_view(), name="api-study"),
    re_path(r"^studies/(?P<study_instance_uid>[^/]+)/skin-map\.(?P<fmt>png|svg)$", skin_map.SkinMapView.as_view(),
            name="api-study-skin-map"),
    re_path(r"^patients/(?P<patient_id>.+)/history/$", api.PatientHistoryView.as_view(),
            name="api-patient-history"),
]
