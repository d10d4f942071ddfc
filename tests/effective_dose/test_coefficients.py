"""Cited coefficients as the registry applies them to the corpus: NM administered activity x the radiopharmaceutical's
coefficient (Andersson et al. 2014, erratum 2015, Table 1: FDG 0.0171 mSv/MBq with ICRP 103 weighting; ICRP 106
0.019 mSv/MBq with ICRP 60), and projection studies not mapped to a cardiac examination, which say there is no cited
KAP coefficient."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from dosereg.core import effective_dose as ed
from dosereg.registry.models import SiteSettings, Study
from dosereg.registry.selectors import study_export_dict
from dosereg.registry.services import effective_dose
from dosereg.registry.services.recording import studies_update_effective_dose

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_weighting():
    effective_dose.site_weighting_changed()
    yield
    effective_dose.site_weighting_changed()


def run_import(*paths) -> None:
    call_command("import_dose", *[str(p) for p in paths], stdout=io.StringIO(), stderr=io.StringIO())


def test_pet_header_only_fdg_activity_times_coefficient_on_the_site_basis(corpus):
    run_import(corpus / "nm" / "NM-PetIm-GE.dcm")  # FDG, 221 596 288 Bq (PET header: Bq), no RRDSR
    study = Study.objects.get()
    assert study.activity_mbq == pytest.approx(221.596288)
    assert study.effective_dose_msv == pytest.approx(221.596288 * 0.0171)  # 3.79 mSv, ICRP 103
    assert study.effective_dose_coverage == 1.0
    assert study.effective_dose_method == ("ICRP 103: NM: activity x coefficient, Andersson 2014/2015: "
                                           "18F FDG 0.0171 mSv/MBq")
    totals = study_export_dict(study, events=False)["totals"]
    assert totals["effective_dose_coverage"] == 1.0 and totals["effective_dose_detail"]["parts"][0]["kind"] == "NM"
    site = SiteSettings.load()
    site.effective_dose_weighting = "ICRP 60"
    site.save()
    effective_dose.site_weighting_changed()
    studies_update_effective_dose([study.pk], every_event=True)
    study.refresh_from_db()
    assert study.effective_dose_msv == pytest.approx(221.596288 * 0.019)  # ICRP 106 value, flagged verify
    assert "ICRP 106 via Andersson 2015 (verify)" in study.effective_dose_method


def test_bone_scan_without_cited_coefficient_has_no_value_and_says_why(corpus):
    run_import(corpus / "nm" / "NM-NmIm-Siemens.dcm")  # Tc-99m DPD, 764 MBq
    study = Study.objects.get()
    assert study.activity_mbq == 764.0
    assert study.effective_dose_msv is None and study.effective_dose_coverage == 0.0
    left = study.effective_dose_detail["left_out"]
    assert [x["reason"] for x in left] == [ed.NO_NM_COEFFICIENT] and "no cited coefficient" in left[0]["why"]


def test_rrdsr_value_is_kept_and_its_header_copy_not_counted_twice(corpus):
    run_import(corpus / "nm" / "NM-PetIm-Siemens.dcm", corpus / "nm" / "NM-RRDSR-Siemens.dcm")
    study = Study.objects.get()
    assert study.effective_dose_msv == pytest.approx(7.486) and study.effective_dose_coverage == 1.0
    assert study.effective_dose_method == "ICRP 60: NM: as reported in the RRDSR (ICRP Publication 128)"
    assert study.effective_dose_detail["left_out"] == []


def test_radiography_and_fluoroscopy_say_no_cited_kap_coefficient(corpus):
    run_import(corpus / "dx" / "DX-Im-Carestream_DR7500-1.dcm", corpus / "dx" / "DX-Im-Carestream_DR7500-2.dcm")
    run_import(corpus / "rf" / "RF-RDSR-Siemens-Zee.dcm")
    for study in Study.objects.all():
        assert study.kap_total_gycm2 > 0
        assert study.effective_dose_msv is None and study.effective_dose_coverage == 0.0
        (left,) = study.effective_dose_detail["left_out"]
        assert left["reason"] == ed.NO_KAP_COEFFICIENT and "HPA-CRCE-028" in left["why"]
        assert "only adult cardiac interventional procedures" in left["why"]
        assert left["kap_gycm2"] == pytest.approx(study.kap_total_gycm2)


def test_kap_table_says_what_was_searched_and_why_nothing_else_was_taken():
    table = effective_dose.kap_coefficients()
    assert [c.short for c, _codes, _names in table.entries] == ["Brambilla 2022"] and table.unit == "mSv/(Gy*cm2)"
    for searched in ("HPA-CRCE-028", "Radiation Protection No 154", "No 180", "NCRP Report 160", "2026-12-05"):
        assert searched in table.note, searched
    # a cardiology factor was found, but it depends on the beam's copper filtration: recorded, not shipped
    assert "Vano" in table.note and "filtration" in table.note
