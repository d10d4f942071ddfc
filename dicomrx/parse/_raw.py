"""A minimal reader of encoded DICOM bytes for the SR content tree (TID 10001 / 10011 / 10021 trees can be large).

pydicom converts nested sequence items lazily and slowly (seconds for a 15 000-item RDSR), so the ContentSequence is
walked here directly: Explicit and Implicit VR Little Endian, defined and undefined lengths (PS3.5 §7.1, §7.5).
Only what the dose parser needs is produced: each item is a ``dict`` tag -> bytes, or tag -> list of items for a
sequence.  Big endian and deflated transfer syntaxes are re-encoded by the caller before they get here.
"""

from __future__ import annotations

import struct

from pydicom.datadict import DicomDictionary

_HDR = struct.Struct("<HHL")  # group, element, 32-bit length (implicit VR, and item tags)
_TL = struct.Struct("<LL").unpack_from  # "swapped" tag (element << 16 | group) and 32-bit length, in one call
_EXP = struct.Struct("<HH2sH")  # group, element, VR, 16-bit length (explicit VR, short form)
_TVL = struct.Struct("<L2sH").unpack_from  # swapped tag, VR, 16-bit length
_U32 = struct.Struct("<L")
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
_UNDEFINED = 0xFFFFFFFF


def sw(tag: int) -> int:
    """The key used in parsed items: the tag with group and element swapped (how the bytes read as one uint32)."""
    return (tag & 0xFFFF) << 16 | tag >> 16


_ITEM = sw(0xFFFEE000)
_ITEM_END = sw(0xFFFEE00D)
_SEQ_END = sw(0xFFFEE0DD)
PIXEL_DATA = 0x7FE00010
CONTENT_SEQUENCE = 0x0040A730
_PIXEL_SW = sw(PIXEL_DATA)
_DELIM_GROUP = 0xFFFE

_SQ_TAGS = frozenset(sw(tag) for tag, entry in DicomDictionary.items() if entry[0] == "SQ")
_SLOW_IMPLICIT = _SQ_TAGS | {_ITEM_END, _ITEM, _SEQ_END}
# Code sequences (concept name, concept code, units, qualifier) are kept as raw bytes and decoded through a cache:
# an RDSR repeats the same few hundred codes thousands of times.
CODE_SEQUENCES = frozenset(sw(t) for t in (0x0040A043, 0x0040A168, 0x004008EA, 0x0040A301))
_SEQ_DELIM_BYTES = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
_ITEM_END_TAG = b"\xfe\xff\x0d\xe0"  # (FFFE,E00D) Item Delimitation Item, as the last 8 bytes of an item begin
_CODE_SEQ_SET = CODE_SEQUENCES
_MEASURED_VALUE = sw(0x0040A300)  # Measured Value Sequence


def decode_code_sequence(raw: bytes, implicit: bool) -> list[dict]:
    """Parse the raw bytes of a code sequence kept by the item parsers (with or without its delimiter)."""
    if raw.endswith(_SEQ_DELIM_BYTES):
        return parse_items(raw, 0, -1, implicit)[0]
    return parse_items(raw, 0, len(raw), implicit)[0]

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"


class RawError(ValueError):
    """The bytes do not form a valid encoding (truncated, wrong lengths, delimiters missing)."""


_NO_ENTRY = (-1, b"", None, 0)  # an item not kept: matches no item header's length


