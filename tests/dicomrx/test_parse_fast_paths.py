"""The parser's fast paths give the same report as the general ones.

The content reader shares one parsed item between every place its bytes repeat (``_raw.ItemMemo``) and re-encodes
big endian and deflated objects before reading; an object copied into another encoding (made here with pydicom from
a corpus file or a synthetic report) must give the very same DoseReport, value for value.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pydicom
import pytest
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from dicomrx.parse import _raw, parse_dose_object
from dosereg.core.dose_report import DoseParseError
from tests.dicomrx import synthetic

CORPUS = Path(__file__).parents[2] / ".." / "shared" / "rdsr"
CORPUS_FILES = [  # repeated items (CT, projection, mammography), a radiopharmaceutical report and an image header
    "ct/CT-RDSR-Siemens_Flash-QA-DS.dcm", "rf/RF-RDSR-Siemens-Zee.dcm", "mg/MG-RDSR-GEPristina-2D.dcm",
    "nm/NM-RRDSR-Siemens.dcm", "dx/DX-Im-Carestream_DRX.dcm",
]


def _source(name: str) -> bytes:
    if name.startswith("synthetic"):
        if name == "synthetic-ct":
            events = [{"ctdivol": 10.0, "dlp": 200.0}] * 3  # identical events: their items repeat byte for byte
            return synthetic.build_ct_rdsr(events=events)
        return synthetic.build_projection_rdsr()
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"corpus not found at {CORPUS} (../shared/rdsr)")
    return path.read_bytes()


def _undefined_lengths(ds: Dataset) -> None:
    for elem in ds:
        if elem.VR == "SQ":
            elem.is_undefined_length = True
            for item in elem.value:
                item.is_undefined_length_sequence_item = True
                _undefined_lengths(item)


def _copy(data: bytes, encoding: str) -> bytes:
    """The same object in another encoding: implicit VR, undefined lengths (explicit or implicit), big endian,
    deflated."""
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    for elem in ds.iterall():
        _ = elem.value  # every value converted, so binary values are written again in the new byte order
    ds.decode()  # text in str form, so it is written again in the object's own character set
    syntax = {"implicit": ImplicitVRLittleEndian, "undefined": ExplicitVRLittleEndian,
              "implicit-undefined": ImplicitVRLittleEndian, "big-endian": ExplicitVRBigEndian,
              "deflated": DeflatedExplicitVRLittleEndian}[encoding]
    if "undefined" in encoding:
        _undefined_lengths(ds)
    ds.file_meta.TransferSyntaxUID = syntax
    out = io.BytesIO()
    pydicom.dcmwrite(out, ds, implicit_vr=syntax == ImplicitVRLittleEndian, little_endian=syntax != ExplicitVRBigEndian,
                     enforce_file_format=True)
    return out.getvalue()


ENCODINGS = ["implicit", "undefined", "implicit-undefined", "big-endian", "deflated"]
SOURCES = ["synthetic-ct", "synthetic-projection", *CORPUS_FILES]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("name", SOURCES)
def test_another_encoding_gives_the_same_report(name: str, encoding: str) -> None:
    data = _source(name)
    copy = _copy(data, encoding)
    assert copy != data
    assert parse_dose_object(copy) == parse_dose_object(data)


@pytest.mark.parametrize("encoding", ["as-sent", "implicit-undefined", "undefined"])
@pytest.mark.parametrize("name", SOURCES)
def test_shared_items_give_the_same_report_as_parsing_each(name: str, encoding: str, monkeypatch) -> None:
    data = _source(name)
    if encoding != "as-sent":
        data = _copy(data, encoding)
    shared = parse_dose_object(data)
    monkeypatch.setattr(_raw.ItemMemo, "MAX_ITEM", -1)  # nothing kept: every item parsed where it occurs
    assert parse_dose_object(data) == shared


def test_repeated_items_are_parsed_once() -> None:
    """The memo finds an undefined-length item again by its bytes, and hands out the same parsed item."""
    data = _copy(synthetic.build_ct_rdsr(events=[{"ctdivol": 10.0, "dlp": 200.0}] * 3), "implicit-undefined")
    top = _raw.scan_top_level(data)
    events = [item for item in _raw.parse_content_sequence(data, top)
              if _raw.sw(0x0040A730) in item and len(item[_raw.sw(0x0040A730)]) > 3]
    assert len(events) == 3
    first, second = (event[_raw.sw(0x0040A730)] for event in events[:2])
    shared = [a is b for a, b in zip(first, second, strict=True)]
    assert any(shared) and not all(shared)  # the irradiation event UIDs differ, the rest repeats


def _chain(levels: int, inner: Dataset) -> Dataset:
    for _ in range(levels):
        inner = synthetic.item("CONTAINER", synthetic.dcm("113701", "X-Ray Radiation Dose Report"), children=[inner])
    return inner


def test_nesting_limit_holds_for_a_repeated_item() -> None:
    """A nested item read first near the root and repeated where it crosses the nesting limit is refused there:
    a repeat is only shared at a depth no deeper than where it was read."""
    nested = _chain(8, synthetic.text(synthetic.dcm("121106", "Comment"), "same"))
    ds = pydicom.dcmread(io.BytesIO(synthetic.build_ct_rdsr()), force=True)
    ds.ContentSequence = [nested, *ds.ContentSequence]
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    parse_dose_object(out.getvalue())  # near the root: well within the limit
    ds.ContentSequence = [nested, _chain(56, nested), *ds.ContentSequence[1:]]
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    with pytest.raises(DoseParseError, match="nested too deep"):
        parse_dose_object(out.getvalue())


def test_pixel_data_shorter_than_an_element_header_is_complete() -> None:
    """A 4-byte pixel data value ends the top-level scan cleanly (no fallback to a full pydicom read)."""
    ds = pydicom.dcmread(io.BytesIO(synthetic.build_ct_rdsr()), force=True)
    del ds.ContentSequence
    ds.PixelData = b"\x0c\x09\x12\x09"
    ds["PixelData"].VR = "OW"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    top = _raw.scan_top_level(out.getvalue())
    assert top.pixel_ok


# --- header text read without pydicom's conversion --------------------------------------------------------------------
def _text_of_every_element(data: bytes, monkeypatch, *, general: bool) -> dict[str, str]:
    from dicomrx.parse import _header

    with monkeypatch.context() as m:
        if general:
            m.setattr(_header, "_plain_text", lambda ds, tag: None)  # pydicom converts every value
        ds = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
        keywords = [keyword_for_tag(tag) for tag in list(ds.keys())]  # not iterating ds: that converts every value
        return {keyword: _header.text_of(ds, keyword) for keyword in keywords if keyword}


def _odd_text_values() -> bytes:
    ds = pydicom.dcmread(io.BytesIO(synthetic.build_projection_rdsr()), force=True)
    ds.StationName = " RAD 1 "  # SH: leading space kept by pydicom, trailing removed
    ds.InstitutionName = "Clinic \\ Annex "  # LO, two values: each right-stripped
    ds.ImageType = ["ORIGINAL ", " PRIMARY"]  # CS: only the whole value's end is stripped
    ds.RetrieveAETitle = [" AE1 ", "AE2"]  # AE: each value stripped both sides
    ds.StudyDescription = "Chest\x00"  # a NUL in the value
    ds.ImageComments = "  free text \\ with a backslash  "  # LT: one value, backslash kept
    ds.ContentDate = "20240101 "
    ds.Manufacturer = "Ümlaut"  # not ASCII: pydicom decodes it
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.mark.parametrize("name", ["odd-values", "synthetic-ct", *CORPUS_FILES])
def test_header_text_is_what_pydicom_reads(name: str, monkeypatch) -> None:
    data = _odd_text_values() if name == "odd-values" else _source(name)
    fast = _text_of_every_element(data, monkeypatch, general=False)
    assert fast == _text_of_every_element(data, monkeypatch, general=True)
    if name == "odd-values":
        assert fast["StationName"] == "RAD 1" and fast["InstitutionName"] == "Clinic\\ Annex"
        assert fast["RetrieveAETitle"] == "AE1\\AE2" and fast["Manufacturer"] == "Ümlaut"
        from dicomrx.parse import _header

        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        assert _header._plain_text(ds, 0x00081010) == "RAD 1"  # read here, not by pydicom
        assert _header._plain_text(ds, 0x00080070) is None  # not ASCII: pydicom decodes it


def test_decoding_caches_are_kept_per_character_set() -> None:
    """The same bytes in objects of different Specific Character Sets decode differently (the caches that live
    across objects are keyed by the character set)."""
    ds = pydicom.dcmread(io.BytesIO(synthetic.build_ct_rdsr()), force=True)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ContentSequence = [synthetic.text(synthetic.dcm("121106", "Comment"), "é"), *ds.ContentSequence]
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    utf8 = out.getvalue()
    latin1 = utf8.replace(b"ISO_IR 192", b"ISO_IR 100", 1)

    def comment(data: bytes) -> str:
        report = parse_dose_object(data)
        return next(item["value"] for item in report.content if item["concept"][1] == "121106")

    assert (comment(utf8), comment(latin1), comment(utf8)) == ("é", "Ã©", "é")


# --- header read without the sequences nobody opens -------------------------------------------------------------------
NESTED_ONLY = {"CTExposureSequence", "RadionuclideCodeSequence"}  # opened inside an item of a listed sequence


def test_every_sequence_the_header_readers_open_is_read() -> None:
    import ast

    from pydicom.datadict import dictionary_VR, tag_for_keyword

    from dicomrx.parse import _header

    named = set()
    for module in ("_header.py", "__init__.py"):
        tree = ast.parse((Path(_header.__file__).parent / module).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and tag_for_keyword(node.value):
                if dictionary_VR(tag_for_keyword(node.value)) == "SQ":
                    named.add(node.value)
    assert "ExposureDoseSequence" in named
    missing = {kw for kw in named - NESTED_ONLY if tag_for_keyword(kw) not in _header.HEADER_SEQUENCES}
    assert not missing, f"sequences read by the header code but left out of the header read: {missing}"


class _Everything:
    def __contains__(self, tag: object) -> bool:
        return True


@pytest.mark.parametrize("name", ["synthetic-projection", *CORPUS_FILES, "rf/RF-Pat-Orientation-Modifier-Missing.dcm",
                                  "ct/CT-SC-Philips_Brilliance16P.dcm", "nm/NM-PetIm-GE.dcm"])
def test_leaving_sequences_out_of_the_header_read_changes_nothing(name: str, monkeypatch) -> None:
    from dicomrx import parse

    data = _source(name)
    pruned = parse_dose_object(data)
    monkeypatch.setattr(parse, "HEADER_SEQUENCES", _Everything())
    assert parse_dose_object(data) == pruned


# --- the header dataset built from the raw scan (parse._header_from_scan) and the raw identity read (store) ---------
def _every_corpus_file() -> list[Path]:
    files = sorted(CORPUS.rglob("*.dcm"))
    if not files:
        pytest.skip(f"corpus not found at {CORPUS} (../shared/rdsr)")
    return files


def _outcome(data: bytes):
    try:
        return parse_dose_object(data)
    except Exception as exc:  # noqa: BLE001 - the refusal is compared, type and reason
        return type(exc).__name__, str(exc)


def _damaged(data: bytes, seed: int) -> bytes:
    """A copy cut short or with a few bytes changed in its first 3000 (file meta and header)."""
    import random

    rnd = random.Random(seed)
    out = bytearray(data)
    if seed % 4 == 0:
        return bytes(out[:rnd.randrange(120, len(out))])
    for _ in range(rnd.randrange(1, 4)):
        out[rnd.randrange(128, min(len(out), 3000))] = rnd.randrange(256)
    return bytes(out)


@pytest.mark.corpus
def test_header_built_from_the_scan_gives_what_pydicom_reads(monkeypatch) -> None:
    """Every corpus file, three re-encodings of a few and damaged copies: the same report or the same refusal
    whether the header dataset comes from the scan or from pydicom's reader."""
    from dicomrx import parse

    cases = []
    for path in _every_corpus_file():
        data = path.read_bytes()
        cases.append(data)
        cases.extend(_damaged(data, seed) for seed in range(6))
    cases.extend(_copy(_source(name), encoding) for name in CORPUS_FILES[:3] + CORPUS_FILES[4:]
                 for encoding in ("implicit", "undefined", "implicit-undefined"))
    fast = [_outcome(data) for data in cases]
    monkeypatch.setattr(parse, "_header_from_scan", lambda buf, top: None)
    slow = [_outcome(data) for data in cases]
    differ = [i for i, (a, b) in enumerate(zip(fast, slow, strict=True)) if a != b]
    assert not differ, f"{len(differ)} of {len(cases)} cases differ, e.g. {fast[differ[0]]!r} != {slow[differ[0]]!r}"


