"""Registry rows for the incident tests: a biplane fluoroscopy study with events and a CT study."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools

import pytest

_seq = itertools.count(1)


@pytest.fixture
def registry_rows(db):
    """make(kind='fluoro'|'ct', **study_fields) -> a Study with a current report, per-plane totals and events."""
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

    room, _ = Room.objects.get_or_create(name="Angio 1")
    unit, _ = Equipment.objects.get_or_create(identity_key="test-unit-1", defaults=dict(
        manufacturer="Acme", model="Biplane 9", station_name="ANGIO1", room=room))
    patient, _ = Patient.objects.get_or_create(patient_id="P-INC-1", issuer="")

    def make(kind: str = "fluoro", **fields) -> Study:
        n = next(_seq)
        uid = f"1.2.826.0.1.3680043.10.999.{n}"
        study = Study.objects.create(
            study_instance_uid=uid, patient=patient, equipment=unit, accession_number=f"ACC{n}",
            study_date=fields.pop("study_date", dt.date(2026, 3, 10)),
            modality_type="fluoroscopy" if kind == "fluoro" else "CT",
            modality_types=["fluoroscopy"] if kind == "fluoro" else ["CT"],
            study_description="Coronary angiography" if kind == "fluoro" else "CT head", **fields)
        ro = ReceivedObject.objects.create(sop_instance_uid=f"{uid}.1", sha256=hashlib.sha256(uid.encode()).hexdigest(),
                                           study_instance_uid=uid, source="import", state="ingested")
        rep = DoseReport.objects.create(received_object=ro, study=study, sop_instance_uid=ro.sop_instance_uid,
                                        sop_class_uid="1.2.840.10008.5.1.4.1.1.88.67", source_kind="rdsr")
        if kind == "fluoro":
            AccumulatedDose.objects.create(report=rep, plane="A", kap_total_gycm2=80.5, ka_r_total_mgy=3200.0,
                                           fluoro_time_total_s=1500.0)
            AccumulatedDose.objects.create(report=rep, plane="B", kap_total_gycm2=40.25, ka_r_total_mgy=1900.0,
                                           fluoro_time_total_s=600.0)
            Study.objects.filter(pk=study.pk).update(kap_total_gycm2=120.75, ka_r_total_mgy=5100.0,
                                                     fluoro_time_total_s=2100.0, event_count=2)
            IrradiationEvent.objects.create(study=study, report=rep, irradiation_event_uid=f"{uid}.9.1", sequence=1,
                                            event_type="fluoroscopy", plane="A", kap_gycm2=80.5, ka_r_mgy=3200.0,
                                            irradiation_duration_s=1500.0, protocol="Cardiac fluoro")
            IrradiationEvent.objects.create(study=study, report=rep, irradiation_event_uid=f"{uid}.9.2", sequence=2,
                                            event_type="fluoroscopy", plane="B", kap_gycm2=40.25, ka_r_mgy=1900.0,
                                            irradiation_duration_s=600.0, protocol="Cardiac fluoro")
        else:
            AccumulatedDose.objects.create(report=rep, plane="", dlp_total_mgycm=2450.0)
            Study.objects.filter(pk=study.pk).update(dlp_total_mgycm=2450.0, max_ctdivol_mgy=130.0, event_count=1,
                                                     effective_dose_msv=5.145,
                                                     effective_dose_method="DLP x k, AAPM Report 96 (head)")
            IrradiationEvent.objects.create(study=study, report=rep, irradiation_event_uid=f"{uid}.9.1", sequence=1,
                                            event_type="spiral_acquisition", ctdivol_mgy=130.0, dlp_mgycm=2450.0,
                                            target_region="Brain", protocol="Head perfusion")
        return Study.objects.get(pk=study.pk)

    return make


@pytest.fixture
def rule_and_alert(db):
    """alert(study, severity=..., active=True) -> an Alert row on a TriggerRule created for the test."""
    from triggers.models import Alert, TriggerRule

    def make(study, *, severity: str = "alert", active: bool = True, quantity: str = "ka_r_total_mgy",
             value: float = 5100.0, threshold: float = 5000.0, unit: str = "mGy"):
        n = next(_seq)
        rule = TriggerRule.objects.create(key=f"test-rule-{n}", name=f"Test rule {n}", quantity=quantity,
                                          threshold=threshold, unit=unit, scope="study", severity=severity,
                                          source="test source", active=active)
        return Alert.objects.create(study=study, rule=rule, patient=study.patient, severity=severity, scope="study",
                                    quantity=quantity, quantity_label="Ka,r", value=value, unit=unit,
                                    threshold=threshold, summary=f"Ka,r {value} mGy ≥ {threshold} mGy")

    return make
