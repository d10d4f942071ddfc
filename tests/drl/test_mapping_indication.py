"""Examination mapping by indication: the corpus's names map as a physicist would, the field weight decides
between rules of equal priority, suggestions are never pre-selected, and a mapping is previewed before it is
saved (studies moved, medians against their DRL)."""

from __future__ import annotations

import datetime as dt
import importlib
import re

import pytest
from django.apps import apps
from django.utils import timezone

from dosereg.registry.models import StandardExam, Study
from drl import services
from drl.models import MappingRule
from drl.services import (
    PREVIEW_MAX_MOVED,
    map_study,
    mapping_name_rule,
    mapping_name_studies,
    mapping_preview,
)
from tests.drl.factories import study, unit

pytestmark = pytest.mark.django_db
LAST_YEAR = dt.date(timezone.localdate().year - 1, 6, 1)

# (modality type, study description, requested procedure description, protocol, expected exam; None: unmapped).
# Descriptions are those of ../shared/rdsr (file in the comment) and of the demo data (dicomrx/demo.py).
CORPUS_NAMES = [
    ("CT", "Colonography", "", "", "ct-colonography"),  # ct/CT-ESR-GE_Optima
    ("CT", "Thorax^Thorax_NON_CON (Adult)", "", "", "ct-chest"),  # ct/CT-RDSR-Siemens-Continued-1
    ("CT", "CT Thorax & abdo & pelvis with contrast", "", "", "ct-cap-cancer"),  # ct/CT-SC-Philips_Brilliance16P
    ("CT", "Thorax^TAP (Adult)", "", "", "ct-cap-cancer"),  # thorax-abdomen-pelvis, not a chest CT
    # a body part, not the EUCLID "abdominal pain" indication: no DRL shipped for it
    ("CT", "CT Upper Abdomen with contrast", "CT Upper Abdomen with contrast", "", "ct-abdomen"),  # fo-dicom GH342
    ("CT", "CT Acute Abdomen", "", "", "ct-abdominal-pain"),
    # radiotherapy planning and QA: mapped, "not for DRL"
    ("CT", "Thorax^RTP_4DCT_Thorax_C (Adult)", "", "4DCT", "ct-rt-planning"),  # ct/CT-RDSR-Siemens-Multi-3
    ("CT", "4DCT", "", "4DCT /PHYSICS", "ct-rt-planning"),  # ct/CT-RDSR-Philips_BigBore4DCT
    ("CT", "Specials^PhysicsTesting (Adult)", "", "DS axial std", "ct-qa-phantom"),  # CT-RDSR-Siemens_Flash-QA-DS
    ("CT", "", "", "10.13 RADIOTHERAPY QA", "ct-qa-phantom"),  # ct/CT-RDSR-GEPixelMed
    ("CT", "Other", "", "Daily QA", "ct-qa-phantom"),  # ct/CT-RDSR-SpectrumDynamics
    ("CT", "CT Pulmonary Angiogram", "", "CTPA", "ct-ctpa"),
    ("CT", "COT SONG TOAN THAN", "", "", None),  # Vietnamese "whole spine": no standard exam
    ("CT", "Test CT", "", "", None),
    ("CT", "CT CHEST ABDOMEN PELVIS", "", "", "ct-cap-cancer"),  # demo
    ("CT", "CT KUB", "", "", "ct-kub"),  # demo
    # fluoroscopy and interventional
    ("fluoroscopy", "Cardiac pacemaker temporary", "", "", None),  # rf/Dual-RDSR-RF: a pacing wire, not an implant
    ("fluoroscopy", "hardware removal", "", "", None),  # rf/RF-RDSR-GE-OECEliteMiniView
    ("fluoroscopy", "", "Gastrostomy Insertion", "", None),  # rf/RF-RDSR-Canon-Alphenix-rotational
    ("fluoroscopy", "Kardiologisk 7,5 b/s", "", "", "xa-coronary-angiography"),  # rf/PySkinDose-P1
    ("fluoroscopy", "Huvud", "", "", None),  # rf/PySkinDose-philips_allura_clarity_u104 (Swedish "head")
    ("fluoroscopy", "Mobile image intensifier thorax", "", "", None),  # rf/RF-ESR-Siemens-Varic
    ("fluoroscopy", "liuotushoidon raajojen", "", "", None),  # rf/RF-RDSR-Philips_Allura (limb thrombolysis)
    ("fluoroscopy", "Cardiac", "", "", None),  # rf/RF-Pat-Orientation-Modifier-Missing
    ("fluoroscopy", "PACEMAKER IMPLANTATION", "", "", "xa-pacemaker-single"),  # demo
    ("fluoroscopy", "PACEMAKER DUAL CHAMBER", "", "", "xa-pacemaker-dual"),  # demo
    # radiography and mammography
    ("radiography", "CR THORAX", "", "", "dx-chest"),  # dx/DX-RDSR-Canon_CXDI
    ("radiography", "XR CHEST", "", "", "dx-chest"),  # dx/DX-Im-Carestream_DRX
    ("radiography", "CR LEG", "", "", None),  # dx/DX-RDSR-Carestream_DRXEvolution
    ("radiography", "Z_Physics Test", "", "", None),  # dx/Dual-RDSR-DX
    ("mammography", "Bilateral Mammography", "", "", "mg-screening"),  # mg/MG-RDSR-Hologic_2D
    ("mammography", "cilinderbiopsie", "PUNCTIE BORST LINKS", "", None),  # fo-dicom OutOfBoundsOverlay: a biopsy
    ("mammography", "MAMMOGRAPHY SCREENING", "", "", "mg-screening"),  # demo
    ("mammography", "MAMMOGRAPHY DIAGNOSTIC", "", "", None),  # demo: diagnostic is not screening
]


