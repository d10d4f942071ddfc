"""FHIR R4 resources of a study: the IG "Radiation Dose Summary for Diagnostic Procedures" 1.0.0 (STU 1).

DoseReg is the Radiation Dose Summary Producer: one ``Observation`` (profile ``radiation-dose-summary``) per study
with the study's dose totals as components, its ``ImagingStudy`` (partOf and focus, by Study Instance UID), the
``Patient`` (the pseudonym on a pseudonymised site), the unit as a ``Device`` (profile ``modality-device``).  The
values and their UCUM units come from the quantity catalogue (dosereg.core.quantities); the component codes are the
IG's ComponentRadiationDoseSummaryVS (DICOM PS3.16 codes) plus DCM 113830 Mean CTDIvol and 113839 Effective Dose
(the value set is extensible).  Source: the IG's FSH (input/fsh/RadiationDoseSummary.fsh, Modality.fsh,
IdentifiersCodes.fsh).

``dose_summary(study)`` reads the registry into a :class:`DoseSummary`; the ``*_resource`` functions are pure.
One Observation covers every dose report of the study (its ``identifier`` lists their SOP Instance UIDs, the first
received first): a corrected or superseding report updates the same Observation.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field

from django.utils import timezone

from dosereg.core.quantities import QUANTITIES
from dosereg.registry.models import DoseReport, SiteSettings, Study
from dosereg.registry.services import dose_text
from drl import selectors as drl_selectors

IG = "http://hl7.org/fhir/uv/radiation-dose-summary"
PROFILE_DOSE_SUMMARY = f"{IG}/StructureDefinition/radiation-dose-summary"
PROFILE_MODALITY_DEVICE = f"{IG}/StructureDefinition/modality-device"
IG_CAPABILITY_RDSP = f"{IG}/CapabilityStatement/RDSP"
DICOM_ID_TYPE = f"{IG}/CodeSystem/dicom-identifier-type"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
DEVICE_NAME_TYPE = "http://hl7.org/fhir/device-nametype"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
DICOM_UID = "urn:dicom:uid"
DOSE_SUMMARY_CODE = ("73569-6", "Radiation exposure and protection information [Description] Document Diagnostic "
                                "imaging")
PSEUDONYM_SYSTEM = "urn:dosereg:pseudonym"
PATIENT_ID_SYSTEM = "urn:dosereg:patient-id"

# study total -> the component's code (system, code, display)
COMPONENT_CODES: dict[str, tuple[str, str, str]] = {
    "dlp_total_mgycm": (DCM, "113813", "CT Dose Length Product Total"),
    "max_ctdivol_mgy": (DCM, "113830", "Mean CTDIvol"),
    "ka_r_total_mgy": (DCM, "113725", "Dose (RP) Total"),
    "kap_total_gycm2": (DCM, "113722", "Dose Area Product Total"),
    "fluoro_kap_total_gycm2": (DCM, "113726", "Fluoro Dose Area Product Total"),
    "acquisition_kap_total_gycm2": (DCM, "113727", "Acquisition Dose Area Product Total"),
    "fluoro_time_total_s": (DCM, "113730", "Total Fluoro Time"),
    "total_number_of_radiographic_frames": (DCM, "113731", "Total Number of Radiographic Frames"),
    "agd_left_mgy": (DCM, "111637", "Accumulated Average Glandular Dose"),
    "agd_right_mgy": (DCM, "111637", "Accumulated Average Glandular Dose"),
    "activity_mbq": (DCM, "113507", "Administered activity"),
    "effective_dose_msv": (DCM, "113839", "Effective Dose"),
}
COMPONENT_TEXT = {"max_ctdivol_mgy": "CTDIvol, highest of the irradiation events",
                  "agd_left_mgy": "Accumulated Average Glandular Dose, left breast",
                  "agd_right_mgy": "Accumulated Average Glandular Dose, right breast"}
# ProcedureReportedTypeVS (the IG) per modality type
PROCEDURE_REPORTED = {
    "CT": (SCT, "77477000", "Computerized tomography"),
    "fluoroscopy": (DCM, "113704", "Projection X-Ray"),
    "radiography": (DCM, "113704", "Projection X-Ray"),
    "mammography": (SCT, "71651007", "Mammography"),
    "nuclear_medicine": (DCM, "113502", "Radiopharmaceutical Administration"),
}
# DICOM CID 33 modality per modality type (ModalityDevice.type, ImagingStudy.modality)
MODALITY_CODES = {"CT": ("CT", "Computed Tomography"), "fluoroscopy": ("XA", "X-Ray Angiography"),
                  "radiography": ("DX", "Digital Radiography"), "mammography": ("MG", "Mammography"),
                  "nuclear_medicine": ("NM", "Nuclear Medicine")}
# totals read from the current reports' accumulated rows (no study column)
_ACCUMULATED_ONLY = ("fluoro_kap_total_gycm2", "acquisition_kap_total_gycm2", "total_number_of_radiographic_frames")
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_NAMESPACE = uuid.UUID("6c1f0f1e-8b53-4f53-9d53-0d05e2d7f0a1")  # DoseReg's namespace for urn:uuid full URLs


@dataclass(frozen=True)
class DeviceFacts:
    pk: int
    modality_type: str
    manufacturer: str = ""
    model: str = ""
    serial_number: str = ""
    station_name: str = ""
    device_uid: str = ""
    ae_title: str = ""
    software_versions: str = ""


@dataclass(frozen=True)
class PatientFacts:
    pk: int
    patient_id: str
    issuer: str = ""
    pseudonymised: bool = False
    name: str = ""
    sex: str = ""
    birth_date: dt.date | None = None


@dataclass(frozen=True)
class DoseSummary:
    """What the resources say about one study (read from the registry by :func:`dose_summary`)."""

    study_pk: int
    study_instance_uid: str
    patient: PatientFacts
    sop_instance_uids: tuple[str, ...]  # every dose report of the study, the first received first
    effective: str  # FHIR dateTime: the irradiation start
    text: str  # the dose summary text (the site's template)
    values: dict[str, float] = field(default_factory=dict)  # catalogue name -> canonical value
    modality_type: str = ""
    modality_types: tuple[str, ...] = ()
    accession_number: str = ""
    description: str = ""
    authorising: str = ""
    device: DeviceFacts | None = None
    corrected: bool = False
    last_updated: str = ""

    @property
    def key(self) -> str:
        """The identifier the push is conditional on: the study's first dose report's SOP Instance UID."""
        return self.sop_instance_uids[0] if self.sop_instance_uids else self.study_instance_uid


# --- the registry -> DoseSummary ---------------------------------------------------------------------------------
def _fhir_datetime(moment: dt.datetime | dt.date | None) -> str:
    if moment is None:
        return ""
    if isinstance(moment, dt.datetime):
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, dt.UTC)
        return moment.isoformat(timespec="seconds")
    return moment.isoformat()


def _accumulated_totals(reports: list[DoseReport]) -> dict[str, float]:
    """Fluoroscopy/acquisition KAP and frames: sums over the current reports' accumulated rows (all planes)."""
    out: dict[str, float] = {}
    for report in reports:
        for row in report.accumulated.all():
            for name in _ACCUMULATED_ONLY:
                value = getattr(row, name)
                if value is not None:
                    out[name] = out.get(name, 0.0) + value
    return out


