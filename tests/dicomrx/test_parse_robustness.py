"""Damaged input: truncated, byte-flipped and mutated copies must raise DoseParseError or NotADoseObject with a
reason a person can act on (no Python exception class names), or parse; nothing else."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomrx.parse import parse_dose_object
from dosereg.core.dose_report import DoseParseError, DoseReport, NotADoseObject
from tests.dicomrx import synthetic

CORPUS = Path(__file__).parents[2] / ".." / "shared" / "rdsr"
CORPUS_FILES = ["ct/CT-RDSR-Toshiba_DoseCheck.dcm", "rf/RF-RDSR-GE.dcm", "rf/PySkinDose-siemens_axiom_artis.dcm",
                "mg/MG-RDSR-Hologic_2D.dcm", "mg/MG-RDSR-GEPristina-DBT.dcm", "nm/NM-RRDSR-Siemens.dcm",
                "ct/CT-ESR-GE_Optima.dcm"]
SYNTHETIC = {
    "synthetic-ct": lambda: synthetic.build_ct_rdsr(),
    "synthetic-ct-implicit": lambda: synthetic.build_ct_rdsr(implicit=True),
    "synthetic-proj": lambda: synthetic.build_projection_rdsr(),
    "synthetic-rrdsr": lambda: synthetic.build_rrdsr(),
}
# A reason naming a Python exception ("AttributeError: ...", "struct.error") says nothing to the person reading it.
_CLASS_NAME = re.compile(r"\b\w*(Error|Exception)\b|struct\.error|Traceback")


def _sample(name: str) -> bytes:
    if name in SYNTHETIC:
        return SYNTHETIC[name]()
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"corpus sample {name} not found under {CORPUS.resolve()} (../shared/rdsr is absent)")
    return path.read_bytes()


NAMES = [*SYNTHETIC, *CORPUS_FILES]


def _parse_or_refuse(data: bytes) -> DoseReport | None:
    try:
        return parse_dose_object(data)
    except (DoseParseError, NotADoseObject) as exc:
        reason = str(exc)
        assert reason
        assert not _CLASS_NAME.search(reason), reason
        return None


@pytest.mark.parametrize("name", NAMES)
def test_truncated_copies_are_refused(name: str) -> None:
    data = _sample(name)
    cuts = sorted({len(data) * k // 13 for k in range(1, 13)} | {len(data) - 1, len(data) - 7, 140, 300})
    for cut in cuts:
        with pytest.raises((DoseParseError, NotADoseObject)) as caught:
            parse_dose_object(data[:cut])
        assert not _CLASS_NAME.search(str(caught.value)), str(caught.value)


@pytest.mark.parametrize("name", NAMES)
def test_byte_flipped_copies_never_crash(name: str) -> None:
    data = _sample(name)
    rng = random.Random(len(data))
    for _ in range(40):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(132, len(damaged))
            damaged[pos] ^= 1 << rng.randrange(8) if rng.random() < 0.5 else 0xFF
        _parse_or_refuse(bytes(damaged))


EXPLICIT = synthetic.build_projection_rdsr(events=[
    {"event_type": "rotational", "agd_mgy": 1.1, "exposures_uas": [1000, 1200], "target_laterality": "left"},
    {"event_type": "fluoroscopy", "kap_gym2": 1e-4, "ka_r_gy": 0.002}], mammography=True)
IMPLICIT = synthetic.build_ct_rdsr(implicit=True, events=[
    {"ctdivol": 5, "dlp": 100, "dose_check": {"dlp_alert": 50, "reason": "needed", "person": "Doe^Jane"}}])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([EXPLICIT, IMPLICIT]), st.data())
def test_mutations_only_parse_or_refuse(base: bytes, data) -> None:
    """Overwrite, insert or delete a few bytes anywhere after the preamble."""
    out = bytearray(base)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(132, len(out) - 1))
        patch = data.draw(st.binary(min_size=1, max_size=6))
        kind = data.draw(st.sampled_from(["overwrite", "insert", "delete"]))
        if kind == "overwrite":
            out[pos:pos + len(patch)] = patch
        elif kind == "insert":
            out[pos:pos] = patch
        else:
            del out[pos:pos + len(patch)]
    report = _parse_or_refuse(bytes(out))
    if report is not None:
        assert isinstance(report, DoseReport)


def _with_vr(data: bytes, element: bytes, vr: bytes) -> bytes:
    """``data`` with the VR of the first ``element`` (explicit VR: group, element little endian, then 'SQ')."""
    pos = data.find(element + b"SQ")
    assert pos > 0
    return data[:pos + 4] + vr + data[pos + 6:]


def test_measured_value_not_a_sequence_is_named() -> None:
    data = synthetic.build_ct_rdsr()
    damaged = _with_vr(data, b"\x40\x00\x00\xa3", b"OB")  # the first MeasuredValueSequence (0040,A300)
    with pytest.raises(DoseParseError, match=r"content item [\d.]+: its Measured Value Sequence \(0040,A300\) is not a "
                                             r"sequence"):
        parse_dose_object(damaged)


def test_a_damaged_nested_item_is_named_by_its_position_in_the_tree() -> None:
    data = synthetic.build_ct_rdsr()
    pos = -1
    for _ in range(4):  # the fourth MeasuredValueSequence (0040,A300): the root's seventh item, its fifth child,
        pos = data.find(b"\x40\x00\x00\xa3SQ", pos + 1)  # that one's second child
    damaged = data[:pos + 4] + b"OB" + data[pos + 6:]
    with pytest.raises(DoseParseError, match=r"^content item 7\.5\.2: its Measured Value Sequence \(0040,A300\) is "
                                             r"not a sequence$"):
        parse_dose_object(damaged)


def test_concept_name_not_a_code_sequence_is_named() -> None:
    data = synthetic.build_ct_rdsr()
    pos = -1
    for _ in range(4):  # the fourth ConceptNameCodeSequence (0040,A043): one in the content tree
        pos = data.find(b"\x40\x00\x43\xa0SQ\x00\x00", pos + 1)
    assert data[pos + 12:pos + 16] == b"\xfe\xff\x00\xe0"  # its first item tag ...
    damaged = data[:pos + 12] + b"ABCD" + data[pos + 16:]  # ... replaced by something that is not an item
    with pytest.raises(DoseParseError, match=r"content item [\d.]+: a code .* is not a code sequence"):
        parse_dose_object(damaged)


def test_unknown_value_representation_is_named() -> None:
    data = synthetic.build_ct_rdsr()
    pos = data.find(b"\x08\x00\x16\x00UI")  # SOP Class UID (0008,0016)
    damaged = data[:pos + 4] + b"QQ" + data[pos + 6:]
    with pytest.raises(DoseParseError, match=r"unknown value representation QQ in \(0008,0016\)") as caught:
        parse_dose_object(damaged)
    assert "NotImplementedError" not in str(caught.value)
