"""Template readers: TID 10001/10002/10003 (projection X-ray, incl. mammography), TID 10011-10015 (CT, dose check),
TID 10021-10024 (radiopharmaceutical), and the Siemens private 99SMS_RADSUM C-10 summary.

Items are found by their parent container and (scheme, value) only; sub-templates included flat (TID 10003A/B/C,
10004-10007) are read as direct children of their container in any order.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from dicomrx import codes as C
from dicomrx.parse._tree import Node
from dicomrx.units import is_strict, to_canonical
from dosereg.core.dose_report import (
    AccumulatedDoseData,
    Code,
    DoseCheckData,
    DoseParseError,
    IrradiationEventData,
    Quantity,
)


class Context:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


def quantity(node: Node, name: str, ctx: Context) -> Quantity | None:
    """The node's value in the canonical unit of ``name``; None if missing (or an unknown unit on an untyped item)."""
    if node.vt != "NUM" or node.value is None:
        return None
    try:
        return to_canonical(name, node.value, node.unit, scheme=node.unit_scheme or "UCUM")
    except DoseParseError as exc:
        if is_strict(name):
            concept = f"{node.key[0]} {node.key[1]}"
            raise DoseParseError(f"{exc} (concept {concept})") from None
        ctx.warn(f"{exc}; kept as content")
        return None


def code_of(value: tuple | None) -> Code | None:
    if not value:
        return None
    return Code(scheme=value[0], value=value[1], meaning=value[2])


def code_json(value: tuple | None) -> list[str] | None:
    return [value[0], value[1], value[2]] if value else None


def parse_dicom_datetime(text: str | None) -> dt.datetime | None:
    """DT value (YYYYMMDDHHMMSS.FFFFFF&ZZXX) -> naive datetime; the offset is dropped (the registry applies its zone)."""
    if not text:
        return None
    text = text.strip()
    for sign in ("+", "-"):
        idx = text.find(sign, 8)
        if idx > 0:
            text = text[:idx]
    try:
        main, _, frac = text.partition(".")
        if len(main) < 8:
            return None
        year, month, day = int(main[0:4]), int(main[4:6]), int(main[6:8])
        hour = int(main[8:10]) if len(main) >= 10 else 0
        minute = int(main[10:12]) if len(main) >= 12 else 0
        second = int(main[12:14]) if len(main) >= 14 else 0
        micro = int((frac + "000000")[:6]) if frac.isdigit() else 0
        return dt.datetime(year, month, day, hour, minute, min(second, 59), micro)
    except ValueError:
        return None


def _float(q: Quantity | None) -> float | None:
    return q.value if q is not None else None


# --- projection X-ray (TID 10001 / 10002 / 10003) --------------------------------------------------------------------
def projection_accumulated(node: Node, ctx: Context) -> AccumulatedDoseData:
    quantities: dict[str, Quantity] = {}
    attributes: dict[str, Any] = {}
    plane = None
    extra = []
    for child in node.children:
        key = child.key
        name = C.ACCUMULATED_PROJECTION_QUANTITIES.get(key)
        if name:
            q = quantity(child, name, ctx)
            if q is not None:
                quantities.setdefault(name, q)
        elif key == C.ACCUMULATED_AGD:
            side = None
            lat = child.first(C.LATERALITY)
            if lat is not None and lat.code_key():
                side = C.LATERALITY_SIDE.get(lat.code_key())
            q = quantity(child, "agd_mgy", ctx)
            if q is None:
                continue
            if side in ("left", "right", "both"):
                name = f"agd_{side}_mgy"
                if name in quantities:  # more than one total for a side: keep the largest, note it
                    ctx.warn(f"more than one accumulated AGD for the {side} breast")
                    if q.value <= quantities[name].value:
                        continue
                quantities[name] = q
            else:
                attributes.setdefault("agd_unlateralised_mgy", []).append(q.value)
        elif key == C.ACQUISITION_PLANE:
            plane = C.PLANE_CODES.get(child.code_key())
        elif key == C.REFERENCE_POINT_DEFINITION:
            attributes["reference_point_definition"] = child.value if child.vt == "TEXT" else code_json(child.value)
        elif key == C.dcm("113737"):
            q = quantity(child, "distance_source_to_rp_mm", ctx)
            if q is not None:
                attributes["distance_source_to_rp_mm"] = q.value
        else:
            extra.append(child.to_json())
    if extra:
        attributes["content"] = extra
    return AccumulatedDoseData(plane=plane, quantities=quantities, attributes=attributes)


