"""Sign-in throttling: LOGIN_FAILURE_LIMIT failed sign-ins for one user name from one address within
LOGIN_LOCKOUT_MINUTES lock that pair for LOGIN_LOCKOUT_MINUTES (OWASP Authentication Cheat Sheet: account lockout).

The lock sits in an authentication backend listed first, so the login page, the admin login and every other caller
of ``authenticate`` are covered; a locked attempt is refused before any password is checked (and not counted again,
so the lock ends on time).  Failures are rows of LoginFailure; deleting them unlocks.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.contrib.auth import user_logged_in, user_login_failed
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied, ValidationError
from django.dispatch import receiver
from django.utils import timezone

from dosereg.registry.services.audit import audit_record
from dosereg.web.models import LoginFailure

log = logging.getLogger(__name__)


def locked_until(failures: list[dt.datetime], *, limit: int, window: dt.timedelta,
                 lockout: dt.timedelta) -> dt.datetime | None:
    """The end of the latest lock the failure times cause: a lock starts at a failure that makes ``limit`` failures
    within ``window`` and lasts ``lockout``.  None without such a run."""
    times = sorted(failures)
    until = None
    for i in range(limit - 1, len(times)):
        if times[i] - times[i - limit + 1] <= window:
            until = times[i] + lockout
    return until


def username_key(username: str) -> str:
    return (username or "").strip().casefold()[:150]


def client_address(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None if request is not None else None


def _settings() -> tuple[int, dt.timedelta]:
    return settings.LOGIN_FAILURE_LIMIT, dt.timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)


def current_lock(username: str, address: str | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """When the lock on this user name and address ends, or None when it is not locked."""
    now = now or timezone.now()
    limit, minutes = _settings()
    times = list(LoginFailure.objects.filter(username=username_key(username), address=address,
                                             at__gte=now - 2 * minutes).values_list("at", flat=True))
    until = locked_until(times, limit=limit, window=minutes, lockout=minutes)
    return until if until is not None and until > now else None


def unlock(username: str, address: str | None = None) -> int:
    """Remove the failures of a user name (from one address, or all): it may sign in again.  Returns rows removed."""
    rows = LoginFailure.objects.filter(username=username_key(username))
    if address:
        rows = rows.filter(address=address)
    return rows.delete()[0]


class LockoutBackend:
    """Listed first in AUTHENTICATION_BACKENDS: raising PermissionDenied stops ``authenticate`` for a locked pair."""

    def authenticate(self, request, username=None, **credentials):
        if request is None or username is None:
            return None
        until = current_lock(username, client_address(request))
        if until is not None:
            request.dosereg_locked_until = until
            raise PermissionDenied("sign-in locked")
        return None
    # no get_user: this backend never signs anyone in (and so is never the one a session or force_login names)


@receiver(user_login_failed)
def _record_failure(sender, credentials, request=None, **kwargs):
    username = credentials.get("username")
    if request is None or not username or getattr(request, "dosereg_locked_until", None):
        return
    address = client_address(request)
    LoginFailure.objects.create(username=username_key(username), address=address, at=timezone.now())
    until = current_lock(username, address)
    if until is not None:
        log.warning("sign-in locked for user name %r from %s until %s after %d failures", username_key(username),
                    address or "?", until.isoformat(timespec="seconds"), settings.LOGIN_FAILURE_LIMIT)
        audit_record(action="login_locked", object_type="user", object_id=username_key(username),
                     detail={"until": until.isoformat(timespec="seconds")}, request=request)


@receiver(user_logged_in)
def _clear_failures(sender, request=None, user=None, **kwargs):
    if request is not None and user is not None:
        LoginFailure.objects.filter(username=username_key(user.get_username()),
                                    address=client_address(request)).delete()


class SignInForm(AuthenticationForm):
    """The login form, telling a locked user why (instead of "did not match") and for how long."""

    def clean(self):
        try:
            return super().clean()
        except ValidationError:
            until = getattr(self.request, "dosereg_locked_until", None)
            if until is not None:
                minutes = max(1, round((until - timezone.now()).total_seconds() / 60))
                raise ValidationError(
                    f"Too many failed sign-ins: this user name is locked for {minutes} more minute(s) from this "
                    "computer. Try again later or ask an administrator to unlock it.", code="locked") from None
            raise

    @property
    def locked(self) -> bool:
        return any(e.code == "locked" for e in self.errors.as_data().get("__all__", []))


class SignInView(LoginView):
    """Django's login view with the lockout: a locked attempt answers 429 Too Many Requests."""

    form_class = SignInForm

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "oidc": bool(settings.OIDC_CLIENT_ID)}

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.locked:
            response.status_code = 429
        return response
