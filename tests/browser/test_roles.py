"""Every role on a desktop and a phone: each page it may open loads without console errors, without horizontal
overflow of the main column (measured in the page), and shows first what that role needs (a physicist's dashboard
opens with the real 5 Gy alert even when demo notifications are newer).  Screenshots: var/screenshots/."""

from __future__ import annotations

import pytest

from dosereg.registry.models import Study
from tests.triggers.factories import RoomFactory, fluoro_study
from tests.web import factories
from triggers.models import Alert
from triggers.services import check_study

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}

# the main column may not be wider than the window; wide tables scroll inside their own box (.tablewrap)
_OVERFLOW = """() => {
  const main = document.querySelector('main.content');
  const out = [];
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth + 1) out.push(`page ${doc.scrollWidth}px > window ${window.innerWidth}px`);
  if (main && main.scrollWidth > main.clientWidth + 1) out.push(`main ${main.scrollWidth}px > ${main.clientWidth}px`);
  for (const el of main ? main.querySelectorAll(':scope > *') : []) {
    const r = el.getBoundingClientRect();
    if (r.right > window.innerWidth + 1) out.push(`${el.tagName}#${el.id || ''}.${el.className} ends at ${r.right}px`);
  }
  return out;
}"""


@pytest.fixture
def registry():
    """A patient with every modality, the real 7.7 Gy cardiac procedure, then newer demo notifications."""
    patient = factories.patient_with_history()
    real = fluoro_study(ka_r_mgy=7689.0, room=RoomFactory(name="Cath lab 2"), description="PCI LAD",
                        patient=patient)
    check_study(real.pk)
    for _ in range(3):
        demo = fluoro_study(ka_r_mgy=3500.0, demo=True, description="Demo angiography")
        check_study(demo.pk)
    alert = Alert.objects.filter(study=real).order_by("severity").first()
    return {"patient": patient, "study": real, "alert": Alert.objects.get(study=real, rule__key="ncrp168-kar"),
            "any_alert": alert, "ct": Study.objects.get(patient=patient, modality_type="CT")}


def _pages(role: str, r: dict) -> list[tuple[str, str]]:
    """(screenshot name, path) of the pages a role works with."""
    common = [("dashboard", "/"), ("studies", "/studies/"), ("study-fluoro", f"/studies/{r['study'].pk}/"),
              ("study-ct", f"/studies/{r['ct'].pk}/"), ("units", "/units/"), ("staff", "/staff/")]
    patients = [("patient-search", "/patients/?q=doe"), ("patient-history", f"/patients/{r['patient'].pk}/")]
    alerts = [("alerts", "/alerts/"), ("alert", f"/alerts/{r['alert'].pk}/"), ("follow-up", "/alerts/follow-up/")]
    return {
        "radiographer": common + patients + alerts,
        "physicist": common + patients + alerts + [("euratom", "/euratom/"), ("staff-people", "/staff/people/"),
                                                   ("drl", "/drl/")],
        "admin": common + patients + alerts + [("euratom", "/euratom/"), ("staff-manage", "/staff/manage/"),
                                               ("staff-roster", "/staff/roster/"), ("audit", "/audit/")],
        "qa_committee": [("dashboard", "/"), ("studies", "/studies/"), ("study-fluoro", f"/studies/{r['study'].pk}/"),
                         ("alerts", "/alerts/"), ("incidents", "/incidents/")],
    }[role]


def _open(browser, live_server, username, viewport, **options):
    context = browser.new_context(viewport=viewport, **options)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return context, page, errors


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("role", ["radiographer", "physicist", "admin", "qa_committee"])
def test_every_page_of_a_role_loads_cleanly(chromium_browser, live_server, make_user, registry, screenshots, role,
                                            viewport):
    user = make_user(role, username=f"{role}-{viewport}")
    context, page, errors = _open(chromium_browser, live_server, user.username, VIEWPORTS[viewport])
    problems = []
    try:
        for name, path in _pages(role, registry):
            response = page.goto(f"{live_server.url}{path}")
            page.wait_for_load_state()
            if response.status != 200:
                problems.append(f"{path}: HTTP {response.status}")
            problems += [f"{path}: {o}" for o in page.evaluate(_OVERFLOW)]
            problems += [f"{path}: {e}" for e in errors]
            errors.clear()
            page.screenshot(path=str(screenshots / f"{role}-{viewport}-{name}.png"), full_page=True)
    finally:
        context.close()
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_physicist_dashboard_opens_with_the_5_gy_alert(chromium_browser, live_server, make_user, registry,
                                                       screenshots, viewport):
    real = registry["alert"]
    assert Alert.objects.filter(demo=True, created_at__gt=real.created_at).exists()  # demo notifications are newer
    user = make_user("physicist", username=f"phys-{viewport}")
    context, page, errors = _open(chromium_browser, live_server, user.username, VIEWPORTS[viewport])
    try:
        first = page.locator("#dashboard-alerts tbody tr").first
        assert int(first.get_attribute("data-alert-id")) == real.pk
        assert first.is_visible() and "7.69 Gy" in first.inner_text() and "Cath lab 2" in first.inner_text()
        # the open-alerts panel is the first thing in the main column
        top = page.evaluate("() => document.querySelector('#open-alerts').getBoundingClientRect().top")
        assert top < VIEWPORTS[viewport]["height"]
        page.goto(f"{live_server.url}/alerts/")
        assert int(page.locator("#alert-table tbody tr").first.get_attribute("data-alert-id")) == real.pk
        page.goto(f"{live_server.url}/studies/{registry['study'].pk}/")
        banner = page.locator("#study-alerts")
        assert banner.is_visible() and "What to do" in banner.inner_text()
        page.screenshot(path=str(screenshots / f"physicist-{viewport}-study-banner.png"), full_page=False)
        assert errors == []
    finally:
        context.close()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_study_list_keeps_dose_columns_on_a_phone(chromium_browser, live_server, make_user, registry, screenshots,
                                                  viewport):
    user = make_user("radiographer", username=f"rad-list-{viewport}")
    context, page, _errors = _open(chromium_browser, live_server, user.username, VIEWPORTS[viewport])
    try:
        page.goto(f"{live_server.url}/studies/")
        header = page.locator("#studies thead").inner_text()
        assert "DLP" in header and "KAP" in header
        # the dose columns are there (scrolled to, not hidden); the first column stays put while scrolling
        page.evaluate("() => document.querySelector('#studies').closest('.tablewrap').scrollLeft = 2000")
        first_cell = page.locator("#studies tbody tr td").first
        box = first_cell.bounding_box()
        assert box is not None and box["x"] >= 0
        assert page.locator("#studies thead th").filter(has_text="DLP").first.is_visible()
        page.screenshot(path=str(screenshots / f"radiographer-{viewport}-studies-scrolled.png"))
    finally:
        context.close()


def test_error_pages_are_styled_with_navigation(chromium_browser, live_server, make_user, screenshots):
    user = make_user("radiographer", username="rad-errors")
    context, page, _errors = _open(chromium_browser, live_server, user.username, VIEWPORTS["phone"])
    try:
        for path, status in (("/audit/", 403), ("/studies/999999/", 404)):
            response = page.goto(f"{live_server.url}{path}")
            assert response.status == status
            assert page.locator("nav.mainnav").is_visible() and page.locator("#error-reason").is_visible()
            assert page.evaluate(_OVERFLOW) == []
            page.screenshot(path=str(screenshots / f"error-{status}-phone.png"), full_page=True)
    finally:
        context.close()
