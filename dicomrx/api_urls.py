"""API endpoints of the dicomrx app (mounted under /api/v1/)."""

urlpatterns: list = []
