"""A patient's history reads only the study columns its covering index carries (study_patient_history_idx: key and
``include``), so PostgreSQL can answer it with an index-only scan (bench/web.py prints the plan at registry scale);
and it stays one query for the studies however many the patient has (no column loaded late, study by study)."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dosereg.registry.models import Study
from tests.factories import EquipmentFactory, PatientFactory, RoomFactory, StandardExamFactory, StudyFactory

pytestmark = pytest.mark.django_db
STUDY_COLUMN = re.compile(r'"registry_study"\."(\w+)"')


def _index_columns() -> set[str]:
    index = next(i for i in Study._meta.indexes if i.name == "study_patient_history_idx")
    return {Study._meta.get_field(name.lstrip("-")).column for name in (*index.fields, *index.include)}


def _history_study_queries(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in ctx.captured_queries
            if 'FROM "registry_study"' in q["sql"] and '"registry_study"."patient_id" =' in q["sql"]]


def _patient_with(n: int):
    patient = PatientFactory()
    unit = EquipmentFactory(room=RoomFactory())
    exam = StandardExamFactory()
    for k in range(n):
        StudyFactory(patient=patient, equipment=unit, standard_exam=exam if k % 2 else None, dlp_total_mgycm=100 + k,
                     kap_total_gycm2=1.5 if k % 3 == 0 else None, pregnancy_status="pregnant" if k == 1 else "")
    return patient


@pytest.mark.parametrize("page", ["html", "api"])
def test_history_reads_only_indexed_study_columns(client, make_user, page):
    client.force_login(make_user("physicist"))
    patient = _patient_with(4)
    url = (f"/patients/{patient.pk}/" if page == "html"
           else f"/api/v1/patients/{quote(patient.patient_id, safe='')}/history/")
    queries = _history_study_queries(client, url)
    assert len(queries) == 1, queries
    read = set(STUDY_COLUMN.findall(queries[0]))
    assert read and read <= _index_columns(), read - _index_columns()


def test_history_query_count_does_not_grow_with_studies(client, make_user):
    client.force_login(make_user("physicist"))
    counts = []
    for n in (2, 6):
        patient = _patient_with(n)
        with CaptureQueriesContext(connection) as ctx:
            html = client.get(f"/patients/{patient.pk}/").content.decode()
        assert html.count("<tr><td") == n and "Pregnant" in html
        counts.append(len(ctx))
    assert counts[0] == counts[1]
