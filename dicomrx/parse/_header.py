"""Header attributes: patient / study / equipment of every object, and the dose attributes of images (no template:
CT CTDIvol (0018,9345), KAP (0018,115E), mammography Organ Dose (0040,0316), NM/PET Radionuclide Total Dose
(0018,1074), Exposure Dose Sequence (0040,030E) of dose-info secondary captures).  Units are fixed by PS3.3.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pydicom.dataset import Dataset

from dicomrx import codes as C
from dicomrx.parse._sr import parse_dicom_datetime
from dicomrx.units import fixed_unit
from dosereg.core.dose_report import (
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

_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def _get(ds: Dataset, keyword: str) -> Any:
    try:
        value = ds.get(keyword)
    except Exception:  # noqa: BLE001 - a damaged value: treat as absent
        return None
    return value


def _str(ds: Dataset, keyword: str) -> str:
    value = _get(ds, keyword)
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


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
    )


def _positive(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


def study_info(ds: Dataset) -> StudyInfo:
    code = None
    seq = _get(ds, "RequestedProcedureCodeSequence")
    if seq:
        item = seq[0]
        scheme, value = C.normalise(str(item.get("CodingSchemeDesignator", "") or ""),
                                    str(item.get("CodeValue", "") or ""))
        code = Code(scheme, value, str(item.get("CodeMeaning", "") or ""))
    requested = _str(ds, "RequestedProcedureDescription")
    if not requested:
        for seq_name in ("RequestAttributesSequence",):
            seq = _get(ds, seq_name)
            if seq:
                requested = str(seq[0].get("RequestedProcedureDescription", "") or "")
    return StudyInfo(
        study_instance_uid=_str(ds, "StudyInstanceUID"),
        accession_number=_str(ds, "AccessionNumber"),
        study_date=_date(_str(ds, "StudyDate")),
        study_time=_time(_str(ds, "StudyTime")),
        study_description=_str(ds, "StudyDescription"),
        requested_procedure_description=requested,
        requested_procedure_code=code,
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
    events: list[IrradiationEventData] = []
    accumulated: list[AccumulatedDoseData] = []
    types: list[str] = []
    modality = _str(ds, "Modality").upper()
    base_attrs = _common_image_attributes(ds)
    when = _image_datetime(ds)
    uid = _str(ds, "IrradiationEventUID").split("\\")[0] or None

    exposure_items = _get(ds, "ExposureDoseSequence") or []
    ct_items = [item for item in exposure_items if "CTDIvol" in item]
    if ct_items:  # Philips "Dose Info" secondary capture: one event per Exposure Dose Sequence item
        total = 0.0
        any_dlp = False
        for item in ct_items:
            quantities: dict[str, Quantity] = {}
            q = _q("ctdivol_mgy", item.get("CTDIvol"), "mGy")
            if q is not None:
                quantities["ctdivol_mgy"] = q
            dlp_raw = item.get((0x00E1, 0x1021))
            dlp = _q("dlp_mgycm", dlp_raw.value if dlp_raw is not None else None, "mGy.cm")
            if dlp is not None:
                quantities["dlp_mgycm"] = dlp
                total += dlp.value
                any_dlp = True
            kvp = _q("kvp", item.get("KVP"), "kV")
            if kvp is not None:
                quantities["kvp"] = kvp
            ua = _q("tube_current_ma", item.get("XRayTubeCurrentInuA"), "uA")
            if ua is not None:
                quantities["tube_current_ma"] = ua
            acq = str(item.get("AcquisitionType", "") or "").upper()
            attrs = {"series_description": str(item.get("SeriesDescription", "") or ""),
                     "acquisition_type": acq or None}
            for kw, name in (("SingleCollimationWidth", "nominal_single_collimation_mm"),
                             ("TotalCollimationWidth", "nominal_total_collimation_mm"),
                             ("SpiralPitchFactor", "pitch_factor")):
                value = item.get(kw)
                if value is not None:
                    quantities[name] = Quantity(float(value), str(value), "mm" if "mm" in name else "1")
            events.append(IrradiationEventData(
                irradiation_event_uid=None, event_type=_CT_ACQ_TYPES.get(acq, "image_header"), datetime=when,
                quantities=quantities, attributes=attrs, is_localizer=acq == "CONSTANT_ANGLE",
                exposure_key=None))
        acc_q = {}
        if any_dlp:
            acc_q["dlp_total_mgycm"] = Quantity(total, repr(total), "mGy.cm")
        acc_q["ct_event_count"] = Quantity(float(len(ct_items)), str(len(ct_items)), "{events}")
        accumulated.append(AccumulatedDoseData(quantities=acc_q))
        types.append("CT")
    else:
        quantities = {}
        attrs = dict(base_attrs)
        ctdi = _find_ctdivol(ds)
        if ctdi is not None:
            quantities["ctdivol_mgy"] = ctdi
            types.append("CT")
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
        if not quantities:
            raise NotADoseObject(f"image ({modality or 'no modality'}) without dose attributes")
        for kw, name, unit in (("KVP", "kvp", "kV"), ("BodyPartThickness", "compression_thickness_mm", "mm"),
                               ("HalfValueLayer", "hvl_mmal", "mm")):
            q = _q(name, _get(ds, kw), unit)
            if q is not None and (name != "compression_thickness_mm" or organ is not None):
                quantities[name] = q
        exposure_uas = _float(_get(ds, "ExposureInuAs"))
        if exposure_uas is not None:
            quantities["exposure_mas"] = Quantity(exposure_uas / 1000.0, str(_get(ds, "ExposureInuAs")), "uA.s")
        elif _float(_get(ds, "Exposure")) is not None:
            quantities["exposure_mas"] = Quantity(_float(_get(ds, "Exposure")), str(_get(ds, "Exposure")), "mA.s")
        if organ is not None or modality == "MG":
            types.append("mammography")
        if kap is not None and "kap_gycm2" in quantities and organ is None:
            types.append("fluoroscopy" if modality in ("XA", "RF") else "radiography")
        if activity is not None:
            types.append("nuclear_medicine")
        events.append(IrradiationEventData(
            irradiation_event_uid=uid, event_type="image_header", datetime=when, quantities=quantities,
            attributes=attrs, exposure_key=_exposure_key(ds, quantities),
        ))
    ordered = tuple(t for t in ("CT", "fluoroscopy", "mammography", "radiography", "nuclear_medicine") if t in types)
    return DoseReport(
        source_kind=SOURCE_IMAGE_HEADER, sop_class_uid=sop_class, sop_instance_uid=_str(ds, "SOPInstanceUID"),
        study=study_info(ds), patient=patient_info(ds), equipment=equipment_info(ds), template="header",
        modality_types=ordered, content_datetime=parse_dicom_datetime(
            (_str(ds, "ContentDate") + _str(ds, "ContentTime")) or None),
        accumulated=tuple(accumulated), events=tuple(events), warnings=tuple(uid_warnings(ds)),
    )


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
            attrs[kw] = str(value)
    nuclide = item.get("RadionuclideCodeSequence")
    if nuclide:
        attrs["radionuclide"] = [str(nuclide[0].get("CodingSchemeDesignator", "")), str(nuclide[0].get("CodeValue", "")),
                                 str(nuclide[0].get("CodeMeaning", ""))]
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
