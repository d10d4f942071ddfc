"""The OpenAPI schema validates, the docs are served with local assets, and a property-based run over the
registry endpoints finds no server error."""

from __future__ import annotations

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_schema_validates(tmp_path):
    out = tmp_path / "schema.yml"
    # --validate fails on schema errors (openapi-spec-validator); --fail-on-warn also on naming warnings
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in ("/api/v1/studies/", "/api/v1/studies/{study_instance_uid}/", "/api/v1/patients/{patient_id}/history/"):
        assert path in text


@pytest.mark.django_db
def test_docs_use_local_assets(client, make_user):
    client.force_login(make_user("api_client"))
    page = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in page
    assert "cdn" not in page.lower() and "unpkg" not in page.lower()
    assert "/static/drf_spectacular_sidecar/" in page


@pytest.fixture
def _api_data(db, make_user):
    from rest_framework.authtoken.models import Token

    from tests.web import factories

    factories.patient_with_history()
    user = make_user("admin")
    return Token.objects.create(user=user).key


def test_schemathesis_finds_no_server_errors(_api_data):
    import schemathesis
    from django.test import Client
    from hypothesis import HealthCheck, given, settings

    client = Client()
    raw = client.get("/api/schema/?format=json")
    schema = schemathesis.openapi.from_dict(raw.json())
    schema = schema.include(path_regex=r"^/api/v1/")  # every endpoint of the API, with bounded examples
    headers = {"Authorization": f"Token {_api_data}"}
    failures = []
    ops = [r.ok() for r in schema.get_all_operations()]
    assert ops
    for op in ops:
        def run(case):
            case.headers = {**(case.headers or {}), **headers}
            path = case.formatted_path
            response = client.generic(case.method, path, QUERY_STRING=_qs(case.query), **_h(case.headers))
            if response.status_code >= 500:
                failures.append((case.method, path, case.query, response.status_code))
            elif response.status_code == 200 and case.method == "GET" and response.get("Content-Type", "").startswith(
                    "application/json"):
                body = response.json()
                if isinstance(body, dict) and "results" in body:  # the paginated list envelope, as documented
                    if not {"count", "next", "previous", "results"} <= set(body):
                        failures.append((case.method, path, case.query, "list envelope", sorted(body)))

        test = settings(max_examples=15, deadline=None, database=None,
                        suppress_health_check=list(HealthCheck))(given(op.as_strategy())(run))
        test()
    assert not failures, failures[:5]


def _qs(query):
    import urllib.parse

    return urllib.parse.urlencode(query or {}, doseq=True)


def _h(headers):
    return {"HTTP_" + k.upper().replace("-", "_"): v for k, v in (headers or {}).items()}

