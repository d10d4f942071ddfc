from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.web import factories


@pytest.fixture
def history(db):
    """A patient with a study of every modality type, plus a refused object."""
    pat = factories.patient_with_history()
    factories.rejected_object()
    return pat


@pytest.fixture
def login(client, make_user):
    def _login(role):
        user = make_user(role)
        client.force_login(user)
        return user

    return _login


@pytest.fixture
def api_for(make_user):
    def _api(role):
        user = make_user(role)
        token, _ = Token.objects.get_or_create(user=user)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        api.user = user
        return api

    return _api


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
