"""The parser's output: frozen dataclasses describing one dose object, free of any ORM.

The parser (``dicomrx.parse``) turns bytes or a pydicom dataset into a :class:`DoseReport`; the registry's
recording service (``dosereg.registry.services.recording``) stores it: this module is the registry's input contract,
in the Django-free core, so the registry imports nothing from ``dicomrx``.  Quantities are keyed by their canonical
field name, which carries its unit (``ctdivol_mgy``, ``kap_gycm2``...); the names are the registry's column names
and the ``export_doses`` field names.  Each :class:`Quantity` keeps the value in the canonical unit *and* the value
and unit code exactly as the object sent them (the patient sheet shows those).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from dosereg.core.quantities import (  # noqa: F401  (re-exported for the parser)
    ACCUMULATED_QUANTITIES,
    EVENT_QUANTITIES,
    MODALITY_TYPES,
)

# --- kinds of source object -------------------------------------------------------------------------------------
SOURCE_RDSR = "rdsr"  # X-Ray Radiation Dose SR (TID 10001 / 10011), also TID 10011 inside Enhanced/Comprehensive SR
SOURCE_RRDSR = "rrdsr"  # Radiopharmaceutical Radiation Dose SR (TID 10021)
SOURCE_PRIVATE_SUMMARY = "private_summary"  # e.g. Siemens 99SMS_RADSUM C-10 "Radiation Summary Report"
SOURCE_PRDSR = "prdsr"  # Patient Radiation Dose SR (TID 10030): stored, "not supported yet"
SOURCE_IMAGE_HEADER = "image_header"  # dose attributes in an image header (CT, DX/CR/PX, MG, XA/RF, NM/PET, SC)


# --- planes ------------------------------------------------------------------------------------------------------
PLANE_A, PLANE_B, PLANE_SINGLE = "A", "B", "single"


@dataclass(frozen=True)
class Code:
    """A coded concept.  ``scheme`` is normalised (SRT/SNM3/99SDM -> SCT with the SNOMED CT code, UCM -> UCUM)."""

    scheme: str
    value: str
    meaning: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.scheme, self.value)


@dataclass(frozen=True)
class Quantity:
    """A numeric value in its canonical unit, with the value and unit code exactly as the object sent them."""

    value: float
    raw_value: str
    raw_unit: str


# Pregnancy Status (0010,21C0), PS3.3 C.7.1.4 / C.7.2.2: 0001 not pregnant, 0002 possibly pregnant, 0003 definitely
# pregnant, 0004 unknown.  Directive 2013/59/Euratom Art. 62 asks for special protection of the pregnant patient.
PREGNANCY_STATUSES = {1: "not_pregnant", 2: "possibly_pregnant", 3: "pregnant", 4: "unknown"}
PREGNANT = ("possibly_pregnant", "pregnant")


@dataclass(frozen=True)
class PatientInfo:
    patient_id: str = ""
    issuer_of_patient_id: str = ""
    name: str = ""  # as decoded (character set applied); never logged
    sex: str = ""  # 'M', 'F', 'O' or ''
    birth_date: dt.date | None = None
    age_years: float | None = None  # from Patient's Age (0010,1010) or SR Subject Age; the registry prefers birth date
    weight_kg: float | None = None
    height_m: float | None = None
    pseudonymised: bool = False  # patient_id is already the registry's pseudonym (a de-identified stored original)
    pregnancy_status: str = ""  # PREGNANCY_STATUSES key, from Pregnancy Status (0010,21C0) as the modality recorded it


@dataclass(frozen=True)
class EquipmentInfo:
    manufacturer: str = ""
    model: str = ""
    serial_number: str = ""
    station_name: str = ""
    institution: str = ""
    department: str = ""
    software_versions: str = ""  # multi-valued joined with '\\'
    device_observer_uid: str = ""
    device_observer_name: str = ""
    physical_location: str = ""
    detector_id: str = ""


@dataclass(frozen=True)
class StudyInfo:
    study_instance_uid: str
    accession_number: str = ""
    study_date: dt.date | None = None
    study_time: dt.time | None = None
    study_description: str = ""
    requested_procedure_description: str = ""
    requested_procedure_code: Code | None = None
    reason_for_study: str = ""  # Reason for the Requested Procedure (0040,1002), its code's meaning, or (0032,1030)
    performed_procedure_description: str = ""
    referring_physician: str = ""
    performing_physician: str = ""
    operators: str = ""
    header_modality: str = ""  # (0008,0060) of the object
    timezone_offset: str = ""  # (0008,0201) when sent


@dataclass(frozen=True)
class IrradiationEventData:
    """One irradiation event (TID 10003 / 10013 / 10022 item), or one dose-carrying image (``image_header``)."""

    irradiation_event_uid: str | None
    event_type: str  # snake_case PS3.16 meaning of CID 10002/10013 code, or 'image_header'
    event_type_code: Code | None = None
    datetime: dt.datetime | None = None  # naive; the registry applies the configured zone
    protocol: str = ""
    target_region: Code | None = None
    plane: str | None = None  # 'A', 'B', 'single'
    quantities: dict[str, Quantity] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)  # phantom, laterality, view, filters, ... (JSON-able)
    content: list[dict[str, Any]] = field(default_factory=list)  # every other content item, JSON-able
    is_localizer: bool = False
    exposure_key: str | None = None  # images: identifies one exposure sent twice (for processing / presentation)


@dataclass(frozen=True)
class AccumulatedDoseData:
    """Accumulated dose of a report (TID 10002 per plane, TID 10012 CT, TID 10005 mammography, TID 10021 totals)."""

    plane: str | None = None  # 'A', 'B', 'single' for projection; None otherwise
    quantities: dict[str, Quantity] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DoseCheckData:
    """TID 10015 CT Dose Check details of one acquisition (notification or alert exceeded, the reason, who)."""

    irradiation_event_uid: str | None
    kind: str  # 'notification' or 'alert'
    dlp_configured: bool = False
    ctdivol_configured: bool = False
    dlp_value_mgycm: float | None = None  # the configured notification/alert value
    ctdivol_value_mgy: float | None = None
    dlp_forward_estimate_mgycm: float | None = None
    ctdivol_forward_estimate_mgy: float | None = None
    reason_for_proceeding: str = ""
    person_name: str = ""  # the person who authorised; never logged


@dataclass(frozen=True)
class DoseReport:
    """Everything DoseReg keeps from one dose object."""

    source_kind: str  # SOURCE_*
    sop_class_uid: str
    sop_instance_uid: str
    study: StudyInfo
    patient: PatientInfo
    equipment: EquipmentInfo
    template: str = ""  # 'TID 10011', 'TID 10001', 'TID 10021', '99SMS_RADSUM C-10', 'header'
    procedure_reported: Code | None = None
    modality_types: tuple[str, ...] = ()  # subset of MODALITY_TYPES present in this object, in that order
    scope_of_accumulation: str = ""  # 'study', 'performed_procedure_step', ...
    scope_uid: str = ""
    content_datetime: dt.datetime | None = None
    accumulated: tuple[AccumulatedDoseData, ...] = ()
    events: tuple[IrradiationEventData, ...] = ()
    dose_checks: tuple[DoseCheckData, ...] = ()
    warnings: tuple[str, ...] = ()  # non-fatal findings (bad UIDs, vendor deviations)
    predecessor_sop_uids: tuple[str, ...] = ()  # Predecessor Documents Sequence (0040,A360): reports this replaces
    flags: tuple[str, ...] = ()  # 'private_template', 'not_supported_yet', ...
    content: list[dict[str, Any]] = field(default_factory=list)  # root-level items not represented elsewhere


class DoseParseError(Exception):
    """The object is a dose object but cannot be read (truncated, garbled, unknown unit on a typed quantity...)."""


class NotADoseObject(Exception):
    """The object is readable DICOM but carries no dose (a non-dose SR, an image without dose attributes)."""