def projection_event(node: Node, ctx: Context) -> IrradiationEventData:
    quantities: dict[str, Quantity] = {}
    attributes: dict[str, Any] = {}
    content: list[dict[str, Any]] = []
    uid = None
    event_type = ""
    event_code = None
    started = None
    protocol = ""
    target = None
    plane = None
    filters = []
    for child in node.children:
        key = child.key
        name = C.EVENT_PROJECTION_QUANTITIES.get(key)
        if name:
            q = quantity(child, name, ctx)
            if q is None:
                if child.value is not None or child.qualifier:
                    content.append(child.to_json())
                continue
            if name in quantities:  # 1-n items (kVp, tube current, pulse width per pulse): first is typed, all kept
                attributes.setdefault(f"{name}_values", [quantities[name].value]).append(q.value)
            else:
                quantities[name] = q
        elif key == C.IRRADIATION_EVENT_UID:
            uid = child.value
        elif key == C.DATETIME_STARTED:
            started = parse_dicom_datetime(child.value)
        elif key == C.IRRADIATION_EVENT_TYPE:
            event_code, event_type = _event_type(child, C.EVENT_TYPES, "irradiation event type", ctx)
        elif key == C.ACQUISITION_PROTOCOL:
            protocol = child.value or ""
        elif key == C.TARGET_REGION:
            target = code_of(child.value)
        elif key == C.ACQUISITION_PLANE:
            plane = C.PLANE_CODES.get(child.code_key())
        elif key == C.XRAY_FILTERS:
            filters.append(_filter(child, ctx))
        elif key == C.ANATOMICAL_STRUCTURE:
            attributes["anatomical_structure"] = code_json(child.value)
            side = C.BREAST_SIDE.get(child.code_key())
            lat = child.first(C.LATERALITY)
            if lat is not None and lat.code_key():
                side = C.LATERALITY_SIDE.get(lat.code_key(), side)
            if side:
                attributes["laterality"] = side
        elif key == C.IMAGE_VIEW:
            attributes["view"] = code_json(child.value)
            modifiers = [code_json(m.value) for m in child.children if m.vt == "CODE" and m.value]
            if modifiers:
                attributes["view_modifiers"] = modifiers
        elif key == C.REFERENCE_POINT_DEFINITION:
            attributes["reference_point_definition"] = child.value if child.vt == "TEXT" else code_json(child.value)
        elif key == C.FLUORO_MODE:
            attributes["fluoro_mode"] = code_json(child.value)
        elif key == C.ANODE_TARGET_MATERIAL:
            attributes["anode_target_material"] = code_json(child.value)
        elif key == C.XRAY_GRID:
            attributes.setdefault("grid", []).append(code_json(child.value))
        elif key == C.IRRADIATION_EVENT_LABEL:
            attributes["label"] = child.value
        elif key == C.PATIENT_TABLE_RELATIONSHIP:
            attributes["patient_table_relationship"] = code_json(child.value)
        elif key == C.PATIENT_ORIENTATION:
            attributes["patient_orientation"] = code_json(child.value)
            mod = child.first(C.PATIENT_ORIENTATION_MODIFIER)
            if mod is not None:
                attributes["patient_orientation_modifier"] = code_json(mod.value)
        elif key == C.PATIENT_ORIENTATION_MODIFIER:  # sent as a sibling (Canon, rdsr-codes.md §1.3)
            attributes["patient_orientation_modifier"] = code_json(child.value)
        elif key == C.AVERAGE_XRAY_TUBE_CURRENT:
            q = quantity(child, "tube_current_ma", ctx)
            if q is not None:
                attributes["average_tube_current_ma"] = q.value
        else:
            content.append(child.to_json())
    if filters:
        attributes["filters"] = filters
    return IrradiationEventData(
        irradiation_event_uid=uid, event_type=event_type or "unknown", event_type_code=event_code, datetime=started,
        protocol=protocol, target_region=target, plane=plane, quantities=quantities, attributes=attributes,
        content=content,
    )


