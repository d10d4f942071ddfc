"""Create the first administrator once (make run): DOSEREG_ADMIN_USERNAME, DOSEREG_ADMIN_PASSWORD or generated."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from dosereg.registry.management.base import DoseRegCommand


class Command(DoseRegCommand):
    help = "Create the first administrator if no superuser exists; print how to log in."

    def handle(self, *args, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stderr.write("An administrator exists already; log in with that account.")
            return
        password = settings.ADMIN_PASSWORD or secrets.token_urlsafe(12)
        user = User.objects.create_superuser(settings.ADMIN_USERNAME, email="", password=password)
        user.groups.add(Group.objects.get(name="admin"))
        url = f"http://127.0.0.1:{settings.HTTP_PORT}/"
        shown = password if not settings.ADMIN_PASSWORD else "(the password in DOSEREG_ADMIN_PASSWORD)"
        self.stdout.write(f"Created administrator '{user.username}' with password {shown}\nLog in at {url}")
