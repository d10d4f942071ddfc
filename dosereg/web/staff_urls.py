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
]