class ItemMemo:
    """Parsed sequence items of one object by their encoded bytes.  An RDSR repeats the same items hundreds of times
    (the same filter, event type, reference point in every event: 2 614 distinct of 14 736 content items in a
    316-event report), and the same bytes parse to the same item, so a repeat costs a compare or a lookup.

    Each item kept is an entry (length in its item header, encoded bytes, item, depth).  The repeats of a report come
    in the same order in each event, so the entry at the same place of the sequence last read at that depth is tried
    first, by comparing the bytes in place; then the entries by their bytes.  A defined-length item is found by its
    bytes directly.  An undefined-length item's end is only known after parsing it, so the lengths seen are kept by
    the item's first bytes and each candidate is checked by the whole encoded item (up to and including its
    delimiter).  An item is reused only at a depth no deeper than where it was first parsed, so the nesting limit
    still holds.  One memo per VR encoding (an implicit UN sequence gets none)."""

    __slots__ = ("defined", "undefined", "lengths", "last")
    MAX_ITEM = 2048  # events and other large containers never repeat: not worth a copy of their bytes
    HEAD = 64  # relationship, value type and the start of the concept name: separates items well
    MAX_LENGTHS = 8

    def __init__(self) -> None:
        self.defined: dict[bytes, tuple] = {}
        self.undefined: dict[bytes, tuple] = {}
        self.lengths: dict[bytes, list[int]] = {}
        self.last: dict[int, list[tuple]] = {}  # depth -> the entries of the sequence last read there

    def find(self, buf: bytes, pos: int, length: int, depth: int) -> tuple | None:
        """The entry of the item whose value starts at ``pos`` if these bytes were parsed before."""
        if length != _UNDEFINED:
            if length > self.MAX_ITEM:
                return None
            hit = self.defined.get(buf[pos:pos + length])
            return hit if hit is not None and hit[3] >= depth else None
        undefined = self.undefined
        for size in self.lengths.get(buf[pos:pos + self.HEAD], ()):
            if not buf.startswith(_ITEM_END_TAG, pos + size - 8):
                continue  # no item ends there, so none of this length starts here: not copied and hashed
            hit = undefined.get(buf[pos:pos + size])
            if hit is not None:
                return hit if hit[3] >= depth else None
        return None

    def keep(self, buf: bytes, start: int, end: int, length: int, item: dict, depth: int) -> tuple:
        size = end - start
        if size > self.MAX_ITEM:
            return _NO_ENTRY
        encoded = buf[start:end]
        entry = (length, encoded, item, depth)
        if length != _UNDEFINED:
            self.defined[encoded] = entry
            return entry
        self.undefined[encoded] = entry
        sizes = self.lengths.setdefault(buf[start:start + self.HEAD], [])
        if size not in sizes and len(sizes) < self.MAX_LENGTHS:
            sizes.append(size)
        return entry


def parse_items(buf: bytes, pos: int, end: int, implicit: bool, depth: int = 0,
                memo: ItemMemo | None = None) -> tuple[list[dict], int]:
    """Parse the items of a sequence value from ``pos`` up to ``end`` (or its sequence delimiter) -> (items, pos).
    Items are shared between places where the same bytes occur when a ``memo`` is given: treat them as read-only."""
    if depth > 64:
        raise RawError("sequences nested too deep")
    items: list[dict] = []
    size = len(buf)
    undefined = end < 0
    limit = size if undefined else end
    parse = _parse_implicit if implicit else _parse_explicit
    before = memo.last.get(depth, ()) if memo is not None else ()
    entries: list[tuple] = []
    while pos < limit:
        if pos + 8 > limit:
            raise RawError("truncated sequence")
        tag, length = _TL(buf, pos)
        pos += 8
        if tag == _ITEM:
            if memo is not None:
                # first the entry at this place of the sequence last read at this depth (read at it or nearer the
                # root: the nesting limit holds for it), compared in place; then the entries by their bytes
                index = len(items)
                entry = before[index] if index < len(before) else _NO_ENTRY
                if entry[0] != length or not buf.startswith(entry[1], pos):
                    entry = memo.find(buf, pos, length, depth)
                if entry is not None:
                    items.append(entry[2])
                    entries.append(entry)
                    pos += len(entry[1])
                    continue
            start = pos
            item_end = -1 if length == _UNDEFINED else pos + length
            if item_end > limit:
                raise RawError("truncated sequence item")
            item, pos = parse(buf, pos, item_end, depth + 1, memo)
            if memo is not None:
                entries.append(memo.keep(buf, start, pos, length, item, depth))
            items.append(item)
        elif tag == _SEQ_END:
            if undefined:
                break
        else:
            raise RawError(f"expected an item tag at offset {pos - 8}")
    else:
        if undefined:
            raise RawError("truncated sequence (no sequence delimiter)")
        if pos != end:
            raise RawError("sequence length does not match its items")
    if memo is not None:
        memo.last[depth] = entries
    return items, pos


