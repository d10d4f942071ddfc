"""Registry pages."""

from django.urls import path

from dosereg.web import dataprotection, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("demo-data/", views.load_demo_data, name="load_demo_data"),
    path("patients/", views.patient_search, name="patient_search"),
    path("patients/<int:pk>/", views.patient_history, name="patient_history"),
    path("patients/<int:pk>/sheet/", views.patient_sheet, name="patient_sheet"),
    path("studies/", views.study_list, name="study_list"),
    path("studies/<int:pk>/", views.study_detail, name="study_detail"),
    path("studies/<int:pk>/confirm-values/", views.study_confirm_values, name="study_confirm_values"),
    path("objects/<int:pk>/download/", views.download_object, name="download_object"),
    path("units/", views.unit_list, name="unit_list"),
    path("units/<int:pk>/", views.unit_detail, name="unit_detail"),
    path("audit/", views.audit_trail, name="audit_trail"),
    path("audit/data-protection/", dataprotection.data_protection_report, name="data_protection_report"),
    path("euratom/", views.euratom_page, name="euratom"),
    path("euratom/population.csv", views.euratom_csv, {"what": "population"}, name="euratom_population_csv"),
    path("euratom/units.csv", views.euratom_csv, {"what": "units"}, name="euratom_units_csv"),
]
