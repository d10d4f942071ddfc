"""Template readers: TID 10001/10002/10003 (projection X-ray, incl. mammography), TID 10011-10015 (CT, dose check),
TID 10021-10024 (radiopharmaceutical), and the Siemens private 99SMS_RADSUM C-10 summary.

Items are found by their parent container and (scheme, value) only; sub-templates included flat (TID 10003A/B/C,
10004-10007) are read as direct children of their container in any order.
An event template is a table: concept -> reader (one small function per concept, filling one event builder);
an item no reader knows is kept, JSON-able, in the event's content.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from dicomrx import codes as C
from dicomrx.parse._tree import Node
from dicomrx.units import is_strict, parse_number, to_canonical
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
        # node -> (quantity name, converted value): a repeated item is one shared node (``_tree.Decoder``), read as
        # the same quantity wherever it occurs
        self.quantities: dict[Node, tuple[str, Quantity | None]] = {}
        # node identity -> its X-Ray Filters dict: the events repeating a filter container share one read-only dict
        self.filters: dict[int, dict[str, Any]] = {}

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


def quantity(node: Node, name: str, ctx: Context) -> Quantity | None:
    """The node's value in the canonical unit of ``name``; None if missing (or an unknown unit on an untyped item)."""
    if node.vt != "NUM" or node.value is None:
        return None
    known = ctx.quantities.get(node)
    if known is not None and known[0] == name:
        return known[1]
    try:
        found = to_canonical(name, node.value, node.unit, scheme=node.unit_scheme or "UCUM")
    except DoseParseError as exc:
        if is_strict(name):
            concept = f"{node.key[0]} {node.key[1]}"
            raise DoseParseError(f"{exc} (concept {concept})") from None
        ctx.warn(f"{exc}; kept as content")  # said once: a repeat of the node gives the same warning
        found = None
    ctx.quantities[node] = (name, found)
    return found


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


# --- irradiation events: one builder, a reader per concept --------------------------------------------------------
class _Event:
    """An irradiation event being read: what every template fills in, and the one place that builds the
    IrradiationEventData.  Per-template state lives in the subclasses below."""

    __slots__ = ("uid", "event_type", "event_code", "started", "protocol", "target", "quantities", "attributes",
                 "content")

    def __init__(self) -> None:
        self.uid: str | None = None
        self.event_type = ""
        self.event_code: Code | None = None
        self.started: dt.datetime | None = None
        self.protocol = ""
        self.target: Code | None = None
        self.quantities: dict[str, Quantity] = {}
        self.attributes: dict[str, Any] = {}
        self.content: list[dict[str, Any]] = []

    def keep(self, child: Node) -> None:
        """An item no reader knows: kept, JSON-able, in the event's content."""
        self.content.append(child.to_json())

    def build(self, **more: Any) -> IrradiationEventData:
        return IrradiationEventData(
            irradiation_event_uid=self.uid, event_type=self.event_type or "unknown", event_type_code=self.event_code,
            datetime=self.started, protocol=self.protocol, target_region=self.target, quantities=self.quantities,
            attributes=self.attributes, content=self.content, **more,
        )


def _read_uid(ev: _Event, child: Node, ctx: Context) -> None:
    ev.uid = child.value


def _read_started(ev: _Event, child: Node, ctx: Context) -> None:
    ev.started = parse_dicom_datetime(child.value)


def _read_protocol(ev: _Event, child: Node, ctx: Context) -> None:
    ev.protocol = child.value or ""


def _read_target(ev: _Event, child: Node, ctx: Context) -> None:
    ev.target = code_of(child.value)


def _read_label(ev: _Event, child: Node, ctx: Context) -> None:
    ev.attributes["label"] = child.value


# items of TID 10003 and TID 10013 alike
_COMMON_READERS = {
    C.IRRADIATION_EVENT_UID: _read_uid, C.DATETIME_STARTED: _read_started, C.ACQUISITION_PROTOCOL: _read_protocol,
    C.TARGET_REGION: _read_target, C.IRRADIATION_EVENT_LABEL: _read_label,
}



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


# --- projection event (TID 10003) ---
class _ProjectionEvent(_Event):
    __slots__ = ("plane", "filters", "sides", "exposures")

    def __init__(self) -> None:
        super().__init__()
        self.plane: str | None = None
        self.filters: list[dict[str, Any]] = []
        self.sides: dict[str, str] = {}  # where the event's laterality was given -> side
        self.exposures: list[Node] = []


