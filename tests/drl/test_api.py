"""The comparisons API: DRF envelope, permission."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient

from drl.services import drl_comparison_run
from tests.drl.factories import study, unit

pytestmark = pytest.mark.django_db


def test_comparisons_api(make_user):
    a = unit()
    study(a, dlp=100.0)
    run = drl_comparison_run(period_start=dt.date(2024, 1, 1), period_end=dt.date(2024, 12, 31))
    client = APIClient()
    client.force_authenticate(make_user("api_client"))
    body = client.get("/api/v1/drl/comparisons/").json()
    assert body["count"] == 1 and body["results"][0]["id"] == run.pk
    detail = client.get(f"/api/v1/drl/comparisons/{run.pk}/").json()
    row = next(r for r in detail["rows"] if r["quantity"] == "dlp_total_mgycm")
    assert row["standard_exam"] == "ct-chest" and row["equipment_id"] == a.pk and row["status"] == "insufficient_data"
    client.force_authenticate(make_user("radiographer"))
    assert client.get("/api/v1/drl/comparisons/").status_code == 403
