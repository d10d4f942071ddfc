"""The incident PDF shows the snapshot summary, the procedure chart and the skin dose map (or the geometry notice),
with the event list as an appendix: at most 3 pages before it, even for the 316-event procedure."""

from __future__ import annotations

import io
import re
import subprocess

import pytest
from django.core.management import call_command

from dosereg.registry.models import Study
from tests.conftest import require_program
from triggers.incidents import services
from triggers.incidents.pdf import APPENDIX_TITLE, incident_pdf_bytes

pytestmark = [pytest.mark.corpus, pytest.mark.django_db]


def pdf_pages(pdf: bytes, tmp_path) -> list[str]:
    """The text of each page (pdftotext, poppler-utils)."""
    path = tmp_path / "incident.pdf"
    path.write_bytes(pdf)
    text = subprocess.run([require_program("pdftotext"), "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    return text.split("\f")[:-1]


def pages_before_appendix(pages: list[str]) -> int:
    return next(i for i, page in enumerate(pages) if APPENDIX_TITLE in page)


def _incident_of(corpus, name: str, make_user, on_commit):
    with on_commit(execute=True):
        call_command("import_dose", str(corpus / name), stdout=io.StringIO(), stderr=io.StringIO())
    study = Study.objects.latest("id")
    return study, services.incident_from_study(study.pk, user=make_user("radiographer"), data={
        "category": "other", "incident_date": study.study_datetime.date(), "description": "Skin follow-up review"})


def test_pdf_of_a_study_with_a_map_holds_chart_and_map_before_the_appendix(
        corpus, make_user, tmp_path, django_capture_on_commit_callbacks):
    study, incident = _incident_of(corpus, "rf/PySkinDose-siemens_axiom_artis.dcm", make_user,
                                   django_capture_on_commit_callbacks)
    pdf = incident_pdf_bytes(incident)
    pages = pdf_pages(pdf, tmp_path)
    before = pages_before_appendix(pages)
    assert before <= 3
    report = "\n".join(pages[:before])
    assert "Skin dose map" in report and "Peak skin dose 1.3 mGy (estimate, about +/-50 %)" in report
    assert "Ka,r, cumulative" in report and "KAP, cumulative" in report  # the chart's SVG text, drawn in the PDF
    assert "21 irradiation event(s): listed in the appendix." in report
    assert b"/Subtype /Image" in pdf  # the map, embedded as PNG
    appendix = "\n".join(pages[before:])
    assert appendix.count("Fluoroscopy") >= 15 and "Fluoroscopy" not in report.split("listed in the appendix")[-1]


def test_pdf_of_the_316_event_procedure_is_three_pages_before_its_appendix(
        corpus, make_user, tmp_path, django_capture_on_commit_callbacks):
    study, incident = _incident_of(corpus, "rf/RF-Pat-Orientation-Modifier-Missing.dcm", make_user,
                                   django_capture_on_commit_callbacks)
    pdf = incident_pdf_bytes(incident)
    pages = pdf_pages(pdf, tmp_path)
    before = pages_before_appendix(pages)
    assert 1 <= before <= 3
    report = "\n".join(pages[:before])
    assert "Geometry incomplete: Ka,r shown as the surrogate for skin dose - 7.69 Gy" in report
    assert "Skin dose map" not in report and b"/Subtype /Image" not in pdf
    assert "Ka,r, cumulative" in report
    assert "316 irradiation event(s): listed in the appendix." in report
    assert re.search(r"^\s*316\s+Stationary acquisition", "\n".join(pages[before:]), re.M)  # the last event