def _with_element(data: bytes, element: bytes, *, before_tag: int | None = None) -> bytes:
    """``data`` (explicit VR little endian) with ``element`` put before the first top-level element whose tag is at
    least ``before_tag``, or at the end."""
    top = _raw.scan_top_level(data)
    at = next((start for start, tag, *_ in top.elements if before_tag is not None and tag >= before_tag), len(data))
    return data[:at] + element + data[at:]


def test_header_taken_from_the_scan_leaves_to_pydicom_what_it_reads_otherwise(monkeypatch) -> None:
    """The elements the raw scan met make the header only where pydicom would read the same: a file meta element
    in the dataset, an element after the pixel data's place (dataset trailing padding) or an unknown VR send the
    object to pydicom's reader, and the outcome is the one that reader gives."""
    from dicomrx import parse

    sr = _source(CORPUS_FILES[0])
    cases = {
        "group 0002 in the dataset": _with_element(sr, b"\x02\x00\x13\x00SH\x04\x00ABCD", before_tag=0x00080005),
        "trailing padding": _with_element(sr, b"\xfc\xff\xfc\xffOB\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00"),
        "unknown VR": _with_element(sr, b"\x09\x00\x10\x00ZZ\x04\x00ABCD", before_tag=0x00090011),
    }
    used = []
    original = parse._header_from_scan

    def spy(buf, top):
        ds = original(buf, top)
        used.append(ds is not None)
        return ds

    monkeypatch.setattr(parse, "_header_from_scan", spy)
    fast = {name: _outcome(data) for name, data in cases.items()}
    assert used == [False] * len(cases)
    assert _outcome(sr) == parse_dose_object(sr) and used[-1]  # the plain object takes the scan's elements
    monkeypatch.setattr(parse, "_header_from_scan", lambda buf, top: None)
    assert fast == {name: _outcome(data) for name, data in cases.items()}


