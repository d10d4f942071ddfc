"""Incident report pages, under /incidents/ (include at the site root: ``path("", include("triggers.incidents.urls"))``)."""

from django.urls import path

from triggers.incidents import views

app_name = "incidents"
urlpatterns = [
    path("incidents/", views.incident_list, name="list"),
    path("incidents/new/", views.incident_new, name="new"),
    path("incidents/report/", views.report_exposure_lookup, name="report_lookup"),
    path("incidents/new/study/<int:study_id>/", views.incident_new_from_study, name="from_study"),
    path("incidents/new/alert/<int:alert_id>/", views.incident_escalate, name="from_alert"),
    path("incidents/summary/", views.incident_summary, name="summary"),
    path("incidents/<int:pk>/", views.incident_detail, name="detail"),
    path("incidents/<int:pk>/print/", views.incident_print, name="print"),
    path("incidents/<int:pk>/pdf/", views.incident_pdf, name="pdf"),
    path("incidents/<int:pk>/edit/", views.incident_edit, name="edit"),
    path("incidents/<int:pk>/analysis/", views.incident_analysis, name="analysis"),
    path("incidents/<int:pk>/actions/", views.incident_action_add, name="action_add"),
    path("incidents/<int:pk>/actions/<int:action_id>/done/", views.incident_action_done, name="action_done"),
    path("incidents/<int:pk>/transition/", views.incident_transition, name="transition"),
    path("incidents/<int:pk>/notification/", views.incident_notification, name="notification"),
    path("incidents/<int:pk>/significance/", views.incident_significance, name="significance"),
    path("incidents/<int:pk>/comment/", views.incident_comment, name="comment"),
]
