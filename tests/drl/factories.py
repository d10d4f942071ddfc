"""Crafted studies for the DRL tests (written straight to the registry tables with the factories of
tests/factories.py)."""

from __future__ import annotations

import datetime as dt

import factory

from dosereg.registry.models import Equipment, StandardExam, Study
from tests.factories import DoseReportFactory, EquipmentFactory, IrradiationEventFactory, StudyFactory


def unit(name: str = "Scanner A") -> Equipment:
    """A new unit on every call, even under the same name."""
    return EquipmentFactory(identity_key=factory.Sequence(lambda n: f"test:{name}:{n}"), model=name,
                            station_name=name.replace(" ", ""))


def study(equipment: Equipment, *, exam: str | None = "ct-chest", date=dt.date(2024, 6, 1), age=50.0,
          weight=None, dlp=None, kap=None, events=(), demo=False, description="CT Chest",
          modality_type="CT", **fields) -> Study:
    """A study of a new patient; ``exam`` is the code of a seeded standard exam.
    events: iterable of dicts of IrradiationEvent fields (ctdivol_mgy, is_localizer, protocol, kvp ...);
    fields: other Study fields (requested_procedure_code ...)."""
    s = StudyFactory(
        equipment=equipment, study_date=date, modality_type=modality_type, study_description=description,
        age_years=age, weight_kg=weight, dlp_total_mgycm=dlp, kap_total_gycm2=kap, demo=demo,
        standard_exam=StandardExam.objects.get(code=exam) if exam else None, **fields)
    if events:
        report = DoseReportFactory(study=s)
        for k, ev in enumerate(events):
            IrradiationEventFactory(report=report, sequence=k, **ev)
    return s