def _filter(node: Node, ctx: Context) -> dict[str, Any]:
    out: dict[str, Any] = {"material": None, "thickness_min_mm": None, "thickness_max_mm": None, "type": None}
    for child in node.children:
        if child.key == C.XRAY_FILTER_MATERIAL:
            out["material"] = child.value[2] if child.value else None
            out["material_code"] = code_json(child.value)
        elif child.key == C.XRAY_FILTER_TYPE:
            out["type"] = code_json(child.value)
        elif child.key == C.XRAY_FILTER_THICKNESS_MIN:
            out["thickness_min_mm"] = _float(quantity(child, "compression_thickness_mm", ctx))
        elif child.key == C.XRAY_FILTER_THICKNESS_MAX:
            out["thickness_max_mm"] = _float(quantity(child, "compression_thickness_mm", ctx))
    return out


def _snake(text: str) -> str:
    return "_".join("".join(ch if ch.isalnum() else " " for ch in text.lower()).split())


# --- CT (TID 10011-10015) ------------------------------------------------------------------------------------------
def ct_accumulated(node: Node, ctx: Context) -> AccumulatedDoseData:
    quantities: dict[str, Quantity] = {}
    attributes: dict[str, Any] = {}
    extra = []
    for child in node.children:
        key = child.key
        if key == C.CT_TOTAL_EVENTS:
            q = quantity(child, "ct_event_count", ctx)
            if q is not None:
                quantities["ct_event_count"] = q
        elif key == C.CT_DLP_TOTAL:
            q = quantity(child, "dlp_total_mgycm", ctx)
            if q is not None:
                quantities["dlp_total_mgycm"] = q
            phantom = child.first(C.CTDIW_PHANTOM_TYPE)  # PixelMed puts the phantom here (rdsr-codes.md §1.3)
            if phantom is not None:
                attributes["dlp_total_phantom"] = C.PHANTOMS.get(phantom.code_key(), "other")
        elif key == C.CT_DLP_SUBTOTAL:
            q = quantity(child, "dlp_total_mgycm", ctx)
            phantom = child.first(C.CTDIW_PHANTOM_TYPE)
            attributes.setdefault("dlp_subtotals", []).append({
                "dlp_mgycm": _float(q),
                "phantom": C.PHANTOMS.get(phantom.code_key(), "other") if phantom is not None else None,
            })
        elif key == C.CT_EFFECTIVE_DOSE_TOTAL:
            q = quantity(child, "effective_dose_msv", ctx)
            if q is not None:
                quantities["effective_dose_msv"] = q
        else:
            extra.append(child.to_json())
    if extra:
        attributes["content"] = extra
    return AccumulatedDoseData(plane=None, quantities=quantities, attributes=attributes)


