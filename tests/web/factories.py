"""Registry rows built directly (no parser): patients, units, rooms, studies with events of each modality.

Values are realistic (a CT abdomen ~10 mGy CTDIvol, a coronary angiography ~30 Gy·cm², a mammogram ~1.5 mGy AGD).
``raw`` carries the value and unit code as the X-ray system sent them, as the ingestion service stores them.
The rows are built with the factories in tests/factories.py; the functions here hold the scenarios' values.
"""

from __future__ import annotations

import datetime as dt

from dosereg.registry.models import (
    DoseReport,
    Equipment,
    Patient,
    ReceivedObject,
    Room,
    StandardExam,
    Study,
)
from tests.factories import (
    DX_CLASS,
    RDSR_CLASS,
    RRDSR_CLASS,
    UID_ROOT,
    AccumulatedDoseFactory,
    DoseReportFactory,
    EquipmentFactory,
    IrradiationEventFactory,
    PatientFactory,
    ReceivedObjectFactory,
    RoomFactory,
    StandardExamFactory,
    StudyFactory,
    UidFactory,
)


def uid(prefix: str = UID_ROOT) -> str:
    return UidFactory(root=prefix)


def room(name: str = "CT 1") -> Room:
    return RoomFactory(name=name)


def unit(*, manufacturer="Siemens", model="SOMATOM Force", station="CT01", room_name="CT 1", **extra) -> Equipment:
    """A unit that sends dose reports, in its room, announced as new on 2 January 2024."""
    return EquipmentFactory(manufacturer=manufacturer, model=model, station_name=station, serial_number="12345",
                            institution="General Hospital", software_versions="VA50",
                            room=room(room_name) if room_name else None, reporting=True,
                            announced=dt.date(2024, 1, 2), **extra)


def patient(patient_id: str = "PAT001", name: str = "Doe^Jane", sex: str = "F",
            birth_date: dt.date | None = dt.date(1960, 5, 17), **extra) -> Patient:
    return PatientFactory(patient_id=patient_id, name=name, sex=sex, birth_date=birth_date, **extra)


def exam(code: str, name: str, modality_type: str) -> StandardExam:
    return StandardExamFactory(code=code, name=name, modality_type=modality_type)


def _report(study: Study, *, modality: str, sop_class: str, template: str, warnings: list | None = None) -> DoseReport:
    """The study's report, read from an object a modality pushed over C-STORE."""
    return DoseReportFactory(study=study, sop_class_uid=sop_class, template=template, warnings=warnings or [],
                             received_object__c_store=True, received_object__modality=modality,
                             received_object__warnings=warnings or [])


def _study(pat, eq, *, modality_type, date, description, accession=None, **totals) -> Study:
    return StudyFactory(patient=pat, equipment=eq, modality_type=modality_type, study_date=date,
                        study_description=description, weight_kg=72.0,
                        **({"accession_number": accession} if accession else {}), **totals)


def ct_study(pat=None, *, date=dt.date(2024, 3, 4), description="CT Abdomen with contrast", eq=None, **kw) -> Study:
    pat = pat or patient()
    eq = eq or unit()
    acqs = [("Topogram", "constant_angle_acquisition", None, 8.1, True), ("Abdomen 1.0 Br40", "spiral_acquisition",
            11.52, 498.3, False), ("Abdomen venous", "spiral_acquisition", 10.87, 462.0, False)]
    dlp = round(sum(a[3] for a in acqs), 2)
    study = _study(pat, eq, modality_type="CT", date=date, description=description, dlp_total_mgycm=dlp,
                   max_ctdivol_mgy=11.52, event_count=len(acqs), effective_dose_msv=round(dlp * 0.015, 2),
                   effective_dose_method="DLP × k (AAPM Report 96, adult, abdomen)", **kw)
    rep = _report(study, modality="SR", sop_class=RDSR_CLASS, template="TID 10011")
    AccumulatedDoseFactory(report=rep, dlp_total_mgycm=dlp, ct_event_count=3, raw={"dlp_total_mgycm": [dlp, "mGy.cm"]})
    for i, (proto, etype, ctdi, dlp_e, loc) in enumerate(acqs):
        raw = {"dlp_mgycm": [dlp_e, "mGy.cm"]}
        if ctdi is not None:
            raw["ctdivol_mgy"] = [ctdi, "mGy"]
        IrradiationEventFactory(
            report=rep, sequence=i, event_type=etype, protocol=proto, target_region="Abdomen", ctdi_phantom="BODY32",
            is_localizer=loc, ctdivol_mgy=ctdi, dlp_mgycm=dlp_e, kvp=120, scanning_length_mm=420 if ctdi else 512,
            pitch_factor=0.6 if ctdi else None, exposure_time_s=4.2, raw=raw,
            effective_dose_estimate_msv=round(dlp_e * 0.015, 3) if ctdi else None,
            effective_dose_method="DLP × k (AAPM Report 96)" if ctdi else "")
    return study