@pytest.mark.parametrize(("modality_type", "description", "requested", "protocol", "expected"), CORPUS_NAMES)
def test_corpus_names_map_as_a_physicist_would(modality_type, description, requested, protocol, expected):
    s = study(unit("Scanner M"), exam=None, description=description, modality_type=modality_type,
              requested_procedure_description=requested, events=[{"protocol": protocol}] if protocol else ())
    assert map_study(s.pk) == expected
    if expected:
        not_for_drl = StandardExam.objects.get(code=expected).not_for_drl
        assert not_for_drl is (expected in ("ct-rt-planning", "ct-qa-phantom"))


def _rule(field: str, pattern: str, exam: str, priority: int = 1) -> MappingRule:
    return MappingRule.objects.create(priority=priority, field=field, match="contains", pattern=pattern,
                                      standard_exam=StandardExam.objects.get(code=exam))


def test_at_equal_priority_the_heavier_field_wins_whatever_the_rule_order():
    a = unit()
    # created lightest first, so the id order alone would pick the protocol rule
    _rule("protocol", "Routine", "ct-chest")
    _rule("study_description", "Thorax", "ct-chest-hr")
    _rule("requested_procedure_description", "Lungenembolie", "ct-ctpa")
    _rule("requested_procedure_code", "RPX-77", "ct-cap-cancer")

    def mapped(**fields):
        return map_study(study(a, exam=None, events=[{"protocol": "Routine"}], **fields).pk)

    assert mapped(description="Thorax", requested_procedure_description="Lungenembolie",
                  requested_procedure_code="RPX-77") == "ct-cap-cancer"
    assert mapped(description="Thorax", requested_procedure_description="Lungenembolie") == "ct-ctpa"
    assert mapped(description="Thorax") == "ct-chest-hr"
    assert mapped(description="Something else") == "ct-chest"


def test_the_reason_for_the_requested_procedure_weighs_above_the_study_description():
    a = unit()
    _rule("study_description", "Thorax", "ct-chest-hr")
    _rule("reason_for_study", "embol", "ct-ctpa")
    _rule("requested_procedure_description", "Staging", "ct-cap-cancer")
    study_ = study(a, exam=None, description="Thorax", reason_for_study="V.a. Lungenembolie")
    assert map_study(study_.pk) == "ct-ctpa"
    staged = study(a, exam=None, description="Thorax", reason_for_study="V.a. Lungenembolie",
                   requested_procedure_description="Staging")
    assert map_study(staged.pk) == "ct-cap-cancer"


