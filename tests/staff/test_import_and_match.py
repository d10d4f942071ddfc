"""Dosimeter CSV import: matching to interventional procedures, unmatched readings, bad rows, mapping, units."""

from __future__ import annotations

import json

from dosereg.registry.models import Dosimeter, Room, StaffDoseReading, Study
from dosereg.registry.services.staff import staff_procedures, staff_readings_rematch
from tests.conftest import REPO

from .conftest import at, run_import

EPD = """dosimeter_id,start,end,hp10_usv,hp007_usv,hp3_usv,room
EPD-A,2025-03-04T09:05:00+01:00,2025-03-04T09:50:00+01:00,12.5,13.0,,
EPD-B,2025-03-04T09:10:00+01:00,2025-03-04T09:40:00+01:00,2.5,,,
EPD-A,2025-03-04T11:05:00+01:00,2025-03-04T11:30:00+01:00,4.0,,,
EPD-A,2025-03-04T09:00:00+01:00,2025-03-04T09:30:00+01:00,30.0,,,Angio 2
EPD-A,2025-03-04T16:00:00+01:00,2025-03-04T16:20:00+01:00,0.4,,,
EPD-B,2025-03-04T14:00:00+01:00,2025-03-04T14:30:00+01:00,0.2,,,
"""


def test_epd_readings_are_matched_to_the_right_procedures(angio, tmp_path):
    # the EPD-A 09:00 reading in Angio 2 overlaps the row 1 reading of the same dosimeter: give it its own badge
    text = EPD.replace("EPD-A,2025-03-04T09:00:00+01:00", "EPD-B,2025-03-04T08:00:00+01:00").replace(
        "2025-03-04T09:30:00+01:00,30.0", "2025-03-04T09:05:00+01:00,30.0")
    code, out, err = run_import(tmp_path, text)
    assert code == 0, err
    assert "stored: 6" in out and "matched to a procedure: 4" in out and "unmatched (kept): 2" in out
    s = angio["studies"]
    by = {(r.dosimeter.dosimeter_id, r.start.astimezone(s["a"].study_datetime.tzinfo).strftime("%H:%M")): r
          for r in StaffDoseReading.objects.select_related("dosimeter")}
    assert by[("EPD-A", "09:05")].study_id == s["a"].pk
    assert by[("EPD-B", "09:10")].study_id == s["a"].pk
    assert by[("EPD-A", "11:05")].study_id == s["b"].pk
    assert by[("EPD-B", "08:00")].study_id == s["c"].pk  # room 2 from the room column
    # 16:00 is after every procedure; 14:00 is a CT study, not interventional: both kept, unmatched
    assert by[("EPD-A", "16:00")].study_id is None
    assert by[("EPD-B", "14:00")].study_id is None
    assert StaffDoseReading.objects.count() == 6
    # staff beside patient: KAP and the ratio in µSv per Gy·cm²
    rows = {p.study.pk: p for p in staff_procedures()}
    a = rows[s["a"].pk]
    assert a.kap_total_gycm2 == 50.0
    ratios = {x.dosimeter_id: x.ratio_usv_per_gycm2 for x in a.staff}
    assert ratios == {"EPD-A": 12.5 / 50.0, "EPD-B": 2.5 / 50.0}


def test_reimport_is_idempotent_and_a_changed_value_is_refused(angio, tmp_path):
    assert run_import(tmp_path, EPD.splitlines()[0] + "\n" + EPD.splitlines()[1] + "\n")[0] == 0
    code, out, _ = run_import(tmp_path, EPD.splitlines()[0] + "\n" + EPD.splitlines()[1] + "\n")
    assert code == 0 and "already stored (unchanged): 1" in out
    changed = EPD.splitlines()[0] + "\n" + EPD.splitlines()[1].replace("12.5", "99") + "\n"
    code, _, err = run_import(tmp_path, changed)
    assert code == 1 and "differs from the stored reading" in err
    assert StaffDoseReading.objects.count() == 1


