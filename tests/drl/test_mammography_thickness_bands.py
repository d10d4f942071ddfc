"""National screening-mammography DRLs by view and compressed breast thickness (CBT) band: the Uganda NDRLs (Odongo
et al., PLoS One 2024;19(8):e0294541) ship inactive with their source and verify flag; once a site activates them,
each band is compared with the median AGD of the events of that view whose thickness lies in the band (lower limit
inclusive, upper exclusive), and every report (JSON, CSV, API, PDF) names the band."""

from __future__ import annotations

import datetime as dt
import importlib
import io
import subprocess

import pytest
from django.apps import apps
from django.core.management import call_command
from rest_framework.test import APIClient

from dosereg.registry.models import IrradiationEvent, SiteSettings, Study
from drl.comparison import DrlValidationError
from drl.models import DrlEntry, DrlSet
from drl.pdf import drl_comparison_pdf
from drl.selectors import drl_report_rows
from drl.services import drl_comparison_run, drl_report_csv, drl_set_import_csv
from tests.conftest import require_program
from tests.drl.factories import study, unit

pytestmark = pytest.mark.django_db
UGANDA = "Uganda national DRLs, screening mammography (Odongo et al. 2024)"
# the abstract's screening NDRLs (mGy): published band (mm) -> (CC, MLO); stored as lower-inclusive/upper-exclusive
PUBLISHED = {(7, 39): (1.5, 1.66), (40, 59): (1.78, 1.87), (60, 99): (2.18, 2.22)}
# MG-RDSR-Hologic_2D.dcm, read by hand: (view, laterality) -> (compressed breast thickness mm, AGD mGy)
HOLOGIC_2D = {("CC", "left"): (43.0, 1.30), ("CC", "right"): (43.0, 1.28)}


def _activate_and_min_patients(n: int = 1) -> DrlSet:
    site = SiteSettings.load()
    site.drl_min_patients = n
    site.save()
    uganda = DrlSet.objects.get(name=UGANDA)
    uganda.active = True
    uganda.save(update_fields=["active"])
    return uganda


def test_uganda_set_ships_inactive_with_its_source_and_the_published_bands():
    uganda = DrlSet.objects.get(name=UGANDA)
    assert not uganda.active and uganda.verify and uganda.country == "UG" and uganda.year == 2024
    assert "10.1371/journal.pone.0294541" in uganda.source and "abstract" in uganda.notes
    got = {(e.view, e.thickness_min_mm, e.thickness_max_mm): e for e in uganda.entries.select_related("standard_exam")}
    assert len(got) == 6
    for (lo, hi), (cc, mlo) in PUBLISHED.items():
        for view, value in (("CC", cc), ("MLO", mlo)):
            e = got[(view, lo, hi + 1)]
            assert (e.value, e.unit, e.quantity, e.per, e.verify) == (value, "mGy", "agd_mgy", "acquisition", True)
            assert e.standard_exam.code == "mg-screening" and f"{lo}-{hi} mm" in e.indication


def test_hologic_2d_cc_views_are_compared_with_their_thickness_band(corpus, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_dose", str(corpus / "mg" / "MG-RDSR-Hologic_2D.dcm"), stdout=io.StringIO(),
                     stderr=io.StringIO())
    mammo = Study.objects.get()
    assert mammo.standard_exam.code == "mg-screening" and mammo.age_years >= 18
    events = {(e.view, e.laterality): (e.compression_thickness_mm, e.agd_mgy)
              for e in IrradiationEvent.objects.filter(study=mammo, is_current=True)}
    assert events == HOLOGIC_2D
    inactive = drl_comparison_run(period_start=dt.date(2015, 1, 1), period_end=dt.date(2015, 12, 31))
    assert not inactive.rows.filter(thickness_min_mm__isnull=False).exists()  # not active: no banded rows
    _activate_and_min_patients()
    run = drl_comparison_run(period_start=dt.date(2015, 1, 1), period_end=dt.date(2015, 12, 31))
    rows = {(r.view, r.thickness_min_mm): r for r in run.rows.filter(exam_code="mg-screening")
            .exclude(thickness_min_mm__isnull=True)}
    assert len(rows) == 6
    band = rows[("CC", 40)]
    median = (1.30 + 1.28) / 2  # both CC views are 43 mm thick: band 40-59 mm, NDRL 1.78 mGy
    assert (band.n, band.n_studies, band.thickness_max_mm) == (2, 1, 60)
    assert band.median == pytest.approx(median) and band.drl == pytest.approx(1.78)
    assert band.ratio == pytest.approx(median / 1.78) and band.status == "below"
    assert band.drl_set_name == UGANDA and band.verify and band.per_text == "radiograph (CC, CBT 40-<60 mm)"
    assert all(rows[k].n == 0 for k in rows if k != ("CC", 40))  # no MLO view; no CC view of another thickness
    assert run.rows.get(exam_code="mg-screening", view="", thickness_min_mm=None).n == 2  # the all-view row
    # the reports carry the band, the set and its source
    report = [r for r in drl_report_rows(run) if r["view"] == "CC" and r["thickness_min_mm"] == 40]
    assert report[0]["thickness_max_mm"] == 60 and report[0]["drl_set"] == UGANDA
    assert "pone.0294541" in report[0]["drl_source"]
    csv_text = drl_report_csv(report)
    assert "thickness_min_mm,thickness_max_mm" in csv_text.splitlines()[0] and ",CC,40.0,60.0," in csv_text


