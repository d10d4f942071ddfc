"""Issue 15, mammography: the corpus's mammography objects map as a physicist would (2D screening, tomosynthesis
apart, flat-field QA 'not for DRL', biopsy and unnamed objects unmapped); tomosynthesis and QA exposures never enter
the 2D screening median; no national mammography DRL is active by default (the Uganda NDRLs ship inactive), and the
search is on record in the data."""

from __future__ import annotations

import datetime as dt
import importlib
import io
import json
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command

from dosereg.registry.models import SiteSettings, StandardExam, Study
from drl.models import DrlEntry, MappingRule
from drl.services import drl_comparison_run, map_study
from tests.drl.factories import study, unit

pytestmark = pytest.mark.django_db
DATA = Path(__file__).resolve().parents[2] / "drl" / "data"

# file in ../shared/rdsr/mg -> the examination a physicist files it under (None: left unmapped)
CORPUS_MG = {
    "MG-RDSR-Hologic_2D.dcm": "mg-screening",  # "Bilateral Mammography", 2D
    "MG-RDSR-GEPristina-DBT.dcm": "mg-dbt",  # no description; acquisition protocol "3D_ROUTINE"
    "MG-Im-Hologic-PropProj.dcm": "mg-qa-phantom",  # "No Views", flat-field tomosynthesis calibration
    "MG-RDSR-GEPristina-2D.dcm": None,  # no description; protocol "ROUTINE" says nothing of the indication
    "MG-Im-GE-SenDS-scaled.dcm": None,  # image header without a description
    "MG-Im-GE_Seno_1_ForPresentation.dcm": None,  # stereotactic ("STEREO" in the header), no description
    "fo-dicom-OutOfBoundsOverlay.dcm": None,  # "cilinderbiopsie": a biopsy is not screening
    "fo-dicom-GH1376.dcm": None,  # "Lorem Ipsum"; requested "RX MAMMOGRAFIE BEIDE"
}


def _uid(corpus: Path, name: str) -> str:
    expected = json.loads((corpus / "expected.json").read_text(encoding="utf-8"))
    return expected[f"mg/{name}"]["study_instance_uid"]


@pytest.mark.corpus
def test_corpus_mammography_objects_map_as_a_physicist_would(corpus, django_capture_on_commit_callbacks):
    for name in CORPUS_MG:
        with django_capture_on_commit_callbacks(execute=True):
            call_command("import_dose", str(corpus / "mg" / name), stdout=io.StringIO(), stderr=io.StringIO())
    for name, expected in CORPUS_MG.items():
        s = Study.objects.select_related("standard_exam").get(study_instance_uid=_uid(corpus, name))
        assert s.modality_type == "mammography", name
        assert (s.standard_exam.code if s.standard_exam else None) == expected, name
    assert StandardExam.objects.get(code="mg-qa-phantom").not_for_drl
    assert not StandardExam.objects.get(code="mg-dbt").not_for_drl


def test_shipped_mammography_rules_map_their_examples():
    a = unit("Mammo rules")
    mapping = json.loads((DATA / "default_mapping.json").read_text(encoding="utf-8"))["rules"]
    qa = json.loads((DATA / "not_for_drl.json").read_text(encoding="utf-8"))["rules"]
    checked = 0
    for rule in [r for r in mapping + qa if r.get("modality_type") == "mammography"]:
        as_protocol = rule["field"] == "protocol"
        # a protocol rule's examples are protocols ('protocol_examples' where 'examples' must stay descriptions)
        for example in rule.get("protocol_examples", rule["examples"]) if as_protocol else rule["examples"]:
            fields = ({"description": "", "events": [{"protocol": example}]} if as_protocol
                      else {"description": example})
            s = study(a, exam=None, modality_type="mammography", **fields)
            assert map_study(s.pk) == rule["exam"], example
            checked += 1
    assert checked >= 10
    # shipped as rules of the database, not only as data
    assert MappingRule.objects.filter(standard_exam__code="mg-dbt", shipped=True).count() == 2
    assert MappingRule.objects.filter(standard_exam__code="mg-qa-phantom", shipped=True).count() == 2


def test_biopsy_and_diagnostic_mammography_stay_unmapped():
    a = unit("Mammo unmapped")
    for description in ("Stereotactic biopsy tomo-guided", "MAMMOGRAPHY DIAGNOSTIC", "cilinderbiopsie"):
        assert map_study(study(a, exam=None, modality_type="mammography", description=description).pk) is None


def test_tomosynthesis_and_qa_stay_out_of_the_2d_screening_median():
    site = SiteSettings.load()
    site.drl_min_patients = 1
    site.save()
    mammo = unit("Mammo M")
    when = dt.date(2024, 4, 2)

    def exam(description, protocol, *agd):
        s = study(mammo, exam=None, modality_type="mammography", description=description, date=when,
                  events=[{"protocol": protocol, "agd_mgy": v, "event_type": "stationary_acquisition"} for v in agd])
        map_study(s.pk)
        return s

    exam("Screening Mammography", "ROUTINE", 1.0, 1.2)  # 2D, two views
    exam("Bilateral Mammography", "ROUTINE", 1.4, 1.6)
    exam("Screening Mammography", "3D_ROUTINE", 2.6, 2.8)  # a DBT screening: its own examination
    exam("No Views", "Flat Field Tomo", 9.0)  # flat-field calibration: not for DRL
    run = drl_comparison_run(period_start=dt.date(2024, 1, 1), period_end=dt.date(2024, 12, 31))
    rows = {r.exam_code: r for r in run.rows.filter(quantity="agd_mgy", per="acquisition")}
    screening = rows["mg-screening"]
    assert (screening.n_studies, screening.median, screening.status) == (2, pytest.approx(1.3), "no_drl")
    assert screening.drl is None and screening.drl_set_name == ""
    dbt = rows["mg-dbt"]
    assert (dbt.n_studies, dbt.median) == (1, pytest.approx(2.7))
    assert "mg-qa-phantom" not in rows


def test_no_mammography_drl_is_active_by_default_and_the_search_is_on_record():
    # the Uganda NDRLs (migration 0011) ship inactive: a site chooses them (tests/drl/test_mammography_thickness_bands)
    assert not DrlEntry.objects.filter(quantity="agd_mgy", drl_set__active=True).exists()
    assert not DrlEntry.objects.filter(standard_exam__modality_type="mammography", drl_set__active=True).exists()
    notes = " ".join(json.loads((DATA / "drl_sets_radiography_paediatric.json").read_text(encoding="utf-8"))
                     ["not_shipped"])
    assert "2026-12-05" in notes and "Tabelle 2" in notes and "UKHSA NDRL page" in notes and "EUREF" in notes


def test_migration_0010_brings_a_database_at_0009_up_to_the_data():
    # on a fresh database migrations 0002/0005/0006 already read the current data files; a site's database migrated
    # before the mammography rules existed gets them from 0010, once, and 0010's backwards removes them again
    migration = importlib.import_module("drl.migrations.0010_mammography_exams_mapping")
    migration.backwards(apps, None)
    assert not StandardExam.objects.filter(code__in=migration.NEW_EXAMS).exists()
    migration.forwards(apps, None)
    migration.forwards(apps, None)
    assert StandardExam.objects.get(code="mg-qa-phantom").not_for_drl
    assert MappingRule.objects.filter(standard_exam__code__in=migration.NEW_EXAMS, shipped=True).count() == 4
    dbt = MappingRule.objects.get(standard_exam__code="mg-dbt", field="protocol")
    assert (dbt.priority, dbt.modality_type, dbt.match) == (55, "mammography", "regex")
