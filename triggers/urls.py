"""Pages of the triggers app: the alert inbox and alert pages, the trigger rules and their tuning figures.

Incident reports (triggers/incidents/urls.py, namespace "incidents") are mounted by the project URLconf."""

from django.urls import path

from triggers import views

app_name = "triggers"
urlpatterns = [
    path("alerts/", views.alert_inbox, name="alert_inbox"),
    path("alerts/follow-up/", views.follow_up_list, name="follow_up_list"),
    path("alerts/<int:pk>/", views.alert_detail, name="alert_detail"),
    path("alerts/<int:pk>/acknowledge/", views.alert_acknowledge_view, name="alert_acknowledge"),
    path("alerts/<int:pk>/follow-up/", views.alert_follow_up_view, name="alert_follow_up"),
    path("alerts/<int:pk>/close/", views.alert_close_view, name="alert_close"),
    path("alerts/<int:pk>/escalate/", views.alert_escalate_view, name="alert_escalate"),
    path("rules/", views.rule_list, name="rule_list"),
    path("rules/new/", views.rule_edit, name="rule_new"),
    path("rules/tuning/", views.rule_tuning_view, name="rule_tuning"),
    path("rules/<int:pk>/", views.rule_detail, name="rule_detail"),
    path("rules/<int:pk>/edit/", views.rule_edit, name="rule_edit"),
]