# Exposure (DCM 113736) is summed over the event's projections (_sum_exposures), not read as one value
_PROJECTION_QUANTITIES = {key: name for key, name in C.EVENT_PROJECTION_QUANTITIES.items() if key != C.EXPOSURE}


def projection_event(node: Node, ctx: Context) -> IrradiationEventData:
    ev = _ProjectionEvent()
    table = _PROJECTION_TABLE
    for child in node.children:
        found = table.get(child.key)
        if found is None:
            ev.keep(child)
        elif type(found) is str:
            _read_repeatable_quantity(ev, child, found, ctx)
        else:
            found(ev, child, ctx)
    if ev.filters:
        ev.attributes["filters"] = ev.filters
    _set_laterality(ev.sides, ev.attributes, ev.uid, ctx)
    exposures = ev.exposures
    if not exposures:  # per-projection Exposure items inside a container of the event (an X-ray source, a projection)
        exposures = [n for child in node.children if child.vt == "CONTAINER" and child.key != C.XRAY_FILTERS
                     for n in _find_all(child, C.EXPOSURE)]
    _sum_exposures(exposures, ev.quantities, ev.attributes, ev.content, ctx)
    return ev.build(plane=ev.plane)


def _read_repeatable_quantity(ev: _Event, child: Node, name: str, ctx: Context) -> None:
    """1-n items (kVp, tube current, pulse width per pulse): the first is typed, every value is kept."""
    q = quantity(child, name, ctx)
    if q is None:
        if child.value is not None or child.qualifier:
            ev.keep(child)
    elif name in ev.quantities:
        ev.attributes.setdefault(f"{name}_values", [ev.quantities[name].value]).append(q.value)
    else:
        ev.quantities[name] = q


def _read_exposure(ev: _ProjectionEvent, child: Node, ctx: Context) -> None:
    ev.exposures.append(child)


def _read_event_type(ev: _Event, child: Node, ctx: Context) -> None:
    ev.event_code, ev.event_type = _event_type(child, C.EVENT_TYPES, "irradiation event type", ctx)


def _read_plane(ev: _ProjectionEvent, child: Node, ctx: Context) -> None:
    ev.plane = C.PLANE_CODES.get(child.code_key())


def _read_filters(ev: _ProjectionEvent, child: Node, ctx: Context) -> None:
    found = ctx.filters.get(id(child))
    if found is None:
        found = ctx.filters[id(child)] = _filter(child, ctx)
    ev.filters.append(found)


def _read_target_side(ev: _ProjectionEvent, child: Node, ctx: Context) -> None:
    ev.target = code_of(child.value)
    _note_side(ev.sides, "target", child)


def _read_anatomy(ev: _ProjectionEvent, child: Node, ctx: Context) -> None:
    ev.attributes["anatomical_structure"] = code_json(child.value)
    _note_side(ev.sides, "anatomy", child)


def _read_event_laterality(ev: _ProjectionEvent, child: Node, ctx: Context) -> None:
    _note_side(ev.sides, "event", child)  # a Laterality item of the event itself


def _code_attribute(attribute: str):
    """A reader keeping a CODE item as the attribute ``attribute`` (code as sent)."""
    def read(ev: _Event, child: Node, ctx: Context) -> None:
        ev.attributes[attribute] = code_json(child.value)
    return read


def _read_view(ev: _Event, child: Node, ctx: Context) -> None:
    # the View Position term an image header carries for this view (CC, MLO, PA ...), else the code's meaning
    ev.attributes["view"] = C.VIEW_POSITIONS.get(child.code_key()) or (child.value[2] if child.value else None)
    ev.attributes["view_code"] = code_json(child.value)
    modifiers = [code_json(m.value) for m in child.children if m.vt == "CODE" and m.value]
    if modifiers:
        ev.attributes["view_modifiers"] = modifiers


def _read_reference_point(ev: _Event, child: Node, ctx: Context) -> None:
    ev.attributes["reference_point_definition"] = child.value if child.vt == "TEXT" else code_json(child.value)


def _read_grid(ev: _Event, child: Node, ctx: Context) -> None:
    ev.attributes.setdefault("grid", []).append(code_json(child.value))