def ct_event(node: Node, ctx: Context, checks: list[DoseCheckData]) -> IrradiationEventData:
    quantities: dict[str, Quantity] = {}
    attributes: dict[str, Any] = {}
    content: list[dict[str, Any]] = []
    uid = None
    event_type = ""
    event_code = None
    started = None
    protocol = ""
    target = None
    dose_nodes: list[Node] = []
    for child in node.children:
        key = child.key
        if key == C.ACQUISITION_PROTOCOL:
            protocol = child.value or ""
        elif key == C.TARGET_REGION:
            target = code_of(child.value)
        elif key == C.CT_ACQUISITION_TYPE:
            event_code, event_type = _event_type(child, C.CT_ACQUISITION_TYPES, "CT acquisition type", ctx)
        elif key == C.IRRADIATION_EVENT_UID:
            uid = child.value
        elif key == C.DATETIME_STARTED:
            started = parse_dicom_datetime(child.value)
        elif key == C.PROCEDURE_CONTEXT:
            attributes["procedure_context"] = code_json(child.value)
        elif key == C.IRRADIATION_EVENT_LABEL:
            attributes["label"] = child.value
        elif key == C.XRAY_MODULATION_TYPE:
            attributes["modulation_type"] = child.value
        elif key == C.CT_ACQUISITION_PARAMETERS:
            _ct_parameters(child, ctx, quantities, attributes, content)
        elif key == C.CT_DOSE:
            dose_nodes.append(child)
        else:
            content.append(child.to_json())
    for dose in dose_nodes:
        for child in dose.children:
            key = child.key
            name = C.CT_DOSE_QUANTITIES.get(key)
            if name:
                q = quantity(child, name, ctx)
                if q is not None:
                    quantities.setdefault(name, q)
                if key == C.SSDE:  # water-equivalent diameter and method sit under the SSDE item
                    for sub in child.children:
                        if sub.key == C.WATER_EQUIVALENT_DIAMETER:
                            wq = quantity(sub, "water_equivalent_diameter_mm", ctx)
                            if wq is not None:
                                quantities.setdefault("water_equivalent_diameter_mm", wq)
                        else:
                            attributes.setdefault("ssde_content", []).append(sub.to_json())
            elif key == C.CTDIW_PHANTOM_TYPE:
                ck = child.code_key()
                attributes["ctdi_phantom"] = C.PHANTOMS.get(ck, "other") if ck else None
                attributes["ctdi_phantom_code"] = code_json(child.value)
            elif key == C.DOSE_CHECK_ALERT:
                checks.append(_dose_check(child, "alert", uid, ctx))
            elif key == C.DOSE_CHECK_NOTIFICATION:
                checks.append(_dose_check(child, "notification", uid, ctx))
            else:
                content.append(child.to_json())
    localizer = event_code is not None and (event_code.scheme, event_code.value) == C.CONSTANT_ANGLE
    return IrradiationEventData(
        irradiation_event_uid=uid, event_type=event_type or "unknown", event_type_code=event_code, datetime=started,
        protocol=protocol, target_region=target, plane=None, quantities=quantities, attributes=attributes,
        content=content, is_localizer=localizer,
    )


def _ct_parameters(node: Node, ctx: Context, quantities: dict, attributes: dict, content: list) -> None:
    sources = []
    for child in node.children:
        name = C.CT_PARAMETER_QUANTITIES.get(child.key)
        if name:
            q = quantity(child, name, ctx)
            if q is not None:
                quantities.setdefault(name, q)
        elif child.key == C.CT_XRAY_SOURCE_PARAMETERS:
            source: dict[str, Any] = {"id": None}
            for sub in child.children:
                sname = C.CT_SOURCE_QUANTITIES.get(sub.key)
                if sname:
                    q = quantity(sub, sname, ctx)
                    source[sname] = _float(q)
                    if q is not None and len(sources) == 0:  # first source -> typed fields
                        quantities.setdefault(sname, q)
                elif sub.key == C.CT_SOURCE_ID:
                    source["id"] = sub.value
                else:
                    source.setdefault("content", []).append(sub.to_json())
            sources.append(source)
        elif child.key in (C.dcm("113893"), C.dcm("113899")):
            q = quantity(child, "scanning_length_mm", ctx)
            label = "length_of_reconstructable_volume_mm" if child.key[1] == "113893" else "exposed_range_mm"
            attributes[label] = _float(q)
        else:
            content.append(child.to_json())
    if sources:
        attributes["xray_sources"] = sources