def _parse_implicit(buf: bytes, pos: int, end: int, depth: int, memo: ItemMemo | None) -> tuple[dict, int]:
    # Hot loop (a 15 000-item RDSR has ~160 000 elements): value bounds are checked once, at the end (a slice past
    # the end of the buffer leaves ``pos`` beyond ``limit``); struct.error on a short header is mapped by the caller.
    out: dict = {}
    undefined = end < 0
    limit = len(buf) if undefined else end
    slow = _SLOW_IMPLICIT
    tl = _TL
    while pos < limit:
        tag, length = tl(buf, pos)
        pos += 8
        if tag in slow or length == _UNDEFINED:
            if tag == _ITEM_END:
                if undefined:
                    return out, pos
                continue
            out[tag], pos = _sequence(buf, tag, pos, length, limit, True, depth, memo)
            continue
        nxt = pos + length
        out[tag] = buf[pos:nxt]
        pos = nxt
    if undefined:
        raise RawError("truncated item (no item delimiter)")
    if pos != limit:
        raise RawError(f"truncated value (element runs past its item or the data) at offset {pos}")
    return out, pos


def _parse_explicit(buf: bytes, pos: int, end: int, depth: int, memo: ItemMemo | None) -> tuple[dict, int]:
    out: dict = {}
    undefined = end < 0
    limit = len(buf) if undefined else end
    long_vrs = _LONG_VRS
    tvl = _TVL
    while pos < limit:
        if pos + 8 > limit:
            raise RawError(f"truncated element header at offset {pos}")
        tag, vr, length = tvl(buf, pos)
        if tag & 0xFFFF == _DELIM_GROUP:
            pos += 8
            if tag == _ITEM_END:
                if undefined:
                    return out, pos
                continue
            raise RawError(f"unexpected delimiter at offset {pos - 8}")
        if vr in long_vrs:
            if pos + 12 > limit:
                raise RawError("truncated element header")
            length = _U32.unpack_from(buf, pos + 8)[0]
            pos += 12
            if vr == b"SQ":
                out[tag], pos = _sequence(buf, tag, pos, length, limit, False, depth, memo)
                continue
            if length == _UNDEFINED:
                if vr != b"UN":
                    raise RawError("undefined length on a non-sequence element")
                # a UN sequence of undefined length is encoded implicit VR (PS3.5 §6.2.2)
                out[tag], pos = parse_items(buf, pos, -1, True, depth)
                continue
        else:
            pos += 8
        nxt = pos + length
        if nxt > limit:
            raise RawError(f"truncated value at offset {pos}")
        out[tag] = buf[pos:nxt]
        pos = nxt
    if undefined:
        raise RawError("truncated item (no item delimiter)")
    return out, pos


class TopLevel:
    """Where things are in an encoded file: transfer syntax, dataset start, ContentSequence span, pixel data."""

    __slots__ = ("transfer_syntax", "dataset_start", "content_span", "content_value", "pixel_ok", "content_items",
                 "sequence_spans", "elements", "stop")

    def __init__(self) -> None:
        self.transfer_syntax = ""
        self.dataset_start = 0
        self.content_span: tuple[int, int] | None = None
        self.content_value: tuple[int, int] | None = None  # (value start, value end or -1 for undefined)
        self.pixel_ok = True
        self.content_items: list[dict] | None = None
        self.sequence_spans: list[tuple[int, int, int]] = []  # (tag, start, end) of the other top-level sequences
        # every top-level element before the pixel data as (start, tag, length field, value start, end, is a
        # sequence), and (start, tag) of the element the scan stopped at (pixel data or beyond), for header_elements
        self.elements: list[tuple[int, int, int, int, int, bool]] = []
        self.stop: tuple[int, int] | None = None