def summary_text(study: Study, site: SiteSettings | None = None) -> str:
    """The registry's dose text with the site's referrer-summary choice (DRL position from the drl app)."""
    site = site or SiteSettings.load()
    template = site.dose_text_template or dose_text.DEFAULT_TEMPLATE
    position = None
    if site.referrer_summary == "drl" or "{drl_position}" in template:
        position = drl_selectors.drl_position(study.pk)
    return dose_text.study_dose_text(study, drl_position=position or {}, site=site)


def device_facts(study: Study, reports: list[DoseReport]) -> DeviceFacts:
    """The study's unit; its AE title is the calling AE of the latest report received by C-STORE."""
    eq = study.equipment
    ae = next((r.received_object.calling_ae for r in reversed(reports) if r.received_object.calling_ae), "")
    return DeviceFacts(pk=eq.pk, modality_type=study.modality_type, manufacturer=eq.manufacturer, model=eq.model,
                       serial_number=eq.serial_number, station_name=eq.station_name,
                       device_uid=eq.device_observer_uid, ae_title=ae, software_versions=eq.software_versions)


def dose_summary(study: Study, *, site: SiteSettings | None = None) -> DoseSummary:
    reports = list(study.reports.select_related("received_object").prefetch_related("accumulated")
                   .order_by("received_object__received_at", "pk"))
    current = [r for r in reports if r.state == DoseReport.STATE_CURRENT]
    values = {name: getattr(study, name) for name in COMPONENT_CODES if name not in _ACCUMULATED_ONLY
              and getattr(study, name, None) is not None}
    values.update(_accumulated_totals(current))
    patient = study.patient
    device = device_facts(study, reports) if study.equipment_id else None
    first_event = min((r.content_datetime for r in reports if r.content_datetime), default=None)
    effective = study.study_datetime or study.study_date or first_event or study.created_at
    return DoseSummary(
        study_pk=study.pk, study_instance_uid=study.study_instance_uid,
        patient=PatientFacts(pk=patient.pk, patient_id=patient.patient_id, issuer=patient.issuer,
                             pseudonymised=patient.pseudonymised, name=patient.name, sex=patient.sex,
                             birth_date=patient.birth_date),
        sop_instance_uids=tuple(dict.fromkeys(r.sop_instance_uid for r in reports)),
        effective=_fhir_datetime(effective), text=summary_text(study, site), values=values,
        modality_type=study.modality_type, modality_types=tuple(study.modality_types or ()),
        accession_number=study.accession_number, description=study.study_description,
        authorising=study.performing_physician or study.operators, device=device,
        corrected="corrected" in (study.flags or []) or any(r.state != DoseReport.STATE_CURRENT for r in reports),
        last_updated=_fhir_datetime(study.updated_at),
    )


