"""KAP x the cited coefficient of adult cardiac interventional procedures (Brambilla et al., Phys Med Biol
2022;67:06TR02: 0.24 mSv/(Gy·cm²), ICRP 103 weighting), applied once the study is mapped to a cardiac examination:
after recording (the post-commit mapping step) and after a re-mapping on /mapping/."""

from __future__ import annotations

import io

import pydicom
import pytest
from django.core.management import call_command

from dicomrx.pipeline import after_studies_recorded
from dosereg.core import effective_dose as ed
from dosereg.registry.models import SiteSettings, StandardExam, Study
from dosereg.registry.selectors import study_export_dict
from dosereg.registry.services import effective_dose
from dosereg.registry.services.recording import studies_update_effective_dose
from drl.models import MappingRule
from drl.services import mapping_name_assign, mapping_rule_save
from tests.triggers.factories import fluoro_study

pytestmark = pytest.mark.django_db
CARDIAC = ("xa-coronary-angiography", "xa-pci", "xa-tavi", "xa-ep", "xa-pacemaker-single", "xa-pacemaker-dual",
           "xa-crt")


@pytest.fixture(autouse=True)
def _fresh_weighting():
    effective_dose.site_weighting_changed()
    yield
    effective_dose.site_weighting_changed()


def _rule(pattern: str, code: str) -> MappingRule:
    return MappingRule.objects.create(priority=1, field="study_description", match="contains", pattern=pattern,
                                      standard_exam=StandardExam.objects.get(code=code))


def _file_kap_gycm2(path) -> float:
    """The file's own Dose Area Product Total (CID 113722), in Gy·m² or Gy·cm² as its unit says."""
    def walk(items):
        for item in items:
            name = item.ConceptNameCodeSequence[0].CodeValue if "ConceptNameCodeSequence" in item else ""
            if name == "113722" and "MeasuredValueSequence" in item:
                mv = item.MeasuredValueSequence[0]
                unit = mv.MeasurementUnitsCodeSequence[0].CodeValue
                return float(mv.NumericValue) * {"Gy.m2": 1e4, "Gym2": 1e4}.get(unit, 1.0)
            found = walk(item.get("ContentSequence", []))
            if found is not None:
                return found
        return None
    return walk(pydicom.dcmread(path).ContentSequence)


def test_coefficient_set_is_cited_icrp103_adult_and_for_the_cardiac_exams_only():
    table = effective_dose.kap_coefficients()
    ((coef, codes, _names),) = table.entries
    assert coef.value == 0.24 and coef.weighting == ed.ICRP_103 and coef.min_age_years == 18 and coef.verify
    assert "06TR02" in coef.source and "10.1088/1361-6560/ac5670" in coef.source
    assert codes == frozenset(CARDIAC)
    assert set(CARDIAC) <= set(StandardExam.objects.values_list("code", flat=True))
    exams = StandardExam.objects.in_bulk(effective_dose.exams_with_kap_coefficient())
    assert sorted(e.code for e in exams.values()) == sorted(CARDIAC)
    # what is still missing is said
    assert "general radiography" in table.note and "non-cardiac fluoroscopy" in table.note


def test_corpus_fluoroscopy_mapped_to_coronary_angiography_after_recording(corpus, django_capture_on_commit_callbacks):
    path = corpus / "rf" / "PySkinDose-P1.dcm"
    kap = _file_kap_gycm2(path)
    assert kap == pytest.approx(0.023)
    _rule("Kardiologisk", "xa-coronary-angiography")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_dose", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    study = Study.objects.get()
    assert study.standard_exam.code == "xa-coronary-angiography"
    assert study.kap_total_gycm2 == pytest.approx(kap)
    assert study.effective_dose_msv == pytest.approx(kap * 0.24)  # 0.00552 mSv
    assert study.effective_dose_coverage == 1.0
    assert study.effective_dose_method.startswith("ICRP 103: KAP x coefficient, Brambilla 2022 (verify)")
    totals = study_export_dict(study, events=False)["totals"]
    assert totals["effective_dose_coverage"] == 1.0 and totals["effective_dose_detail"]["left_out"] == []


def test_synthetic_pci_child_and_icrp60_basis():
    pci = fluoro_study(ka_r_mgy=500.0, kap_gycm2=40.0, description="PCI LAD")
    child = fluoro_study(ka_r_mgy=50.0, kap_gycm2=40.0, description="PCI paediatric")
    Study.objects.filter(pk=child.pk).update(age_years=9)
    other = fluoro_study(ka_r_mgy=50.0, kap_gycm2=40.0, description="Hepatic embolisation")
    _rule("PCI", "xa-pci")
    after_studies_recorded([pci.pk, child.pk, other.pk])
    pci.refresh_from_db()
    assert pci.effective_dose_msv == pytest.approx(40.0 * 0.24)  # 9.6 mSv
    assert pci.effective_dose_coverage == 1.0 and "Brambilla 2022" in pci.effective_dose_method
    child.refresh_from_db()
    assert child.effective_dose_msv is None and child.effective_dose_coverage == 0.0
    (left,) = child.effective_dose_detail["left_out"]
    assert left["reason"] == ed.KAP_AGE and left["kap_gycm2"] == pytest.approx(40.0)
    other.refresh_from_db()  # not mapped to a cardiac exam: none
    assert other.standard_exam is None and other.effective_dose_msv is None
    # the site reports on ICRP 60: the ICRP 103-based coefficient is not mixed in
    site = SiteSettings.load()
    site.effective_dose_weighting = ed.ICRP_60
    site.save()
    effective_dose.site_weighting_changed()
    studies_update_effective_dose([pci.pk], every_event=True)
    pci.refresh_from_db()
    assert pci.effective_dose_msv is None and pci.effective_dose_method == "ICRP 60: no estimate"
    (left,) = pci.effective_dose_detail["left_out"]
    assert left["reason"] == ed.KAP_OTHER_BASIS and "this weighting basis" in left["why"]


def test_remapping_on_the_mapping_page_sets_and_clears_the_estimate():
    study = fluoro_study(ka_r_mgy=300.0, kap_gycm2=40.0, description="Koronar")
    after_studies_recorded([study.pk])
    study.refresh_from_db()
    assert study.standard_exam is None and study.effective_dose_msv is None
    mapping_name_assign(name="Koronar", modality_type=study.modality_type,
                        exam=StandardExam.objects.get(code="xa-coronary-angiography"))
    study.refresh_from_db()
    assert study.effective_dose_msv == pytest.approx(9.6) and study.effective_dose_coverage == 1.0
    # a rule saved ahead of it moves the study off the cardiac examination: the figure goes
    mapping_rule_save(MappingRule(priority=1, field="study_description", match="exact", pattern="Koronar",
                                  standard_exam=StandardExam.objects.get(code="dx-abdomen")))
    study.refresh_from_db()
    assert study.standard_exam.code == "dx-abdomen"
    assert study.effective_dose_msv is None and study.effective_dose_coverage == 0.0
