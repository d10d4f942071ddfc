"""Registry rows for trigger tests that do not need a real file (so they also run without ../shared)."""

from __future__ import annotations

import datetime as dt
import itertools

from dosereg.registry.models import (
    AccumulatedDose,
    DoseReport,
    Equipment,
    IrradiationEvent,
    Patient,
    ReceivedObject,
    Room,
    Study,
)

_seq = itertools.count(1)


def fluoro_study(*, ka_r_mgy: float, kap_gycm2: float = 10.0, fluoro_s: float = 600.0, patient: Patient | None = None,
                 room: Room | None = None, study_date: dt.date | None = None, demo: bool = False,
                 planes: dict[str, float] | None = None, description: str = "Hepatic embolisation") -> Study:
    n = next(_seq)
    patient = patient or Patient.objects.create(patient_id=f"P{n}")
    room = room or Room.objects.get_or_create(name="Angio 1")[0]
    unit, _ = Equipment.objects.get_or_create(identity_key=f"unit-{room.pk}",
                                              defaults={"manufacturer": "Acme", "model": "Angio", "room": room})
    study = Study.objects.create(
        study_instance_uid=f"1.2.3.{n}", patient=patient, equipment=unit, study_date=study_date or dt.date(2026, 3, 2),
        modality_type="fluoroscopy", modality_types=["fluoroscopy"], study_description=description, demo=demo,
        ka_r_total_mgy=ka_r_mgy, kap_total_gycm2=kap_gycm2, fluoro_time_total_s=fluoro_s, event_count=1, age_years=60)
    ro = ReceivedObject.objects.create(sop_instance_uid=f"1.2.3.{n}.1", sha256=f"{n:064d}", source="import",
                                       state="ingested", study_instance_uid=study.study_instance_uid)
    report = DoseReport.objects.create(received_object=ro, study=study, sop_instance_uid=ro.sop_instance_uid,
                                       sop_class_uid="1.2.840.10008.5.1.4.1.1.88.67", source_kind="rdsr")
    for plane, kar in (planes or {"single": ka_r_mgy}).items():
        AccumulatedDose.objects.create(report=report, plane=plane, ka_r_total_mgy=kar,
                                       kap_total_gycm2=kap_gycm2 / len(planes or {"x": 1}),
                                       fluoro_time_total_s=fluoro_s / len(planes or {"x": 1}))
    IrradiationEvent.objects.create(study=study, report=report, irradiation_event_uid=f"1.2.3.{n}.9",
                                    event_type="fluoroscopy", ka_r_mgy=ka_r_mgy, kap_gycm2=kap_gycm2)
    return study


def ct_study(*, acquisitions: list[tuple[float, str]], description: str = "CT", age: float | None = 50.0) -> Study:
    """A CT study; ``acquisitions`` are (CTDIvol mGy, Target Region meaning) pairs."""
    n = next(_seq)
    patient = Patient.objects.create(patient_id=f"P{n}")
    room = Room.objects.get_or_create(name="CT 1")[0]
    unit, _ = Equipment.objects.get_or_create(identity_key=f"unit-{room.pk}",
                                              defaults={"manufacturer": "Acme", "model": "CT", "room": room})
    study = Study.objects.create(
        study_instance_uid=f"1.2.4.{n}", patient=patient, equipment=unit, study_date=dt.date(2026, 3, 2),
        modality_type="CT", modality_types=["CT"], study_description=description, age_years=age,
        max_ctdivol_mgy=max(c for c, _ in acquisitions), event_count=len(acquisitions))
    ro = ReceivedObject.objects.create(sop_instance_uid=f"1.2.4.{n}.1", sha256=f"{n:064d}", source="import",
                                       state="ingested", study_instance_uid=study.study_instance_uid)
    report = DoseReport.objects.create(received_object=ro, study=study, sop_instance_uid=ro.sop_instance_uid,
                                       sop_class_uid="1.2.840.10008.5.1.4.1.1.88.67", source_kind="rdsr")
    for i, (ctdivol, region) in enumerate(acquisitions):
        IrradiationEvent.objects.create(study=study, report=report, irradiation_event_uid=f"1.2.4.{n}.{i + 10}",
                                        sequence=i, event_type="spiral_acquisition", protocol=f"Series {i + 1}",
                                        target_region=region, ctdivol_mgy=ctdivol, ctdi_phantom="body")
    return study