def _dose_check(node: Node, kind: str, uid: str | None, ctx: Context) -> DoseCheckData:
    codes = C.DOSE_CHECK_ALERT_CODES if kind == "alert" else C.DOSE_CHECK_NOTIFICATION_CODES
    found: dict[str, Any] = {}
    reason = ""
    person = ""
    for child in node.children:
        key = child.key
        if key == codes["dlp_configured"]:
            found["dlp_configured"] = child.code_key() == C.YES
        elif key == codes["ctdivol_configured"]:
            found["ctdivol_configured"] = child.code_key() == C.YES
        elif key == codes["dlp_value"]:
            found["dlp_value_mgycm"] = _float(quantity(child, "dlp_mgycm", ctx))
        elif key == codes["ctdivol_value"]:
            found["ctdivol_value_mgy"] = _float(quantity(child, "ctdivol_mgy", ctx))
        elif key == codes["dlp_forward"]:
            found["dlp_forward_estimate_mgycm"] = _float(quantity(child, "dlp_mgycm", ctx))
        elif key == codes["ctdivol_forward"]:
            found["ctdivol_forward_estimate_mgy"] = _float(quantity(child, "ctdivol_mgy", ctx))
        elif key == C.REASON_FOR_PROCEEDING:
            reason = child.value or ""
        elif key == C.PERSON_NAME:
            person = child.value or ""
    return DoseCheckData(irradiation_event_uid=uid, kind=kind, reason_for_proceeding=reason, person_name=person,
                         **found)


# --- radiopharmaceutical (TID 10021-10024) ---------------------------------------------------------------------------
def radiopharm_event(node: Node, ctx: Context) -> IrradiationEventData:
    quantities: dict[str, Quantity] = {}
    attributes: dict[str, Any] = {}
    content: list[dict[str, Any]] = []
    uid = None
    started = None
    organ_doses = []
    for child in node.children:
        key = child.key
        if key == C.RADIOPHARM_AGENT:
            attributes["radiopharmaceutical"] = code_json(child.value)
            for sub in child.children:
                if sub.key == C.RADIONUCLIDE:
                    attributes["radionuclide"] = code_json(sub.value)
                elif sub.key == C.RADIONUCLIDE_HALF_LIFE:
                    q = quantity(sub, "exposure_time_s", ctx)
                    attributes["half_life_s"] = _float(q)
        elif key == C.RADIOPHARM_EVENT_UID:
            uid = child.value
        elif key == C.RADIOPHARM_START:
            started = parse_dicom_datetime(child.value)
            attributes["start_datetime"] = child.value
        elif key == C.RADIOPHARM_STOP:
            attributes["stop_datetime"] = child.value
        elif key == C.ADMINISTERED_ACTIVITY:
            q = quantity(child, "activity_mbq", ctx)
            if q is not None:
                quantities["activity_mbq"] = q
        elif key in (C.PRE_ADMIN_ACTIVITY, C.POST_ADMIN_ACTIVITY):
            name = "pre_administration_activity_mbq" if key == C.PRE_ADMIN_ACTIVITY else "post_administration_activity_mbq"
            attributes[name] = _float(quantity(child, "activity_mbq", ctx))
        elif key == C.ORGAN_DOSE_INFORMATION:
            organ_doses.append(_organ_dose(child))
        elif key == C.ROUTE_OF_ADMINISTRATION:
            attributes["route"] = code_json(child.value)
            site = child.first(C.SITE_OF)
            if site is not None:
                attributes["site"] = code_json(site.value)
        elif key == C.PERSON_NAME:
            pass  # administering person: not kept (patient-identifying context is the registry's business)
        else:
            eff = _find_deep(child, C.EFFECTIVE_DOSE)  # Siemens: private container 99SHS 220001 (rdsr-codes.md §1.2)
            if eff is not None and "effective_dose_msv" not in quantities:
                q = quantity(eff, "effective_dose_msv", ctx)
                if q is not None:
                    quantities["effective_dose_msv"] = q
                    authority = eff.first(C.REFERENCE_AUTHORITY)
                    if authority is not None:
                        attributes["effective_dose_reference_authority"] = (
                            authority.value if authority.vt == "TEXT" else code_json(authority.value))
            content.append(child.to_json())
    if organ_doses:
        attributes["organ_doses"] = organ_doses
    return IrradiationEventData(
        irradiation_event_uid=uid, event_type="radiopharmaceutical_administration", datetime=started,
        quantities=quantities, attributes=attributes, content=content,
    )