BAD = """dosimeter_id,start,end,hp10_usv,hp007_usv,hp3_usv
EPD-A,2025-03-04T09:05:00+01:00,2025-03-04T09:50:00+01:00,12.5,,
NOPE-1,2025-03-04T09:05:00+01:00,2025-03-04T09:50:00+01:00,1,,
EPD-B,2025-03-04T09:05:00+01:00,2025-03-04T09:50:00+01:00,abc,,
EPD-B,2025-03-04T10:05:00+01:00,2025-03-04T10:50:00+01:00,3 mSv,,
EPD-A,2025-03-04T09:30:00+01:00,2025-03-04T10:00:00+01:00,1,,
EPD-B,2025-03-04T12:00:00+01:00,2025-03-04T11:00:00+01:00,1,,
EPD-B,2025-03-04 13:00,2025-03-04T14:00:00+01:00,1,,
TLD-AU,2025-03-04T15:00:00+01:00,2025-03-04T16:00:00+01:00,1,,
EPD-B,2025-03-04T17:00:00+01:00,2025-03-04T18:00:00+01:00,-1,,
EPD-B,2025-03-04T19:00:00+01:00,2025-03-04T20:00:00+01:00,2,,
"""


def test_malformed_csv_is_refused_with_a_message_per_row_and_nothing_stored(angio, tmp_path):
    code, out, err = run_import(tmp_path, BAD)
    assert code == 1
    lines = [x for x in err.splitlines() if " line " in x]
    assert len(lines) == 8, err
    assert "line 3: unknown dosimeter 'NOPE-1'" in err
    assert "line 4: hp10_usv 'abc' is not a number" in err
    assert "line 5: hp10_usv '3 mSv': unit 'mSv' does not match the column's unit µSv" in err
    assert "line 6: overlapping interval: dosimeter EPD-A already has line 2" in err
    assert "line 7: end is not after start" in err
    assert "line 8: start '2025-03-04 13:00' has no UTC offset" in err
    assert "line 9: dosimeter 'TLD-AU' is registered as approved_service, not epd" in err
    assert "line 10: hp10_usv '-1' is negative" in err
    assert "nothing stored" in out
    assert StaffDoseReading.objects.count() == 0


def test_skip_bad_rows_stores_the_good_rows(angio, tmp_path):
    code, out, err = run_import(tmp_path, BAD, "--skip-bad-rows")
    assert code == 1 and "the good rows were stored" in err
    assert "stored: 2" in out
    assert sorted(StaffDoseReading.objects.values_list("hp10_usv", flat=True)) == [2.0, 12.5]


def test_overlap_with_a_stored_reading_is_refused(angio, tmp_path):
    assert run_import(tmp_path, EPD.splitlines()[0] + "\n" + EPD.splitlines()[1] + "\n")[0] == 0
    text = ("dosimeter_id,start,end,hp10_usv\n"
            "EPD-A,2025-03-04T09:45:00+01:00,2025-03-04T10:15:00+01:00,1\n")
    code, _, err = run_import(tmp_path, text)
    assert code == 1 and "line 2: overlapping interval: dosimeter EPD-A has a stored reading" in err
    assert StaffDoseReading.objects.count() == 1


def test_file_level_errors(angio, tmp_path):
    code, _, err = run_import(tmp_path, "badge,from,to,dose\nEPD-A,x,y,1\n")
    assert code == 1 and "missing column(s) dosimeter_id, start, end" in err
    code, _, err = run_import(tmp_path, "dosimeter_id,start,end,hp10_gy\n")
    assert code == 1 and "unknown unit 'gy'" in err


def test_mapping_and_units_from_column_names(angio, tmp_path):
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"Badge": "dosimeter_id", "From": "start", "To": "end", "Hp10 [mSv]": "hp10_msv",
                                   "Location": "room"}))
    text = ("Badge;From;To;Hp10 [mSv];Location\n"
            "EPD-A;2025-03-04T09:05:00+01:00;2025-03-04T09:50:00+01:00;0,0125;Angio 1\n")
    code, out, err = run_import(tmp_path, text, "--mapping", str(mapping))
    assert code == 0, err
    reading = StaffDoseReading.objects.get()
    assert reading.hp10_usv == 12.5 and reading.study_id == angio["studies"]["a"].pk
    csv_map = tmp_path / "map.csv"
    csv_map.write_text("from,to\nBadge,dosimeter_id\nFrom,start\nTo,end\nHp10 [mSv],hp10_msv\nLocation,room\n")
    text2 = text.replace("09:05", "12:05").replace("09:50", "12:50")
    assert run_import(tmp_path, text2, "--mapping", str(csv_map))[0] == 0


