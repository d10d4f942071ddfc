"""Registry rows for the incident tests: a biplane fluoroscopy study with events and a CT study."""

from __future__ import annotations

import datetime as dt

import pytest

from dosereg.registry.models import Study
from tests.factories import (
    AccumulatedDoseFactory,
    AlertFactory,
    DoseReportFactory,
    EquipmentFactory,
    IrradiationEventFactory,
    PatientFactory,
    RoomFactory,
    StudyFactory,
)


@pytest.fixture
def registry_rows(db):
    """make(kind='fluoro'|'ct', **study_fields) -> a Study with a current report, per-plane totals and events."""
    unit = EquipmentFactory(identity_key="test-unit-1", manufacturer="Acme", model="Biplane 9", station_name="ANGIO1",
                            room=RoomFactory(name="Angio 1"))
    patient = PatientFactory(patient_id="P-INC-1")

    def make(kind: str = "fluoro", **fields) -> Study:
        given = dict(patient=patient, equipment=unit, study_date=dt.date(2026, 3, 10))
        if kind == "fluoro":
            study = StudyFactory(fluoroscopy=True, **{**given, "kap_total_gycm2": 120.75, "ka_r_total_mgy": 5100.0,
                                                      "fluoro_time_total_s": 2100.0, "event_count": 2, **fields})
            report = DoseReportFactory(study=study)
            for plane, kap, ka_r, seconds in (("A", 80.5, 3200.0, 1500.0), ("B", 40.25, 1900.0, 600.0)):
                AccumulatedDoseFactory(report=report, plane=plane, kap_total_gycm2=kap, ka_r_total_mgy=ka_r,
                                       fluoro_time_total_s=seconds)
                IrradiationEventFactory(report=report, fluoroscopy=True, sequence=1 if plane == "A" else 2,
                                        plane=plane, kap_gycm2=kap, ka_r_mgy=ka_r, irradiation_duration_s=seconds,
                                        protocol="Cardiac fluoro")
        else:
            study = StudyFactory(ct=True, **{**given, "study_description": "CT head", "dlp_total_mgycm": 2450.0,
                                             "max_ctdivol_mgy": 130.0, "event_count": 1, "effective_dose_msv": 5.145,
                                             "effective_dose_method": "DLP x k, AAPM Report 96 (head)", **fields})
            report = DoseReportFactory(study=study)
            AccumulatedDoseFactory(report=report, dlp_total_mgycm=2450.0)
            IrradiationEventFactory(report=report, event_type="spiral_acquisition", sequence=1, ctdivol_mgy=130.0,
                                    dlp_mgycm=2450.0, target_region="Brain", protocol="Head perfusion")
        return Study.objects.get(pk=study.pk)  # read back as stored

    return make


@pytest.fixture
def rule_and_alert(db):
    """alert(study, severity=..., active=True) -> an Alert row on a TriggerRule created for the test."""

    def make(study, *, severity: str = "alert", active: bool = True, quantity: str = "ka_r_total_mgy",
             value: float = 5100.0, threshold: float = 5000.0, unit: str = "mGy"):
        return AlertFactory(study=study, severity=severity, rule__active=active, quantity=quantity, value=value,
                            threshold=threshold, unit=unit)

    return make
