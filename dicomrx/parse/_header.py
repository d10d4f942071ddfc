"""Header attributes: patient / study / equipment of every object, and the dose attributes of images (no template:
CT CTDIvol (0018,9345), KAP (0018,115E), mammography Organ Dose (0040,0316), NM/PET Radionuclide Total Dose
(0018,1074), Exposure Dose Sequence (0040,030E) of dose-info secondary captures).  Units are fixed by PS3.3.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pydicom import config
from pydicom.charset import decode_bytes
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from dicomrx import codes as C
from dicomrx.parse._sr import parse_dicom_datetime
from dicomrx.units import fixed_unit
from dosereg.core.dose_report import (
    PREGNANCY_STATUSES,
    SOURCE_IMAGE_HEADER,
    AccumulatedDoseData,
    Code,
    DoseReport,
    EquipmentInfo,
    IrradiationEventData,
    NotADoseObject,
    PatientInfo,
    Quantity,
    StudyInfo,
)
from dosereg.core.quantities import modality_order

# The top-level sequences the header readers open (here and in dicomrx.parse); the others are left out of the
# header read (dicomrx.parse._read_header).  tests/dicomrx/test_parse_fast_paths.py checks that every sequence
# keyword named in these modules is listed.
HEADER_SEQUENCES = frozenset(tag_for_keyword(keyword) for keyword in (
    "RequestedProcedureCodeSequence", "RequestAttributesSequence", "ReasonForRequestedProcedureCodeSequence",
    "ExposureDoseSequence", "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence",
    "RadiopharmaceuticalInformationSequence", "PredecessorDocumentsSequence", "ContentTemplateSequence",
    "ConceptNameCodeSequence",
))

_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def _get(ds: Dataset, keyword: str) -> Any:
    """The attribute's value as pydicom gives it (None when absent or damaged); a well-formed decimal or integer
    string as its text (see ``_number_text``), which is what the callers take of a DSfloat or an IS."""
    tag = _TAG_OF.get(keyword) or _tag_of(keyword)
    raw = ds._dict.get(tag) if tag is not None else None
    if raw is None:
        return None
    text = _number_text(raw)
    if text is not None:
        return text
    try:
        value = ds.get(keyword)
    except Exception:  # noqa: BLE001 - a damaged value: treat as absent
        return None
    return value


# A Decimal String or Integer String that pydicom reads without a warning and turns into a DSfloat or an IS whose
# str() is the text itself (stripped of padding): one value, in the VR's own syntax and length (PS3.5 Table 6.2-1;
# an IS of at most nine digits is within its 32-bit range).  Everything else goes through pydicom.
_DS_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_IS_TEXT = re.compile(r"[+-]?\d{1,9}")


def _number_text(raw) -> str | None:
    """The text of a DS or IS element still in its encoded form, when it is one well-formed value; else None."""
    if type(raw) is not RawDataElement or raw.VR not in ("DS", "IS") or not raw.value:
        return None
    value = raw.value
    if not value.isascii():
        return None
    text = value.decode("ascii").rstrip(" \x00").lstrip(" ")
    if raw.VR == "DS":
        return text if len(text) <= 16 and _DS_TEXT.fullmatch(text) else None
    return text if len(text) <= 12 and _IS_TEXT.fullmatch(text) else None


def text_of(ds: Dataset, keyword: str) -> str:
    """The text of an attribute as a str: decoded with the Specific Character Set, multiple values joined with
    '\\', NUL characters removed, never cut; '' when absent or damaged.

    pydicom decodes text when it reads a value, except where a writer had to store a text element as UN: a value
    over 64 KB cannot have a 16-bit length in explicit VR, so it is written as UN (PS3.5 §6.2.2) and read back as
    bytes; str() of those would be a Python bytes literal ("b'...'").  Those are decoded here.
    """
    tag = _TAG_OF.get(keyword) or _tag_of(keyword)
    if tag is None:
        return ""
    plain = _plain_text(ds, tag)
    if plain is not None:
        return plain
    try:
        elem = ds[tag]  # one lookup: absent raises KeyError (a membership test first would cost a second one)
    except Exception:  # noqa: BLE001 - absent, or a damaged value (unknown VR, bad length): treat as absent
        return ""
    if elem.value is None:
        return ""
    value = elem.value
    if isinstance(value, (bytes, bytearray)):
        value = _decode_un(ds, elem.tag, bytes(value))
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = "\\".join(str(v) for v in value)
    return str(value).replace("\x00", "").strip()


# How pydicom 3 turns an explicit-VR text value into a str (pydicom.values), for ASCII values: the whole value
# right-stripped of spaces and NULs (convert_string, convert_UI, convert_single_string), or each value of a multi-valued
# one (convert_text; convert_AE_string strips both sides).  text_of then removes NULs and strips the joined text.
_WHOLE_VALUE_VRS = frozenset({"AS", "CS", "UI", "LT", "ST", "UT"})
_DATE_TIME_VRS = frozenset({"DA", "DT", "TM"})  # plain strings unless pydicom's datetime_conversion is on
_EACH_VALUE_VRS = frozenset({"SH", "LO", "UC"})


def _plain_text(ds: Dataset, tag: int) -> str | None:
    """text_of for an element still in its encoded form whose VR and ASCII bytes pydicom would turn into a plain
    str (or, for PN, a PersonName whose str() it is): the same text, without building a DataElement (most of a
    header's cost).  None: pydicom converts it (implicit VR, UN, numbers, non-ASCII or ISO 2022 text, an element
    converted already)."""
    # The element as stored, found by its tag directly: Dataset.get_item would build a Tag of it first, and a
    # header reads some sixty elements.  A deferred or converted element takes the general path below.
    raw = ds._dict.get(tag)
    if raw is None:
        return ""
    if type(raw) is not RawDataElement or raw.value is None:
        return None
    vr, value = raw.VR, raw.value
    if vr == "DS" or vr == "IS":
        return _number_text(raw)
    if not value.isascii() or b"\x1b" in value:
        return None
    if vr in _WHOLE_VALUE_VRS or (vr in _DATE_TIME_VRS and not config.datetime_conversion):
        text = value.decode("ascii").rstrip(" \x00")
    elif vr in _EACH_VALUE_VRS:
        text = "\\".join(part.rstrip("\x00 ") for part in value.decode("ascii").split("\\"))
    elif vr == "AE":
        text = "\\".join(part.strip() for part in value.decode("ascii").split("\\"))
    elif vr == "PN":  # convert_PN: each value's PersonName drops its trailing empty groups ("Doe^John==")
        text = "\\".join(name.rstrip("=") for name in value.rstrip(b"\x00 ").decode("ascii").split("\\"))
    else:
        return None
    return text.replace("\x00", "").strip()


def encoded_text_of(ds: Dataset, keyword: str) -> str | None:
    """text_of read from the element's bytes when pydicom would turn them into plain text (``_plain_text``): no
    conversion that could fail; None when the element needs pydicom's.  '' when absent."""
    tag = _TAG_OF.get(keyword) or _tag_of(keyword)
    return _plain_text(ds, tag) if tag is not None else None