def test_late_procedure_is_matched_by_rematch(angio, tmp_path):
    text = "dosimeter_id,start,end,hp10_usv\nEPD-A,2025-03-05T10:00:00+01:00,2025-03-05T10:30:00+01:00,5\n"
    assert run_import(tmp_path, text)[0] == 0
    assert StaffDoseReading.objects.get().study_id is None
    late = Study.objects.create(study_instance_uid="9.9", patient=angio["studies"]["a"].patient,
                                equipment=angio["studies"]["a"].equipment, study_datetime=at(5, 10, 2),
                                modality_type="fluoroscopy", kap_total_gycm2=10)
    assert staff_readings_rematch() == 1
    assert StaffDoseReading.objects.get().study_id == late.pk


def test_example_files_import(angio, tmp_path):
    """docs/examples: the EPD example against rooms and dosimeters named like it."""
    Room.objects.filter(name="Angio 1").update(name="Angio 1")
    alice = angio["alice"]
    for did in ("EPD-0001", "EPD-0002"):
        Dosimeter.objects.create(dosimeter_id=did, staff_member=alice, position="over_apron_collar", source="epd",
                                 room=angio["rooms"][0])
    for did, pos in (("TLD-U-0001", "under_apron"), ("TLD-C-0001", "over_apron_collar"), ("TLD-R-0001", "ring")):
        Dosimeter.objects.create(dosimeter_id=did, staff_member=alice, position=pos, source="approved_service")
    epd = (REPO / "docs/examples/staff-doses-epd.csv").read_text()
    code, out, err = run_import(tmp_path, epd)
    assert code == 0, err
    assert "stored: 4" in out
    approved = (REPO / "docs/examples/staff-doses-approved.csv").read_text()
    code, out, err = run_import(tmp_path, approved, "--source", "approved_service")
    assert code == 0, err
    assert StaffDoseReading.objects.get(dosimeter__dosimeter_id="TLD-C-0001").hp10_usv == 950.0


def test_outlier_against_the_rooms_usual_ratio_and_the_procedure_page(angio, tmp_path, make_user, client):
    """Six procedures in Angio 1 with a usual ratio of 0.1 µSv per Gy·cm²; one at 1.0 is flagged high."""
    unit = angio["studies"]["a"].equipment
    lines = ["dosimeter_id,start,end,hp10_usv"]
    for day in range(10, 17):
        Study.objects.create(study_instance_uid=f"7.{day}", patient=angio["studies"]["a"].patient, equipment=unit,
                             study_datetime=at(day, 9), study_date=at(day, 9).date(), modality_type="fluoroscopy",
                             kap_total_gycm2=100.0, study_description=f"PCI {day}")
        dose = 100.0 if day == 16 else 10.0
        lines.append(f"EPD-A,2025-03-{day}T09:05:00+01:00,2025-03-{day}T09:40:00+01:00,{dose}")
    code, out, err = run_import(tmp_path, "\n".join(lines) + "\n")
    assert code == 0 and "matched to a procedure: 7" in out, err
    rows = {p.study.study_description: p for p in staff_procedures()}
    flagged = rows["PCI 16"].staff[0]
    assert flagged.ratio_usv_per_gycm2 == 1.0 and flagged.usual_ratio == 0.1 and flagged.flag == "high"
    assert rows["PCI 10"].staff[0].flag == ""
    client.force_login(make_user("physicist"))
    body = client.get("/staff/procedures/").content.decode()
    assert "PCI 16" in body and "Alice Cardiologist" in body and ">high<" in body