def scan_top_level(buf: bytes) -> TopLevel:
    """Walk the file meta and the top-level elements (skipping over values) up to the pixel data."""
    top = TopLevel()
    pos = _scan_file_meta(buf, top)
    top.dataset_start = pos
    implicit = _dataset_is_implicit(buf, top)
    header = _implicit_header if implicit else _explicit_header
    size = len(buf)
    elements = top.elements
    while pos + 8 <= size:
        start = pos
        tag, length, pos, is_sq, sub_implicit = header(buf, pos)
        if tag >= PIXEL_DATA:
            top.stop = (start, tag)
            if tag == PIXEL_DATA:
                top.pixel_ok = _pixel_data_complete(buf, pos, length)
            return top  # ``pos`` is inside the pixel data now, which may be shorter than an element header
        value_start = pos
        if length == _UNDEFINED:
            if not is_sq:
                raise RawError(f"undefined length on {tag:08X}")
            memo = ItemMemo() if tag == CONTENT_SEQUENCE else None
            items, pos = parse_items(buf, pos, -1, sub_implicit, memo=memo)
            value_end = -1
            if tag == CONTENT_SEQUENCE:
                top.content_items = items
        else:
            pos += length
            value_end = pos
            if pos > size:
                raise RawError(f"truncated value of top-level element {tag:08X}")
        elements.append((start, tag, length, value_start, pos, is_sq))
        if tag == CONTENT_SEQUENCE:
            top.content_span = (start, pos)
            top.content_value = (value_start, value_end)
        elif is_sq:
            top.sequence_spans.append((tag, start, pos))
    if pos < size and pos + 8 > size:
        raise RawError("truncated: a partial element header at the end of the data")
    return top


def _scan_file_meta(buf: bytes, top: TopLevel) -> int:
    """Read the transfer syntax from the file meta information (always explicit VR little endian) into ``top``;
    returns where the dataset starts."""
    elements, pos = _meta_elements(buf, 132 if len(buf) >= 132 and buf[128:132] == b"DICM" else 0)
    for elem, _, at, length in elements:
        if elem == 0x0010:
            top.transfer_syntax = bytes(buf[at:at + length]).rstrip(b"\x00 ").decode("ascii", "replace")
    return pos


def _meta_elements(buf: bytes, pos: int) -> tuple[list[tuple[int, bytes, int, int]], int]:
    """The file meta elements from ``pos`` on as (element number, VR, value start, value length), and where the
    dataset starts.  Raises RawError on a truncated one."""
    elements, size = [], len(buf)
    while pos + 8 <= size:
        group, elem, vr, length = _EXP.unpack_from(buf, pos)
        if group != 0x0002:
            break
        if vr in _LONG_VRS:
            length = _U32.unpack_from(buf, pos + 8)[0]
            pos += 12
        else:
            pos += 8
        if pos + length > size:
            raise RawError("truncated file meta information")
        elements.append((elem, vr, pos, length))
        pos += length
    return elements, pos


def _dataset_is_implicit(buf: bytes, top: TopLevel) -> bool:
    """Implicit VR or not, from the transfer syntax; without one, guessed from the data (and recorded in ``top``)."""
    ts = top.transfer_syntax
    if ts in (DEFLATED, EXPLICIT_BE):
        raise RawError(f"transfer syntax {ts} is re-encoded by the caller")
    if ts:
        return ts == IMPLICIT_LE
    implicit = _looks_implicit(buf, top.dataset_start)
    top.transfer_syntax = IMPLICIT_LE if implicit else EXPLICIT_LE
    return implicit


def _implicit_header(buf: bytes, pos: int) -> tuple[int, int, int, bool, bool]:
    """(tag, value length, value position, is a sequence, items implicit) of an implicit VR element at ``pos``."""
    group, elem, length = _HDR.unpack_from(buf, pos)
    tag = group << 16 | elem
    is_sq = sw(tag) in _SQ_TAGS or (length == _UNDEFINED and tag != PIXEL_DATA)
    return tag, length, pos + 8, is_sq, True


def _explicit_header(buf: bytes, pos: int) -> tuple[int, int, int, bool, bool]:
    """The same for an explicit VR element (a UN sequence's items are implicit VR, PS3.5 §6.2.2)."""
    group, elem, vr, length = _EXP.unpack_from(buf, pos)
    tag = group << 16 | elem
    if vr in _LONG_VRS:
        if pos + 12 > len(buf):
            raise RawError("truncated element header")
        length = _U32.unpack_from(buf, pos + 8)[0]
        pos += 12
    else:
        pos += 8
    is_sq = vr == b"SQ" or (vr == b"UN" and length == _UNDEFINED)
    return tag, length, pos, is_sq, vr == b"UN"


