"""Pages of the dicomrx app."""

app_name = "dicomrx"
urlpatterns: list = []