# --- pure builders -----------------------------------------------------------------------------------------------
def _coding(system: str, code: str, display: str = "") -> dict:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def uid_value(uid: str) -> str:
    """A DICOM UID as a FHIR identifier value (urn:oid:, as the IG's examples)."""
    return f"urn:oid:{uid}"


def patient_identifier(p: PatientFacts) -> dict:
    if p.pseudonymised:
        return {"type": {"coding": [_coding(V2_0203, "ANON", "Anonymous identifier")]},
                "system": PSEUDONYM_SYSTEM, "value": p.patient_id}
    system = f"urn:oid:{p.issuer}" if _OID.match(p.issuer or "") else (
        f"{PATIENT_ID_SYSTEM}:{p.issuer}" if p.issuer else PATIENT_ID_SYSTEM)
    return {"type": {"coding": [_coding(V2_0203, "MR", "Medical record number")]}, "system": system,
            "value": p.patient_id}


def patient_resource(p: PatientFacts) -> dict:
    out: dict = {"resourceType": "Patient", "id": str(p.pk), "identifier": [patient_identifier(p)]}
    if p.pseudonymised:
        return out | {"gender": _gender(p.sex)} if p.sex else out
    if p.name:
        parts = p.name.split("^")
        name: dict = {"family": parts[0]} if parts[0] else {}
        given = [g for g in parts[1:3] if g]
        if given:
            name["given"] = given
        out["name"] = [name or {"text": p.name}]
    if p.sex:
        out["gender"] = _gender(p.sex)
    if p.birth_date:
        out["birthDate"] = p.birth_date.isoformat()
    return out


