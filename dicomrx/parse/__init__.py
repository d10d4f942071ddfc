"""Pure parser of dose objects: X-Ray RDSR (TID 10001 projection / TID 10011 CT, also inside Enhanced and
Comprehensive SR), Radiopharmaceutical RDSR (TID 10021), the Siemens private summary (99SMS_RADSUM C-10), Patient
Radiation Dose SR (TID 10030, recognised only) and image headers carrying dose attributes.

``parse_dose_object(data)`` -> :class:`~dosereg.core.dose_report.DoseReport`; raises ``NotADoseObject`` for readable
DICOM without dose and ``DoseParseError`` for anything unreadable.  No ORM, no file writes, no logging.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from dataclasses import replace
from typing import Any

import pydicom
from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.filereader import read_sequence
from pydicom.values import convert_string

from dicomrx import codes as C
from dicomrx.parse import _raw, _sr
from dicomrx.parse._header import (
    HEADER_SEQUENCES,
    INTERNED_TAGS,
    encoded_text_of,
    equipment_info,
    header_report,
    interned_tag,
    patient_info,
    study_info,
    text_of,
    uid_warnings,
)
from dicomrx.parse._tree import Decoder, Node, build_nodes
from dosereg.core.dose_report import (
    SOURCE_PRDSR,
    SOURCE_PRIVATE_SUMMARY,
    SOURCE_RDSR,
    SOURCE_RRDSR,
    AccumulatedDoseData,
    DoseCheckData,
    DoseParseError,
    DoseReport,
    IrradiationEventData,
    NotADoseObject,
    Quantity,
)
from dosereg.core.gc_pause import collector_paused

__all__ = ["parse_dose_object", "identity_elements", "DoseParseError", "NotADoseObject"]

# pydicom's value-validation warnings (UserWarnings raised in its own modules) are silenced once for the process: the
# parser reports what matters as findings of its own (report.warnings).  Not catch_warnings() around each parse: that
# swaps the warnings module's global filter list, which is not safe while other threads run (the listener's
# association threads beside its in-process ingest thread) and costs a filter-list rebuild per object.
warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")

identity_elements = _raw.identity_elements  # SOP class/instance, Modality, Study UID of a plain Part 10 file, raw


def parse_dose_object(data: bytes | bytearray | memoryview | Dataset, *, filename: str = "") -> DoseReport:
    """Parse one dose object.  ``filename`` is used in error messages only."""
    where = f" ({filename})" if filename else ""
    try:
        # the content tree allocates tens of thousands of small objects; the cyclic GC only slows it down
        with collector_paused():
            return _parse(data)
    except (DoseParseError, NotADoseObject) as exc:
        raise type(exc)(f"{exc}{where}") from exc
    except RecursionError as exc:
        raise DoseParseError(f"content nested too deep{where}") from exc
    except Exception as exc:  # noqa: BLE001 - anything else is an unreadable object, said in plain words
        raise DoseParseError(f"{_plain_reason(exc)}{where}") from exc


def _encode(ds: Dataset) -> bytes:
    """Serialise a pydicom dataset (or a big-endian / deflated one) as Explicit VR Little Endian bytes."""
    out = io.BytesIO()
    ds = ds.copy() if hasattr(ds, "copy") else ds
    meta = getattr(ds, "file_meta", None) or pydicom.dataset.FileMetaDataset()
    meta = pydicom.dataset.FileMetaDataset(meta)
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    if "SOPClassUID" in ds and "MediaStorageSOPClassUID" not in meta:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
    if "SOPInstanceUID" in ds and "MediaStorageSOPInstanceUID" not in meta:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    pydicom.dcmwrite(out, ds, implicit_vr=False, little_endian=True, enforce_file_format=False)
    return out.getvalue()


def _read_header(buf: bytes, top: _raw.TopLevel | None) -> Dataset:
    """The header as a pydicom dataset, without the content tree (read by ``_raw``) and without the top-level
    sequences the header readers never open (a request sequence of 600 elements, vendors' private sequences):
    pydicom parses each sequence of undefined length in full as it reads.  The raw scan has already walked them,
    so a damaged one is still found."""
    if top is not None:
        ds = _header_from_scan(buf, top)
        if ds is not None:
            return ds
    header_bytes = buf
    if top is not None:
        keep = HEADER_SEQUENCES
        drop = [(start, end) for tag, start, end in top.sequence_spans if tag not in keep]
        if top.content_span is not None:
            drop.append(top.content_span)
        if drop:
            drop.sort()
            pieces, at = [], 0
            for start, end in drop:
                pieces.append(buf[at:start])
                at = end
            pieces.append(buf[at:])
            header_bytes = b"".join(pieces)
    try:
        ds = pydicom.dcmread(io.BytesIO(header_bytes), stop_before_pixels=True, force=True)
    except Exception as exc:  # noqa: BLE001
        raise DoseParseError(f"not readable as DICOM: {_plain_reason(exc)}") from exc
    return ds


def _header_from_scan(buf: bytes, top: _raw.TopLevel) -> Dataset | None:
    """The header dataset ``_read_header`` gets from pydicom, built from the elements the raw scan has found (their
    bytes, as pydicom's reader would give them: raw elements converted on first use, a kept sequence of undefined
    length read at once): pydicom's element reader was a third of parsing an image header.  None when the scan's
    elements are not plainly what pydicom would read (``_raw.header_elements``)."""
    found = _raw.header_elements(buf, top, HEADER_SEQUENCES)
    if found is None:
        return None
    implicit = top.transfer_syntax == _raw.IMPLICIT_LE
    elements: dict = {}
    encoding: Any = default_encoding
    # a header is a hundred or more elements: the RawDataElement tuple made without its Python-level __new__, the
    # interned tag found without a call
    make, interned = tuple.__new__, INTERNED_TAGS.get
    for tag, vr, start, end, undefined in found:
        if undefined:  # pydicom reads a sequence of undefined length as it meets it, with the encoding so far
            fp = io.BytesIO(buf)
            fp.seek(start)
            seq = read_sequence(fp, implicit, True, 0xFFFFFFFF, encoding)
            # a kept sequence is a standard SQ: implicit VR gives it that VR, an explicit UN one is read as SQ
            elements[interned_tag(tag)] = DataElement(interned_tag(tag), "SQ", seq, start, is_undefined_length=True)
            continue
        value = buf[start:end] if end > start else empty_value_for_VR(vr, raw=True)  # as pydicom's reader does
        if tag == 0x00080005:
            encoding = convert_string(value, True)
        key = interned(tag) or interned_tag(tag)
        elements[key] = make(RawDataElement, (key, vr, end - start, value, start, implicit, True))
    ds = Dataset(elements, parent_encoding=default_encoding)
    charset = elements.get(interned_tag(0x00080005))
    ds.set_original_encoding(implicit, True, convert_encodings(convert_raw_data_element(charset).value)
                             if charset is not None else default_encoding)
    return ds


def _parse(data: Any) -> DoseReport:
    if isinstance(data, Dataset):
        buf = _encode(data)
    elif isinstance(data, (bytes, bytearray, memoryview)):
        buf = bytes(data)
    else:
        raise DoseParseError(f"expected bytes or a pydicom Dataset, got {type(data).__name__}")
    if len(buf) < 16:
        raise DoseParseError("too short to be a DICOM object")
    top = None
    raw_error = None
    try:
        top = _raw.scan_top_level(buf)
    except _raw.RawError as exc:
        if "re-encoded" in str(exc):
            buf = _encode(pydicom.dcmread(io.BytesIO(buf), force=True))
            top = _raw.scan_top_level(buf)
        else:
            raw_error = exc
    except Exception as exc:  # noqa: BLE001 - struct.error on a short header: truncated
        raw_error = exc

    ds = _read_header(buf, top)
    sop_class = _required_text(ds, "SOPClassUID", "(0008,0016)")
    if not sop_class:
        if raw_error is not None:
            raise DoseParseError(f"malformed or truncated DICOM: {raw_error}")
        raise DoseParseError("no SOP Class UID: not a DICOM object or the header is damaged")
    if top is not None and not top.pixel_ok:
        raise DoseParseError("truncated: the pixel data runs past the end of the object")
    if sop_class.startswith(C.SR_PREFIX):
        if raw_error is not None:
            raise DoseParseError(f"malformed or truncated SR content: {raw_error}")
        return _parse_sr(buf, top, ds, sop_class)
    if raw_error is not None and not _pydicom_reads_fully(buf):
        raise DoseParseError(f"malformed or truncated DICOM: {raw_error}")
    return header_report(ds, sop_class)


def _pydicom_reads_fully(buf: bytes) -> bool:
    """Whether pydicom reads every element (the raw scanner refused something pydicom tolerates)."""
    try:
        ds = pydicom.dcmread(io.BytesIO(buf), stop_before_pixels=True, force=True)
        for elem in ds.iterall():
            _ = elem.value
        return True
    except Exception:  # noqa: BLE001
        return False


def _required_text(ds: Dataset, keyword: str, tag: str) -> str:
    """A text attribute the parser cannot do without; an unreadable one refuses the object with a plain reason."""
    plain = encoded_text_of(ds, keyword)
    if plain is not None:  # plain ASCII text of a text VR: its conversion cannot fail, it need not be tried
        return plain
    try:
        if keyword in ds:
            ds.data_element(keyword)
    except Exception as exc:  # noqa: BLE001
        raise DoseParseError(f"{keyword} {tag} is unreadable: {_plain_reason(exc)}") from exc
    return text_of(ds, keyword)


_UNKNOWN_VR = re.compile(r"Unknown Value Representation '?([^' ]*)'? in tag (\([0-9A-Fa-f]{4},[0-9A-Fa-f]{4}\))")


def _plain_reason(exc: BaseException) -> str:
    """A refusal reason a person can act on, without Python exception class names."""
    text = str(exc).strip()
    match = _UNKNOWN_VR.search(text)
    if match:
        return f"unknown value representation {match.group(1) or '(blank)'} in {match.group(2)}"
    if isinstance(exc, _raw.RawError):
        return f"malformed or truncated DICOM: {text}"
    if isinstance(exc, (struct.error, EOFError, IndexError)):
        return "malformed or truncated DICOM: an element runs past the end of its data"
    if isinstance(exc, UnicodeError):
        return f"text that cannot be decoded with the object's Specific Character Set ({text})"
    if isinstance(exc, MemoryError):
        return "malformed DICOM: an element declares an impossible length"
    return f"unreadable object: {text or 'malformed DICOM'}"


def _predecessors(ds: Dataset, warnings: list[str]) -> tuple[str, ...]:
    """Referenced SOP Instance UIDs under the Predecessor Documents Sequence (0040,A360) (PS3.3 C.17.2: study ->
    Referenced Series Sequence -> Referenced SOP Sequence), found at any nesting, in order, without repeats."""
    found: list[str] = []

    def walk(items, depth: int) -> None:
        for item in items or ():
            uid = text_of(item, "ReferencedSOPInstanceUID")
            if uid and uid not in found:
                found.append(uid)
            if depth > 8:
                continue
            for elem in item:
                if elem.VR == "SQ":
                    walk(elem.value, depth + 1)

    try:
        walk(ds.get("PredecessorDocumentsSequence"), 0)
    except Exception:  # noqa: BLE001 - a damaged sequence: the report is kept, without its predecessors
        warnings.append("Predecessor Documents Sequence (0040,A360) is unreadable; predecessors not read")
    return tuple(found)


def _template_id(ds: Dataset) -> str:
    try:
        seq = ds.get("ContentTemplateSequence")
    except Exception:  # noqa: BLE001 - a damaged template sequence: the template is found from the content
        return ""
    return text_of(seq[0], "TemplateIdentifier") if seq else ""


def _root_concept(ds: Dataset) -> tuple[str, str, str] | None:
    try:
        seq = ds.get("ConceptNameCodeSequence")
    except Exception as exc:  # noqa: BLE001
        reason = _plain_reason(exc)
        raise DoseParseError(f"the root Concept Name Code Sequence (0040,A043) is unreadable: {reason}") from exc
    if not seq:
        return None
    item = seq[0]
    scheme, value = C.normalise(text_of(item, "CodingSchemeDesignator"), text_of(item, "CodeValue"))
    return scheme, value, text_of(item, "CodeMeaning")


def _parse_sr(buf: bytes, top: _raw.TopLevel | None, ds: Dataset, sop_class: str) -> DoseReport:
    warnings = uid_warnings(ds)
    predecessors = _predecessors(ds, warnings)
    root = _root_concept(ds)
    root_key = (root[0], root[1]) if root else None
    common = dict(
        sop_class_uid=sop_class,
        sop_instance_uid=text_of(ds, "SOPInstanceUID"),
        study=study_info(ds),
        patient=patient_info(ds),
        equipment=equipment_info(ds),
        content_datetime=_sr.parse_dicom_datetime(
            (text_of(ds, "ContentDate") + text_of(ds, "ContentTime")) or None),
        predecessor_sop_uids=predecessors,
    )
    if sop_class == C.SOP_PRDSR:
        return DoseReport(source_kind=SOURCE_PRDSR, template="TID 10030", flags=("not_supported_yet",),
                          warnings=tuple(warnings), **common)
    if root_key not in (C.XRAY_DOSE_REPORT, C.RADIOPHARM_DOSE_REPORT, C.SIEMENS_RADSUM):
        what = f"{root[0]} {root[1]} {root[2]!r}" if root else "none"
        raise NotADoseObject(f"SR without a dose report root concept (root: {what})")

    if top is None or top.content_span is None:
        raise DoseParseError("dose report root without a content tree (truncated?)")
    encodings = _encodings(ds)
    implicit = top is not None and top.transfer_syntax == _raw.IMPLICIT_LE
    dec = Decoder(encodings, implicit)
    items = _raw.parse_content_sequence(buf, top) if top is not None else []
    nodes = build_nodes(items, dec)
    # the raw items (most of a large report's memory) are freed before the templates are read: what those allocate
    # then reuses memory still in the cache, instead of more of a heap that a batch's parsed reports keep growing
    del items
    top.content_items = None
    dec.nodes.clear()
    ctx = _sr.Context()
    ctx.warnings.extend(warnings)

    if root_key == C.SIEMENS_RADSUM:
        acc = _sr.radsum_accumulated(nodes, ctx)
        flags = ["private_template"]
        return DoseReport(
            source_kind=SOURCE_PRIVATE_SUMMARY, template="99SMS_RADSUM C-10",
            modality_types=("fluoroscopy",) if _positive(acc, "fluoro_time_total_s") else (),
            accumulated=(acc,), warnings=tuple(ctx.warnings), flags=tuple(flags),
            content=[n.to_json() for n in nodes if n.key not in C.RADSUM_QUANTITIES], **common)
    if root_key == C.RADIOPHARM_DOSE_REPORT:
        return _rrdsr(nodes, ctx, common, ds)
    return _xray(nodes, ctx, common, ds, sop_class)


def _encodings(ds: Dataset) -> list[str]:
    """Python codecs of the Specific Character Set (0008,0005); an unknown or damaged term falls back to the default
    repertoire, as pydicom does when it reads the header."""
    try:
        value = ds.get("SpecificCharacterSet", "ISO_IR 6") or "ISO_IR 6"
        return convert_encodings(value if isinstance(value, (list, pydicom.multival.MultiValue)) else [value])
    except Exception:  # noqa: BLE001
        return ["iso8859"]


def _positive(acc: AccumulatedDoseData, name: str) -> bool:
    q = acc.quantities.get(name)
    return q is not None and q.value > 0


def _observer(nodes: list[Node]) -> dict[str, str]:
    out = {}
    mapping = {
        C.DEVICE_OBSERVER_UID: "device_observer_uid", C.DEVICE_OBSERVER_NAME: "device_observer_name",
        C.DEVICE_OBSERVER_MANUFACTURER: "manufacturer", C.DEVICE_OBSERVER_MODEL: "model",
        C.DEVICE_OBSERVER_SERIAL: "serial_number", C.DEVICE_OBSERVER_LOCATION: "physical_location",
    }
    for node in nodes:
        name = mapping.get(node.key)
        if name and node.value and name not in out:
            out[name] = str(node.value)
    return out


def _with_observer(common: dict, nodes: list[Node]) -> None:
    obs = _observer(nodes)
    eq = common["equipment"]
    updates = {}
    for field_name in ("manufacturer", "model", "serial_number"):
        if not getattr(eq, field_name) and obs.get(field_name):
            updates[field_name] = obs[field_name]
    for field_name in ("device_observer_uid", "device_observer_name", "physical_location"):
        if obs.get(field_name):
            updates[field_name] = obs[field_name]
    if updates:
        common["equipment"] = replace(eq, **updates)


_ROOT_HANDLED = {
    C.PROCEDURE_REPORTED, C.SCOPE_OF_ACCUMULATION, C.ACCUMULATED_XRAY_DOSE, C.IRRADIATION_EVENT_XRAY_DATA,
    C.CT_ACCUMULATED_DOSE_DATA, C.CT_ACQUISITION,
}


def _scope(nodes: list[Node]) -> tuple[str, str]:
    scope = ""
    uid = ""
    for node in nodes:
        if node.key == C.SCOPE_OF_ACCUMULATION:
            ck = node.code_key()
            scope = C.SCOPE_NAMES.get(ck, "") if ck else ""
            for child in node.children:
                if child.vt in ("UIDREF", "TEXT") and child.value:
                    uid = str(child.value)
        elif node.key == C.STUDY_INSTANCE_UID and not uid and node.value:  # Canon: sibling (rdsr-codes.md §1.3)
            uid = str(node.value)
    return scope, uid


def _xray(nodes: list[Node], ctx: _sr.Context, common: dict, ds: Dataset, sop_class: str) -> DoseReport:
    _with_observer(common, nodes)
    procedure = None
    for node in nodes:
        if node.key == C.PROCEDURE_REPORTED and node.value:
            procedure = _sr.code_of(node.value)
            break
    keys = {node.key for node in nodes}
    template_id = _template_id(ds)
    proc_key = (procedure.scheme, procedure.value) if procedure else None
    is_ct = (proc_key == C.PROC_CT or C.CT_ACCUMULATED_DOSE_DATA in keys or C.CT_ACQUISITION in keys
             or (template_id == "10011" and C.ACCUMULATED_XRAY_DOSE not in keys))
    scope, scope_uid = _scope(nodes)
    events: list[IrradiationEventData] = []
    accumulated: list[AccumulatedDoseData] = []
    checks: list[DoseCheckData] = []
    content = []
    for node in nodes:
        key = node.key
        if is_ct and key == C.CT_ACQUISITION:
            events.append(_sr.ct_event(node, ctx, checks))
        elif is_ct and key == C.CT_ACCUMULATED_DOSE_DATA:
            accumulated.append(_sr.ct_accumulated(node, ctx))
        elif not is_ct and key == C.IRRADIATION_EVENT_XRAY_DATA:
            events.append(_sr.projection_event(node, ctx))
        elif not is_ct and key == C.ACCUMULATED_XRAY_DOSE:
            accumulated.append(_sr.projection_accumulated(node, ctx))
        elif key not in _ROOT_HANDLED:
            content.append(node.to_json())
    if is_ct:
        modality_types: tuple[str, ...] = ("CT",)
        template = "TID 10011"
    else:
        template = "TID 10001"
        modality_types = _projection_types(proc_key, events, accumulated)
    if sop_class not in (C.SOP_XRAY_RDSR,):
        ctx.warn(f"dose report in SOP class {sop_class} (not X-Ray Radiation Dose SR)")
    return DoseReport(
        source_kind=SOURCE_RDSR, template=template, procedure_reported=procedure, modality_types=modality_types,
        scope_of_accumulation=scope, scope_uid=scope_uid, accumulated=tuple(accumulated), events=tuple(events),
        dose_checks=tuple(checks), warnings=tuple(ctx.warnings), content=content, **common,
    )


def _projection_types(proc_key, events, accumulated) -> tuple[str, ...]:
    fluoro = any(e.event_type == "fluoroscopy" for e in events) or any(
        _positive(a, "fluoro_time_total_s") or _positive(a, "fluoro_kap_total_gycm2") for a in accumulated)
    mammo = proc_key == C.PROC_MAMMOGRAPHY or any("agd_mgy" in e.quantities for e in events) or any(
        name in a.quantities for a in accumulated for name in ("agd_left_mgy", "agd_right_mgy", "agd_both_mgy"))
    acquisitions = [e for e in events if e.event_type != "fluoroscopy"]
    radiography = not mammo and bool(acquisitions) and all(
        e.event_type in ("stationary_acquisition", "unknown") for e in acquisitions) and not fluoro
    out = []
    if fluoro:
        out.append("fluoroscopy")
    if mammo:
        out.append("mammography")
    if radiography:
        out.append("radiography")
    return tuple(out)


def _rrdsr(nodes: list[Node], ctx: _sr.Context, common: dict, ds: Dataset) -> DoseReport:
    events = []
    content = []
    procedure = None
    for node in nodes:
        if node.key == C.RADIOPHARM_ADMINISTRATION:
            events.append(_sr.radiopharm_event(node, ctx))
        elif node.key == C.PATIENT_CHARACTERISTICS:
            found = _sr.patient_characteristics(node)
            patient = common["patient"]
            updates = {k: v for k, v in found.items() if v not in (None, "") and not getattr(patient, k)}
            if updates:
                common["patient"] = replace(patient, **updates)
            content.append(node.to_json())
        elif node.key == C.ASSOCIATED_PROCEDURE:
            procedure = _sr.code_of(node.value)
            content.append(node.to_json())
        else:
            content.append(node.to_json())
    acc_q = {}
    for name in ("activity_mbq", "effective_dose_msv"):
        values = [e.quantities[name] for e in events if name in e.quantities]
        if len(values) == 1:
            acc_q[name] = values[0]
        elif values:
            acc_q[name] = Quantity(value=sum(v.value for v in values), raw_value=";".join(v.raw_value for v in values),
                                   raw_unit=values[0].raw_unit)
    return DoseReport(
        source_kind=SOURCE_RRDSR, template="TID 10021", procedure_reported=procedure,
        modality_types=("nuclear_medicine",), accumulated=(AccumulatedDoseData(quantities=acc_q),),
        events=tuple(events), warnings=tuple(ctx.warnings), content=content, **common,
    )
