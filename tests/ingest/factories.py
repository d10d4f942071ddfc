"""Parser dataclasses built directly, so the recording service tests need neither files nor the parser.

Thin wrappers over the factories in tests/factories.py, with the positional signatures the ingest tests use."""

from __future__ import annotations

import datetime as dt

from dosereg.core import dose_report as dr
from dosereg.registry.models import ReceivedObject
from tests.factories import (
    CtEventDataFactory,
    DoseReportDataFactory,
    ImageEventDataFactory,
    QuantityFactory,
    ReceivedObjectFactory,
    StudyInfoFactory,
    UidFactory,
)


def q(value: float, raw: str | None = None, unit: str = "") -> dr.Quantity:
    return QuantityFactory(value=value, raw_unit=unit, **({"raw_value": raw} if raw is not None else {}))


def ct_event(uid: str | None, dlp: float, ctdivol: float = 5.0, *, phantom: str = "body",
             region: tuple[str, str] | None = ("51185008", "Chest")) -> dr.IrradiationEventData:
    return CtEventDataFactory(irradiation_event_uid=uid, dlp=dlp, ctdivol=ctdivol, phantom=phantom, region=region)


def ct_report(study_uid: str, events: list[dr.IrradiationEventData], *, total: float | None = None,
              sop: str | None = None, patient: dr.PatientInfo | None = None,
              equipment: dr.EquipmentInfo | None = None, study_date: dt.date | None = dt.date(2024, 3, 1),
              content_dt: dt.datetime | None = None) -> dr.DoseReport:
    given = {"sop_instance_uid": sop, "patient": patient, "equipment": equipment}
    return DoseReportDataFactory(
        study=StudyInfoFactory(study_instance_uid=study_uid, study_date=study_date), events=tuple(events),
        dlp_total=total, content_datetime=content_dt, **{k: v for k, v in given.items() if v is not None})


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
    event = ImageEventDataFactory(quantities=quantities, attributes={"laterality": laterality} if laterality else {},
                                  exposure_key=key)
    return DoseReportDataFactory(image_header=True, study__study_instance_uid=study_uid, modality_types=(modality,),
                                 events=(event,), sop_instance_uid=sop or UidFactory())


def received(report: dr.DoseReport, *, salt: str = "") -> ReceivedObject:
    """The received object a report was read from, waiting for the recording service (state 'received')."""
    del salt  # every row's sha256 is unique already
    return ReceivedObjectFactory(sop_instance_uid=report.sop_instance_uid, sop_class_uid=report.sop_class_uid,
                                 study_instance_uid=report.study.study_instance_uid,
                                 state=ReceivedObject.STATE_RECEIVED)