def _mammo(unit_, *views):
    return study(unit_, exam="mg-screening", modality_type="mammography", description="Screening Mammography",
                 date=dt.date(2024, 5, 2), events=[{"view": v, "compression_thickness_mm": t, "agd_mgy": agd,
                                                    "event_type": "stationary_acquisition"} for v, t, agd in views])


def test_each_band_takes_only_its_view_and_thickness(make_user):
    room = unit("Mammo B")
    _mammo(room, ("CC", 39.5, 1.0), ("MLO", 39.5, 1.1))  # 39.5 mm: still the 7-39 mm band
    _mammo(room, ("CC", 40.0, 1.6), ("MLO", 52.0, 2.0))  # 40 mm: the lower limit is inclusive
    _mammo(room, ("CC", 59.9, 2.0), ("MLO", 60.0, 2.4))  # 60 mm: the upper limit is exclusive
    _mammo(room, ("CC", None, 5.0), ("XCCL", 45.0, 5.0))  # no thickness; another view: in no band
    _activate_and_min_patients()
    run = drl_comparison_run(period_start=dt.date(2024, 1, 1), period_end=dt.date(2024, 12, 31))
    got = {(r.view, r.thickness_min_mm): (r.n, r.median, r.drl, r.status)
           for r in run.rows.filter(exam_code="mg-screening").exclude(thickness_min_mm__isnull=True)}
    assert got == {
        ("CC", 7): (1, pytest.approx(1.0), 1.5, "below"),
        ("MLO", 7): (1, pytest.approx(1.1), 1.66, "below"),
        ("CC", 40): (2, pytest.approx((1.6 + 2.0) / 2), 1.78, "above"),
        ("MLO", 40): (1, pytest.approx(2.0), 1.87, "above"),
        ("CC", 60): (0, None, 2.18, "insufficient_data"),
        ("MLO", 60): (1, pytest.approx(2.4), 2.22, "above"),
    }
    client = APIClient()
    client.force_authenticate(make_user("api_client"))
    rows = client.get(f"/api/v1/drl/comparisons/{run.pk}/").json()["rows"]
    cc40 = next(r for r in rows if r["view"] == "CC" and r["thickness_min_mm"] == 40)
    assert cc40["thickness_max_mm"] == 60 and cc40["drl_source"].startswith("Odongo D")
    assert cc40["drl_set_name"] == UGANDA and cc40["median"] == pytest.approx(1.8)


def test_pdf_rows_name_view_and_band():
    pdftotext = require_program("pdftotext")
    _mammo(unit("Mammo P"), ("CC", 45.0, 1.9))
    _activate_and_min_patients()
    run = drl_comparison_run(period_start=dt.date(2024, 1, 1), period_end=dt.date(2024, 12, 31))
    text = subprocess.run([pdftotext, "-layout", "-", "-"], input=drl_comparison_pdf(run), capture_output=True,
                          check=True).stdout.decode()
    lines = text.splitlines()
    at = next(i for i, x in enumerate(lines) if "AGD (mGy) CC CBT 40-<60mm" in x)
    row = " ".join(lines[at:at + 2])  # pdftotext may wrap a full cell onto the next line
    assert "1.78 *" in row and "ABOVE DRL" in row and "[1] Uganda" in row
    assert "AGD (mGy) MLO CBT 60-<100mm" in text


CSV_HEAD = "standard_exam,quantity,value,unit,per,view,thickness_min_mm,thickness_max_mm\n"


