"""Registry rows for trigger tests that do not need a real file (so they also run without ../shared).

Built with the factories in tests/factories.py; a study has one current RDSR with its totals and events."""

from __future__ import annotations

import datetime as dt

from dosereg.registry.models import Patient, Room, Study
from tests.factories import (
    AccumulatedDoseFactory,
    DoseReportFactory,
    EquipmentFactory,
    IrradiationEventFactory,
    RoomFactory,
    StudyFactory,
)


def _unit_in(room: Room, model: str):
    """The one unit of a room (keyed by the room, as these tests have one unit per room)."""
    return EquipmentFactory(identity_key=f"unit-{room.pk}", manufacturer="Acme", model=model, station_name="",
                            room=room)


def fluoro_study(*, ka_r_mgy: float, kap_gycm2: float = 10.0, fluoro_s: float = 600.0, patient: Patient | None = None,
                 room: Room | None = None, study_date: dt.date | None = None, demo: bool = False,
                 planes: dict[str, float] | None = None, description: str = "Hepatic embolisation") -> Study:
    """planes: Ka,r per plane {'A': mGy, 'B': mGy}; KAP and fluoroscopy time are shared out evenly."""
    room = room or RoomFactory(name="Angio 1")
    study = StudyFactory(
        fluoroscopy=True, equipment=_unit_in(room, "Angio"), study_date=study_date or dt.date(2026, 3, 2),
        study_description=description, demo=demo, ka_r_total_mgy=ka_r_mgy, kap_total_gycm2=kap_gycm2,
        fluoro_time_total_s=fluoro_s, event_count=1, age_years=60,
        **({"patient": patient} if patient else {}))
    report = DoseReportFactory(study=study)
    planes = planes or {"single": ka_r_mgy}
    for plane, ka_r in planes.items():
        AccumulatedDoseFactory(report=report, plane=plane, ka_r_total_mgy=ka_r, kap_total_gycm2=kap_gycm2 / len(planes),
                               fluoro_time_total_s=fluoro_s / len(planes))
    IrradiationEventFactory(report=report, fluoroscopy=True, ka_r_mgy=ka_r_mgy, kap_gycm2=kap_gycm2)
    return study


def ct_study(*, acquisitions: list[tuple[float, str]], description: str = "CT", age: float | None = 50.0) -> Study:
    """A CT study; ``acquisitions`` are (CTDIvol mGy, Target Region meaning) pairs."""
    study = StudyFactory(
        ct=True, equipment=_unit_in(RoomFactory(name="CT 1"), "CT"), study_date=dt.date(2026, 3, 2),
        study_description=description, age_years=age, max_ctdivol_mgy=max(c for c, _ in acquisitions),
        event_count=len(acquisitions))
    report = DoseReportFactory(study=study)
    for i, (ctdivol, region) in enumerate(acquisitions):
        IrradiationEventFactory(report=report, ct=True, sequence=i, protocol=f"Series {i + 1}", target_region=region,
                                ctdivol_mgy=ctdivol)
    return study
