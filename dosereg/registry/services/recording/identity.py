"""Who and where: the patient, the unit and the study an object belongs to (design §3), and DICOM time zones.

Text is fitted to the columns by a :class:`~.fields.TextFitter` (``fit``), which remembers what it cut.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from dosereg.core import dose_report as dr
from dosereg.core.versions import REPORT_KINDS
from dosereg.registry.fields import TextFitter
from dosereg.registry.models import Equipment, EquipmentChange, Patient, Study
from dosereg.registry.services.pseudonyms import patient_pseudonym, pseudonym_enabled


# --- time ------------------------------------------------------------------------------------------------------------
def zone(offset: str = ""):
    """The zone of DICOM dates/times: (0008,0201) Timezone Offset From UTC when sent, else settings.TIME_ZONE."""
    if offset and len(offset) == 5 and offset[0] in "+-" and offset[1:].isdigit():
        minutes = int(offset[1:3]) * 60 + int(offset[3:5])
        return dt.timezone(dt.timedelta(minutes=minutes if offset[0] == "+" else -minutes))
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def aware(value: dt.datetime | None, offset: str = "", *, tz: dt.tzinfo | None = None) -> dt.datetime | None:
    """``value`` in UTC, a naive one read in ``tz`` (the report's ``zone(offset)``, found once for its events)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz if tz is not None else zone(offset))
    return value.astimezone(dt.UTC)


# --- patient ---------------------------------------------------------------------------------------------------------
def age_years(info: dr.PatientInfo, study_date: dt.date | None) -> float | None:
    """Decimal years from a valid birth date to the study date, else Patient's Age, else null."""
    birth = info.birth_date
    if birth is not None and study_date is not None and birth <= study_date:
        return round((study_date - birth).days / 365.2425, 2)
    return info.age_years


def patient_identity(report: dr.DoseReport, fit: TextFitter) -> tuple[str, str, dict, list[str]]:
    """(issuer, patient id or its pseudonym, defaults for a new row, flags) of the report's patient."""
    info = report.patient
    flags: list[str] = []
    pid = (info.patient_id or "").strip()
    issuer = (info.issuer_of_patient_id or "").strip()
    if not pid:
        pid = f"unknown:{report.study.study_instance_uid}"
        flags.append("patient_id_missing")
    pseudo = pseudonym_enabled()
    if pseudo and not info.pseudonymised:  # a de-identified original carries the pseudonym itself
        pid = patient_pseudonym(pid, issuer)
    defaults = {"sex": info.sex or "", "pseudonymised": pseudo}
    if not pseudo:
        defaults.update(name=fit(Patient, "name", info.name), birth_date=info.birth_date)
    return fit(Patient, "issuer", issuer), fit(Patient, "patient_id", pid), defaults, flags


def patient_fill_in(patient: Patient, info: dr.PatientInfo, fit: TextFitter) -> list[str]:
    """Fill in what an earlier object of a known patient did not carry; returns the changed field names."""
    pseudo = pseudonym_enabled()
    changed = []
    if not patient.sex and info.sex:
        patient.sex, changed = info.sex, changed + ["sex"]
    if not pseudo and not patient.name and info.name:
        patient.name, changed = fit(Patient, "name", info.name), changed + ["name"]
    if not pseudo and patient.birth_date is None and info.birth_date:
        patient.birth_date, changed = info.birth_date, changed + ["birth_date"]
    return changed


def patient_for(report: dr.DoseReport, fit: TextFitter) -> tuple[Patient, list[str]]:
    issuer, pid, defaults, flags = patient_identity(report, fit)
    patient, created = Patient.objects.get_or_create(issuer=issuer, patient_id=pid, defaults=defaults)
    if not created:
        changed = patient_fill_in(patient, report.patient, fit)
        if changed:
            patient.save(update_fields=changed)
    return patient, flags


# --- equipment -------------------------------------------------------------------------------------------------------
def identity_key(eq: dr.EquipmentInfo) -> str:
    if eq.device_observer_uid:
        return f"uid:{eq.device_observer_uid}"[:400]
    return "hdr:" + "|".join(p.strip().lower() for p in (eq.manufacturer, eq.model, eq.serial_number,
                                                            eq.station_name))[:396]


_UNIT_TEXT = ("device_observer_uid", "manufacturer", "model", "serial_number", "station_name", "institution",
              "department", "software_versions", "detector_id")


def _new_unit(key: str, eq: dr.EquipmentInfo, is_report: bool, now, demo: bool, fit: TextFitter) -> Equipment:
    return Equipment.objects.create(
        identity_key=key, **{name: fit(Equipment, name, getattr(eq, name)) for name in _UNIT_TEXT},
        sends_dose_reports=is_report, last_object_at=now, last_report_at=now if is_report else None, demo=demo)


def equipment_for(report: dr.DoseReport, study_date: dt.date | None, demo: bool,
                  fit: TextFitter) -> tuple[Equipment, list[int]]:
    eq = report.equipment
    key = identity_key(eq)
    now = timezone.now()
    is_report = report.source_kind in REPORT_KINDS
    unit = Equipment.objects.filter(identity_key=key).first()
    changes: list[EquipmentChange] = []
    if unit is None:
        try:
            with transaction.atomic():  # another worker may meet the same new unit at the same moment
                unit = _new_unit(key, eq, is_report, now, demo, fit)
        except IntegrityError:
            unit = Equipment.objects.get(identity_key=key)
            is_new = False
        else:
            is_new = True
    else:
        is_new = False
    if is_new:
        changes.append(EquipmentChange(
            equipment=unit, kind="new_unit", new_value=fit(EquipmentChange, "new_value", unit.display_name),
            effective_date=study_date,
            source_sop_instance_uid=fit(EquipmentChange, "source_sop_instance_uid", report.sop_instance_uid)))
    else:
        update = {"last_object_at": now}
        if is_report:
            update.update(sends_dose_reports=True, last_report_at=now)
        for kind, attr, value in (("software", "software_versions", eq.software_versions),
                                  ("serial", "serial_number", eq.serial_number),
                                  ("detector", "detector_id", eq.detector_id)):
            old = getattr(unit, attr)
            if value and value != old:
                if old:  # a value on a known unit changed (an empty one being filled in is no change)
                    changes.append(EquipmentChange(
                        equipment=unit, kind=kind, old_value=fit(EquipmentChange, "old_value", old),
                        new_value=fit(EquipmentChange, "new_value", value), effective_date=study_date,
                        source_sop_instance_uid=fit(EquipmentChange, "source_sop_instance_uid",
                                                    report.sop_instance_uid)))
                update[attr] = fit(Equipment, attr, value)
        for attr in ("manufacturer", "model", "station_name", "institution", "department"):
            value = getattr(eq, attr)
            if value and not getattr(unit, attr):
                update[attr] = fit(Equipment, attr, value)
        Equipment.objects.filter(pk=unit.pk).update(**update)
        for k, v in update.items():
            setattr(unit, k, v)
    if changes:
        changes = EquipmentChange.objects.bulk_create(changes)
    return unit, [c.pk for c in changes if c.pk is not None]


# --- study -----------------------------------------------------------------------------------------------------------
def study_values(report: dr.DoseReport, fit: TextFitter) -> dict:
    """The study's columns from one object (a new study takes them all; a known one fills in its blanks)."""
    s = report.study
    study_dt = None
    if s.study_date is not None:
        study_dt = aware(dt.datetime.combine(s.study_date, s.study_time or dt.time(0)), s.timezone_offset)
    age = age_years(report.patient, s.study_date)
    code = s.requested_procedure_code
    values = {name: fit(Study, name, getattr(s, name)) for name in _STUDY_TEXT}
    values.update(
        study_datetime=study_dt, study_date=s.study_date,
        requested_procedure_code=fit(Study, "requested_procedure_code", code.value if code else ""),
        requested_procedure_scheme=fit(Study, "requested_procedure_scheme", code.scheme if code else ""),
        age_years=age, sex=fit(Study, "sex", report.patient.sex), pregnancy_status=report.patient.pregnancy_status,
        weight_kg=report.patient.weight_kg,
        height_m=report.patient.height_m)
    return values


_STUDY_TEXT = ("accession_number", "study_description", "requested_procedure_description", "reason_for_study",
               "performed_procedure_description", "referring_physician", "performing_physician", "operators")


def study_for(report: dr.DoseReport, patient: Patient, unit: Equipment, demo: bool, flags: list[str],
              fit: TextFitter) -> Study:
    s = report.study
    values = study_values(report, fit)
    uid = fit(Study, "study_instance_uid", s.study_instance_uid)
    study = Study.objects.select_for_update().filter(study_instance_uid=uid).first()
    if study is None:
        study_flags = list(flags)
        if s.study_date is None:
            study_flags.append("study_date_unknown")
        try:
            with transaction.atomic():  # another worker may create the same study at the same moment
                return Study.objects.create(study_instance_uid=uid, patient=patient, equipment=unit, demo=demo,
                                            flags=study_flags, **values)
        except IntegrityError:
            study = Study.objects.select_for_update().get(study_instance_uid=uid)
    changed: list[str] = []
    for name, value in values.items():  # fill in what earlier objects of the study did not carry
        if value not in (None, "") and getattr(study, name) in (None, ""):
            setattr(study, name, value)
            changed.append(name)
    if study.equipment_id is None:
        study.equipment, changed = unit, changed + ["equipment"]
    new_flags = list(flags)
    if study.patient_id != patient.pk:
        new_flags.append("patient_mismatch")
    if s.study_date is not None and "study_date_unknown" in study.flags:
        study.flags = [f for f in study.flags if f != "study_date_unknown"]
        changed.append("flags")
    for f in new_flags:
        if f not in study.flags:
            study.flags = study.flags + [f]
            changed.append("flags")
    if changed:
        study.save(update_fields=sorted(set(changed)) + ["updated_at"])
    return study
