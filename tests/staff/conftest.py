"""Rooms, units, interventional studies and dosimeters built in the test (no external data)."""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from dosereg.registry.models import Dosimeter, Equipment, Patient, Room, StaffMember, Study

CET = ZoneInfo("Europe/Berlin")


def at(day: int, hour: int, minute: int = 0, month: int = 3, year: int = 2025) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=CET)


@pytest.fixture
def angio(db):
    """Two angiography rooms, three interventional procedures in room 1, one in room 2, and one CT study in room 1."""
    room1, room2 = Room.objects.create(name="Angio 1"), Room.objects.create(name="Angio 2")
    unit1 = Equipment.objects.create(identity_key="u1", manufacturer="Acme", model="Angio", room=room1)
    unit2 = Equipment.objects.create(identity_key="u2", manufacturer="Acme", model="Angio", room=room2)
    patient = Patient.objects.create(patient_id="P1")

    def study(uid, unit, when, kap, kar, modality="fluoroscopy"):
        return Study.objects.create(study_instance_uid=uid, patient=patient, equipment=unit, study_datetime=when,
                                    study_date=when.date(), modality_type=modality, kap_total_gycm2=kap,
                                    ka_r_total_mgy=kar, study_description=f"proc {uid}")

    studies = {
        "a": study("1.1", unit1, at(4, 9, 0), 50.0, 400.0),     # 09:00 (+60 min default window)
        "b": study("1.2", unit1, at(4, 11, 0), 20.0, 150.0),    # 11:00
        "c": study("1.3", unit2, at(4, 9, 0), 80.0, 700.0),     # room 2, same time as a
        "ct": study("1.4", unit1, at(4, 14, 0), None, None, modality="CT"),
    }
    alice = StaffMember.objects.create(name="Alice Cardiologist", role="cardiologist")
    bob = StaffMember.objects.create(name="Bob Nurse", role="nurse")
    dosimeters = {
        "EPD-A": Dosimeter.objects.create(dosimeter_id="EPD-A", staff_member=alice, position="over_apron_collar",
                                          source="epd", room=room1),
        "EPD-B": Dosimeter.objects.create(dosimeter_id="EPD-B", staff_member=bob, position="over_apron_collar",
                                          source="epd", room=room1),
        "TLD-AU": Dosimeter.objects.create(dosimeter_id="TLD-AU", staff_member=alice, position="under_apron",
                                           source="approved_service"),
        "TLD-AC": Dosimeter.objects.create(dosimeter_id="TLD-AC", staff_member=alice, position="over_apron_collar",
                                           source="approved_service"),
        "TLD-AR": Dosimeter.objects.create(dosimeter_id="TLD-AR", staff_member=alice, position="ring",
                                           source="approved_service"),
        "TLD-BU": Dosimeter.objects.create(dosimeter_id="TLD-BU", staff_member=bob, position="under_apron",
                                           source="approved_service"),
    }
    return {"rooms": (room1, room2), "studies": studies, "alice": alice, "bob": bob, "dosimeters": dosimeters}


def run_import(tmp_path, text: str, *args) -> tuple[int, str, str]:
    path = tmp_path / "readings.csv"
    path.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_staff_doses", str(path), *args, stdout=out, stderr=err)
        code = 0
    except CommandError as exc:
        code = exc.returncode
        err.write(str(exc))
    return code, out.getvalue(), err.getvalue()