def _gender(sex: str) -> str:
    return {"M": "male", "F": "female", "O": "other"}.get(sex, "unknown")


def imaging_study_resource(s: DoseSummary) -> dict:
    identifiers = [{"system": DICOM_UID, "value": uid_value(s.study_instance_uid)}]
    if s.accession_number:
        identifiers.append({"type": {"coding": [_coding(V2_0203, "ACSN", "Accession ID")]},
                            "value": s.accession_number})
    out = {"resourceType": "ImagingStudy", "id": str(s.study_pk), "identifier": identifiers, "status": "available",
           "subject": {"reference": f"Patient/{s.patient.pk}"}}
    modalities = [MODALITY_CODES[m] for m in s.modality_types if m in MODALITY_CODES]
    if modalities:
        out["modality"] = [_coding(DCM, code, display) for code, display in dict.fromkeys(modalities)]
    if s.effective:
        out["started"] = s.effective if "T" in s.effective else f"{s.effective}T00:00:00Z"
    if s.description:
        out["description"] = s.description
    return out


def device_resource(d: DeviceFacts) -> dict:
    identifiers = [{"type": {"coding": [_coding(DICOM_ID_TYPE, "application-entity", "Application Entity")]},
                    "value": d.ae_title or d.station_name or "UNKNOWN"}]
    if d.serial_number:
        identifiers.append({"type": {"coding": [_coding(V2_0203, "SNO", "Serial Number")]},
                            "value": d.serial_number})
    if d.device_uid:
        identifiers.append({"type": {"coding": [_coding(DICOM_ID_TYPE, "device-uid", "Device UID")]},
                            "system": DICOM_UID, "value": uid_value(d.device_uid)})
    code, display = MODALITY_CODES.get(d.modality_type, ("OT", "Other"))
    out: dict = {"resourceType": "Device", "id": str(d.pk), "meta": {"profile": [PROFILE_MODALITY_DEVICE]},
                 "identifier": identifiers, "type": {"coding": [_coding(DCM, code, display)]}}
    if d.manufacturer:
        out["manufacturer"] = d.manufacturer
    if d.serial_number:
        out["serialNumber"] = d.serial_number
    names = [{"name": n, "type": t} for n, t in ((d.manufacturer, "manufacturer-name"), (d.model, "model-name")) if n]
    if names:
        out["deviceName"] = names
    if d.software_versions:
        out["version"] = [{"value": d.software_versions}]
    return out


def _component(name: str, value: float) -> dict:
    q = QUANTITIES[name]
    system, code, display = COMPONENT_CODES[name]
    concept: dict = {"coding": [_coding(system, code, display)]}
    if name in COMPONENT_TEXT:
        concept["text"] = COMPONENT_TEXT[name]
    return {"code": concept,
            "valueQuantity": {"value": float(value), "unit": q.unit_symbol or q.unit, "system": UCUM,
                              "code": q.unit}}


