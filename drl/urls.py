"""Pages of the drl app (mounted at "/": drl/..., mapping/...)."""

from django.urls import path

from drl import views

app_name = "drl"
urlpatterns = [
    path("drl/", views.drl_home, name="home"),
    path("drl/run/", views.drl_run, name="run"),
    path("drl/comparisons/<int:pk>/", views.drl_report, name="report"),
    path("drl/comparisons/<int:pk>/pdf/", views.drl_report_pdf, name="report_pdf"),
    path("drl/comparisons/<int:pk>/csv/", views.drl_report_csv, name="report_csv"),
    path("drl/due/<int:pk>/run/", views.drl_due_run, name="due_run"),
    path("drl/sets/", views.drl_sets, name="sets"),
    path("drl/sets/import/", views.drl_set_import, name="set_import"),
    path("drl/sets/<int:pk>/toggle/", views.drl_set_toggle, name="set_toggle"),
    path("mapping/", views.mapping, name="mapping"),
    path("mapping/assign/", views.mapping_assign, name="mapping_assign"),
    path("mapping/rules/add/", views.mapping_rule_add, name="mapping_rule_add"),
    path("mapping/rules/<int:pk>/toggle/", views.mapping_rule_toggle, name="mapping_rule_toggle"),
    path("mapping/reapply/", views.mapping_reapply, name="mapping_reapply"),
]
