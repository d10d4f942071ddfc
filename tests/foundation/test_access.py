"""Log in to see anything: pages redirect to the login page; the API answers 401/403, never a redirect."""

from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_anonymous_page_redirects_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/studies/", "/api/v1/alerts/", "/api/v1/incidents/",
                                  "/api/v1/drl/comparisons/", "/api/v1/does-not-exist/"])
def test_anonymous_api_gets_401_not_redirect(client, path):
    response = client.get(path)
    assert response.status_code in (401, 403, 404)
    assert response.status_code != 302


@pytest.mark.django_db
def test_login_page_is_open(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Log in to DoseReg" in response.content


@pytest.mark.django_db
def test_roles_carry_permissions(make_user):
    radiographer = make_user("radiographer")
    admin = make_user("admin")
    assert radiographer.has_perm("registry.view_patient_history")
    assert not radiographer.has_perm("registry.view_audit_trail")
    assert admin.has_perm("registry.view_audit_trail")
