"""Parser dataclasses built directly, so the recording service tests need neither files nor the parser."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools

from dosereg.core import dose_report as dr
from dosereg.registry.models import ReceivedObject

_n = itertools.count(1)


def q(value: float, raw: str | None = None, unit: str = "") -> dr.Quantity:
    return dr.Quantity(value=value, raw_value=raw if raw is not None else repr(value), raw_unit=unit)


def ct_event(uid: str | None, dlp: float, ctdivol: float = 5.0, *, phantom: str = "body",
             region: tuple[str, str] | None = ("51185008", "Chest")) -> dr.IrradiationEventData:
    return dr.IrradiationEventData(
        irradiation_event_uid=uid, event_type="spiral_acquisition",
        event_type_code=dr.Code("SCT", "116152004", "Spiral Acquisition"),
        target_region=dr.Code("SCT", *region) if region else None, protocol="Chest",
        quantities={"dlp_mgycm": q(dlp, unit="mGy.cm"), "ctdivol_mgy": q(ctdivol, unit="mGy"),
                    "kvp": q(120.0, "120", "kV")},
        attributes={"ctdi_phantom": phantom}, content=[{"concept": ["DCM", "121106", "Comment"], "value": "x"}])


def ct_report(study_uid: str, events: list[dr.IrradiationEventData], *, total: float | None = None,
              sop: str | None = None, patient: dr.PatientInfo | None = None,
              equipment: dr.EquipmentInfo | None = None, study_date: dt.date | None = dt.date(2024, 3, 1),
              content_dt: dt.datetime | None = None) -> dr.DoseReport:
    total = total if total is not None else sum(e.quantities["dlp_mgycm"].value for e in events)
    return dr.DoseReport(
        source_kind=dr.SOURCE_RDSR, sop_class_uid="1.2.840.10008.5.1.4.1.1.88.67",
        sop_instance_uid=sop or f"1.2.3.4.{next(_n)}",
        study=dr.StudyInfo(study_instance_uid=study_uid, study_date=study_date, study_time=dt.time(10, 30),
                           study_description="CT CHEST", header_modality="SR"),
        patient=patient or dr.PatientInfo(patient_id="P1", name="Doe^Jane", sex="F",
                                          birth_date=dt.date(1970, 3, 1)),
        equipment=equipment or dr.EquipmentInfo(manufacturer="ACME", model="Scan 1", serial_number="42",
                                                station_name="CT1", software_versions="1.0",
                                                device_observer_uid="1.2.999.1"),
        template="TID 10011", modality_types=("CT",), content_datetime=content_dt,
        accumulated=(dr.AccumulatedDoseData(quantities={"dlp_total_mgycm": q(total, unit="mGy.cm")}),),
        events=tuple(events))


def image_report(study_uid: str, *, kap: float | None = None, agd: float | None = None, laterality: str = "",
                 key: str | None = None, sop: str | None = None, activity: float | None = None,
                 modality: str = "radiography") -> dr.DoseReport:
    quantities = {}
    if kap is not None:
        quantities["kap_gycm2"] = q(kap, repr(kap * 10), "dGy.cm2")
    if agd is not None:
        quantities["agd_mgy"] = q(agd, repr(agd / 100), "dGy")
    if activity is not None:
        quantities["activity_mbq"] = q(activity, unit="MBq")
    ev = dr.IrradiationEventData(irradiation_event_uid=None, event_type="image_header", quantities=quantities,
                                 attributes={"laterality": laterality} if laterality else {}, exposure_key=key)
    return dr.DoseReport(
        source_kind=dr.SOURCE_IMAGE_HEADER, sop_class_uid="1.2.840.10008.5.1.4.1.1.1.1",
        sop_instance_uid=sop or f"1.2.3.5.{next(_n)}",
        study=dr.StudyInfo(study_instance_uid=study_uid, study_date=dt.date(2024, 3, 2), header_modality="DX"),
        patient=dr.PatientInfo(patient_id="P2", sex="M", age_years=40.0),
        equipment=dr.EquipmentInfo(manufacturer="ACME", model="DR", serial_number="7", station_name="DX1"),
        template="header", modality_types=(modality,), events=(ev,))


def received(report: dr.DoseReport, *, salt: str = "") -> ReceivedObject:
    sha = hashlib.sha256(f"{report.sop_instance_uid}{salt}{next(_n)}".encode()).hexdigest()
    return ReceivedObject.objects.create(sop_instance_uid=report.sop_instance_uid, sop_class_uid=report.sop_class_uid,
                                         sha256=sha, study_instance_uid=report.study.study_instance_uid,
                                         source="import")
