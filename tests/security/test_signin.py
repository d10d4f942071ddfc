"""Sign-in throttling and lockout, admin unlock, and API throttles."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.core.management import call_command

from dosereg.registry.models import AuditLog
from dosereg.web.models import LoginFailure
from dosereg.web.signin import locked_until

T0 = dt.datetime(2026, 1, 1, 8, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


def test_locked_until_rule():
    fifteen = 15 * MIN
    four = [T0 + i * MIN for i in range(4)]
    assert locked_until(four, limit=5, window=fifteen, lockout=fifteen) is None
    five = [*four, T0 + 10 * MIN]
    assert locked_until(five, limit=5, window=fifteen, lockout=fifteen) == T0 + 25 * MIN
    spread = [T0 + i * 5 * MIN for i in range(5)]  # 20 minutes from first to fifth: never 5 within 15
    assert locked_until(spread, limit=5, window=fifteen, lockout=fifteen) is None


def _try(client, username, password, **extra):
    return client.post("/accounts/login/", {"username": username, "password": password}, **extra)


@pytest.mark.django_db
def test_five_failures_lock_the_user_name_from_that_address(client, make_user, settings):
    user = make_user("physicist", username="dr-who")
    for _ in range(5):
        response = _try(client, "dr-who", "wrong password")
        assert response.status_code == 200 and b"did not match" in response.content
    response = _try(client, "dr-who", "correct horse battery")  # the right password, but locked
    assert response.status_code == 429 and b"locked" in response.content
    assert "_auth_user_id" not in client.session
    assert AuditLog.objects.filter(action="login_locked", object_id="dr-who").exists()
    # another address is not locked (the lock is per user name and address)
    assert _try(client, "dr-who", "correct horse battery", REMOTE_ADDR="10.1.2.3").status_code == 302
    client.logout()
    # the administrator unlocks: the right password works again from the first address
    call_command("unlock_login", "DR-WHO")
    assert _try(client, "dr-who", "correct horse battery").status_code == 302
    assert int(client.session["_auth_user_id"]) == user.pk
    assert not LoginFailure.objects.exists()


@pytest.mark.django_db
def test_the_lock_ends_after_the_lockout(client, make_user, settings):
    settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_LOCKOUT_MINUTES = 2, 15
    make_user("physicist", username="nurse")
    _try(client, "nurse", "x1")
    _try(client, "nurse", "x2")
    assert _try(client, "nurse", "correct horse battery").status_code == 429
    LoginFailure.objects.update(at=T0)  # long ago
    assert _try(client, "nurse", "correct horse battery").status_code == 302


@pytest.mark.django_db
def test_admin_role_unlocks_in_the_admin(client, make_user):
    make_user("physicist", username="victim")
    for _ in range(5):
        _try(client, "victim", "guess")
    admin = make_user("admin")
    client.force_login(admin)
    page = client.get("/admin/web/loginfailure/")
    assert page.status_code == 200 and b"victim" in page.content
    ids = list(LoginFailure.objects.values_list("pk", flat=True))
    response = client.post("/admin/web/loginfailure/", {"action": "unlock_user_names", "_selected_action": ids[:1]})
    assert response.status_code == 302 and not LoginFailure.objects.filter(username="victim").exists()


@pytest.mark.django_db
def test_api_is_throttled_per_user(api_for, settings):
    cache.clear()
    settings.API_THROTTLE_RATES = {"user": "3/minute", "anon": "2/minute"}
    api = api_for("physicist")
    codes = [api.get("/api/v1/studies/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert api_for("physicist").get("/api/v1/studies/").status_code == 200  # another user has their own budget
    cache.clear()
