"""Damaged input: truncated and byte-flipped copies must raise DoseParseError or NotADoseObject, never anything else."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dicomrx.parse import parse_dose_object
from dosereg.core.dose_report import DoseParseError, DoseReport, NotADoseObject

try:
    from tests.dicomrx import synthetic
except ImportError:  # pragma: no cover
    import synthetic  # type: ignore[no-redef]

pytestmark = []

CORPUS = Path(__file__).parents[2] / ".." / "shared" / "rdsr"
FILES = ["ct/CT-RDSR-Toshiba_DoseCheck.dcm", "rf/RF-RDSR-GE.dcm", "rf/PySkinDose-siemens_axiom_artis.dcm",
         "mg/MG-RDSR-Hologic_2D.dcm", "nm/NM-RRDSR-Siemens.dcm", "ct/CT-ESR-GE_Optima.dcm"]


def _samples() -> list[tuple[str, bytes]]:
    out = [("synthetic-ct", synthetic.build_ct_rdsr()), ("synthetic-ct-implicit", synthetic.build_ct_rdsr(implicit=True)),
           ("synthetic-proj", synthetic.build_projection_rdsr())]
    if CORPUS.is_dir():
        out += [(name, (CORPUS / name).read_bytes()) for name in FILES if (CORPUS / name).is_file()]
    return out


SAMPLES = _samples()


def _parse_or_refuse(data: bytes) -> DoseReport | None:
    try:
        return parse_dose_object(data)
    except (DoseParseError, NotADoseObject) as exc:
        assert str(exc)
        return None


@pytest.mark.parametrize(("name", "data"), SAMPLES, ids=[n for n, _ in SAMPLES])
def test_truncated_copies_are_refused(name: str, data: bytes) -> None:
    cuts = sorted({len(data) * k // 13 for k in range(1, 13)} | {len(data) - 1, len(data) - 7, 140, 300})
    for cut in cuts:
        with pytest.raises((DoseParseError, NotADoseObject)):
            parse_dose_object(data[:cut])


@pytest.mark.parametrize(("name", "data"), SAMPLES, ids=[n for n, _ in SAMPLES])
def test_byte_flipped_copies_never_crash(name: str, data: bytes) -> None:
    rng = random.Random(len(data))
    for _ in range(40):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(132, len(damaged))
            damaged[pos] ^= 1 << rng.randrange(8) if rng.random() < 0.5 else 0xFF
        _parse_or_refuse(bytes(damaged))


BASE = synthetic.build_projection_rdsr(implicit=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(BASE) - 1), st.binary(min_size=1, max_size=6))
def test_fuzz_overwrite(pos: int, patch: bytes) -> None:
    data = BASE[:pos] + patch + BASE[pos + len(patch):]
    _parse_or_refuse(data)
