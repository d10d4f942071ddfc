"""Exports of filtered study lists: streamed CSV, XLSX split into sheets past the row limit, audited, permitted."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from dosereg.registry.models import AuditLog, Study
from dosereg.web import exports


@pytest.mark.django_db
def test_csv_export_streams_filtered_rows(client, login, history):
    user = login("physicist")
    response = client.get("/studies/", {"modality": "CT", "format": "csv"})
    assert response.status_code == 200 and response.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1
    assert rows[0]["modality_type"] == "CT" and rows[0]["DLP total (mGy·cm)"] == "968.4"
    assert rows[0]["patient_id"] == "PAT001" and rows[0]["room"] == "CT 1"
    log = AuditLog.objects.get(action="export_studies", username=user.username)
    assert log.detail["format"] == "csv" and "CT" in log.detail["filters"]["modality"]


@pytest.mark.django_db
def test_xlsx_export(client, login, history):
    login("physicist")
    response = client.get("/studies/", {"format": "xlsx"})
    assert response.status_code == 200
    wb = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True)
    rows = list(wb["studies"].iter_rows(values_only=True))
    assert rows[0][0] == "study_instance_uid" and len(rows) == 6


@pytest.mark.django_db
def test_xlsx_splits_into_sheets_past_the_row_limit(history, tmp_path):
    path = tmp_path / "x.xlsx"
    with path.open("wb") as fh:
        sheets = exports.write_xlsx(Study.objects.order_by("study_date"), fh, max_rows=2)
    assert sheets == 3
    wb = load_workbook(path, read_only=True)
    assert wb.sheetnames == ["studies", "studies 2", "studies 3"]
    assert sum(len(list(ws.iter_rows())) - 1 for ws in wb.worksheets) == 5


@pytest.mark.django_db
def test_export_needs_permission(client, login, history):
    login("radiographer")
    assert client.get("/studies/", {"format": "csv"}).status_code == 403
    page = client.get("/studies/").content.decode()
    assert "format=csv" not in page
