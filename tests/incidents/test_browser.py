"""Browser test (Debian's Chromium driven by Playwright against the live server): a radiographer reports an exposure
from a study; a QA committee member reviews and closes it."""

from __future__ import annotations

import pytest

from triggers.incidents.models import IncidentReport

pytestmark = [pytest.mark.browser,
              pytest.mark.django_db(transaction=True)]

@pytest.fixture
def browser(chromium_browser):
    return chromium_browser


def _login(browser, live_server, username: str):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_load_state()
    return context, page


def test_radiographer_reports_an_exposure_and_qa_closes_it(browser, live_server, registry_rows, make_user):
    study = registry_rows("ct")
    radiographer = make_user("radiographer", username="rad-anna")
    make_user("qa_committee", username="qa-ben")

    # the radiographer finds the study by accession number and reports the exposure
    ctx, page = _login(browser, live_server, radiographer.username)
    page.goto(f"{live_server.url}/incidents/")
    page.fill("#study-ref", study.accession_number)
    page.click("text=Report an exposure >> nth=-1")
    page.wait_for_selector("#incident-form")
    assert "2,450" in page.content()  # the study's DLP total, shown before saving
    page.select_option("select[name=category]", "repeated_exposure")
    page.fill("textarea[name=description]", "Head CT repeated after patient motion; the first series was unusable.")
    page.click("#incident-form button[type=submit]")
    page.wait_for_selector("#incident-state")
    assert page.inner_text("#incident-category") == "Repeated exposure"
    assert "DLP total" in page.inner_text("#dose-parameters")
    assert "mGy·cm" in page.inner_text("#dose-parameters")
    page.fill("#comment-submitted", "Please review")
    page.click("#go-submitted")
    page.wait_for_selector("text=Report is now submitted")
    assert page.inner_text("#incident-state") == "Submitted"
    ctx.close()
    incident = IncidentReport.objects.get()
    assert incident.reporter == radiographer and incident.origin == "study"
    assert incident.dose_snapshot["studies"][0]["study_instance_uid"] == study.study_instance_uid

    # a QA committee member reviews and closes it
    ctx, page = _login(browser, live_server, "qa-ben")
    page.goto(f"{live_server.url}/incidents/")
    page.click(f"#incident-list a[href='/incidents/{incident.pk}/']")
    page.wait_for_selector("#incident-state")
    page.click("#go-under_review")
    page.wait_for_selector("text=Report is now under qa review")
    page.fill("#comment-closed", "Repeat justified; positioning aid ordered.")
    page.click("#go-closed")
    page.wait_for_selector("text=Report is now closed")
    assert page.inner_text("#incident-state") == "Closed"
    assert "Repeat justified; positioning aid ordered." in page.inner_text("#comments")
    ctx.close()
    incident.refresh_from_db()
    assert incident.state == "closed"
    assert [c.to_state for c in incident.comments.all()] == ["submitted", "under_review", "closed"]