def _read_orientation(ev: _Event, child: Node, ctx: Context) -> None:
    ev.attributes["patient_orientation"] = code_json(child.value)
    mod = child.first(C.PATIENT_ORIENTATION_MODIFIER)
    if mod is not None:
        ev.attributes["patient_orientation_modifier"] = code_json(mod.value)


def _read_average_current(ev: _Event, child: Node, ctx: Context) -> None:
    q = quantity(child, "tube_current_ma", ctx)
    if q is not None:
        ev.attributes["average_tube_current_ma"] = q.value


# concept of a projection event's item -> its reader; an item not here is kept as content.  PATIENT_ORIENTATION_MODIFIER
# is also sent as a sibling of Patient Orientation (Canon, rdsr-codes.md §1.3)
_PROJECTION_READERS = {
    **_COMMON_READERS,
    C.EXPOSURE: _read_exposure, C.IRRADIATION_EVENT_TYPE: _read_event_type, C.TARGET_REGION: _read_target_side,
    C.ACQUISITION_PLANE: _read_plane, C.XRAY_FILTERS: _read_filters, C.ANATOMICAL_STRUCTURE: _read_anatomy,
    C.LATERALITY: _read_event_laterality,
    C.FLUORO_MODE: _code_attribute("fluoro_mode"), C.ANODE_TARGET_MATERIAL: _code_attribute("anode_target_material"),
    C.PATIENT_TABLE_RELATIONSHIP: _code_attribute("patient_table_relationship"),
    C.PATIENT_ORIENTATION_MODIFIER: _code_attribute("patient_orientation_modifier"),
    C.IMAGE_VIEW: _read_view, C.REFERENCE_POINT_DEFINITION: _read_reference_point, C.XRAY_GRID: _read_grid,
    C.PATIENT_ORIENTATION: _read_orientation, C.AVERAGE_XRAY_TUBE_CURRENT: _read_average_current,
}
# one look-up per item: concept -> its quantity name (read as a repeatable quantity, before any reader) or reader
_PROJECTION_TABLE: dict[tuple[str, str], Any] = {**_PROJECTION_READERS, **_PROJECTION_QUANTITIES}


_SIDES = ("left", "right", "both")


def _set_laterality(sides: dict[str, str], attributes: dict[str, Any], uid: str | None, ctx: Context) -> None:
    """The event's breast side: from its Anatomical structure, else its Target Region, else its own Laterality."""
    side = sides.get("anatomy") or sides.get("target") or sides.get("event")
    if side:
        attributes["laterality"] = side
    if len(set(sides.values())) > 1:
        ctx.warn(f"irradiation event {uid or '(no UID)'} names more than one laterality; {side} kept")


def _note_side(sides: dict[str, str], where: str, node: Node) -> None:
    """The breast side a CODE item names: its Laterality modifier (HAS CONCEPT MOD, SNOMED 272741003 / G-C171), else
    its own code (Left breast, Right breast, ...); 'unilateral' and unknown codes say nothing."""
    side = None
    lat = node.first(C.LATERALITY)
    if lat is not None and lat.code_key():
        side = C.LATERALITY_SIDE.get(lat.code_key())
    if side not in _SIDES and node.key == C.LATERALITY:
        side = C.LATERALITY_SIDE.get(node.code_key())
    if side not in _SIDES:
        side = C.BREAST_SIDE.get(node.code_key())
    if side in _SIDES and where not in sides:
        sides[where] = side


def _find_all(node: Node, key: tuple[str, str]) -> list[Node]:
    out = []
    for child in node.children:
        if child.key == key:
            out.append(child)
        else:
            out.extend(_find_all(child, key))
    return out


def _sum_exposures(items: list[Node], quantities: dict, attributes: dict, content: list, ctx: Context) -> None:
    """Exposure (DCM 113736, TID 10003B) of an event: the sum over its projections (a tomosynthesis sweep sends one
    item per projection), each projection's value kept in ``exposure_mas_projections`` (mAs)."""
    found: list[Quantity] = []
    for item in items:
        q = quantity(item, "exposure_mas", ctx)
        if q is None:
            if item.value is not None or item.qualifier:
                content.append(item.to_json())
            continue
        found.append(q)
    if not found:
        return
    if len(found) == 1:
        quantities["exposure_mas"] = found[0]
        return
    total = sum(q.value for q in found)
    units = {q.raw_unit for q in found}
    if len(units) == 1:  # the sum also in the unit the device used, for the patient sheet
        raw_total = sum(parse_number(q.raw_value) for q in found)
        quantities["exposure_mas"] = Quantity(total, f"{raw_total:.12g}", found[0].raw_unit)
    else:
        quantities["exposure_mas"] = Quantity(total, f"{total:.12g}", "mA.s")
    attributes["exposure_mas_projections"] = [q.value for q in found]


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


