"""In Chromium: the fluoroscopy study page opens with the skin dose map and the procedure's cumulative chart; the
316-event report's page with the chart and the geometry notice; the incident PDF of a study with a map holds it within
3 pages before the appendix; the map is served at /api/v1/studies/{uid}/skin-map.png and .svg."""

from __future__ import annotations

import io
import subprocess

import pytest
from django.core.management import call_command

from dosereg.registry.models import Study
from tests.conftest import require_program
from triggers.incidents import services
from triggers.incidents.pdf import APPENDIX_TITLE

pytestmark = [pytest.mark.browser, pytest.mark.corpus, pytest.mark.django_db(transaction=True)]

AXIOM = "rf/PySkinDose-siemens_axiom_artis.dcm"
CARDIAC_316 = "rf/RF-Pat-Orientation-Modifier-Missing.dcm"


def _import(corpus, name: str) -> Study:
    call_command("import_dose", str(corpus / name), stdout=io.StringIO(), stderr=io.StringIO())
    return Study.objects.latest("id")


def _login(browser, live_server, username: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return context, page, errors


def test_study_pages_show_map_chart_and_notice_and_the_pdf_holds_the_map(chromium_browser, live_server, corpus,
                                                                        make_user, artifacts, tmp_path):
    axiom = _import(corpus, AXIOM)
    cardiac = _import(corpus, CARDIAC_316)
    user = make_user("physicist", username="phys-skin")
    context, page, errors = _login(chromium_browser, live_server, user.username)

    page.goto(f"{live_server.url}/studies/{axiom.pk}/")
    skin_map = page.locator("#skin-map svg")
    assert skin_map.is_visible() and skin_map.bounding_box()["width"] > 300
    assert "estimate, about ±50 %" in page.inner_text("#psd-table")
    chart = page.locator("#procedure-chart svg")
    assert chart.is_visible() and page.locator("#procedure-chart polyline.trace").count() == 2
    first = page.evaluate("() => document.querySelector('#skin-dose').getBoundingClientRect().top")
    table = page.evaluate("() => document.querySelector('#event-table').getBoundingClientRect().top")
    assert first < table and not page.locator("#event-table table").is_visible()  # folded below the pictures
    page.screenshot(path=str(artifacts / "study-skin-map.png"), full_page=True)

    page.goto(f"{live_server.url}/studies/{cardiac.pk}/")
    notice = page.inner_text("#geometry-notice")
    assert "Geometry incomplete: Ka,r shown as the surrogate for skin dose" in notice and "7.69 Gy" in notice
    assert page.locator("#skin-map").count() == 0
    assert page.locator("#procedure-chart svg").is_visible()
    assert page.locator("#procedure-chart circle").count() > 300  # each event's Ka,r against both angles
    page.screenshot(path=str(artifacts / "study-316-events.png"), full_page=True)

    for fmt, kind in (("png", "image/png"), ("svg", "image/svg+xml")):
        response = page.request.get(f"{live_server.url}/api/v1/studies/{axiom.study_instance_uid}/skin-map.{fmt}")
        assert response.status == 200 and response.headers["content-type"] == kind
        assert response.body().startswith(b"\x89PNG" if fmt == "png" else b"<svg")
    missing = page.request.get(f"{live_server.url}/api/v1/studies/{cardiac.study_instance_uid}/skin-map.png")
    assert missing.status == 404 and "no table position convention" in missing.text()

    incident = services.incident_from_study(axiom.pk, user=make_user("radiographer"), data={
        "category": "other", "incident_date": axiom.study_datetime.date(), "description": "Skin review"})
    response = page.request.get(f"{live_server.url}/incidents/{incident.pk}/pdf/")
    assert response.status == 200 and response.body().startswith(b"%PDF")
    path = tmp_path / "incident.pdf"
    path.write_bytes(response.body())
    (artifacts / "incident-skin-map.pdf").write_bytes(response.body())
    pages = subprocess.run([require_program("pdftotext"), "-layout", str(path), "-"], capture_output=True,
                           text=True, check=True).stdout.split("\f")
    before = next(i for i, text in enumerate(pages) if APPENDIX_TITLE in text)
    assert before <= 3 and "Skin dose map" in "".join(pages[:before])
    assert b"/Subtype /Image" in response.body()
    assert not errors, errors
    context.close()
