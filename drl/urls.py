"""Pages of the drl app."""

app_name = "drl"
urlpatterns: list = []