def fluoro_study(pat=None, *, date=dt.date(2024, 5, 6), description="Coronary angiography", eq=None, **kw) -> Study:
    pat = pat or patient()
    eq = eq or unit(manufacturer="Philips", model="Azurion 7 B20/15", station="CATH1", room_name="Cath lab 1")
    events = [("fluoroscopy", "A", 0.8512, 9.8, -30.0, 25.0, 180), ("stationary_acquisition", "A", 2.113, 35.1, 0.0,
              -20.0, 95), ("fluoroscopy", "B", 0.421, 6.2, 90.0, 0.0, 140)]
    study = _study(pat, eq, modality_type="fluoroscopy", date=date, description=description,
                   kap_total_gycm2=33.4, ka_r_total_mgy=512.0, fluoro_time_total_s=372.0, event_count=len(events),
                   **kw)
    rep = _report(study, modality="SR", sop_class=RDSR_CLASS, template="TID 10001",
                  warnings=["Ka,r total of plane B missing; plane A only"])
    AccumulatedDoseFactory(report=rep, plane="A", kap_total_gycm2=25.1, ka_r_total_mgy=402.0,
                           fluoro_time_total_s=250.0, total_number_of_radiographic_frames=95,
                           raw={"kap_total_gycm2": [0.00251, "Gy.m2"], "ka_r_total_mgy": [0.402, "Gy"],
                                "fluoro_time_total_s": [250.0, "s"]})
    AccumulatedDoseFactory(report=rep, plane="B", kap_total_gycm2=8.3, ka_r_total_mgy=110.0, fluoro_time_total_s=122.0,
                           raw={"kap_total_gycm2": [0.00083, "Gy.m2"], "ka_r_total_mgy": [0.110, "Gy"],
                                "fluoro_time_total_s": [122.0, "s"]})
    for i, (etype, plane, kap, kar, a1, a2, frames) in enumerate(events):
        IrradiationEventFactory(
            report=rep, sequence=i, event_type=etype, plane=plane, protocol="Cardiac 15 fps", kap_gycm2=kap,
            ka_r_mgy=kar, positioner_primary_angle_deg=a1, positioner_secondary_angle_deg=a2, number_of_frames=frames,
            collimated_field_height_mm=180.0, collimated_field_width_mm=180.0, kvp=78, pulse_rate_per_s=15,
            irradiation_duration_s=12.0,
            raw={"kap_gycm2": [round(kap / 10000, 9), "Gy.m2"], "ka_r_mgy": [round(kar / 1000, 6), "Gy"]})
    return study


def mammo_study(pat=None, *, date=dt.date(2024, 6, 7), description="Screening mammography", eq=None, **kw):
    pat = pat or patient()
    eq = eq or unit(manufacturer="Hologic", model="Selenia Dimensions", station="MG1", room_name="Mammo 1")
    views = [("R", "cranio-caudal", 1.21), ("L", "cranio-caudal", 1.18), ("R", "medio-lateral oblique", 1.43),
             ("L", "medio-lateral oblique", 1.39)]
    study = _study(pat, eq, modality_type="mammography", date=date, description=description,
                   agd_left_mgy=2.57, agd_right_mgy=2.64, event_count=4, **kw)
    rep = _report(study, modality="SR", sop_class=RDSR_CLASS, template="TID 10001")
    AccumulatedDoseFactory(report=rep, plane="single", agd_left_mgy=2.57, agd_right_mgy=2.64,
                           raw={"agd_left_mgy": [2.57, "mGy"], "agd_right_mgy": [2.64, "mGy"]})
    for i, (lat, view, agd) in enumerate(views):
        IrradiationEventFactory(
            report=rep, acquisition=True, sequence=i, laterality=lat, view=view, agd_mgy=agd, esak_mgy=agd * 4,
            compression_thickness_mm=52.0, kvp=29, raw={"agd_mgy": [agd, "mGy"]})
    return study


def radiography_study(pat=None, *, date=dt.date(2024, 7, 8), description="Chest PA and lateral", eq=None, **kw):
    pat = pat or patient()
    eq = eq or unit(manufacturer="Carestream", model="DRX-Evolution", station="DX1", room_name="X-ray 1")
    images = [("Chest PA", 0.082), ("Chest LAT", 0.221)]
    study = _study(pat, eq, modality_type="radiography", date=date, description=description,
                   kap_total_gycm2=0.303, event_count=2, **kw)
    rep = _report(study, modality="DX", sop_class=DX_CLASS, template="")
    for i, (proto, kap) in enumerate(images):
        IrradiationEventFactory(
            report=rep, image_header=True, sequence=i, protocol=proto, kap_gycm2=kap, kvp=110, exposure_mas=2.5,
            raw={"kap_gycm2": [round(kap * 10, 6), "dGy.cm2"]})
    return study


def nm_study(pat=None, *, date=dt.date(2024, 8, 9), description="Bone scintigraphy", eq=None, **kw):
    pat = pat or patient()
    eq = eq or unit(manufacturer="GE", model="Discovery NM/CT 670", station="NM1", room_name="NM 1")
    study = _study(pat, eq, modality_type="nuclear_medicine", date=date, description=description,
                   activity_mbq=650.0, effective_dose_msv=3.7, effective_dose_method="as reported in the RRDSR",
                   event_count=1, **kw)
    rep = _report(study, modality="SR", sop_class=RRDSR_CLASS, template="TID 10021")
    AccumulatedDoseFactory(report=rep, activity_mbq=650.0, effective_dose_msv=3.7,
                           raw={"activity_mbq": [650.0, "MBq"], "effective_dose_msv": [3.7, "mSv"]})
    IrradiationEventFactory(
        report=rep, activity_mbq=650.0, effective_dose_msv=3.7, raw={"activity_mbq": [650.0, "MBq"]},
        attributes={"radiopharmaceutical": "Tc-99m oxidronate (HDP)", "radionuclide": "Technetium-99m",
                    "route": "Intravenous route"})
    return study


def rejected_object(reason: str = "unknown unit 'mGy.mm' on CTDIvol") -> ReceivedObject:
    return ReceivedObjectFactory(source="c-store", calling_ae="CT01", state=ReceivedObject.STATE_REJECTED,
                                 reason=reason)


def patient_with_history(patient_id: str = "PAT001", name: str = "Doe^Jane") -> Patient:
    """One patient with a study of every modality type."""
    pat = patient(patient_id, name)
    ct_study(pat)
    fluoro_study(pat)
    mammo_study(pat)
    radiography_study(pat)
    nm_study(pat)
    return pat
