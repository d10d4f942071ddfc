"""Registry rows built directly (no parser): patients, units, rooms, studies with events of each modality.

Values are realistic (a CT abdomen ~10 mGy CTDIvol, a coronary angiography ~30 Gy·cm², a mammogram ~1.5 mGy AGD).
``raw`` carries the value and unit code as the X-ray system sent them, as the ingestion service stores them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools

from django.utils import timezone

from dosereg.registry.models import (
    AccumulatedDose,
    DoseReport,
    Equipment,
    EquipmentChange,
    IrradiationEvent,
    Patient,
    ReceivedObject,
    Room,
    StandardExam,
    Study,
)

_seq = itertools.count(1)


def uid(prefix: str = "1.2.826.0.1.3680043.10.999") -> str:
    return f"{prefix}.{next(_seq)}"


def room(name: str = "CT 1") -> Room:
    return Room.objects.get_or_create(name=name)[0]


def unit(*, manufacturer="Siemens", model="SOMATOM Force", station="CT01", room_name="CT 1", **extra) -> Equipment:
    key = f"{manufacturer}|{model}|{station}"
    defaults = dict(manufacturer=manufacturer, model=model, station_name=station, serial_number="12345",
                    institution="General Hospital", software_versions="VA50", room=room(room_name) if room_name else None,
                    sends_dose_reports=True, last_object_at=timezone.now(), last_report_at=timezone.now())
    defaults.update(extra)
    eq, created = Equipment.objects.get_or_create(identity_key=key, defaults=defaults)
    if created:
        EquipmentChange.objects.create(equipment=eq, kind="new_unit", new_value=eq.display_name,
                                       effective_date=dt.date(2024, 1, 2))
    return eq


def patient(patient_id: str = "PAT001", name: str = "Doe^Jane", sex: str = "F",
            birth_date: dt.date | None = dt.date(1960, 5, 17), **extra) -> Patient:
    return Patient.objects.get_or_create(issuer="", patient_id=patient_id,
                                         defaults=dict(name=name, sex=sex, birth_date=birth_date, **extra))[0]


def exam(code: str, name: str, modality_type: str) -> StandardExam:
    return StandardExam.objects.get_or_create(code=code, defaults=dict(name=name, modality_type=modality_type))[0]


def _report(study: Study, *, modality: str, sop_class: str, template: str, state: str = "ingested",
            warnings: list | None = None) -> DoseReport:
    sop = uid()
    ro = ReceivedObject.objects.create(
        sop_instance_uid=sop, sop_class_uid=sop_class, sha256=hashlib.sha256(sop.encode()).hexdigest(),
        study_instance_uid=study.study_instance_uid, modality=modality, source="c-store", calling_ae="MODALITY1",
        peer_address="10.0.0.5", state=state, file_path=f"{sop}.dcm", warnings=warnings or [], processed_at=timezone.now(), size=1234)
    return DoseReport.objects.create(received_object=ro, study=study, sop_instance_uid=sop, sop_class_uid=sop_class,
                                     source_kind="rdsr", template=template, modality_types=[study.modality_type],
                                     warnings=warnings or [])


def _study(pat, eq, *, modality_type, date, description, accession=None, **totals) -> Study:
    when = timezone.make_aware(dt.datetime.combine(date, dt.time(10, 30)))
    age = None
    if pat.birth_date:
        age = round((date - pat.birth_date).days / 365.2425, 2)
    return Study.objects.create(
        study_instance_uid=uid(), patient=pat, equipment=eq, accession_number=accession or f"ACC{next(_seq):06d}",
        study_datetime=when, study_date=date, modality_type=modality_type, modality_types=[modality_type],
        study_description=description, age_years=age, sex=pat.sex, weight_kg=72.0, **totals)


def ct_study(pat=None, *, date=dt.date(2024, 3, 4), description="CT Abdomen with contrast", eq=None, **kw) -> Study:
    pat = pat or patient()
    eq = eq or unit()
    acqs = [("Topogram", "constant_angle_acquisition", None, 8.1, True), ("Abdomen 1.0 Br40", "spiral_acquisition",
            11.52, 498.3, False), ("Abdomen venous", "spiral_acquisition", 10.87, 462.0, False)]
    dlp = round(sum(a[3] for a in acqs), 2)
    study = _study(pat, eq, modality_type="CT", date=date, description=description, dlp_total_mgycm=dlp,
                   max_ctdivol_mgy=11.52, event_count=len(acqs), effective_dose_msv=round(dlp * 0.015, 2),
                   effective_dose_method="DLP × k (AAPM Report 96, adult, abdomen)", **kw)
    rep = _report(study, modality="SR", sop_class="1.2.840.10008.5.1.4.1.1.88.67", template="TID 10011")
    AccumulatedDose.objects.create(report=rep, dlp_total_mgycm=dlp, ct_event_count=3,
                                   raw={"dlp_total_mgycm": [dlp, "mGy.cm"]})
    for i, (proto, etype, ctdi, dlp_e, loc) in enumerate(acqs):
        raw = {"dlp_mgycm": [dlp_e, "mGy.cm"]}
        if ctdi is not None:
            raw["ctdivol_mgy"] = [ctdi, "mGy"]
        IrradiationEvent.objects.create(
            study=study, report=rep, irradiation_event_uid=uid(), source_sop_instance_uid=rep.sop_instance_uid,
            sequence=i, event_type=etype, protocol=proto, target_region="Abdomen", ctdi_phantom="BODY32",
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
    study.modality_types = ["fluoroscopy"]
    study.save(update_fields=["modality_types"])
    rep = _report(study, modality="SR", sop_class="1.2.840.10008.5.1.4.1.1.88.67", template="TID 10001",
                  warnings=["Ka,r total of plane B missing; plane A only"])
    AccumulatedDose.objects.create(report=rep, plane="A", kap_total_gycm2=25.1, ka_r_total_mgy=402.0,
                                   fluoro_time_total_s=250.0, total_number_of_radiographic_frames=95,
                                   raw={"kap_total_gycm2": [0.00251, "Gy.m2"], "ka_r_total_mgy": [0.402, "Gy"],
                                        "fluoro_time_total_s": [250.0, "s"]})
    AccumulatedDose.objects.create(report=rep, plane="B", kap_total_gycm2=8.3, ka_r_total_mgy=110.0,
                                   fluoro_time_total_s=122.0,
                                   raw={"kap_total_gycm2": [0.00083, "Gy.m2"], "ka_r_total_mgy": [0.110, "Gy"],
                                        "fluoro_time_total_s": [122.0, "s"]})
    for i, (etype, plane, kap, kar, a1, a2, frames) in enumerate(events):
        IrradiationEvent.objects.create(
            study=study, report=rep, irradiation_event_uid=uid(), source_sop_instance_uid=rep.sop_instance_uid,
            sequence=i, event_type=etype, plane=plane, protocol="Cardiac 15 fps", kap_gycm2=kap, ka_r_mgy=kar,
            positioner_primary_angle_deg=a1, positioner_secondary_angle_deg=a2, number_of_frames=frames,
            collimated_field_height_mm=180.0, collimated_field_width_mm=180.0, kvp=78, pulse_rate_per_s=15,
            irradiation_duration_s=12.0, raw={"kap_gycm2": [round(kap / 10000, 9), "Gy.m2"], "ka_r_mgy": [round(kar / 1000, 6), "Gy"]})
    return study


def mammo_study(pat=None, *, date=dt.date(2024, 6, 7), description="Screening mammography", eq=None, **kw):
    pat = pat or patient()
    eq = eq or unit(manufacturer="Hologic", model="Selenia Dimensions", station="MG1", room_name="Mammo 1")
    views = [("R", "cranio-caudal", 1.21), ("L", "cranio-caudal", 1.18), ("R", "medio-lateral oblique", 1.43),
             ("L", "medio-lateral oblique", 1.39)]
    study = _study(pat, eq, modality_type="mammography", date=date, description=description,
                   agd_left_mgy=2.57, agd_right_mgy=2.64, event_count=4, **kw)
    rep = _report(study, modality="SR", sop_class="1.2.840.10008.5.1.4.1.1.88.67", template="TID 10001")
    AccumulatedDose.objects.create(report=rep, plane="single", agd_left_mgy=2.57, agd_right_mgy=2.64,
                                   raw={"agd_left_mgy": [2.57, "mGy"], "agd_right_mgy": [2.64, "mGy"]})
    for i, (lat, view, agd) in enumerate(views):
        IrradiationEvent.objects.create(
            study=study, report=rep, irradiation_event_uid=uid(), source_sop_instance_uid=rep.sop_instance_uid,
            sequence=i, event_type="stationary_acquisition", laterality=lat, view=view, agd_mgy=agd, esak_mgy=agd * 4,
            compression_thickness_mm=52.0, kvp=29, raw={"agd_mgy": [agd, "mGy"]})
    return study


def radiography_study(pat=None, *, date=dt.date(2024, 7, 8), description="Chest PA and lateral", eq=None, **kw):
    pat = pat or patient()
    eq = eq or unit(manufacturer="Carestream", model="DRX-Evolution", station="DX1", room_name="X-ray 1")
    images = [("Chest PA", 0.082), ("Chest LAT", 0.221)]
    study = _study(pat, eq, modality_type="radiography", date=date, description=description,
                   kap_total_gycm2=0.303, event_count=2, **kw)
    rep = _report(study, modality="DX", sop_class="1.2.840.10008.5.1.4.1.1.1.1", template="")
    for i, (proto, kap) in enumerate(images):
        IrradiationEvent.objects.create(
            study=study, report=rep, irradiation_event_uid=None, source_sop_instance_uid=uid(), sequence=i,
            event_type="image_header", protocol=proto, kap_gycm2=kap, kvp=110, exposure_mas=2.5,
            raw={"kap_gycm2": [round(kap * 10, 6), "dGy.cm2"]})
    return study


def nm_study(pat=None, *, date=dt.date(2024, 8, 9), description="Bone scintigraphy", eq=None, **kw):
    pat = pat or patient()
    eq = eq or unit(manufacturer="GE", model="Discovery NM/CT 670", station="NM1", room_name="NM 1")
    study = _study(pat, eq, modality_type="nuclear_medicine", date=date, description=description,
                   activity_mbq=650.0, effective_dose_msv=3.7, effective_dose_method="as reported in the RRDSR",
                   event_count=1, **kw)
    rep = _report(study, modality="SR", sop_class="1.2.840.10008.5.1.4.1.1.88.68", template="TID 10021")
    AccumulatedDose.objects.create(report=rep, activity_mbq=650.0, effective_dose_msv=3.7,
                                   raw={"activity_mbq": [650.0, "MBq"], "effective_dose_msv": [3.7, "mSv"]})
    IrradiationEvent.objects.create(
        study=study, report=rep, irradiation_event_uid=uid(), source_sop_instance_uid=rep.sop_instance_uid,
        event_type="", activity_mbq=650.0, effective_dose_msv=3.7, raw={"activity_mbq": [650.0, "MBq"]},
        attributes={"radiopharmaceutical": "Tc-99m oxidronate (HDP)", "radionuclide": "Technetium-99m",
                    "route": "Intravenous route"})
    return study


def rejected_object(reason: str = "unknown unit 'mGy.mm' on CTDIvol") -> ReceivedObject:
    sop = uid()
    return ReceivedObject.objects.create(sop_instance_uid=sop, sop_class_uid="1.2.840.10008.5.1.4.1.1.88.67",
                                         sha256=hashlib.sha256(sop.encode()).hexdigest(), source="c-store",
                                         calling_ae="CT01", state="rejected", reason=reason)


def patient_with_history(patient_id: str = "PAT001", name: str = "Doe^Jane") -> Patient:
    """One patient with a study of every modality type."""
    pat = patient(patient_id, name)
    ct_study(pat)
    fluoro_study(pat)
    mammo_study(pat)
    radiography_study(pat)
    nm_study(pat)
    return pat
