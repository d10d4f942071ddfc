"""Print a user's API token (creating it if the user has none): the key alone on the last line of stdout."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from dosereg.registry.management.base import DoseRegCommand, InputFailed
from dosereg.registry.services.audit import audit_record


class Command(DoseRegCommand):
    help = "Print USERNAME's API token (Authorization: Token <key>), creating it if needed."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, **options):
        User = get_user_model()
        try:
            user = User.objects.get(username=options["username"])
        except User.DoesNotExist:
            raise InputFailed(f"no user named {options['username']!r}")
        token, created = Token.objects.get_or_create(user=user)
        if created:
            audit_record(user=None, action="create_api_token", object_type="user", object_id=user.pk)
            self.stderr.write(f"created a token for {user.username}")
        self.stdout.write(token.key)