def _organ_dose(node: Node) -> dict[str, Any]:
    out: dict[str, Any] = {"organ": None, "laterality": None, "dose": None, "unit": None, "reference_authority": None}
    for child in node.children:
        if child.key == C.FINDING_SITE:
            out["organ"] = code_json(child.value)
        elif child.key == C.LATERALITY:
            out["laterality"] = code_json(child.value)
        elif child.key == C.ORGAN_DOSE:
            out["dose"] = child.value
            out["unit"] = child.unit
            authority = child.first(C.REFERENCE_AUTHORITY)
            if authority is not None:
                out["reference_authority"] = authority.value if authority.vt == "TEXT" else code_json(authority.value)
    return out


def _find_deep(node: Node, key: tuple[str, str]) -> Node | None:
    if node.key == key:
        return node
    for child in node.children:
        hit = _find_deep(child, key)
        if hit is not None:
            return hit
    return None


def patient_characteristics(node: Node) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in node.children:
        try:
            if child.key == C.SUBJECT_AGE and child.value is not None:
                factor = C.AGE_UNITS_YEARS.get(child.unit or "")
                if factor is not None:
                    out["age_years"] = float(child.value) * factor
            elif child.key == C.SUBJECT_SEX and child.value:
                out["sex"] = {"M": "M", "F": "F", "O": "O", "U": ""}.get(child.value[1], "")
            elif child.key == C.PATIENT_HEIGHT and child.value is not None:
                factor = {"m": 1.0, "cm": 0.01, "mm": 0.001}.get(child.unit or "")
                if factor is not None:
                    out["height_m"] = float(child.value) * factor
            elif child.key == C.PATIENT_WEIGHT and child.value is not None:
                factor = {"kg": 1.0, "g": 0.001}.get(child.unit or "")
                if factor is not None:
                    out["weight_kg"] = float(child.value) * factor
        except ValueError:
            continue
    return out


# --- Siemens private summary ------------------------------------------------------------------------------------------
def radsum_accumulated(root: list[Node], ctx: Context) -> AccumulatedDoseData:
    quantities: dict[str, Quantity] = {}
    attributes: dict[str, Any] = {}
    for child in root:
        name = C.RADSUM_QUANTITIES.get(child.key)
        if name:
            q = quantity(child, name, ctx)
            if q is not None:
                quantities[name] = q
        elif child.key == C.RADSUM_EXPOSURES and child.value is not None:
            attributes["number_of_exposures"] = child.value
        elif child.key == C.RADSUM_START:
            attributes["start_datetime"] = child.value
        elif child.key == C.RADSUM_END:
            attributes["end_datetime"] = child.value
    return AccumulatedDoseData(plane=None, quantities=quantities, attributes=attributes)


def _event_type(child: Node, table: dict, what: str, ctx: Context):
    """(code, snake_case type) of an event-type CODE item, from the PS3.16 table (CID 10002 or CID 10013); an
    unknown code keeps its own meaning, with a warning."""
    ck = child.code_key()
    event_type = table.get(ck, "") if ck else ""
    if ck and not event_type:
        event_type = _snake(child.value[2]) or "unknown"
        ctx.warn(f"unknown {what} {ck[0]} {ck[1]}")
    return code_of(child.value), event_type
