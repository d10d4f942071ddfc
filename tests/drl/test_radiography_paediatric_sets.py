"""Issue 15: national DRLs for adult radiography (per radiograph of a projection) and the European paediatric CT DRLs
(RP 185, by age or weight band) ship with their sources and verify flags; radiographs are compared per projection,
and children against their band, never in the adult median."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from dosereg.registry.models import SiteSettings, Study
from drl.models import DrlEntry, DrlSet
from drl.selectors import drl_position, drl_report_rows
from drl.services import drl_comparison_run, drl_report_csv
from tests.drl.factories import study, unit

pytestmark = pytest.mark.django_db
DATA = Path(__file__).resolve().parents[2] / "drl" / "data" / "drl_sets_radiography_paediatric.json"
BFS = "German DRLs, adult projection radiography (BfS 2022, Table 1)"
RP185 = "European paediatric DRLs, CT (RP 185)"
PERIOD = {"period_start": dt.date(2024, 1, 1), "period_end": dt.date(2024, 12, 31)}


def _min_patients(n: int) -> None:
    site = SiteSettings.load()
    site.drl_min_patients = n
    site.save()


def test_shipped_sets_carry_source_verify_and_the_published_values():
    bfs, rp185 = DrlSet.objects.get(name=BFS), DrlSet.objects.get(name=RP185)
    assert bfs.verify and rp185.verify and bfs.country == "DE" and rp185.country == "EU"
    assert "17 November 2022" in bfs.source and "Tabelle 1" in bfs.source and "umwelt-online.de" in bfs.source
    assert "Radiation Protection No 185" in rp185.source and "nathanwangai/drl_app" in rp185.source
    assert all(e.verify for e in DrlEntry.objects.filter(drl_set__in=[bfs, rp185]))
    # published cGy·cm² stored in the catalogue's Gy·cm²: 12 cGy·cm² -> 0.12, 330 -> 3.30
    got = {(e.standard_exam.code, e.view): (e.value, e.unit, e.per)
           for e in DrlEntry.objects.filter(drl_set=bfs).select_related("standard_exam")}
    assert got[("dx-chest", "PA")] == (pytest.approx(0.12), "Gy·cm²", "acquisition")
    assert got[("dx-chest", "LAT")][0] == pytest.approx(0.40)
    assert got[("dx-lumbar-spine", "LAT")][0] == pytest.approx(3.30)
    assert got[("dx-shoulder", "")][0] == pytest.approx(0.25)
    assert len(got) == 9 and ("dx-chest", "AP") not in got  # supine AP chest not shipped (see not_shipped)
    head = {e.patient_group: (e.age_min_years, e.age_max_years, e.value)
            for e in DrlEntry.objects.filter(drl_set=rp185, standard_exam__code="ct-head-stroke",
                                             quantity="dlp_total_mgycm")}
    assert head == {"child 0-3 months": (0, 0.25, 300), "child 3-12 months": (0.25, 1, 385),
                    "child 1-6 y": (1, 6, 505), "child 6-18 y": (6, 18, 650)}
    chest = DrlEntry.objects.get(drl_set=rp185, standard_exam__code="ct-chest", patient_group="child 15-30 kg",
                                 quantity="ctdivol_mgy")
    assert (chest.weight_min_kg, chest.weight_max_kg, chest.age_max_years, chest.value) == (15, 30, 18, 2.7)
    # no CTDIvol for the lightest abdomen band in the source: none shipped
    assert not DrlEntry.objects.filter(drl_set=rp185, standard_exam__code="ct-abdomen",
                                       patient_group="child <5 kg", quantity="ctdivol_mgy").exists()
    # what could not be read is said in the data, not filled in
    notes = " ".join(json.loads(DATA.read_text(encoding="utf-8"))["not_shipped"])
    assert "mammography" in notes.lower() and "UK NDRLs" in notes


@pytest.mark.corpus
def test_chest_radiograph_from_the_corpus_is_compared_per_projection(corpus, django_capture_on_commit_callbacks):
    # RG1: "THORAX", View Position PA, KAP 1.2 dGy·cm² = 0.12 Gy·cm²; Carestream DRX: "XR CHEST", AP, 0.0633
    for name in ("pydicom-data-RG1_J2KI.dcm", "DX-Im-Carestream_DRX.dcm"):
        with django_capture_on_commit_callbacks(execute=True):
            call_command("import_dose", str(corpus / "dx" / name), stdout=io.StringIO())
    pa = Study.objects.get(study_description="THORAX")
    ap = Study.objects.get(study_description="XR CHEST")
    assert pa.standard_exam.code == "dx-chest" and ap.standard_exam.code == "dx-chest"
    _min_patients(1)
    run = drl_comparison_run(period_start=dt.date(2004, 1, 1), period_end=dt.date(2017, 12, 31))
    rows = {(r.equipment_id, r.view): r for r in run.rows.filter(exam_code="dx-chest", per="acquisition")}
    row = rows[(pa.equipment_id, "PA")]
    assert (row.n, row.median, row.drl, row.drl_set_name, row.verify) == (1, pytest.approx(0.12),
                                                                            pytest.approx(0.12), BFS, True)
    assert row.ratio == pytest.approx(1.0) and row.status == "below"  # a median equal to the DRL is not above it
    assert rows[(pa.equipment_id, "LAT")].n == 0  # the PA radiograph is not compared with the lateral DRL
    assert rows[(ap.equipment_id, "PA")].n == 0  # nor the AP one with the PA DRL
    report = [r for r in drl_report_rows(run) if r["standard_exam"] == "dx-chest" and r["view"] == "PA"]
    assert {r["drl_set"] for r in report} == {BFS} and all("Tabelle 1" in r["drl_source"] for r in report)
    assert ",PA," in drl_report_csv(report)


def test_a_child_ct_is_compared_with_its_band_and_left_out_of_the_adult_median():
    scanner = unit("CT Paed")
    for dlp in (300.0, 500.0, 700.0):  # adults: median 500
        study(scanner, exam="ct-head-stroke", description="CT Head", age=45.0, dlp=dlp, date=dt.date(2024, 3, 1))
    for dlp in (400.0, 600.0):  # children 1-6 y: median 500 against 505
        study(scanner, exam="ct-head-stroke", description="CT Head", age=3.0, dlp=dlp, date=dt.date(2024, 3, 2))
    study(scanner, exam="ct-head-stroke", description="CT Head", age=0.1, dlp=350.0, date=dt.date(2024, 3, 3))
    # a 12-year-old of 40 kg: chest band by weight; an adult of 40 kg stays in the adult group
    child = study(scanner, exam="ct-chest", age=12.0, weight=40.0, dlp=150.0, date=dt.date(2024, 3, 4))
    study(scanner, exam="ct-chest", age=30.0, weight=40.0, dlp=250.0, date=dt.date(2024, 3, 4))
    _min_patients(1)
    run = drl_comparison_run(**PERIOD)
    rows = {(r.exam_code, r.patient_group): r for r in run.rows.filter(quantity="dlp_total_mgycm")}
    adult = rows[("ct-head-stroke", "adult")]
    assert (adult.n, adult.median, adult.drl) == (3, 500.0, 790.0)  # UK adult head DRL; children not in it
    band = rows[("ct-head-stroke", "child 1-6 y")]
    assert (band.n, band.median, band.drl, band.drl_set_name) == (2, 500.0, 505.0, RP185)
    assert band.status == "below" and band.verify
    infant = rows[("ct-head-stroke", "child 0-3 months")]
    assert (infant.n, infant.median, infant.drl, infant.status) == (1, 350.0, 300.0, "above")
    assert ("ct-head-stroke", "child 3-12 months") not in rows  # no such child: no empty row
    chest_band = rows[("ct-chest", "child 30-50 kg")]
    assert (chest_band.n, chest_band.median, chest_band.drl) == (1, 150.0, 115.0)
    assert (rows[("ct-chest", "adult")].n, rows[("ct-chest", "adult")].median) == (1, 250.0)
    position = drl_position(child.pk)
    assert position["patient_group"] == "child 30-50 kg" and position["drl"] == 115.0
    report = [r for r in drl_report_rows(run) if r["patient_group"] == "child 1-6 y"]
    assert report and all(r["drl_set"] == RP185 and "Radiation Protection No 185" in r["drl_source"]
                      for r in report)


def test_a_child_without_weight_gets_no_weight_band():
    scanner = unit("CT Paed 2")
    s = study(scanner, exam="ct-chest", age=8.0, weight=None, dlp=90.0, date=dt.date(2024, 5, 1))
    _min_patients(1)
    run = drl_comparison_run(**PERIOD)
    assert not run.rows.filter(exam_code="ct-chest", patient_group__startswith="child").exists()
    assert run.rows.get(exam_code="ct-chest", patient_group="adult", quantity="dlp_total_mgycm").n == 0
    assert drl_position(s.pk) is None
