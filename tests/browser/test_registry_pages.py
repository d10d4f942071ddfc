"""In a real browser: log in, find a patient, open the history with its chart, open a study, print the patient
sheet; the same pages refuse a user without the role.  Screenshots go to test-artifacts/."""

from __future__ import annotations

import pytest

from dosereg.registry.models import Study
from tests.web import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _login(browser, live_server, username, viewport=None):
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


_OVERLAPS = """() => {
  const out = [];
  for (const row of document.querySelectorAll('table.sheet-values thead tr')) {
    const cells = [...row.querySelectorAll('th')];
    cells.forEach((th, i) => {
      if (th.scrollWidth > th.clientWidth + 1) out.push(`${th.innerText} overflows its cell`);
      const next = cells[i + 1];
      if (next && th.getBoundingClientRect().right > next.getBoundingClientRect().left + 0.5)
        out.push(`${th.innerText} overlaps ${next.innerText}`);
    });
  }
  return out;
}"""


def _sheet_header_overlaps(page) -> list[str]:
    """The patient sheet's column headers that run out of their cell or into the next (measured in the page)."""
    return page.evaluate(_OVERLAPS)


def test_radiographer_finds_patient_history_study_and_prints_sheet(chromium_browser, live_server, make_user,
                                                                  artifacts):
    patient = factories.patient_with_history()
    factories.ct_study(patient, date=factories.dt.date(2023, 11, 20), description="CT Head")
    factories.rejected_object()
    user = make_user("practitioner", username="dr-browser")
    page = _login(chromium_browser, live_server, user.username)
    page.screenshot(path=str(artifacts / "web-dashboard.png"), full_page=True)
    assert page.locator("h1").inner_text() == "Dashboard"

    page.click("nav >> text=Patients")
    page.fill("#id_q", "PAT001")
    page.press("#id_q", "Enter")
    page.wait_for_selector("#patient-results")
    page.screenshot(path=str(artifacts / "web-patient-search.png"), full_page=True)
    page.click("#patient-results a")
    page.wait_for_selector("svg.chart.timeline")
    assert page.locator("svg.timeline g.panel").count() >= 4
    assert page.locator("#history tbody tr").count() == 6
    page.screenshot(path=str(artifacts / "web-patient-history.png"), full_page=True)

    page.click("#history >> text=2024-05-06")
    page.wait_for_selector("#projection-events")
    dose_text = page.locator("#dose-text p").inner_text()
    assert "KAP total: 33.4 Gy·cm²\nKa,r total: 512 mGy\nFluoroscopy time: 6:12 min" in dose_text  # one a line
    page.screenshot(path=str(artifacts / "web-study-fluoro.png"), full_page=True)

    ct = Study.objects.get(patient=patient, study_date=factories.dt.date(2024, 3, 4))
    page.goto(f"{live_server.url}/studies/{ct.pk}/")
    page.wait_for_selector("#ct-events")
    page.screenshot(path=str(artifacts / "web-study-ct.png"), full_page=True)

    page.goto(f"{live_server.url}/patients/{patient.pk}/sheet/")
    assert "0.00251 Gy·m²" in page.content()
    assert _sheet_header_overlaps(page) == []
    page.emulate_media(media="print")
    assert not page.locator("header.topbar").is_visible()
    assert _sheet_header_overlaps(page) == []
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    assert _sheet_header_overlaps(page) == []
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(artifacts / "web-patient-sheet-print.png"), full_page=True)
    pdf = page.pdf(path=str(artifacts / "web-patient-sheet.pdf"), format="A4")
    assert pdf[:4] == b"%PDF"

    page.emulate_media(media="screen")
    page.goto(f"{live_server.url}/studies/")
    page.wait_for_selector("#studies")
    page.screenshot(path=str(artifacts / "web-studies.png"), full_page=True)
    page.goto(f"{live_server.url}/units/")
    page.screenshot(path=str(artifacts / "web-units.png"), full_page=True)


def test_pages_refuse_a_user_without_the_role(chromium_browser, live_server, make_user, artifacts):
    patient = factories.patient_with_history()
    study = Study.objects.filter(patient=patient).first()
    user = make_user(None, username="no-role")
    page = _login(chromium_browser, live_server, user.username)
    assert "Patients" not in page.locator("nav.mainnav").inner_text()
    for path in ("/patients/", f"/patients/{patient.pk}/", f"/studies/{study.pk}/", f"/patients/{patient.pk}/sheet/"):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 403, path
        assert "PAT001" not in page.content()
    page.screenshot(path=str(artifacts / "web-refused.png"))


def test_first_run_page_on_empty_registry(chromium_browser, live_server, make_user, artifacts):
    user = make_user("admin", username="first-admin")
    page = _login(chromium_browser, live_server, user.username, viewport={"width": 420, "height": 900})
    assert page.locator("#first-run").is_visible()
    assert page.locator("#load-demo").is_visible()
    page.screenshot(path=str(artifacts / "web-first-run-mobile.png"), full_page=True)
