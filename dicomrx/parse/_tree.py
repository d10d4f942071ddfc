"""SR content items (PS3.3 C.17.3 SR Document Content) as light nodes, built from the raw ContentSequence.

Used for every SR template the parser reads (TID 10001-10015, 10021-10024, the Siemens 99SMS_RADSUM summary).
Concept codes are normalised on the way in (``dicomrx.codes.normalise``: SRT/SNM3 -> SCT, UCM -> UCUM).
"""

from __future__ import annotations

import struct
from typing import Any

from pydicom.charset import decode_bytes

from dicomrx.codes import normalise
from dicomrx.parse._raw import RawError, decode_code_sequence, sw
from dosereg.core.dose_report import DoseParseError

T_VALUE_TYPE = sw(0x0040A040)
T_RELATIONSHIP = sw(0x0040A010)
T_CONCEPT_NAME = sw(0x0040A043)
T_CONCEPT_CODE = sw(0x0040A168)
T_MEASURED_VALUE = sw(0x0040A300)
T_UNITS = sw(0x004008EA)
T_NUMERIC_VALUE = sw(0x0040A30A)
T_FLOAT_VALUE = sw(0x0040A161)
T_QUALIFIER = sw(0x0040A301)
T_TEXT = sw(0x0040A160)
T_DATETIME = sw(0x0040A120)
T_DATE = sw(0x0040A121)
T_TIME = sw(0x0040A122)
T_PNAME = sw(0x0040A123)
T_UID = sw(0x0040A124)
T_CONTENT = sw(0x0040A730)
T_CODE_VALUE = sw(0x00080100)
T_SCHEME = sw(0x00080102)
T_MEANING = sw(0x00080104)
T_LONG_CODE = sw(0x00080119)
T_URN_CODE = sw(0x00080120)

_STRING_VALUE_TAGS = {"TEXT": T_TEXT, "DATETIME": T_DATETIME, "DATE": T_DATE, "TIME": T_TIME, "UIDREF": T_UID,
                      "PNAME": T_PNAME, "PERSON NAME": T_PNAME}


# Decoded code sequences and short strings, kept across objects: a scanner sends the same concept names, units and
# value types in every report.  A decoding depends only on the bytes, the character set and the VR encoding, which
# key the caches; each is emptied when it grows past _CACHE_LIMIT entries (values such as UIDs never repeat).
_CACHES: dict[tuple[tuple[str, ...], bool], tuple[dict, dict]] = {}
_CACHE_LIMIT = 20_000


def _caches(encodings: list[str], implicit: bool) -> tuple[dict, dict]:
    key = (tuple(encodings), implicit)
    found = _CACHES.get(key)
    if found is None:
        if len(_CACHES) > 16:  # many character sets seen: start again rather than grow
            _CACHES.clear()
        found = _CACHES[key] = ({}, {})
    for cache in found:
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
    return found


