"""Exports safe for spreadsheets (OWASP CSV injection): every CSV and XLSX export neutralises formula-like text,
keeps numbers numeric and survives control characters, whatever text arrived through DICOM."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import pytest
from django.core.management import call_command
from openpyxl import load_workbook

from dosereg.registry import spreadsheet
from dosereg.registry.models import Study
from drl import services as drl_services
from tests.factories import AlertFactory, TriggerRuleFactory
from tests.security.hostile import FORMULA_DDE, FORMULA_HYPERLINK, HOSTILE, import_hostile

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def dangerous(cell: str) -> bool:
    """What a spreadsheet would evaluate: text starting with =, +, -, @, tab or CR that is not a plain number."""
    return cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not _NUMBER.fullmatch(cell)


def assert_safe_csv(text: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text)))
    bad = [cell for row in rows for cell in row if dangerous(cell)]
    assert not bad, bad
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", text)
    return rows


def test_csv_cells_are_neutralised_and_numbers_kept():
    assert spreadsheet.csv_row(["=1+1", "+1+1", "-cmd", "@x", "\tx", "\rx", -3.5, "-3.5", 7, None, "plain", "a=b"]) == [
        "'=1+1", "'+1+1", "'-cmd", "'@x", "'\tx", "'\rx", -3.5, "-3.5", 7, "", "plain", "a=b"]
    assert spreadsheet.csv_cell("ab\x00c\x07d\x1b") == "abcd"
    assert spreadsheet.csv_cell(float("nan")) == "" and spreadsheet.csv_cell("+41 44 123") == "'+41 44 123"


def test_xlsx_text_is_never_a_formula(tmp_path):
    path = tmp_path / "x.xlsx"
    with path.open("wb") as fh:
        spreadsheet.write_xlsx(fh, ["=HEADER", "n"], [[FORMULA_DDE, 1.5], ["bad\x00text", -2], [None, 3]])
    with zipfile.ZipFile(path) as z:
        sheet_xml = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml and "<f " not in sheet_xml
    ws = load_workbook(path)["data"]
    assert ws["A1"].value == "=HEADER" and ws["A1"].data_type == "s" and ws["A1"].quotePrefix
    assert ws["A2"].value == FORMULA_DDE and ws["A2"].data_type == "s" and ws["A2"].quotePrefix
    assert ws["A3"].value == "badtext" and ws["B3"].value == -2 and ws["B2"].data_type == "n"


@pytest.mark.django_db
def test_hostile_dicom_text_in_the_study_exports(client, login, tmp_path):
    outcome = import_hostile(tmp_path)
    study = Study.objects.get(pk=outcome.study_id)
    assert study.study_description.startswith("=HYPERLINK")  # stored as sent (bar the control characters)
    login("physicist")
    response = client.get("/studies/", {"format": "csv"})
    assert response.status_code == 200
    rows = assert_safe_csv(b"".join(response.streaming_content).decode())
    header, row = rows[0], rows[1]
    assert row[header.index("study_description")] == "'" + FORMULA_HYPERLINK
    assert row[header.index("station_name")] == "'" + HOSTILE["StationName"]
    assert row[header.index("accession_number")] == "'=1+1"
    assert row[header.index("DLP total (mGy·cm)")] == "480.0"

    response = client.get("/studies/", {"format": "xlsx"})
    assert response.status_code == 200  # a NUL in a description used to make this a 500 for everyone
    data = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert not any("<f>" in z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/"))
    ws = load_workbook(io.BytesIO(data))["studies"]
    values = {ws.cell(1, c).value: ws.cell(2, c) for c in range(1, ws.max_column + 1)}
    assert values["study_description"].value == FORMULA_HYPERLINK and values["study_description"].data_type == "s"
    assert values["DLP total (mGy·cm)"].value == 480.0


@pytest.mark.django_db
def test_hostile_text_in_the_command_exports(tmp_path):
    outcome = import_hostile(tmp_path)
    study = Study.objects.get(pk=outcome.study_id)
    AlertFactory(study=study, patient=study.patient, rule=TriggerRuleFactory(name=FORMULA_DDE))

    out = tmp_path / "alerts.csv"
    call_command("export_alerts", "--format", "csv", "--output", str(out))
    rows = assert_safe_csv(out.read_text())
    assert "'" + FORMULA_DDE in rows[1]

    out = tmp_path / "doses.csv"
    call_command("export_doses", "--format", "csv", "--output", str(out))
    rows = assert_safe_csv(out.read_text())
    assert "'" + HOSTILE["StationName"] in rows[1]

    out = tmp_path / "art64.csv"
    call_command("euratom_population", "--year", "2024", "--include-demo", "--output", str(out))
    assert len(assert_safe_csv(out.read_text())) >= 2


def test_drl_report_csv_is_safe():
    row = {k: "=1+1" for k in drl_services.REPORT_FIELDS} | {"n": 12, "median": 480.0, "ratio": -0.5}
    rows = assert_safe_csv(drl_services.drl_report_csv([row]))
    assert rows[1][0] == "'=1+1" and rows[1][drl_services.REPORT_FIELDS.index("n")] == "12"


@pytest.mark.django_db
def test_hostile_dicom_text_is_escaped_on_every_page_showing_it(client, tmp_path):
    from django.contrib.auth.models import User

    from tests.security.hostile import MARKUP

    outcome = import_hostile(tmp_path)
    study = Study.objects.select_related("equipment").get(pk=outcome.study_id)
    client.force_login(User.objects.create_superuser("root", password="x"))
    pages = ["/", "/studies/", f"/studies/{study.pk}/", f"/patients/{study.patient_id}/",
             f"/patients/{study.patient_id}/sheet/", "/units/", f"/units/{study.equipment_id}/", "/mapping/",
             "/dicom/", "/alerts/"]
    shown = 0
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        text = response.content.decode()
        assert MARKUP not in text and "<script>alert" not in text, url
        shown += "&lt;script&gt;alert" in text
    assert shown >= 2  # the model name is on the study and unit pages, escaped