def _pixel_data_complete(buf: bytes, pos: int, length: int) -> bool:
    """Pixel data whose value ends within the data (defined length) or has its sequence delimiter (encapsulated)."""
    if length == _UNDEFINED:
        return buf.find(_SEQ_DELIM_BYTES, pos) >= 0
    return pos + length <= len(buf)


def _looks_implicit(buf: bytes, pos: int) -> bool:
    """Guess the VR encoding of a dataset without file meta (the first element's VR bytes are letters or not)."""
    if pos + 6 > len(buf):
        return True
    vr = buf[pos + 4:pos + 6]
    return not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90)


def parse_content_sequence(buf: bytes, top: TopLevel) -> list[dict]:
    if top.content_items is not None:
        return top.content_items
    if top.content_value is None:
        return []
    start, end = top.content_value
    return parse_items(buf, start, end, top.transfer_syntax == IMPLICIT_LE, memo=ItemMemo())[0]


def _sequence(buf: bytes, tag: int, pos: int, length: int, limit: int, implicit: bool, depth: int,
              memo: ItemMemo | None):
    """A sequence value starting at ``pos``: code sequences are kept as raw bytes (decoded later, through a cache),
    other sequences are parsed into their items.  Returns (value, position after it)."""
    if tag in _CODE_SEQ_SET:
        if length == _UNDEFINED:
            nxt = buf.find(_SEQ_DELIM_BYTES, pos)
            if nxt < 0:
                raise RawError("truncated code sequence")
            nxt += 8
        else:
            nxt = pos + length
            if nxt > limit:
                raise RawError("truncated code sequence")
        return buf[pos:nxt], nxt
    if tag == _MEASURED_VALUE:
        # the item holding a NUM's value repeats mostly as part of a repeat of its whole content item, which the
        # memo finds first; looking up and keeping each one cost more than the few others it would find
        memo = None
    if length == _UNDEFINED:
        return parse_items(buf, pos, -1, implicit, depth, memo)
    nxt = pos + length
    if nxt > limit:
        raise RawError("truncated sequence")
    return parse_items(buf, pos, nxt, implicit, depth, memo)


_IDENTITY_TAGS = (0x00080016, 0x00080018, 0x00080060, 0x0020000D)  # SOP Class, SOP Instance, Modality, Study UID
_MEDIA_STORAGE = {0x0002: 0x00080016, 0x0003: 0x00080018}  # file meta (0002,0002), (0002,0003) -> dataset tag


def identity_elements(buf: bytes) -> dict[int, str] | None:
    """SOP Class UID, SOP Instance UID, Modality and Study Instance UID of a Part 10 file (preamble, DICM, file
    meta, Explicit or Implicit VR Little Endian) as ASCII text stripped of spaces and NULs, by tag; the file meta's
    Media Storage SOP Class / Instance UIDs under the dataset tags when the dataset has none.  Reads only the
    elements before (0020,000D) (the content tree comes after).  None for anything else (no preamble, another
    transfer syntax, an undefined length before the Study UID, non-ASCII text, truncation): the caller reads those
    with pydicom, which says what is wrong."""
    try:
        return _identity_elements(buf)
    except (RawError, struct.error, UnicodeDecodeError):
        return None


def _identity_elements(buf: bytes) -> dict[int, str] | None:
    meta = _file_meta(buf)
    if meta is None or meta[1] not in (EXPLICIT_LE, IMPLICIT_LE):
        return None  # another transfer syntax
    pos, ts, media = meta
    implicit = ts == IMPLICIT_LE
    header = _implicit_header if implicit else _explicit_header
    found: dict[int, str] = {}
    size = len(buf)
    while pos + 8 <= size:
        if not implicit and buf[pos + 4:pos + 6] not in _KNOWN_VRS:
            return None  # pydicom decides what an unknown VR means
        tag, length, pos, _, _ = header(buf, pos)
        if tag > 0x0020000D:
            break
        if length == _UNDEFINED or pos + length > size:
            return None  # a sequence of undefined length (or a truncated value): pydicom walks it
        if tag in _IDENTITY_TAGS:
            found[tag] = _ascii(buf, pos, length)
        pos += length
    for tag, value in media.items():
        if not found.get(tag):
            found[tag] = value
    return found


