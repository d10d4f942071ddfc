"""manage.py unlock_login USERNAME [--address IP] - let a locked user name sign in again."""

from __future__ import annotations

from dosereg.registry.management.base import DoseRegCommand
from dosereg.web import signin


class Command(DoseRegCommand):
    help = "Remove the failed sign-ins of a user name (from one address, or all), ending its lock."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--address", help="only the failures from this client address")

    def handle(self, *args, username, address=None, **options):
        removed = signin.unlock(username, address)
        self.stdout.write(f"{signin.username_key(username)}: {removed} failed sign-in(s) removed")
