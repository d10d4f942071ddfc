"""Art. 64 export: frequencies and dose distributions by examination, age band and sex."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter

import pytest
from django.core.management import call_command

from dosereg.registry.models import Patient, StandardExam, Study


def export(*args) -> list[dict]:
    out, err = io.StringIO(), io.StringIO()
    call_command("euratom_population", *args, stdout=out, stderr=err)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


@pytest.mark.django_db
def test_population_export_on_generated_data_adds_up():
    call_command("generate_demo_data", "--studies", "40", "--year", "2024", "--bulk", "--seed", "7",
                 stdout=io.StringIO(), stderr=io.StringIO())
    registry = Study.objects.filter(study_date__year=2024)
    assert registry.count() > 0
    assert export("--year", "2024") == []  # demo studies are excluded by default
    rows = export("--year", "2024", "--include-demo")
    total = sum(int(r["examinations"]) for r in rows)
    assert total == registry.count()
    # every (examination, band, sex) appears once
    keys = [(r["group_type"], r["exam_code"], r["modality_type"], r["age_band"], r["sex"]) for r in rows]
    assert len(keys) == len(set(keys))
    # sex and age bands add up to the registry's counts
    by_sex = Counter()
    for r in rows:
        by_sex[r["sex"]] += int(r["examinations"])
    expected_sex = Counter({"M": registry.filter(sex="M").count(), "F": registry.filter(sex="F").count()})
    assert by_sex["M"] == expected_sex["M"] and by_sex["F"] == expected_sex["F"]
    assert sum(by_sex.values()) == registry.count()
    adults = sum(int(r["examinations"]) for r in rows if r["age_band"] in ("18-39", "40-59", "60-74", "75+"))
    assert adults == registry.filter(age_years__gte=18).count()
    # per examination: the registry's count per mapped standard examination / modality type
    per_exam = Counter()
    for r in rows:
        per_exam[(r["group_type"], r["exam_code"])] += int(r["examinations"])
    for exam in StandardExam.objects.filter(studies__study_date__year=2024).distinct():
        assert per_exam[("standard_exam", exam.code)] == registry.filter(standard_exam=exam).count()
    unmapped = registry.filter(standard_exam__isnull=True)
    assert sum(v for (g, _), v in per_exam.items() if g == "modality_type") == unmapped.count()
    # CT rows carry DLP distributions
    ct = [r for r in rows if r["modality_type"] == "CT" and r["dlp_total_mgycm_n"] not in ("", "0")]
    assert ct and all(float(r["dlp_total_mgycm_median"]) > 0 for r in ct)


@pytest.mark.django_db
def test_population_statistics_on_crafted_studies(tmp_path):
    exam = StandardExam.objects.create(code="ct-head-test", name="CT head (test)", modality_type="CT",
                                       body_region="head")
    patient = Patient.objects.create(patient_id="X")
    dlps = [100.0, 200.0, 300.0, 400.0]
    for i, dlp in enumerate(dlps):
        Study.objects.create(study_instance_uid=f"2.{i}", patient=patient, study_date=dt.date(2023, 5, 1 + i),
                             modality_type="CT", standard_exam=exam, age_years=45, sex="F", dlp_total_mgycm=dlp,
                             effective_dose_msv=dlp * 0.0021, effective_dose_method="AAPM 96 k (test)")
    Study.objects.create(study_instance_uid="2.9", patient=patient, study_date=dt.date(2023, 6, 1),
                         modality_type="radiography", age_years=None, sex="", kap_total_gycm2=0.2)
    Study.objects.create(study_instance_uid="2.10", patient=patient, study_date=dt.date(2023, 6, 1),
                         modality_type="CT", age_years=45, sex="F", dlp_total_mgycm=1.0, demo=True)
    Study.objects.create(study_instance_uid="2.11", patient=patient, study_date=dt.date(2022, 6, 1),
                         modality_type="CT", age_years=45, sex="F", dlp_total_mgycm=1.0)
    out = tmp_path / "pop.csv"
    call_command("euratom_population", "--year", "2023", "--output", str(out), stderr=io.StringIO())
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2
    head = next(r for r in rows if r["exam_code"] == "ct-head-test")
    assert head["age_band"] == "40-59" and head["sex"] == "F" and head["examinations"] == "4"
    assert float(head["dlp_total_mgycm_median"]) == pytest.approx(250.0)
    assert float(head["dlp_total_mgycm_mean"]) == pytest.approx(250.0)
    assert float(head["dlp_total_mgycm_p75"]) == pytest.approx(325.0)  # percentile_cont, linear
    assert float(head["effective_dose_msv_median"]) == pytest.approx(250.0 * 0.0021)
    assert head["effective_dose_method"] == "AAPM 96 k (test)"
    xr = next(r for r in rows if r["group_type"] == "modality_type")
    assert (xr["exam_code"], xr["age_band"], xr["sex"], xr["examinations"]) == ("radiography", "unknown",
                                                                                "unknown", "1")
    assert xr["effective_dose_msv_n"] == "0" and xr["effective_dose_method"].startswith("no estimate")