@pytest.mark.corpus
def test_identity_read_from_bytes_is_what_pydicom_reads(monkeypatch) -> None:
    from dicomrx import ingest

    cases = []
    for path in _every_corpus_file():
        data = path.read_bytes()
        cases.append(data)
        cases.extend(_damaged(data, seed) for seed in range(1, 8) if seed % 4)
    cases.extend(_copy(_source(name), encoding) for name in CORPUS_FILES for encoding in ("implicit", "undefined"))

    def read(data: bytes):
        try:
            return ingest.read_top_level(data)
        except Exception as exc:  # noqa: BLE001 - compared below
            return type(exc).__name__

    fast = [(read(data), ingest.identity_elements(data) is not None) for data in cases]
    monkeypatch.setattr(ingest, "identity_elements", lambda data: None)
    slow = [read(data) for data in cases]
    assert sum(used for _, used in fast) > len(cases) // 3  # the raw read is what most objects take
    differ = [i for i, ((a, _), b) in enumerate(zip(fast, slow, strict=True)) if a != b]
    assert not differ, f"{len(differ)} of {len(cases)} cases differ, e.g. {fast[differ[0]]!r} != {slow[differ[0]]!r}"



def test_events_repeating_a_filter_container_share_its_filters_dict(monkeypatch) -> None:
    """A filter container repeated byte for byte is one shared node: its events get one read-only dict (read once a
    report), equal to what each event's own reading gives."""
    filters = [("copper", 0.1, 0.1), ("aluminum", 1.0, 1.0)]
    events = [{"event_type": "fluoroscopy", "kap_gym2": 1e-4 * (i + 1), "ka_r_gy": 0.002, "filters": filters}
              for i in range(3)]
    data = _copy(synthetic.build_projection_rdsr(events=events), "implicit-undefined")
    report = parse_dose_object(data)
    first, *others = (e.attributes["filters"] for e in report.events)
    assert len(first) == 2 and first[0]["thickness_min_mm"] == 0.1
    for other in others:
        assert all(a is b for a, b in zip(first, other, strict=True))
    monkeypatch.setattr(_raw.ItemMemo, "MAX_ITEM", -1)  # nothing kept: every item parsed where it occurs
    assert [e.attributes for e in report.events] == [e.attributes for e in parse_dose_object(data).events]