# --- CT irradiation event (TID 10013) ---
class _CtEvent(_Event):
    __slots__ = ("doses",)

    def __init__(self) -> None:
        super().__init__()
        self.doses: list[Node] = []  # CT Dose containers: read once the event's UID is known (dose checks name it)


def ct_event(node: Node, ctx: Context, checks: list[DoseCheckData]) -> IrradiationEventData:
    ev = _CtEvent()
    readers = _CT_READERS
    for child in node.children:
        reader = readers.get(child.key)
        if reader is None:
            ev.keep(child)
        else:
            reader(ev, child, ctx)
    for dose in ev.doses:
        _ct_dose(dose, ev, ctx, checks)
    localizer = ev.event_code is not None and (ev.event_code.scheme, ev.event_code.value) == C.CONSTANT_ANGLE
    return ev.build(is_localizer=localizer)


def _read_ct_acquisition_type(ev: _Event, child: Node, ctx: Context) -> None:
    ev.event_code, ev.event_type = _event_type(child, C.CT_ACQUISITION_TYPES, "CT acquisition type", ctx)


def _read_modulation_type(ev: _Event, child: Node, ctx: Context) -> None:
    ev.attributes["modulation_type"] = child.value


def _read_ct_parameters(ev: _Event, child: Node, ctx: Context) -> None:
    _ct_parameters(child, ctx, ev.quantities, ev.attributes, ev.content)


def _read_ct_dose(ev: _CtEvent, child: Node, ctx: Context) -> None:
    ev.doses.append(child)


# concept of a CT Acquisition item -> its reader; an item not here is kept as content
_CT_READERS = {
    **_COMMON_READERS,
    C.CT_ACQUISITION_TYPE: _read_ct_acquisition_type, C.PROCEDURE_CONTEXT: _code_attribute("procedure_context"),
    C.XRAY_MODULATION_TYPE: _read_modulation_type, C.CT_ACQUISITION_PARAMETERS: _read_ct_parameters,
    C.CT_DOSE: _read_ct_dose,
}


def _ct_dose(dose: Node, ev: _Event, ctx: Context, checks: list[DoseCheckData]) -> None:
    """One CT Dose container (TID 10013): CTDIvol, DLP, SSDE ... typed, its phantom, its dose check details."""
    for child in dose.children:
        key = child.key
        name = C.CT_DOSE_QUANTITIES.get(key)
        if name:
            q = quantity(child, name, ctx)
            if q is not None:
                ev.quantities.setdefault(name, q)
            if key == C.SSDE:
                _ssde_details(child, ev, ctx)
        elif key == C.CTDIW_PHANTOM_TYPE:
            ck = child.code_key()
            ev.attributes["ctdi_phantom"] = C.PHANTOMS.get(ck, "other") if ck else None
            ev.attributes["ctdi_phantom_code"] = code_json(child.value)
        elif key == C.DOSE_CHECK_ALERT:
            checks.append(_dose_check(child, "alert", ev.uid, ctx))
        elif key == C.DOSE_CHECK_NOTIFICATION:
            checks.append(_dose_check(child, "notification", ev.uid, ctx))
        else:
            ev.keep(child)


def _ssde_details(ssde: Node, ev: _Event, ctx: Context) -> None:
    """The patient's size sits under the SSDE item (TID 10013): water-equivalent diameter, measured lateral and AP
    dimensions, derived effective diameter, read by concept code into mm (``SSDE_SIZE_QUANTITIES``; the unit as
    sent, cm or mm, is converted by the catalogue).  The method, and a size item with an unknown unit, are kept as
    content."""
    for sub in ssde.children:
        name = C.SSDE_SIZE_QUANTITIES.get(sub.key)
        q = quantity(sub, name, ctx) if name else None
        if q is not None:
            ev.quantities.setdefault(name, q)
        else:
            ev.attributes.setdefault("ssde_content", []).append(sub.to_json())


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
class _RadiopharmEvent(_Event):
    __slots__ = ("organ_doses",)

    def __init__(self) -> None:
        super().__init__()
        self.event_type = "radiopharmaceutical_administration"
        self.organ_doses: list[dict[str, Any]] = []