def test_a_rule_edited_or_an_examination_renamed_is_seen_by_the_next_batch_s_matcher():
    """The compiled rules and the examinations are kept between batches while their rows are unchanged; any change
    to a rule (pattern, activity) or an examination is seen by the next matcher."""
    a = unit()
    rule = _rule("study_description", "Thorax", "ct-chest-hr")
    fields = {"modality_type": "CT", "equipment_id": a.pk, "study_description": "Thorax spezial"}

    def exam_code():
        exam = services.study_exam_matcher()(fields, lambda: [])
        return exam.code if exam else None

    assert exam_code() == "ct-chest-hr"
    assert services._active_rules() is services._active_rules()  # unchanged rows: the same compiled list
    MappingRule.objects.filter(pk=rule.pk).update(pattern="^Abdomen")
    assert exam_code() != "ct-chest-hr"
    MappingRule.objects.filter(pk=rule.pk).update(pattern="Thorax", active=False)
    assert exam_code() != "ct-chest-hr"
    MappingRule.objects.filter(pk=rule.pk).update(active=True)
    StandardExam.objects.filter(code="ct-chest-hr").update(name="Chest HR (renamed)")
    exam = services.study_exam_matcher()(fields, lambda: [])
    assert (exam.code, exam.name) == ("ct-chest-hr", "Chest HR (renamed)")


def test_priority_comes_before_field_weight():
    a = unit()
    _rule("requested_procedure_code", "RPX-77", "ct-cap-cancer", priority=2)
    _rule("protocol", "Routine", "ct-chest", priority=1)
    s = study(a, exam=None, description="x", requested_procedure_code="RPX-77", events=[{"protocol": "Routine"}])
    assert map_study(s.pk) == "ct-chest"


def test_mapping_page_preselects_no_suggestion(client, make_user):
    client.force_login(make_user("physicist"))
    study(unit(), exam=None, description="CT Chest Spezial Lokal")
    html = client.get("/mapping/").content.decode()
    row = html[html.index("CT Chest Spezial Lokal"):]
    select = row[row.index("<select"):row.index("</select>")]
    assert "(suggested)" in select  # there are suggestions ...
    assert re.findall(r"<option[^>]*selected[^>]*>", select) == ['<option value="" selected>']  # ... none chosen
    assert "required" in select[:select.index(">")]


def _scene():
    """Unit A: three chest CTs (DLP 200, 220, 240) and three unmapped 'Thx Lokal' studies (DLP 400, 420, 440) in the
    last calendar year, and one 'Thx Lokal' from the year before (outside the period: it moves, no median)."""
    a = unit("Scanner P")
    for dlp in (200, 220, 240):
        study(a, exam="ct-chest", dlp=dlp, date=LAST_YEAR)
    lokal = [study(a, exam=None, description="Thx Lokal", dlp=dlp, date=LAST_YEAR) for dlp in (400, 420, 440)]
    lokal.append(study(a, exam=None, description="Thx Lokal", dlp=999, date=LAST_YEAR - dt.timedelta(days=365)))
    return a, lokal


def test_name_mapping_preview_counts_and_median_shift_without_saving():
    a, lokal = _scene()
    exam = StandardExam.objects.get(code="ct-chest")
    rule = mapping_name_rule(name="thx lokal", modality_type="CT", exam=exam)
    rules_before = MappingRule.objects.count()
    preview = mapping_preview(rule, queryset=mapping_name_studies(name="thx lokal", modality_type="CT"))
    assert preview.moved == 4
    assert [(m.from_exam, m.to_exam, m.n) for m in preview.moves] == [("", exam.name, 4)]
    assert (preview.period_start, preview.period_end) == (dt.date(LAST_YEAR.year, 1, 1),
                                                          dt.date(LAST_YEAR.year, 12, 31))
    dlp = next(s for s in preview.shifts if s.quantity == "dlp_total_mgycm")
    assert (dlp.equipment_name, dlp.exam_name) == (a.display_name, exam.name)
    assert (dlp.before.n_studies, dlp.before.median) == (3, 220.0)
    assert (dlp.after.n_studies, dlp.after.median) == (6, 320.0)  # 200 220 240 400 420 440
    assert dlp.drl == 290.0 and (dlp.status_before, dlp.status_after) == ("insufficient_data", "insufficient_data")
    # nothing was saved: no rule, the studies still unmapped
    assert MappingRule.objects.count() == rules_before
    assert not Study.objects.filter(pk__in=[s.pk for s in lokal], standard_exam__isnull=False).exists()


