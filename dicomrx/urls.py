"""Pages of the dicomrx app (mounted at /dicom/ by dosereg/urls.py)."""

from django.urls import path

from dicomrx import views

app_name = "dicomrx"
urlpatterns: list = [
    path("", views.listener_status, name="status"),
    path("objects/<int:pk>/reprocess/", views.reprocess_object, name="reprocess"),
]
