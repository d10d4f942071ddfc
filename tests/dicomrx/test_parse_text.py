"""Text out of the parser: always a str decoded with the object's Specific Character Set, NUL characters removed,
never a Python bytes literal, never cut (the registry fits text to its columns)."""

from __future__ import annotations

import dataclasses
import warnings

import pytest

from dicomrx.parse import parse_dose_object
from dosereg.core.dose_report import DoseReport
from tests.dicomrx import synthetic


def _comment(value: str):
    return synthetic.text(synthetic.dcm("121106", "Comment"), value)


def _content_texts(report: DoseReport, concept: str) -> list:
    return [item["value"] for item in report.content if item["concept"][1] == concept]


def _all_strings(obj, path="report"):
    """Every str (and any bytes) anywhere in a parsed report, with where it is."""
    if isinstance(obj, (str, bytes)):
        yield path, obj
    elif dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            yield from _all_strings(getattr(obj, f.name), f"{path}.{f.name}")
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _all_strings(value, f"{path}[{key!r}]")
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            yield from _all_strings(value, f"{path}[{index}]")


def _assert_clean(report: DoseReport) -> None:
    for where, value in _all_strings(report):
        assert isinstance(value, str), where
        assert "\x00" not in value, where
        assert not value.startswith(("b'", 'b"')), where


@pytest.mark.parametrize("implicit", [False, True])
def test_nul_removed_from_header_and_content(implicit: bool) -> None:
    ds = synthetic.build_ct_rdsr(events=[{"ctdivol": 5, "dlp": 100, "protocol": "Abdo\x00men",
                                          "dose_check": {"dlp_alert": 50, "reason": "urgent\x00 case"}}],
                                 implicit=implicit, as_dataset=True)
    ds.StudyDescription = "CT\x00 Abdomen"
    ds.ContentSequence.append(_comment("before\x00after"))
    report = parse_dose_object(synthetic.to_bytes(ds))
    assert report.study.study_description == "CT Abdomen"
    assert report.events[0].protocol == "Abdomen"
    assert report.dose_checks[0].reason_for_proceeding == "urgent case"
    assert _content_texts(report, "121106") == ["beforeafter"]
    _assert_clean(report)


@pytest.mark.parametrize("implicit", [False, True])
def test_100_kb_text_is_decoded_whole(implicit: bool) -> None:
    """Over 64 KB a text element cannot have a 16-bit length in explicit VR: pydicom writes it as UN, and it was
    read back as bytes and stored as "b'...'"."""
    long_text = "é" * 100_000
    ds = synthetic.build_ct_rdsr(implicit=implicit, as_dataset=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom: too long for LO, and written as UN in explicit VR
        ds.StudyDescription = long_text
        ds.ContentSequence.append(_comment(long_text))
        data = synthetic.to_bytes(ds)
    assert (b"\x08\x000\x10UN" in data) is not implicit  # (0008,1030) as UN: the case that came back as bytes
    report = parse_dose_object(data)
    assert report.study.study_description == long_text
    assert _content_texts(report, "121106") == [long_text]
    _assert_clean(report)


@pytest.mark.parametrize(("charset", "codec", "name", "person"), [
    ("ISO_IR 100", "latin_1", "Müller^Jürgen", "Ødegård^Åse"),
    ("ISO_IR 192", "utf-8", "Σωκράτης^Ζωή", "Łukasz^Żółć"),
])
def test_character_sets(charset: str, codec: str, name: str, person: str) -> None:
    check = {"dlp_alert": 50, "reason": "Notfall: Blutung", "person": person}
    ds = synthetic.build_ct_rdsr(events=[{"ctdivol": 5, "dlp": 100, "dose_check": check}], patient={"name": name},
                                 as_dataset=True)
    ds.SpecificCharacterSet = charset
    ds.StudyDescription = "Thorax/Abdomen ÄÖÜ"
    ds.ContentSequence.append(_comment("Kontrastmittel: Ültravist"))
    data = synthetic.to_bytes(ds)
    assert name.encode(codec) in data and person.encode(codec) in data  # really encoded in the declared set
    report = parse_dose_object(data)
    assert report.patient.name == name
    assert report.study.study_description == "Thorax/Abdomen ÄÖÜ"
    assert report.dose_checks[0].person_name == person
    assert _content_texts(report, "121106") == ["Kontrastmittel: Ültravist"]
    _assert_clean(report)


def test_iso_2022_text_in_content_is_not_read_as_ascii() -> None:
    """ISO 2022 IR 87 text is 7-bit bytes between escape sequences: plain ASCII decoding would keep the escapes."""
    ds = synthetic.build_ct_rdsr(as_dataset=True)
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.ContentSequence.append(_comment("山田太郎"))
    data = synthetic.to_bytes(ds)
    assert b"\x1b$B" in data
    report = parse_dose_object(data)
    assert _content_texts(report, "121106") == ["山田太郎"]


@pytest.mark.parametrize("implicit", [False, True])
def test_invalid_utf8_becomes_replacement_characters(implicit: bool) -> None:
    ds = synthetic.build_ct_rdsr(implicit=implicit, as_dataset=True)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.StudyDescription = "Café"
    ds.ContentSequence.append(_comment("Crème"))
    data = synthetic.to_bytes(ds).replace(b"ISO_IR 100", b"ISO_IR 192")  # declare UTF-8 over Latin-1 bytes
    report = parse_dose_object(data)
    assert report.study.study_description == "Caf\ufffd"
    assert _content_texts(report, "121106") == ["Cr\ufffdme"]
    _assert_clean(report)