def test_csv_import_takes_view_and_thickness_band():
    text = CSV_HEAD + ("mg-screening,agd_mgy,1.4,mGy,acquisition,CC,,50\n"
                       "mg-screening,agd_mgy,1.9,mGy,acquisition,CC,50,\n"
                       "mg-screening,agd_mgy,2.1,mGy,acquisition,MLO,50,\n")
    local = drl_set_import_csv(text=text, name="Local mammo", issuing_body="Site", year=2026, source="local audit")
    got = {(e.view, e.thickness_min_mm, e.thickness_max_mm, e.value) for e in local.entries.all()}
    assert got == {("CC", None, 50.0, 1.4), ("CC", 50.0, None, 1.9), ("MLO", 50.0, None, 2.1)}


@pytest.mark.parametrize(("rows", "error"), [
    ("mg-screening,agd_mgy,1.4,mGy,acquisition,CC,40,60\nmg-screening,agd_mgy,1.9,mGy,acquisition,CC,55,70\n",
     "line 3: its compressed breast thickness band overlaps line 2"),
    ("mg-screening,agd_mgy,1.4,mGy,acquisition,CC,60,40\n", "line 2: thickness lower limit 60 mm is not below"),
    ("mg-screening,agd_mgy,1.4,mGy,acquisition,XX,,\n", "line 2: unknown view 'XX'"),
    ("mg-screening,agd_mgy,1.4,mGy,acquisition,CC,40,60\nmg-screening,agd_mgy,1.5,mGy,acquisition,CC,40,60\n",
     "line 3: duplicates line 2"),
    ("ct-chest,dlp_total_mgycm,300,mGy.cm,examination,,40,60\n", "line 2: a compressed breast thickness band is set"),
])
def test_csv_import_refuses_a_bad_band_naming_the_line(rows, error):
    with pytest.raises(DrlValidationError, match=error):
        drl_set_import_csv(text=CSV_HEAD + rows, name="Bad", issuing_body="Site", year=2026, source="x")
    assert not DrlSet.objects.filter(name="Bad").exists()


def test_management_command_reads_the_band_columns(tmp_path):
    path = tmp_path / "mammo.csv"
    path.write_text(CSV_HEAD + "mg-screening,agd_mgy,1.6,mGy,acquisition,MLO,40,60\n", encoding="utf-8")
    call_command("drl_import_set", str(path), name="Cmd mammo", issuing_body="Site", year=2026, source="audit",
                 stdout=io.StringIO(), stderr=io.StringIO())
    entry = DrlEntry.objects.get(drl_set__name="Cmd mammo")
    assert (entry.view, entry.thickness_min_mm, entry.thickness_max_mm, entry.value) == ("MLO", 40.0, 60.0, 1.6)


def test_migration_0011_loads_the_set_once_and_backwards_removes_it():
    migration = importlib.import_module("drl.migrations.0011_entry_thickness_band_mammography_drls")
    migration.backwards(apps, None)
    assert not DrlSet.objects.filter(name=UGANDA).exists()
    migration.forwards(apps, None)
    migration.forwards(apps, None)
    assert DrlEntry.objects.filter(drl_set__name=UGANDA).count() == 6
    assert not DrlSet.objects.get(name=UGANDA).active


def test_an_entry_edited_by_hand_is_refused_when_its_band_overlaps_or_is_not_per_image():
    from django.core.exceptions import ValidationError

    uganda = DrlSet.objects.get(name=UGANDA)
    cc40 = uganda.entries.get(view="CC", thickness_min_mm=40)
    overlap = DrlEntry(drl_set=uganda, standard_exam=cc40.standard_exam, quantity="agd_mgy", value=1.9, unit="mGy",
                       per="acquisition", view="CC", thickness_min_mm=55, thickness_max_mm=65)
    with pytest.raises(ValidationError, match="overlaps another entry"):
        overlap.clean()
    overlap.view = "MLO"
    with pytest.raises(ValidationError, match="overlaps another entry"):
        overlap.clean()
    overlap.thickness_min_mm, overlap.thickness_max_mm = 100, 120  # beyond the published bands: accepted
    overlap.clean()
    per_exam = DrlEntry(drl_set=uganda, standard_exam=cc40.standard_exam, quantity="kap_total_gycm2", value=1,
                        unit="Gy·cm²", per="examination", thickness_min_mm=40)
    with pytest.raises(ValidationError, match="per image"):
        per_exam.clean()