def observation_resource(s: DoseSummary) -> dict:
    """The RadiationDoseSummary Observation (references by resource id, as the read API serves them)."""
    study_ref = {"reference": f"ImagingStudy/{s.study_pk}", "type": "ImagingStudy",
                 "identifier": {"type": {"coding": [_coding(DICOM_ID_TYPE, "study-instance-uid",
                                                            "Study Instance UID")]},
                                "system": DICOM_UID, "value": uid_value(s.study_instance_uid)}}
    out: dict = {
        "resourceType": "Observation", "id": str(s.study_pk),
        "meta": {"profile": [PROFILE_DOSE_SUMMARY]},
        "identifier": [{"type": {"coding": [_coding(DICOM_ID_TYPE, "sop-instance-uid", "SOP Instance UID")]},
                        "system": DICOM_UID, "value": uid_value(uid)} for uid in s.sop_instance_uids],
        "partOf": [study_ref],
        "status": "amended" if s.corrected else "final",
        "code": {"coding": [_coding(LOINC, *DOSE_SUMMARY_CODE)]},
        "subject": {"reference": f"Patient/{s.patient.pk}", "type": "Patient"},
        "focus": [{"reference": f"ImagingStudy/{s.study_pk}", "type": "ImagingStudy"}],
        "effectiveDateTime": s.effective,
        "performer": [{"type": "Practitioner", "display": s.authorising or "not recorded in the dose report"}],
        "valueString": s.text,
    }
    if s.last_updated:
        out["meta"]["lastUpdated"] = s.last_updated
    if s.accession_number:
        out["basedOn"] = [{"type": "ServiceRequest", "identifier": {
            "type": {"coding": [_coding(V2_0203, "ACSN", "Accession ID")]}, "value": s.accession_number}}]
    if s.device is not None:
        out["device"] = {"reference": f"Device/{s.device.pk}", "type": "Device"}
    components = []
    if s.modality_type in PROCEDURE_REPORTED:
        components.append({"code": {"coding": [_coding(DCM, "121058", "Procedure reported")]},
                           "valueCodeableConcept": {"coding": [_coding(*PROCEDURE_REPORTED[s.modality_type])]}})
    components += [_component(name, s.values[name]) for name in COMPONENT_CODES if s.values.get(name) is not None]
    if components:
        out["component"] = components
    return out


def resources(s: DoseSummary) -> list[dict]:
    """Every resource of one study: Patient, ImagingStudy, Device (when known), Observation."""
    out = [patient_resource(s.patient), imaging_study_resource(s)]
    if s.device is not None:
        out.append(device_resource(s.device))
    out.append(observation_resource(s))
    return out


# --- push: a transaction Bundle ------------------------------------------------------------------------------------
def _full_url(kind: str, key: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{kind}|{key}')}"


def _conditional(identifier: dict) -> str:
    system = identifier.get("system", "")
    return f"identifier={system}|{identifier['value']}" if system else f"identifier={identifier['value']}"


def transaction_bundle(s: DoseSummary) -> dict:
    """Create or update every resource of the study on the hospital's FHIR server, each conditional on its
    identifier (the Observation on its first SOP Instance UID), references between them by full URL."""
    patient = patient_resource(s.patient)
    study = imaging_study_resource(s)
    observation = observation_resource(s)
    urls = {"Patient": _full_url("Patient", patient_identifier(s.patient)["value"]),
            "ImagingStudy": _full_url("ImagingStudy", s.study_instance_uid),
            "Observation": _full_url("Observation", s.key)}
    entries = [(patient, patient["identifier"][0]), (study, study["identifier"][0])]
    if s.device is not None:
        device = device_resource(s.device)
        urls["Device"] = _full_url("Device", f"{s.device.pk}|{device['identifier'][0]['value']}")
        entries.append((device, device["identifier"][-1] if s.device.device_uid else device["identifier"][0]))
        observation["device"] = {"reference": urls["Device"], "type": "Device"}
    observation["subject"]["reference"] = study["subject"]["reference"] = urls["Patient"]
    observation["partOf"][0]["reference"] = observation["focus"][0]["reference"] = urls["ImagingStudy"]
    key_identifier = next(i for i in observation["identifier"] if i["value"] == uid_value(s.key)) \
        if s.sop_instance_uids else {"system": DICOM_UID, "value": uid_value(s.key)}
    entries.append((observation, key_identifier))
    bundle_entries = []
    for resource, identifier in entries:
        kind = resource["resourceType"]
        resource = {k: v for k, v in resource.items() if k != "id"}
        bundle_entries.append({"fullUrl": urls[kind], "resource": resource,
                               "request": {"method": "PUT", "url": f"{kind}?{_conditional(identifier)}"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": bundle_entries}
