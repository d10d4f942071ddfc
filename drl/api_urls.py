"""API endpoints of the drl app (mounted under /api/v1/)."""

urlpatterns: list = []
