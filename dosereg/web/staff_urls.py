"""Staff dose pages (owner, physicists, administrators)."""

urlpatterns: list = []