def radiopharm_event(node: Node, ctx: Context) -> IrradiationEventData:
    ev = _RadiopharmEvent()
    readers = _RADIOPHARM_READERS
    for child in node.children:
        reader = readers.get(child.key)
        if reader is None:
            _private_effective_dose(ev, child, ctx)
            ev.keep(child)
        else:
            reader(ev, child, ctx)
    if ev.organ_doses:
        ev.attributes["organ_doses"] = ev.organ_doses
    return ev.build()


def _read_agent(ev: _Event, child: Node, ctx: Context) -> None:
    ev.attributes["radiopharmaceutical"] = code_json(child.value)
    for sub in child.children:
        if sub.key == C.RADIONUCLIDE:
            ev.attributes["radionuclide"] = code_json(sub.value)
        elif sub.key == C.RADIONUCLIDE_HALF_LIFE:
            ev.attributes["half_life_s"] = _float(quantity(sub, "exposure_time_s", ctx))


def _read_administration_start(ev: _Event, child: Node, ctx: Context) -> None:
    ev.started = parse_dicom_datetime(child.value)
    ev.attributes["start_datetime"] = child.value


def _read_administration_stop(ev: _Event, child: Node, ctx: Context) -> None:
    ev.attributes["stop_datetime"] = child.value


def _read_administered_activity(ev: _Event, child: Node, ctx: Context) -> None:
    q = quantity(child, "activity_mbq", ctx)
    if q is not None:
        ev.quantities["activity_mbq"] = q


def _activity_attribute(attribute: str):
    """A reader keeping an activity item (MBq) as the attribute ``attribute``."""
    def read(ev: _Event, child: Node, ctx: Context) -> None:
        ev.attributes[attribute] = _float(quantity(child, "activity_mbq", ctx))
    return read


def _read_organ_dose(ev: _RadiopharmEvent, child: Node, ctx: Context) -> None:
    ev.organ_doses.append(_organ_dose(child))


def _read_route(ev: _Event, child: Node, ctx: Context) -> None:
    ev.attributes["route"] = code_json(child.value)
    site = child.first(C.SITE_OF)
    if site is not None:
        ev.attributes["site"] = code_json(site.value)


def _skip(ev: _Event, child: Node, ctx: Context) -> None:
    """An item deliberately not kept."""


def _private_effective_dose(ev: _Event, child: Node, ctx: Context) -> None:
    """Siemens sends the effective dose in a private container 99SHS 220001 (rdsr-codes.md §1.2): the first one found
    is typed (the container itself is still kept as content)."""
    eff = _find_deep(child, C.EFFECTIVE_DOSE)
    if eff is None or "effective_dose_msv" in ev.quantities:
        return
    q = quantity(eff, "effective_dose_msv", ctx)
    if q is None:
        return
    ev.quantities["effective_dose_msv"] = q
    authority = eff.first(C.REFERENCE_AUTHORITY)
    if authority is not None:
        ev.attributes["effective_dose_reference_authority"] = (
            authority.value if authority.vt == "TEXT" else code_json(authority.value))


# concept of a Radiopharmaceutical Administration item -> its reader; any other item is kept as content
_RADIOPHARM_READERS = {
    C.RADIOPHARM_AGENT: _read_agent, C.RADIOPHARM_EVENT_UID: _read_uid, C.RADIOPHARM_START: _read_administration_start,
    C.RADIOPHARM_STOP: _read_administration_stop, C.ADMINISTERED_ACTIVITY: _read_administered_activity,
    C.PRE_ADMIN_ACTIVITY: _activity_attribute("pre_administration_activity_mbq"),
    C.POST_ADMIN_ACTIVITY: _activity_attribute("post_administration_activity_mbq"),
    C.ORGAN_DOSE_INFORMATION: _read_organ_dose, C.ROUTE_OF_ADMINISTRATION: _read_route,
    C.PERSON_NAME: _skip,  # administering person: not kept (patient-identifying context is the registry's business)
}


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