NUMBER_TEXTS = [b"12.5", b" 12.5", b"12.5 ", b"0012", b"1e3", b"1E+03", b"-0.0", b".5", b"5.", b"+5", b"nan", b"inf",
                b"1,5", b"abc", b"", b"  ", b"1.23456789012345678", b"12\x00", b"5.0", b"1\\2", b"123456789",
                b"1234567890", b"-7", b"\xb512", b"7 5"]


@pytest.mark.parametrize("keyword", ["KVP", "ExposureInuAs", "ExposureIndex"])  # DS, IS, and DS read as text
@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns of the invalid values
def test_a_decimal_or_integer_string_read_from_its_bytes_is_what_pydicom_gives(keyword):
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    from pydicom.dataelem import RawDataElement

    from dicomrx.parse import _header

    tag, fast = tag_for_keyword(keyword), 0
    for text in NUMBER_TEXTS:
        value = text if len(text) % 2 == 0 else text + b" "
        ds = Dataset()
        ds._dict[tag] = RawDataElement(pydicom.tag.Tag(tag), dictionary_VR(tag), len(value), value, 0, False, True)
        fast += _header._number_text(ds._dict[tag]) is not None
        expected_text = _general_text(ds, keyword)
        try:
            expected = ds.copy().get(keyword)
        except Exception:  # noqa: BLE001 - damaged: the parser treats it as absent
            expected = None
        got = _header._get(ds, keyword)
        assert repr(_header._float(got)) == repr(_header._float(expected)), (keyword, text)  # NaN too
        if _header._float(got) is not None:
            assert str(got).strip() == str(expected).strip(), (keyword, text)
        assert _header.text_of(ds, keyword) == expected_text, (keyword, text)
    assert fast >= 5  # the well-formed values took the fast path (5 of them are integers)


