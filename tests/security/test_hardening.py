"""The smaller findings of the audit, each with its fix: out-of-range numbers answer 400, the dashboard needs
registry.view_study, API and pages grant the same incident creation, API docs need a login, the admin role manages
the calling-AE allowlist, headers (CSP, no-store), HTTPS settings behind DOSEREG_HTTPS=1, no inline scripts."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from django.contrib.auth.models import User
from django.urls import URLResolver, get_resolver

from tests.conftest import REPO

HUGE = "99999999999999999999999"
PARAMS = ("page", "room", "unit", "rule", "study", "year", "equipment", "exam", "page_size", "state", "user",
          "patient", "subject", "_id", "period", "id")


def _plain_urls() -> list[str]:
    """Every URL of the URLconf with its integer arguments filled in (1), leaving out other captured arguments."""
    out = []

    def walk(patterns, prefix):
        for p in patterns:
            if isinstance(p, URLResolver):
                if not str(p.pattern).startswith("admin/"):
                    walk(p.url_patterns, prefix + str(p.pattern))
                continue
            url = re.sub(r"<int:\w+>", "1", prefix + str(p.pattern)).replace("^", "").replace("$", "")
            if "<" not in url and "(?P" not in url and "\\" not in url:
                out.append("/" + url)

    walk(get_resolver().url_patterns, "")
    return sorted(set(out))


@pytest.mark.django_db
def test_out_of_range_numbers_never_answer_500(client, history):
    client.raise_request_exception = False
    client.force_login(User.objects.create_superuser("root", password="x"))
    failures = []
    for url in _plain_urls():
        for name in PARAMS:
            for value in (HUGE, "-" + HUGE):
                status = client.get(url, {name: value}).status_code
                if status >= 500:
                    failures.append((url, name, value, status))
    assert not failures, failures
    assert client.get("/studies/", {"room": HUGE}).status_code == 400
    assert client.get("/studies/", {"page": HUGE}).status_code == 400
    assert client.get("/staff/procedures/", {"room": HUGE}).status_code == 400


@pytest.mark.django_db
def test_api_filters_answer_400_for_huge_ids(api_for, history):
    api = api_for("physicist")
    for name in ("room", "unit"):
        response = api.get("/api/v1/studies/", {name: HUGE})
        assert response.status_code == 400 and name in response.json()


@pytest.mark.django_db
def test_dashboard_needs_view_study(client, make_user, history):
    client.force_login(make_user(None))
    assert client.get("/").status_code == 403
    client.force_login(make_user("radiographer"))
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_incident_from_a_study_needs_report_exposure_in_the_api_as_on_the_page(client, api_for, history):
    study = history.studies.first()
    body = {"category": "other", "incident_date": "2024-03-04", "studies": [study.study_instance_uid]}
    qa = api_for("qa_committee")
    assert qa.post("/api/v1/incidents/", body, format="json").status_code == 403
    client.force_login(qa.user)
    assert client.get(f"/incidents/new/study/{study.pk}/").status_code == 403
    assert qa.post("/api/v1/incidents/", {**body, "studies": []}, format="json").status_code == 201  # blank: allowed
    assert api_for("radiographer").post("/api/v1/incidents/", body, format="json").status_code == 201


@pytest.mark.django_db
def test_api_docs_need_a_login(client, make_user):
    for url in ("/api/docs/", "/api/redoc/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(make_user("api_client"))
    for url in ("/api/docs/", "/api/redoc/"):
        page = client.get(url)
        assert page.status_code == 200 and b"<script>" not in page.content  # no inline script (CSP)
    assert client.get("/api/schema/").status_code == 200


@pytest.mark.django_db
def test_admin_role_manages_the_calling_ae_allowlist(client, make_user):
    client.force_login(make_user("admin"))
    assert client.get("/admin/").status_code == 200
    response = client.post("/admin/dicomrx/allowedcallingae/add/", {"ae_title": "CT01", "host": "", "active": "on",
                                                                   "note": "CT 1"})
    assert response.status_code == 302
    client.force_login(make_user("physicist"))
    assert client.get("/admin/").status_code == 302  # to the admin login: not for other roles


@pytest.mark.django_db
def test_headers_on_pages_and_api(client, login, api_for, history):
    login("physicist")
    for url in ("/", f"/patients/{history.pk}/", "/studies/"):
        response = client.get(url)
        assert "no-store" in response["Cache-Control"], url
        csp = response["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    response = api_for("physicist").get(f"/api/v1/patients/{history.patient_id}/history/")
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert response["X-Frame-Options"] == "DENY" and response["X-Content-Type-Options"] == "nosniff"


def test_no_inline_script_in_templates():
    found = []
    for path in REPO.glob("**/templates/**/*.html"):
        if ".venv" in path.parts:
            continue
        text = path.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) or re.search(r"\son[a-z]+\s*=", text):
            found.append(str(path.relative_to(REPO)))
    assert not found, found


def test_check_deploy_is_clean_with_https(tmp_path):
    env = {**os.environ, "DOSEREG_DATA_DIR": str(tmp_path), "DOSEREG_HTTPS": "1",
           "DOSEREG_ALLOWED_CALLING_AETS": "CT01", "DOSEREG_ALLOWED_HOSTS": "dosereg.example.org"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by the browser tests' process; a deployment never has it
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "(security." not in output and "(dosereg." not in output, output
    code = ("from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, "
            "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE)")
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1].split() == ["True", "31536000", "True", "True"], result.stderr


@pytest.mark.django_db
def test_the_blank_incident_page_links_studies_only_with_report_exposure(client, make_user, history):
    study = history.studies.first()
    body = {"kind": "unintended", "category": "other", "incident_date": "2024-03-04",
            "study_refs": study.study_instance_uid}
    client.force_login(make_user("qa_committee"))
    page = client.post("/incidents/new/", body)
    assert page.status_code == 200 and b"reports its exposure" in page.content
    client.force_login(make_user("radiographer"))
    assert client.post("/incidents/new/", body).status_code == 302