class Decoder:
    """Decodes strings with the object's Specific Character Set; caches decoded code sequences."""

    def __init__(self, encodings: list[str], implicit: bool) -> None:
        self.encodings = encodings
        self.implicit = implicit
        self.codes: dict[bytes, tuple | None]
        self.strings: dict[bytes, str]
        self.codes, self.strings = _caches(encodings, implicit)
        # item (by identity) -> its node: the raw reader shares one parsed item between every place its bytes repeat
        self.nodes: dict[int, Node] = {}

    def text(self, raw: bytes | None, *, person: bool = False) -> str:
        """A str decoded with the Specific Character Set, NUL characters removed, never cut."""
        if not raw:
            return ""
        if not isinstance(raw, (bytes, bytearray)):
            raise _NotText()
        if not person:
            hit = self.strings.get(raw)
            if hit is not None:
                return hit
        # ASCII fast path, except ISO 2022 text: its escape sequences switch to 7-bit multi-byte sets (IR 87)
        if b"\x1b" in raw or not raw.isascii():
            delims = {0x5E, 0x3D} if person else set()
            try:
                text = decode_bytes(bytes(raw), self.encodings, delims)
            except (UnicodeDecodeError, LookupError):  # pydicom in strict mode: undecodable bytes become U+FFFD
                text = bytes(raw).decode(self.encodings[0] if self.encodings else "latin_1", "replace")
        else:
            text = raw.decode("ascii")
        text = text.replace("\x00", "")
        if person:
            return text.rstrip(" ")
        text = text.strip(" ")
        if len(raw) <= 64:
            self.strings[raw] = text
        return text

    def code(self, raw: Any) -> tuple | None:
        """(scheme, value, meaning, raw_scheme, raw_value) of the first item of a code sequence, or None.
        Raises _NotCode when the element does not hold a code sequence (a damaged encoding)."""
        if raw is None:
            return None
        if isinstance(raw, list):  # parsed already (nested in an unusual place)
            return self._code_item(raw[0]) if raw else None
        hit = self.codes.get(raw, False)
        if hit is not False:
            return hit
        try:
            items = decode_code_sequence(raw, self.implicit)
            result = self._code_item(items[0]) if items else None
        except (RawError, _NotText, struct.error) as exc:
            raise _NotCode() from exc
        self.codes[raw] = result
        return result

    def _code_item(self, item: dict) -> tuple | None:
        if not isinstance(item, dict):
            raise _NotCode()
        try:
            value = self.text(item.get(T_CODE_VALUE) or item.get(T_LONG_CODE) or item.get(T_URN_CODE))
            raw_scheme = self.text(item.get(T_SCHEME))
            meaning = self.text(item.get(T_MEANING))
        except _NotText as exc:
            raise _NotCode() from exc
        if not value and not raw_scheme:
            return None
        scheme, norm = normalise(raw_scheme, value)
        return (scheme, norm, meaning, raw_scheme, value)


class _NotText(ValueError):
    """A text element holds a sequence (a damaged encoding)."""


class _NotCode(ValueError):
    """A code sequence element holds something else (a damaged encoding)."""


class Node:
    """One content item.  Items repeated byte for byte are one shared node (``Decoder.nodes``): read-only once built."""

    __slots__ = ("rel", "vt", "key", "meaning", "value", "unit", "unit_scheme", "qualifier", "children", "json")

    def __init__(self) -> None:
        self.rel = ""
        self.vt = ""
        self.key: tuple[str, str] = ("", "")
        self.meaning = ""
        self.value: Any = None  # NUM: numeric string or None; CODE: code tuple; others: str
        self.unit: str | None = None
        self.unit_scheme = ""
        self.qualifier: tuple | None = None
        self.children: list[Node] = []
        self.json: dict[str, Any] | None = None  # to_json, made once

    # navigation ------------------------------------------------------------------------------------------------------
    def first(self, key: tuple[str, str]) -> Node | None:
        for child in self.children:
            if child.key == key:
                return child
        return None

    def all(self, key: tuple[str, str]) -> list[Node]:
        return [child for child in self.children if child.key == key]

    def code_key(self) -> tuple[str, str] | None:
        return (self.value[0], self.value[1]) if self.vt == "CODE" and self.value else None

    def to_json(self) -> dict[str, Any]:
        """The item as JSON-able data.  A shared node gives the same dict wherever it is met (read-only, like the
        node): the item is built once, and the registry serialises each distinct item of a report once."""
        if self.json is not None:
            return self.json
        item: dict[str, Any] = {"concept": [self.key[0], self.key[1], self.meaning], "type": self.vt}
        if self.vt == "CODE":
            item["value"] = list(self.value[:3]) if self.value else None
        else:
            item["value"] = self.value
        if self.vt == "NUM":
            item["unit"] = self.unit
            if self.qualifier:
                item["qualifier"] = list(self.qualifier[:3])
        if self.rel:
            item["rel"] = self.rel
        if self.children:
            item["children"] = [child.to_json() for child in self.children]
        self.json = item
        return item


def build_nodes(items: list[dict], dec: Decoder, depth: int = 0, parent: tuple = ()) -> list[Node]:
    """Nodes of a ContentSequence's items.  A damaged item raises DoseParseError naming it by its position in the
    tree ("content item 3.2.1": the third root item's second child's first child; ``parent``: the (items, item)
    pairs of the items above, made into that text only for a damaged item)."""
    if depth > 60:
        raise DoseParseError("content tree nested too deep")
    nodes = []
    built = dec.nodes
    for item in items:  # most items of a large report repeat one already built: a look-up each
        node = built.get(id(item))
        if node is None:
            node = _build(item, items, dec, depth, parent)
        nodes.append(node)
    return nodes


