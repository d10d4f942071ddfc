"""The staff roster (people and their dosimeters): command, page, admin; the shipped examples import cleanly after
it and match the sample interventional procedures; the empty states say what to do."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from dosereg.registry.models import AuditLog, Dosimeter, StaffDoseReading, StaffMember
from dosereg.registry.services.staff import staff_roster_import
from tests.conftest import REPO

from .conftest import run_import

EXAMPLES = REPO / "docs" / "examples"


def _roster(path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_staff_roster", str(path), stdout=out, stderr=err)
        return 0, out.getvalue(), err.getvalue()
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue() + str(exc)


def test_example_roster_then_example_readings_import_cleanly_and_match(angio, tmp_path):
    code, out, err = _roster(EXAMPLES / "staff-roster.csv")
    assert code == 0, err
    assert "staff members created: 2" in out and "dosimeters created: 5" in out
    weber = StaffMember.objects.get(name="Dr Anna Weber")
    assert sorted(weber.dosimeters.values_list("dosimeter_id", "position")) == [
        ("EPD-0001", "over_apron_collar"), ("TLD-C-0001", "over_apron_collar"), ("TLD-R-0001", "ring"),
        ("TLD-U-0001", "under_apron")]
    assert Dosimeter.objects.get(dosimeter_id="EPD-0002").room == angio["rooms"][0]
    # the same roster again changes nothing
    code, out, _err = _roster(EXAMPLES / "staff-roster.csv")
    assert code == 0 and "dosimeters unchanged: 5" in out and "staff members created: 0" in out

    epd = (EXAMPLES / "staff-doses-epd.csv").read_text()
    code, out, err = run_import(tmp_path, epd)
    assert code == 0, err
    s = angio["studies"]
    by_start = {(r.dosimeter.dosimeter_id, r.start.astimezone(s["a"].study_datetime.tzinfo).strftime("%H:%M")):
                r.study_id for r in StaffDoseReading.objects.select_related("dosimeter")}
    assert by_start[("EPD-0001", "09:05")] == s["a"].pk and by_start[("EPD-0002", "09:05")] == s["a"].pk
    assert by_start[("EPD-0001", "11:10")] == s["b"].pk  # no room column: the dosimeter's room from the roster
    code, out, err = run_import(tmp_path, (EXAMPLES / "staff-doses-approved.csv").read_text(),
                                "--source", "approved_service")
    assert code == 0, err
    assert "stored: 3" in out


def test_bad_roster_stores_nothing_and_says_why(db, make_user, tmp_path):
    StaffMember.objects.create(name="Someone Else").dosimeters.create(dosimeter_id="EPD-9", position="eye",
                                                                      source="epd")
    text = ("name,staff_number,dosimeter_id,position,source,username\n"
            "Ann,S1,EPD-1,belt,epd,\n"
            "Ann,S1,EPD-9,eye,epd,\n"
            "Ben,S1,EPD-2,ring,tld,nobody\n")
    summary = staff_roster_import(text)
    messages = [str(e) for e in summary.errors]
    assert any("line 2" in m and "unknown position 'belt'" in m for m in messages)
    assert any("line 3" in m and "worn by 'Someone Else'" in m for m in messages)
    assert any("line 4" in m and "staff number S1 is also 'Ann'" in m for m in messages)
    assert any("line 4" in m and "no user account 'nobody'" in m for m in messages)
    assert not StaffMember.objects.filter(name__in=["Ann", "Ben"]).exists()
    path = tmp_path / "roster.csv"
    path.write_text("name,dosimeter_id\nAnn,X\n")
    code, _out, err = _roster(path)
    assert code == 1 and "missing column(s) staff_number, position, source" in err


def test_roster_page_links_accounts_and_people_see_their_own_doses(client, make_user):
    admin = make_user("admin")
    nurse = make_user("radiographer", username="tkeller")
    client.force_login(admin)
    assert 'id="no-members"' in client.get("/staff/manage/").content.decode()
    text = (EXAMPLES / "staff-roster.csv").read_text().replace("radiographer,,EPD-0002", "radiographer,tkeller,EPD-0002")
    page = client.post("/staff/roster/", {"text": text})
    assert page.status_code == 200 and "user accounts linked: 1" in page.content.decode()
    assert StaffMember.objects.get(name="Tom Keller").user == nurse
    assert AuditLog.objects.filter(action="import_staff_roster").exists()
    listing = client.get("/staff/manage/").content.decode()
    assert "EPD-0002" in listing and "tkeller" in listing
    bad = client.post("/staff/roster/", {"text": "name,staff_number,dosimeter_id,position,source\nX,1,EPD-0002,eye,epd\n"})
    assert bad.status_code == 400 and "worn by" in bad.content.decode()
    client.force_login(nurse)
    assert "Tom Keller" in client.get("/staff/").content.decode()
    assert client.get("/staff/roster/").status_code == 403


def test_member_and_dosimeter_pages_create_and_link(client, make_user):
    client.force_login(make_user("admin"))
    user = make_user("physicist", username="phys1")
    r = client.post("/staff/manage/new/", {"name": "Dr New", "role": "physicist", "user": user.pk})
    member = StaffMember.objects.get(name="Dr New")
    assert r.status_code == 302 and member.user == user
    r = client.post(f"/staff/manage/{member.pk}/dosimeters/", {"dosimeter_id": "EPD-77", "position": "eye",
                                                               "source": "epd"})
    assert r.status_code == 302 and member.dosimeters.get().dosimeter_id == "EPD-77"
    dup = client.post(f"/staff/manage/{member.pk}/dosimeters/", {"dosimeter_id": "EPD-77", "position": "eye",
                                                                 "source": "epd"})
    assert dup.status_code == 400


@pytest.mark.parametrize("role", ["radiographer", "physicist"])
def test_empty_state_says_exactly_what_to_do(client, make_user, role):
    client.force_login(make_user(role))
    page = client.get("/staff/").content.decode()
    block = page.split('id="no-staff-record"', 1)[1].split("</section>", 1)[0]
    assert "not linked to a staff member" in block and "Staff and dosimeters" in block


def test_admin_has_staff_forms(admin_client, db):
    assert admin_client.get("/admin/registry/staffmember/add/").status_code == 200
    assert admin_client.get("/admin/registry/dosimeter/add/").status_code == 200