_TAG_OF: dict[str, BaseTag] = {}  # keyword -> tag, filled on first use (pydicom's lookup builds a BaseTag each time)


def _tag_of(keyword: str) -> BaseTag | None:
    tag = tag_for_keyword(keyword)
    if tag is not None:
        _TAG_OF[keyword] = tag = interned_tag(tag)
    return tag


INTERNED_TAGS: dict[int, BaseTag] = {}  # tag value -> its one BaseTag (interned_tag)


def interned_tag(tag: int) -> BaseTag:
    """One BaseTag object per tag value, for the keys of the header datasets the parser builds and for its look-ups:
    a dict finds an identical key at once, where an equal one costs a call of BaseTag.__eq__ (a header is some
    three hundred elements and sixty look-ups)."""
    found = INTERNED_TAGS.get(tag)
    if found is None:
        found = INTERNED_TAGS.setdefault(tag, BaseTag(tag))
    return found


_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI",
                       "UR", "UT"})


def _decode_un(ds: Dataset, tag: int, raw: bytes) -> str:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        vr = ""
    if vr not in _TEXT_VRS:
        return ""  # binary, or a private element of unknown meaning: not text
    encodings = list(getattr(ds, "_character_set", None) or ["iso8859"])
    delims = {0x5E, 0x3D} if vr == "PN" else set()
    try:
        return decode_bytes(raw, encodings, delims)
    except (UnicodeDecodeError, LookupError):
        return raw.decode(encodings[0], "replace")


