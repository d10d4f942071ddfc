"""Browser test: a physicist opens the inbox, acknowledges an alert with a reason, schedules follow-up."""

from __future__ import annotations

import pytest

from tests.triggers.factories import fluoro_study
from triggers.models import Alert
from triggers.services import check_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser(chromium_browser):
    return chromium_browser


def test_physicist_acknowledges_and_schedules_follow_up(browser, live_server, make_user):
    make_user("physicist", username="phys")
    study = fluoro_study(ka_r_mgy=5200.0)
    check_study(study.pk)
    alert = Alert.objects.get(study=study, rule__key="ncrp168-kar")

    page = browser.new_page()
    page.goto(f"{live_server.url}/accounts/login/?next=/alerts/")
    page.fill("input[name=username]", "phys")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{live_server.url}/alerts/")
    assert page.inner_text("#inbox-new-count").startswith("2")
    assert "NCRP 168 SRDL: Ka,r 5 Gy" in page.inner_text("#alert-table")

    page.click(f"tr[data-alert-id='{alert.pk}'] a[href='/alerts/{alert.pk}/']")
    page.wait_for_url(f"{live_server.url}/alerts/{alert.pk}/")
    assert page.inner_text("#alert-value") == "5.2 Gy"
    assert "not a skin-dose estimate" in page.inner_text("#kar-note")
    page.select_option("#ack-form select[name=reason]", "patient_size")
    page.fill("#ack-form textarea[name=comment]", "BMI 41, long procedure")
    page.click("#ack-form button[type=submit]")
    page.wait_for_selector("#follow-up-form")
    assert page.inner_text("#alert-state") == "Acknowledged"
    assert page.inner_text("#alert-reason") == "Patient size"

    page.fill("#follow-up-form input[name=follow_up_date]", "2026-03-14")
    page.fill("#follow-up-form input[name=check]", "skin inspection of the back, 10-14 days")
    page.click("#follow-up-form button[type=submit]")
    page.wait_for_selector("#alert-follow-up")
    assert page.inner_text("#alert-state") == "Follow-up scheduled"
    assert page.inner_text("#alert-follow-up") == "2026-03-14"

    alert.refresh_from_db()
    assert (alert.state, alert.reason, alert.comment) == ("follow_up", "patient_size", "BMI 41, long procedure")
    assert alert.follow_up_check.startswith("skin inspection")
    page.goto(f"{live_server.url}/alerts/")
    assert page.inner_text("#inbox-new-count").startswith("1")  # one left: the 3 Gy notification