def _file_meta(buf: bytes) -> tuple[int, str, dict[int, str]] | None:
    """(where the dataset starts, transfer syntax, Media Storage SOP Class / Instance UIDs by dataset tag) of a file
    with a preamble, DICM and file meta elements of known VRs whose group length, if given, ends them where they
    end: the file meta pydicom reads the same way.  None otherwise."""
    if len(buf) < 132 or buf[128:132] != b"DICM":
        return None
    elements, pos = _meta_elements(buf, 132)  # a truncated value raises RawError: the callers' None
    media: dict[int, str] = {}
    ts, meta_end = "", -1
    for elem, vr, at, length in elements:
        if vr not in _KNOWN_VRS:
            return None
        if elem == 0x0000 and length == 4:  # File Meta Information Group Length: where pydicom ends the meta
            meta_end = at + 4 + _U32.unpack_from(buf, at)[0]
        elif elem == 0x0010:
            ts = _ascii(buf, at, length)
        elif elem in _MEDIA_STORAGE:
            media[_MEDIA_STORAGE[elem]] = _ascii(buf, at, length)
    return (pos, ts, media) if meta_end in (-1, pos) else None


def _ascii(buf: bytes, pos: int, length: int) -> str:
    """A single ASCII text value as ``str(pydicom value).strip()`` gives it for UI and CS: trailing NULs and
    spaces, then surrounding white space, removed.  A multi-valued one raises (pydicom's str() of it differs)."""
    text = bytes(buf[pos:pos + length]).decode("ascii").rstrip("\x00 ").strip()
    if "\\" in text:
        raise RawError("multi-valued identity element")
    return text


_KNOWN_VRS = frozenset(vr.encode() for vr in (
    "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "OB", "OD", "OF", "OL", "OV", "OW", "PN",
    "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV"))


def header_elements(buf: bytes, top: TopLevel, keep_sequences: frozenset[int]) -> list[tuple] | None:
    """The top-level elements of a scanned object up to the pixel data, for a header dataset built without
    pydicom's element reader (``dicomrx.parse._read_header``): (tag, VR or None for implicit VR, value start,
    value end, undefined length) each, sequences only when in ``keep_sequences``.  None when anything would make
    pydicom read the header differently from these bytes (an unknown VR, a file meta element in the dataset, an
    element after the pixel data's place).  Taken from the elements ``scan_top_level`` met, not a second walk."""
    if not _plain_file_meta(buf, top.dataset_start):
        return None
    implicit = top.transfer_syntax == IMPLICIT_LE  # the scan took every other syntax it accepts as explicit VR LE
    content_start = top.content_span[0] if top.content_span is not None else -1
    known = _KNOWN_VRS
    out: list[tuple] = []
    for start, tag, length, value_start, end, is_sq in top.elements:
        vr = None
        if not implicit:
            vr = buf[start + 4:start + 6]
            if vr not in known:
                return None
            vr = vr.decode("ascii")
        if tag >> 16 in (0x0002, 0x7FE0):  # pydicom reads those otherwise
            return None
        if is_sq or start == content_start:  # a sequence the scan walked (the content tree among them)
            if tag in keep_sequences:
                out.append((tag, vr, value_start, end, length == _UNDEFINED))
            continue
        out.append((tag, vr, value_start, end, False))
    if top.stop is not None:
        start, tag = top.stop
        if tag != PIXEL_DATA or (not implicit and buf[start + 4:start + 6] not in known):
            return None  # where the scan stopped, pydicom reads on
    return out


def _plain_file_meta(buf: bytes, dataset_start: int) -> bool:
    """The file meta pydicom reads as the scan did (``_file_meta``), ending where the scan found the dataset."""
    try:
        meta = _file_meta(buf)
    except (RawError, struct.error, UnicodeDecodeError):
        return False
    return meta is not None and meta[0] == dataset_start