def _build(item: dict, items: list[dict], dec: Decoder, depth: int, parent: tuple) -> Node:
    where = (*parent, (items, item))
    if not isinstance(item, dict):
        raise _damaged(where, "not a sequence item")
    node = Node.__new__(Node)
    try:
        _fill(node, item, dec)
    except _NotText:
        raise _damaged(where, "a text value is encoded as a sequence") from None
    except _NotCode:
        raise _damaged(where, "a code (concept name, value or unit) is not a code sequence") from None
    except _NotSequence as exc:
        raise _damaged(where, f"{exc} is not a sequence") from None
    children = item.get(T_CONTENT)
    if children is not None and not isinstance(children, list):
        raise _damaged(where, "its Content Sequence (0040,A730) is not a sequence")
    node.children = build_nodes(children, dec, depth + 1, where) if children else []
    dec.nodes[id(item)] = node
    return node


def _damaged(where: tuple, what: str) -> DoseParseError:
    # an item's position is its first place among its siblings: an item repeated earlier would have been built there
    places = (next(i for i, other in enumerate(items, 1) if other is item) for items, item in where)
    return DoseParseError(f"content item {'.'.join(str(place) for place in places)}: {what}")


class _NotSequence(ValueError):
    """A sequence element holds something else; the message names the element."""


def _fill(node: Node, item: dict, dec: Decoder) -> None:
    # the decoders' caches are read here first (a fresh item of a large report is mostly values met before)
    strings, codes = dec.strings, dec.codes
    node.json = None
    raw = item.get(T_VALUE_TYPE)
    vt = strings.get(raw) if type(raw) is bytes else None
    node.vt = vt = (dec.text(raw) if vt is None else vt).upper()
    raw = item.get(T_RELATIONSHIP)
    rel = strings.get(raw) if type(raw) is bytes else None
    node.rel = dec.text(raw) if rel is None else rel
    raw = item.get(T_CONCEPT_NAME)
    concept = codes.get(raw, False) if type(raw) is bytes else False
    if concept is False:
        concept = dec.code(raw)
    if concept:
        node.key = (concept[0], concept[1])
        node.meaning = concept[2]
    else:
        node.key = ("", "")
        node.meaning = ""
    node.value = None
    node.unit = None
    node.unit_scheme = ""
    node.qualifier = None
    if vt == "NUM":
        _read_num(node, item, dec, strings, codes)
    elif vt == "CODE":
        node.value = dec.code(item.get(T_CONCEPT_CODE))
    elif vt in _STRING_VALUE_TAGS:
        tag = _STRING_VALUE_TAGS[vt]
        node.value = dec.text(item.get(tag), person=tag == T_PNAME) or None
        if vt == "PERSON NAME":
            node.vt = "PNAME"


def _read_num(node: Node, item: dict, dec: Decoder, strings: dict, codes: dict) -> None:
    raw = item.get(T_QUALIFIER)
    node.qualifier = None if raw is None else dec.code(raw)
    measured = item.get(T_MEASURED_VALUE)
    if not measured:  # empty MeasuredValueSequence (with or without qualifier): the value is missing, not 0
        return
    if not isinstance(measured, list) or not isinstance(measured[0], dict):
        raise _NotSequence("its Measured Value Sequence (0040,A300)")
    mv = measured[0]
    raw_num = mv.get(T_NUMERIC_VALUE)
    text = strings.get(raw_num) if type(raw_num) is bytes else None
    if text is None:
        text = dec.text(raw_num) if raw_num else ""
    fv = mv.get(T_FLOAT_VALUE)
    if not text and fv:
        if not isinstance(fv, (bytes, bytearray)):
            raise _NotText()
        if len(fv) >= 8:
            text = repr(struct.unpack_from("<d", fv)[0])  # FD: 'nan' / 'inf' pass through as such
    node.value = text or None
    raw = mv.get(T_UNITS)
    unit = codes.get(raw, False) if type(raw) is bytes else False
    if unit is False:
        unit = dec.code(raw)
    if unit:
        node.unit = unit[4]  # the code value exactly as sent
        node.unit_scheme = unit[0]
    if node.qualifier is None:
        raw = mv.get(T_QUALIFIER)
        node.qualifier = None if raw is None else dec.code(raw)
