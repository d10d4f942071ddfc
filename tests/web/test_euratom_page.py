"""/euratom/: the Art. 64 figures per modality and examination (complete and partial estimates apart), the Art.
60(3) units, the DRL review date and the Art. 63 deadlines, with links and CSV; physicists and administrators only."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from dosereg.registry.models import AuditLog, Study
from tests.web import factories
from triggers.incidents.models import IncidentReport

pytestmark = pytest.mark.django_db


@pytest.fixture
def year_2024(history):
    ct = Study.objects.get(patient=history, modality_type="CT")
    Study.objects.filter(pk=ct.pk).update(effective_dose_msv=7.5, effective_dose_coverage=1.0)
    second = factories.ct_study(factories.patient("PAT002", "Roe^Rick"), date=dt.date(2024, 6, 1))
    Study.objects.filter(pk=second.pk).update(effective_dose_msv=2.0, effective_dose_coverage=0.4)
    return history


def test_only_physicists_and_administrators(client, login):
    for role, status in (("radiographer", 403), ("qa_committee", 403), ("physicist", 200), ("admin", 200)):
        login(role)
        assert client.get("/euratom/").status_code == status, role
        assert client.get("/euratom/units.csv").status_code == status, role


def test_art64_by_modality_and_examination_with_partial_counted_apart(client, login, year_2024):
    login("physicist")
    page = client.get("/euratom/", {"year": "2024"}).content.decode()
    table = page.split('id="art64-table"', 1)[1].split("</table>", 1)[0]
    ct_row = [r for r in table.split("<tr>") if "Computed tomography" in r or ">CT" in r]
    assert ct_row, table
    cells = ct_row[0]
    # two CT examinations: one complete estimate (7.5 mSv, counted), one partial (left out by default)
    assert '<td class="num">2</td><td class="num">1</td><td class="num">1</td><td class="num">0</td>' in cells
    assert '<td class="num">7.5</td>' in cells
    assert '<svg class="chart bars"' in page and 'id="art60-table"' in page and 'id="drl-due"' in page


def test_art63_deadline_overdue_and_linked(client, login, year_2024, make_user):
    inc = IncidentReport.objects.create(incident_date=dt.date(2024, 6, 1), is_significant=True,
                                        notification_due_date=dt.date(2024, 6, 10), title="Wrong patient CT")
    login("admin")
    page = client.get("/euratom/").content.decode()
    block = page.split('id="art63-table"', 1)[1].split("</table>", 1)[0]
    assert inc.get_absolute_url() in block and "2024-06-10" in block and "overdue" in block


def test_csv_files_are_the_art64_table_and_the_units(client, login, year_2024):
    login("physicist")
    response = client.get("/euratom/population.csv", {"year": "2024"})
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert response["Content-Disposition"].endswith('dosereg-art64-2024.csv"')
    assert sum(int(r["examinations"]) for r in rows) == Study.objects.filter(study_date__year=2024).count()
    units = list(csv.DictReader(io.StringIO(client.get("/euratom/units.csv").content.decode())))
    assert {u["status"] for u in units} <= {"reporting", "silent", "never"} and units
    assert AuditLog.objects.filter(action="export_euratom").count() == 2
