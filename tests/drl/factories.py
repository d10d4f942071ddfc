"""Crafted studies for the DRL tests (written straight to the registry tables)."""

from __future__ import annotations

import datetime as dt
import itertools

from dosereg.registry.models import (
    DoseReport,
    Equipment,
    IrradiationEvent,
    Patient,
    ReceivedObject,
    StandardExam,
    Study,
)

_seq = itertools.count(1)


def unit(name: str = "Scanner A") -> Equipment:
    return Equipment.objects.create(identity_key=f"test:{name}:{next(_seq)}", manufacturer="Acme", model=name,
                                    station_name=name.replace(" ", ""))


def study(equipment: Equipment, *, exam: str | None = "ct-chest", date=dt.date(2024, 6, 1), age=50.0,
          weight=None, dlp=None, kap=None, events=(), demo=False, description="CT Chest",
          modality_type="CT") -> Study:
    """events: iterable of dicts of IrradiationEvent fields (ctdivol_mgy, is_localizer, protocol, kvp ...)."""
    i = next(_seq)
    patient = Patient.objects.create(patient_id=f"P{i}")
    s = Study.objects.create(
        study_instance_uid=f"1.2.826.0.1.3680043.99.{i}", patient=patient, equipment=equipment, study_date=date,
        modality_type=modality_type, study_description=description, age_years=age, weight_kg=weight,
        dlp_total_mgycm=dlp, kap_total_gycm2=kap, demo=demo,
        standard_exam=StandardExam.objects.get(code=exam) if exam else None)
    if events:
        ro = ReceivedObject.objects.create(sop_instance_uid=f"1.2.3.{i}", sha256=f"{i:064d}", source="import")
        rep = DoseReport.objects.create(received_object=ro, study=s, sop_instance_uid=ro.sop_instance_uid,
                                        sop_class_uid="1.2.840.10008.5.1.4.1.1.88.67", source_kind="rdsr")
        IrradiationEvent.objects.bulk_create([
            IrradiationEvent(study=s, report=rep, irradiation_event_uid=f"1.2.3.{i}.{k}", sequence=k, **ev)
            for k, ev in enumerate(events)])
    return s