def test_rule_preview_counts_moves_between_examinations():
    a, _ = _scene()
    rule = MappingRule(priority=1, field="study_description", match="regex", pattern="^CT Chest$",
                       modality_type="CT", standard_exam=StandardExam.objects.get(code="ct-chest-hr"))
    preview = mapping_preview(rule)
    assert preview.moved == 3
    assert [(m.from_exam, m.to_exam, m.n) for m in preview.moves] == [("CT chest (lung cancer)",
                                                                       "CT chest, high resolution (interstitial lung "
                                                                       "disease)", 3)]
    chest = {(s.exam_name, s.quantity): s for s in preview.shifts}
    gone = chest[("CT chest (lung cancer)", "dlp_total_mgycm")]
    assert (gone.before.n_studies, gone.after.n_studies, gone.after.median) == (3, 0, None)
    assert chest[("CT chest, high resolution (interstitial lung disease)", "dlp_total_mgycm")].after.median == 220.0
    assert PREVIEW_MAX_MOVED > 3


def test_preview_beyond_the_cap_gives_the_counts_only(monkeypatch):
    _scene()
    monkeypatch.setattr(services, "PREVIEW_MAX_MOVED", 3)
    rule = mapping_name_rule(name="Thx Lokal", modality_type="CT", exam=StandardExam.objects.get(code="ct-chest"))
    preview = mapping_preview(rule, queryset=mapping_name_studies(name="Thx Lokal", modality_type="CT"))
    assert (preview.moved, preview.medians_skipped, preview.shifts) == (4, True, [])


def test_mapping_is_previewed_then_saved_on_confirmation(client, make_user):
    client.force_login(make_user("physicist"))
    _, lokal = _scene()
    exam = StandardExam.objects.get(code="ct-chest")
    post = {"name": "Thx Lokal", "modality_type": "CT", "exam": exam.pk}
    page = client.post("/mapping/assign/", post)
    html = page.content.decode()
    assert page.status_code == 200 and 'id="moved">4<' in html and "320 mGy·cm" in html and "220 mGy·cm" in html
    assert not MappingRule.objects.filter(pattern="Thx Lokal").exists()
    done = client.post("/mapping/assign/", {**post, "confirm": "1"})
    assert done.status_code == 302 and MappingRule.objects.filter(pattern="Thx Lokal").exists()
    assert set(Study.objects.filter(pk__in=[s.pk for s in lokal]).values_list("standard_exam__code",
                                                                              flat=True)) == {"ct-chest"}
    refused = client.post("/mapping/rules/add/", {"priority": 1, "field": "study_description", "match": "regex",
                                                  "pattern": "(", "standard_exam": exam.pk})
    assert refused.status_code == 302
    hr = StandardExam.objects.get(code="ct-chest-hr")
    rule = {"priority": 1, "field": "study_description", "match": "regex", "pattern": "^thx lokal$",
            "modality_type": "CT", "standard_exam": hr.pk}
    page = client.post("/mapping/rules/add/", rule)
    assert page.status_code == 200 and 'id="moved">4<' in page.content.decode()
    assert not MappingRule.objects.filter(pattern="^thx lokal$").exists()
    assert client.post("/mapping/rules/add/", {**rule, "confirm": "1"}).status_code == 302
    assert Study.objects.filter(pk__in=[s.pk for s in lokal], standard_exam=hr).count() == 4


def test_migration_brings_a_site_s_shipped_rules_in_line_with_the_data():
    """A site migrated before 0006 has the old body-word rule that sent 'Upper Abdomen' to the abdominal-pain DRL."""
    sync = importlib.import_module("drl.migrations.0006_mapping_by_indication").forwards  # a module name of digits
    pain = StandardExam.objects.get(code="ct-abdominal-pain")
    MappingRule.objects.filter(standard_exam__code="ct-abdomen").delete()
    old = MappingRule.objects.create(priority=55, field="study_description", match="regex", shipped=True,
                                     pattern="(abdominal pain|acute abdomen|abdomen)", standard_exam=pain)
    local = MappingRule.objects.create(priority=1, field="study_description", match="regex", pattern="abdomen",
                                       standard_exam=pain)  # a site's own rule is never touched
    count = MappingRule.objects.count()
    sync(apps, None)
    assert not MappingRule.objects.filter(pk=old.pk).exists() and MappingRule.objects.filter(pk=local.pk).exists()
    assert MappingRule.objects.filter(standard_exam__code="ct-abdomen", shipped=True).count() == 1
    assert MappingRule.objects.count() == count
    sync(apps, None)  # idempotent
    assert MappingRule.objects.count() == count
    local.delete()
    assert map_study(study(unit(), exam=None, description="CT Upper Abdomen with contrast").pk) == "ct-abdomen"
