"""Sign-in failures, kept to throttle password guessing (dosereg.web.signin)."""

from __future__ import annotations

from django.db import models


class LoginFailure(models.Model):
    """One failed sign-in: the user name as typed (case-folded) and the client address.  Deleting a user name's rows
    unlocks it (admin action, ``manage.py unlock_login``); a successful sign-in deletes them too."""

    username = models.CharField(max_length=150)
    address = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["username", "address", "at"], name="login_failure_idx")]

    def __str__(self):
        return f"{self.username} from {self.address or '?'} at {self.at:%Y-%m-%d %H:%M:%S}"
