"""The legal yearly record per person against the Art. 9 limits, and who may see staff doses."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ImproperlyConfigured

from dosereg.registry.models import AuditLog, StaffDoseReading
from dosereg.registry.services.staff import outlier_flag, reading_year, staff_year_summaries, staff_year_summary
from dosereg.registry.staff_config import staff_config

from .conftest import CET


def reading(dosimeter, start, end, hp10=None, hp007=None, hp3=None, source=None):
    return StaffDoseReading.objects.create(dosimeter=dosimeter, start=start, end=end,
                                           source=source or dosimeter.source,
                                           hp10_usv=hp10, hp007_usv=hp007, hp3_usv=hp3)


def month(year, m):
    start = dt.datetime(year, m, 1, tzinfo=CET)
    end = dt.datetime(year + (m == 12), m % 12 + 1, 1, tzinfo=CET)
    return start, end


@pytest.fixture
def crafted(angio):
    d = angio["dosimeters"]
    # Alice 2025: under apron 12 × 0.6 mSv = 7.2 mSv (above the 6 mSv investigation level, below 20)
    for m in range(1, 13):
        reading(d["TLD-AU"], *month(2025, m), hp10=600, hp007=650)
        reading(d["TLD-AC"], *month(2025, m), hp10=1500, hp007=1800)  # collar: eye surrogate 21.6 mSv > 20
        reading(d["TLD-AR"], *month(2025, m), hp007=10_000)  # ring 120 mSv: below 150 and 500
    # a period ending at midnight on 1 January 2026 belongs to 2025 (checked by the count above: December)
    # Bob 2025: under apron 25 mSv (over the limit) in one reading
    reading(d["TLD-BU"], *month(2025, 6), hp10=25_000)
    # EPD: a huge over-apron reading that must never count towards the legal record
    reading(d["EPD-A"], dt.datetime(2025, 3, 4, 9, tzinfo=CET), dt.datetime(2025, 3, 4, 10, tzinfo=CET),
            hp10=900_000, hp007=900_000, hp3=900_000)
    reading(d["EPD-B"], dt.datetime(2025, 3, 4, 9, tzinfo=CET), dt.datetime(2025, 3, 4, 10, tzinfo=CET),
            hp10=50_000)
    return angio


def test_yearly_totals_and_limit_warnings(crafted, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    alice = staff_year_summary(staff_member=crafted["alice"], year=2025)
    q = alice.quantities
    assert q["effective"].value_msv == pytest.approx(7.2)
    assert q["effective"].method.startswith("E = Hp(10) under apron")
    assert q["effective"].status == "investigation"
    assert q["eye_lens"].value_msv == pytest.approx(21.6)
    assert "surrogate" in q["eye_lens"].method
    assert q["eye_lens"].status == "limit"
    assert q["skin"].value_msv == pytest.approx(21.6)  # collar Hp(0.07), the highest body dosimeter
    assert q["skin"].status == "ok"
    assert q["extremities"].value_msv == pytest.approx(120.0)
    assert q["extremities"].status == "ok"
    assert alice.readings == 36
    assert alice.worst_status == "limit"
    assert alice.epd_hp10_msv == pytest.approx(900.0)  # shown for information only

    bob = staff_year_summary(staff_member=crafted["bob"], year=2025)
    assert bob.quantities["effective"].value_msv == pytest.approx(25.0)
    assert bob.quantities["effective"].status == "limit"
    assert bob.quantities["eye_lens"].status == "no_data"
    # nothing in 2024
    assert staff_year_summary(staff_member=crafted["bob"], year=2024).quantities["effective"].value_msv is None


def test_epd_readings_never_count_towards_legal_totals(angio):
    d = angio["dosimeters"]
    reading(d["EPD-A"], dt.datetime(2025, 3, 4, 9, tzinfo=CET), dt.datetime(2025, 3, 4, 10, tzinfo=CET),
            hp10=900_000, hp007=900_000, hp3=900_000)
    # even an EPD reading mislabelled approved_service on an EPD dosimeter does not count
    reading(d["EPD-B"], dt.datetime(2025, 3, 4, 9, tzinfo=CET), dt.datetime(2025, 3, 4, 10, tzinfo=CET),
            hp10=900_000, source="approved_service")
    for s in staff_year_summaries(year=2025):
        assert all(q.value_msv is None and q.status == "no_data" for q in s.quantities.values())


def test_double_dosimetry_needs_a_source_and_five_year_eye_mode(crafted, monkeypatch):
    monkeypatch.setenv("DOSEREG_STAFF_DOUBLE_DOSIMETRY", "0.5,0.025")
    with pytest.raises(ImproperlyConfigured, match="SOURCE"):
        staff_config()
    monkeypatch.setenv("DOSEREG_STAFF_DOUBLE_DOSIMETRY_SOURCE", "site physicist's choice, test value")
    monkeypatch.setenv("DOSEREG_STAFF_EYE_MODE", "5year")
    alice = staff_year_summary(staff_member=crafted["alice"], year=2025)
    assert alice.quantities["effective"].value_msv == pytest.approx(0.5 * 7.2 + 0.025 * 18.0)
    assert "test value" in alice.quantities["effective"].method
    eye = alice.quantities["eye_lens"]
    assert eye.status == "investigation"  # 21.6 mSv: under 50 in a year and 100 in 5 years, above 15
    assert eye.five_year_msv == pytest.approx(21.6)


def test_pregnancy_investigation_level(crafted):
    member = crafted["bob"]
    member.pregnancy_declared = True
    member.save()
    s = staff_year_summary(staff_member=member, year=2025)
    assert s.pregnancy is not None and s.pregnancy.status == "investigation"
    assert s.pregnancy.limit_msv == 1.0


def test_year_of_a_period_is_the_year_it_ends(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    assert reading_year(dt.datetime(2026, 1, 1, tzinfo=CET)) == 2025
    assert reading_year(dt.datetime(2026, 1, 2, tzinfo=CET)) == 2026


def test_outlier_flag():
    assert outlier_flag(10.0, 2.0, 3.0) == "high"
    assert outlier_flag(0.5, 2.0, 3.0) == "low"
    assert outlier_flag(3.0, 2.0, 3.0) == ""
    assert outlier_flag(3.0, None, 3.0) == ""


# --- pages and permissions -----------------------------------------------------------------------------------------
def test_radiographer_cannot_see_another_persons_doses(crafted, make_user, client):
    owner = make_user("radiographer")
    other = make_user("radiographer")
    crafted["alice"].user = owner
    crafted["alice"].save()
    client.force_login(other)
    assert client.get(f"/staff/people/{crafted['alice'].pk}/").status_code in (403, 404)
    assert client.get("/staff/people/").status_code == 403
    assert client.get("/staff/procedures/").status_code == 403
    assert client.get("/staff/unmatched/").status_code == 403
    mine = client.get("/staff/")
    assert mine.status_code == 200 and "Alice" not in mine.content.decode()

    client.force_login(owner)
    page = client.get("/staff/?year=2025")
    body = page.content.decode()
    assert page.status_code == 200 and "Alice Cardiologist" in body and ">7.2<" in body
    assert client.get(f"/staff/people/{crafted['alice'].pk}/?year=2025").status_code == 200
    assert client.get(f"/staff/people/{crafted['bob'].pk}/").status_code in (403, 404)
    assert AuditLog.objects.filter(action="view_staff_doses", object_id=str(crafted["alice"].pk)).exists()


@pytest.mark.parametrize("role", ["physicist", "admin"])
def test_physicists_and_admins_see_everyone(crafted, make_user, client, role):
    client.force_login(make_user(role))
    page = client.get("/staff/people/?year=2025")
    body = page.content.decode()
    assert page.status_code == 200 and "Alice Cardiologist" in body and "Bob Nurse" in body
    assert "over a limit" in body
    assert client.get(f"/staff/people/{crafted['bob'].pk}/?year=2025").status_code == 200
    assert client.get("/staff/procedures/").status_code == 200
    assert client.get("/staff/unmatched/").status_code == 200
    assert AuditLog.objects.filter(action="view_staff_doses").exists()