def _str(ds: Dataset, keyword: str) -> str:
    return text_of(ds, keyword)


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        if type(value).__name__ == "MultiValue" or isinstance(value, (list, tuple)):
            value = value[0] if len(value) else None  # an illegal multi-valued decimal: the first value
            if value is None:
                return None
        return float(str(value).strip())
    except (ValueError, TypeError):
        return None


def _date(text: str) -> dt.date | None:
    text = (text or "").strip().replace(".", "")
    if len(text) < 8:
        return None
    try:
        return dt.date(int(text[0:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def _time(text: str) -> dt.time | None:
    text = (text or "").strip().replace(":", "")
    if len(text) < 2:
        return None
    try:
        main, _, frac = text.partition(".")
        return dt.time(int(main[0:2]), int(main[2:4] or 0), min(int(main[4:6] or 0), 59),
                       int((frac + "000000")[:6]) if frac.isdigit() else 0)
    except ValueError:
        return None


def age_years(text: str) -> float | None:
    """Patient's Age AS value: '058Y', '006M', '003W', '010D' -> years."""
    m = re.match(r"^\s*(\d{1,3})\s*([DWMY])\s*$", (text or "").upper())
    if not m:
        return None
    number = int(m.group(1))
    return {"Y": float(number), "M": number / 12, "W": number * 7 / 365.25, "D": number / 365.25}[m.group(2)]


def patient_info(ds: Dataset) -> PatientInfo:
    sex = _str(ds, "PatientSex").upper()[:1]
    return PatientInfo(
        patient_id=_str(ds, "PatientID"),
        issuer_of_patient_id=_str(ds, "IssuerOfPatientID"),
        name=_str(ds, "PatientName"),
        sex=sex if sex in ("M", "F", "O") else "",
        birth_date=_date(_str(ds, "PatientBirthDate")),
        age_years=age_years(_str(ds, "PatientAge")),
        weight_kg=_positive(_float(_get(ds, "PatientWeight"))),
        height_m=_positive(_float(_get(ds, "PatientSize"))),
        pregnancy_status=_pregnancy_status(ds),
    )


def _pregnancy_status(ds: Dataset) -> str:
    """Pregnancy Status (0010,21C0) as the modality recorded it; '' when absent or not one of the defined values."""
    value = _get(ds, "PregnancyStatus")
    try:
        return PREGNANCY_STATUSES.get(int(value), "") if value not in (None, "") else ""
    except (TypeError, ValueError):
        return ""


def _positive(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


def _reason_for_study(ds: Dataset, request) -> str:
    """The indication as the request gave it: Reason for the Requested Procedure (0040,1002) in the dataset or its
    Request Attributes Sequence, else the meaning of its code (0040,100A), else the retired Reason for Study
    (0032,1030).  Examination mapping weighs it above the study description (drl.models.MappingRule)."""
    for item in (ds, request):
        if item is None:
            continue
        text = _str(item, "ReasonForTheRequestedProcedure")
        if text:
            return text
        codes = _get(item, "ReasonForRequestedProcedureCodeSequence")
        if codes:
            meaning = _str(codes[0], "CodeMeaning")
            if meaning:
                return meaning
    return _str(ds, "ReasonForStudy")


def study_info(ds: Dataset) -> StudyInfo:
    code = None
    seq = _get(ds, "RequestedProcedureCodeSequence")
    if seq:
        item = seq[0]
        scheme, value = C.normalise(_str(item, "CodingSchemeDesignator"), _str(item, "CodeValue"))
        code = Code(scheme, value, _str(item, "CodeMeaning"))
    requested = _str(ds, "RequestedProcedureDescription")
    request = (_get(ds, "RequestAttributesSequence") or [None])[0]
    if not requested and request is not None:
        requested = _str(request, "RequestedProcedureDescription")
    return StudyInfo(
        study_instance_uid=_str(ds, "StudyInstanceUID"),
        accession_number=_str(ds, "AccessionNumber"),
        study_date=_date(_str(ds, "StudyDate")),
        study_time=_time(_str(ds, "StudyTime")),
        study_description=_str(ds, "StudyDescription"),
        requested_procedure_description=requested,
        requested_procedure_code=code,
        reason_for_study=_reason_for_study(ds, request),
        performed_procedure_description=_str(ds, "PerformedProcedureStepDescription"),
        referring_physician=_str(ds, "ReferringPhysicianName"),
        performing_physician=_str(ds, "PerformingPhysicianName"),
        operators=_str(ds, "OperatorsName"),
        header_modality=_str(ds, "Modality"),
        timezone_offset=_str(ds, "TimezoneOffsetFromUTC"),
    )


def equipment_info(ds: Dataset) -> EquipmentInfo:
    return EquipmentInfo(
        manufacturer=_str(ds, "Manufacturer"),
        model=_str(ds, "ManufacturerModelName"),
        serial_number=_str(ds, "DeviceSerialNumber"),
        station_name=_str(ds, "StationName"),
        institution=_str(ds, "InstitutionName"),
        department=_str(ds, "InstitutionalDepartmentName"),
        software_versions=_str(ds, "SoftwareVersions"),
        detector_id=_str(ds, "DetectorID"),
    )


def uid_warnings(ds: Dataset) -> list[str]:
    bad = []
    for keyword, tag in (("StudyInstanceUID", "(0020,000D)"), ("SeriesInstanceUID", "(0020,000E)"),
                         ("SOPInstanceUID", "(0008,0018)"), ("SOPClassUID", "(0008,0016)"),
                         ("FrameOfReferenceUID", "(0020,0052)"), ("IrradiationEventUID", "(0008,3010)")):
        value = _str(ds, keyword)
        if not value:
            continue
        for part in value.split("\\"):
            if len(part) > 64 or not _UID.match(part):
                bad.append(f"{keyword} {tag}")
                break
    if bad:
        return ["invalid DICOM UID in " + ", ".join(bad) + " (kept as sent)"]
    return []


# --- image headers --------------------------------------------------------------------------------------------------
_CT_ACQ_TYPES = {
    "SPIRAL": "spiral_acquisition", "SEQUENCED": "sequenced_acquisition",
    "CONSTANT_ANGLE": "constant_angle_acquisition", "STATIONARY": "stationary_acquisition",
    "FREE": "free_acquisition", "CONE_BEAM": "cone_beam_acquisition",
}


def _image_datetime(ds: Dataset) -> dt.datetime | None:
    for dt_kw, d_kw, t_kw in (("AcquisitionDateTime", "AcquisitionDate", "AcquisitionTime"),
                              (None, "ContentDate", "ContentTime"), (None, "SeriesDate", "SeriesTime")):
        if dt_kw:
            value = parse_dicom_datetime(_str(ds, dt_kw))
            if value:
                return value
        date = _str(ds, d_kw)
        if date:
            return parse_dicom_datetime(date + (_str(ds, t_kw) or ""))
    return None


def _q(name: str, raw: Any, unit: str) -> Quantity | None:
    value = _float(raw)
    if value is None:
        return None
    raw_text = str(raw[0] if type(raw).__name__ == "MultiValue" else raw).strip()
    return fixed_unit(name, raw_text, unit)


def header_report(ds: Dataset, sop_class: str) -> DoseReport:
    """A report from the dose attributes of an image header; NotADoseObject if there are none."""
    modality = _str(ds, "Modality").upper()
    when = _image_datetime(ds)
    ct_items = [item for item in _get(ds, "ExposureDoseSequence") or [] if "CTDIvol" in item]
    if ct_items:  # Philips "Dose Info" secondary capture: one event per Exposure Dose Sequence item
        events = [_dose_info_event(item, when) for item in ct_items]
        accumulated = (_dose_info_totals(events),)
        types = ["CT"]
    else:
        event = _image_event(ds, sop_class, modality, when)
        events, accumulated = [event], ()
        types = _image_modality_types(event.quantities, modality)
    return DoseReport(
        source_kind=SOURCE_IMAGE_HEADER, sop_class_uid=sop_class, sop_instance_uid=_str(ds, "SOPInstanceUID"),
        study=study_info(ds), patient=patient_info(ds), equipment=equipment_info(ds), template="header",
        modality_types=tuple(modality_order(types)), content_datetime=parse_dicom_datetime(
            (_str(ds, "ContentDate") + _str(ds, "ContentTime")) or None),
        accumulated=accumulated, events=tuple(events), warnings=tuple(uid_warnings(ds)),
    )


# an Exposure Dose Sequence item of a Philips "Dose Info" capture: attribute (keyword or private tag) -> quantity, unit
# (PS3.3 fixes the units of the standard attributes; (00E1,1021) is Philips's DLP in mGy·cm)
_DOSE_INFO_QUANTITIES = (
    ("CTDIvol", "ctdivol_mgy", "mGy"), ((0x00E1, 0x1021), "dlp_mgycm", "mGy.cm"), ("KVP", "kvp", "kV"),
    ("XRayTubeCurrentInuA", "tube_current_ma", "uA"),
)
_DOSE_INFO_GEOMETRY = (("SingleCollimationWidth", "nominal_single_collimation_mm", "mm"),
                       ("TotalCollimationWidth", "nominal_total_collimation_mm", "mm"),
                       ("SpiralPitchFactor", "pitch_factor", "1"))


def _dose_info_event(item: Dataset, when: dt.datetime | None) -> IrradiationEventData:
    quantities: dict[str, Quantity] = {}
    for attribute, name, unit in _DOSE_INFO_QUANTITIES:
        raw = item.get(attribute)
        if isinstance(attribute, tuple) and raw is not None:  # a private tag: get() gives the element
            raw = raw.value
        q = _q(name, raw, unit)
        if q is not None:
            quantities[name] = q
    acq = _str(item, "AcquisitionType").upper()
    attrs = {"series_description": _str(item, "SeriesDescription"), "acquisition_type": acq or None}
    for keyword, name, unit in _DOSE_INFO_GEOMETRY:
        value = item.get(keyword)
        if value is not None:
            quantities[name] = Quantity(float(value), str(value), unit)
    return IrradiationEventData(
        irradiation_event_uid=None, event_type=_CT_ACQ_TYPES.get(acq, "image_header"), datetime=when,
        quantities=quantities, attributes=attrs, is_localizer=acq == "CONSTANT_ANGLE", exposure_key=None)


def _dose_info_totals(events: list[IrradiationEventData]) -> AccumulatedDoseData:
    """The capture sends no totals: the DLP total is the sum over its items, the event count the number of items."""
    dlps = [event.quantities["dlp_mgycm"].value for event in events if "dlp_mgycm" in event.quantities]
    totals: dict[str, Quantity] = {}
    if dlps:
        total = sum(dlps, 0.0)
        totals["dlp_total_mgycm"] = Quantity(total, repr(total), "mGy.cm")
    totals["ct_event_count"] = Quantity(float(len(events)), str(len(events)), "{events}")
    return AccumulatedDoseData(quantities=totals)


def _image_event(ds: Dataset, sop_class: str, modality: str, when: dt.datetime | None) -> IrradiationEventData:
    """The one event of an image carrying dose attributes; NotADoseObject if it carries none."""
    attrs = _common_image_attributes(ds)
    quantities = _image_dose_quantities(ds, sop_class, modality, attrs)
    if not quantities:
        raise NotADoseObject(f"image ({modality or 'no modality'}) without dose attributes")
    _add_technique(ds, quantities)
    uid = _str(ds, "IrradiationEventUID").split("\\")[0] or None
    return IrradiationEventData(
        irradiation_event_uid=uid, event_type="image_header", datetime=when, quantities=quantities,
        attributes=attrs, exposure_key=_exposure_key(ds, quantities),
    )


def _image_dose_quantities(ds: Dataset, sop_class: str, modality: str, attrs: dict[str, Any]) -> dict[str, Quantity]:
    """CTDIvol, KAP, mammography Organ Dose (the AGD) and administered activity of an image header."""
    quantities: dict[str, Quantity] = {}
    ctdi = _find_ctdivol(ds)
    if ctdi is not None:
        quantities["ctdivol_mgy"] = ctdi
    kap = _q("kap_gycm2", _get(ds, "ImageAndFluoroscopyAreaDoseProduct"), "dGy.cm2")
    if kap is not None and not (ctdi is not None and modality == "CT"):
        quantities["kap_gycm2"] = kap
    organ = _q("agd_mgy", _get(ds, "OrganDose"), "dGy")
    if organ is not None:
        quantities["agd_mgy"] = organ
    entrance = _float(_get(ds, "EntranceDoseInmGy"))
    if entrance is not None:
        attrs["entrance_dose_mgy"] = entrance
    activity = _header_activity(ds, sop_class, attrs)
    if activity is not None:
        quantities["activity_mbq"] = activity
    return quantities


def _add_technique(ds: Dataset, quantities: dict[str, Quantity]) -> None:
    """kVp, compressed breast thickness (mammography only), HVL and exposure of an image with dose attributes."""
    for kw, name, unit in (("KVP", "kvp", "kV"), ("BodyPartThickness", "compression_thickness_mm", "mm"),
                           ("HalfValueLayer", "hvl_mmal", "mm")):
        q = _q(name, _get(ds, kw), unit)
        if q is not None and (name != "compression_thickness_mm" or "agd_mgy" in quantities):
            quantities[name] = q
    exposure_uas = _float(_get(ds, "ExposureInuAs"))
    if exposure_uas is not None:
        quantities["exposure_mas"] = Quantity(exposure_uas / 1000.0, str(_get(ds, "ExposureInuAs")), "uA.s")
    elif _float(_get(ds, "Exposure")) is not None:
        quantities["exposure_mas"] = Quantity(_float(_get(ds, "Exposure")), str(_get(ds, "Exposure")), "mA.s")


def _image_modality_types(quantities: dict[str, Quantity], modality: str) -> list[str]:
    """What an image's dose attributes say about its modality type: CTDIvol is CT, an Organ Dose (or modality MG)
    mammography, KAP without one fluoroscopy (XA, RF) or radiography, an activity nuclear medicine."""
    types = []
    if "ctdivol_mgy" in quantities:
        types.append("CT")
    if "agd_mgy" in quantities or modality == "MG":
        types.append("mammography")
    if "kap_gycm2" in quantities and "agd_mgy" not in quantities:
        types.append("fluoroscopy" if modality in ("XA", "RF") else "radiography")
    if "activity_mbq" in quantities:
        types.append("nuclear_medicine")
    return types


def _find_ctdivol(ds: Dataset) -> Quantity | None:
    q = _q("ctdivol_mgy", _get(ds, "CTDIvol"), "mGy")
    if q is not None:
        return q
    for group_kw in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        groups = _get(ds, group_kw)
        if not groups:
            continue
        exposure = groups[0].get("CTExposureSequence")
        if exposure:
            q = _q("ctdivol_mgy", exposure[0].get("CTDIvol"), "mGy")
            if q is not None:
                return q
    return None


def _header_activity(ds: Dataset, sop_class: str, attrs: dict) -> Quantity | None:
    seq = _get(ds, "RadiopharmaceuticalInformationSequence")
    if not seq:
        return None
    item = seq[0]
    raw = item.get("RadionuclideTotalDose")
    if raw is None or _float(raw) is None:
        return None
    if sop_class == C.SOP_PET:
        unit = "Bq"  # classic PET Isotope module: Bq (rdsr-codes.md §4.2)
    elif sop_class in C.SOP_NM or sop_class in C.SOP_ENHANCED_PET:
        unit = "MBq"  # NM Isotope / Enhanced PET Isotope modules: MBq (PS3.3 C.8.22.4)
    else:
        attrs["radionuclide_total_dose_unknown_unit"] = str(raw)
        return None
    for kw in ("RadiopharmaceuticalStartDateTime", "RadiopharmaceuticalStartTime", "Radiopharmaceutical"):
        value = item.get(kw)
        if value:
            attrs[kw] = _str(item, kw)
    nuclide = item.get("RadionuclideCodeSequence")
    if nuclide:
        attrs["radionuclide"] = [_str(nuclide[0], "CodingSchemeDesignator"), _str(nuclide[0], "CodeValue"),
                                 _str(nuclide[0], "CodeMeaning")]
    return fixed_unit("activity_mbq", str(raw).strip(), unit)


def _common_image_attributes(ds: Dataset) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for kw, name in (("ImageLaterality", "laterality_code"), ("Laterality", "laterality_code"),
                     ("ViewPosition", "view"), ("AnodeTargetMaterial", "anode_target_material"),
                     ("FilterMaterial", "filter_material"), ("BodyPartExamined", "body_part"),
                     ("ExposureIndex", "exposure_index"), ("DeviationIndex", "deviation_index"),
                     ("TargetExposureIndex", "target_exposure_index"), ("PositionerPrimaryAngle", "positioner_primary_angle_deg"),
                     ("PositionerSecondaryAngle", "positioner_secondary_angle_deg"), ("CompressionForce", "compression_force_n"),
                     ("ImageType", "image_type"), ("SeriesDescription", "series_description")):
        if name in attrs:
            continue
        value = _str(ds, kw)
        if value:
            attrs[name] = value
    lat = attrs.get("laterality_code", "").upper()
    if lat in ("L", "R", "B"):
        attrs["laterality"] = {"L": "left", "R": "right", "B": "both"}[lat]
    return attrs


def _exposure_key(ds: Dataset, quantities: dict[str, Quantity]) -> str:
    """Identifies one physical exposure sent as several images (for processing and for presentation)."""
    acq = _str(ds, "AcquisitionDateTime") or (_str(ds, "AcquisitionDate") + _str(ds, "AcquisitionTime"))
    parts = [_str(ds, "StudyInstanceUID"), acq.split(".")[0], _str(ds, "ImageLaterality") or _str(ds, "Laterality"),
             _str(ds, "ViewPosition"), _str(ds, "KVP"), _str(ds, "ExposureInuAs") or _str(ds, "Exposure")]
    for name in ("agd_mgy", "kap_gycm2", "ctdivol_mgy", "activity_mbq"):
        q = quantities.get(name)
        parts.append(f"{q.value:.6g}" if q is not None else "")
    if not acq:
        parts.append(_str(ds, "SOPInstanceUID"))  # no acquisition time: cannot tell two images apart safely
    return "|".join(parts)
