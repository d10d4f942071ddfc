"""Staff dose pages (owner, physicists, administrators), mounted at /staff/."""

from django.urls import path

from dosereg.web import staff_views

app_name = "staff"

urlpatterns = [
    path("", staff_views.my_doses, name="mine"),
    path("people/", staff_views.people, name="people"),
    path("people/<int:pk>/", staff_views.person, name="person"),
    path("procedures/", staff_views.procedures, name="procedures"),
    path("unmatched/", staff_views.unmatched, name="unmatched"),
    path("manage/", staff_views.manage, name="manage"),
    path("manage/new/", staff_views.member_edit, name="member_new"),
    path("manage/<int:pk>/", staff_views.member_edit, name="member_edit"),
    path("manage/<int:pk>/dosimeters/", staff_views.dosimeter_add, name="dosimeter_add"),
    path("roster/", staff_views.roster_import, name="roster"),
]
