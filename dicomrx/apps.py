from django.apps import AppConfig


class DicomrxConfig(AppConfig):
    name = "dicomrx"
    verbose_name = "DICOM receive and import"