def _general_text(ds: Dataset, keyword: str) -> str:
    """text_of by pydicom's conversion alone (the element converted first, so the fast path does not apply)."""
    from dicomrx.parse import _header

    converted = ds.copy()
    try:
        converted[keyword]  # converts the raw element in place
    except Exception:  # noqa: BLE001
        return ""
    return _header.text_of(converted, keyword)


def test_a_repeat_at_another_place_of_its_sequence_is_found_by_its_bytes(monkeypatch) -> None:
    """The memo first tries the item at the same place of the sequence last read at that depth (an event's items
    repeat in the same order); in an event with one item more, the repeats after it are found by their bytes, and
    the report is the one parsing each item gives."""
    events = [{"event_type": "fluoroscopy", "kap_gym2": 1e-4, "ka_r_gy": 0.002, "filters": [("copper", 0.1, 0.1)],
               **({"kvp": 70} if i % 2 else {})} for i in range(4)]
    data = _copy(synthetic.build_projection_rdsr(events=events), "implicit-undefined")
    top = _raw.scan_top_level(data)
    content = _raw.sw(0x0040A730)
    read = [item[content] for item in _raw.parse_content_sequence(data, top)
            if content in item and len(item[content]) > 5]
    assert len(read) == 4 and len(read[1]) == len(read[0]) + 1
    assert read[1][-1] is read[0][-1] and read[2][-1] is read[0][-1]  # the filter container, one place further on
    shared = parse_dose_object(data)
    monkeypatch.setattr(_raw.ItemMemo, "MAX_ITEM", -1)  # nothing kept: every item parsed where it occurs
    assert parse_dose_object(data) == shared


def test_a_length_at_which_no_item_ends_is_not_looked_up() -> None:
    """Undefined-length items with the same first bytes and other lengths: a repeat is looked up only at the
    lengths its bytes can have (an Item Delimitation Item ends there), and found, the same parsed item."""
    def element(group: int, elem: int, value: bytes) -> bytes:
        return struct.pack("<HHL", group, elem, len(value)) + value

    def item(tail: bytes) -> bytes:  # the first 72 bytes alike (more than the memo's head), then its own value
        return (struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF) + element(0x0008, 0x0100, b"X" * 64)
                + element(0x0008, 0x0102, tail) + struct.pack("<HHL", 0xFFFE, 0xE00D, 0))

    class Looked(dict):
        gets = 0

        def get(self, key, default=None):
            Looked.gets += 1
            return super().get(key, default)

    short, long = item(b"AB"), item(b"ABCD")
    memo = _raw.ItemMemo()
    memo.undefined = Looked()
    data = short + long + short + long + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    items, end = _raw.parse_items(data, 0, -1, True, memo=memo)
    assert end == len(data) and [len(i[_raw.sw(0x00080102)]) for i in items] == [2, 4, 2, 4]
    assert items[2] is items[0] and items[3] is items[1]
    assert Looked.gets == 2  # each repeat at its own length only; the first two are new
