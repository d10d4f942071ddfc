"""Pages of the triggers app."""

app_name = "triggers"
urlpatterns: list = []
