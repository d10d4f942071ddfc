"""An Image View sent as a code is stored as the View Position term an image header would carry (CC, MLO, PA ...),
so per-view DRLs and filters match reports and headers alike; a view without such a term keeps its meaning."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from dicomrx.demo import demo_dataset, demo_studies
from dicomrx.parse import parse_dose_object

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "rdsr"


def _mammography_study():
    return next(s for s in demo_studies(60, year=2024, seed=4) if s.unit.kind == "mg")


def test_a_coded_view_becomes_its_view_position_and_keeps_its_code():
    study = _mammography_study()
    report = parse_dose_object(demo_dataset(study))
    views = [(e.attributes["view"], tuple(e.attributes["view_code"][1:])) for e in report.events]
    assert views and set(views) == {("CC", ("399162004", "cranio-caudal")),
                                    ("MLO", ("399368009", "medio-lateral oblique"))}
    assert [e.attributes["view"] for e in report.events] == [e.attributes["view"] for e in study.events]


def test_a_snomed_rt_view_from_a_real_report_reads_as_cc():
    files = sorted(CORPUS.rglob("*.dcm")) if CORPUS.is_dir() else []
    seen = []
    for path in files:
        data = path.read_bytes()
        if b"R-10242" not in data:
            continue
        report = parse_dose_object(data, filename=path.name)
        seen += [e.attributes.get("view") for e in report.events if e.attributes.get("view_code")]
    if not files:
        pytest.skip(f"the sample dose objects are not at {CORPUS}")
    assert seen and set(seen) == {"CC"}


@pytest.mark.parametrize(("stored", "term"), [
    ("['SCT', '399162004', 'cranio-caudal']", "CC"),
    ("['SCT', '272479007', 'postero-anterior']", "PA"),
    ("['SCT', '399135007', 'left anterior oblique']", "left anterior oblique"),
    ("['SCT', '399368009', 'medio-lateral obl", None),  # cut where it was stored: no triple, left as it is
    ("PA", None),
])
def test_the_migration_rewrites_stored_code_triples(stored, term):
    migration = importlib.import_module("dosereg.registry.migrations.0014_event_view_positions")
    assert migration._term(stored) == term
