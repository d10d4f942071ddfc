"""Mapping (defaults, names, warnings, notifications), DRL file import, and re-comparison after changes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pydicom
import pytest
from django.core.management import CommandError, call_command
from pydicom.uid import generate_uid

from dosereg.registry.models import EquipmentChange, NotificationDelivery, NotificationSubscription, StandardExam, Study
from drl.comparison import DrlValidationError
from drl.models import DrlSet, DueComparison, MappingRule
from drl.selectors import unmapped_names
from drl.services import (
    drl_due_run,
    drl_set_import_csv,
    map_studies,
    map_study,
    mapping_name_assign,
    mapping_rule_warnings,
    note_equipment_change,
)
from tests.drl.factories import study, unit

pytestmark = pytest.mark.django_db
DATA = Path(__file__).resolve().parents[2] / "drl" / "data"


def _subscribe(make_user, topic):
    user = make_user("physicist", email="phys@example.org")
    NotificationSubscription.objects.create(user=user, topic=topic)
    return user


def test_every_default_example_maps_through_the_shipped_rules():
    a = unit()
    rules = json.loads((DATA / "default_mapping.json").read_text())["rules"]
    for rule in rules:
        for example in rule["examples"]:
            s = study(a, exam=None, description=example, modality_type=rule["modality_type"])
            assert map_study(s.pk) == rule["exam"], example


def test_unmapped_name_notified_once_and_mapped_from_the_page_service(make_user):
    phys = _subscribe(make_user, "unmapped_names")
    a = unit()
    ids = [study(a, exam=None, description="Weird local name 7").pk for _ in range(3)]
    assert [map_study(i) for i in ids] == [None, None, None]
    notes = NotificationDelivery.objects.filter(topic="unmapped_names")
    assert notes.count() == 1 and "Weird local name 7" in notes.get().subject and notes.get().user == phys
    names = unmapped_names()
    assert names[0]["name"] == "Weird local name 7" and names[0]["n"] == 3
    exam = StandardExam.objects.get(code="ct-chest")
    rule, counts = mapping_name_assign(name="Weird local name 7", modality_type="CT", exam=exam, user=phys)
    assert counts["changed"] == 3 and set(Study.objects.filter(pk__in=ids).values_list("standard_exam__code",
                                                                                       flat=True)) == {"ct-chest"}
    # the rule now applies to new studies too
    assert map_study(study(a, exam=None, description="weird LOCAL name 7").pk) == "ct-chest"


def test_rule_matching_nothing_or_everything_warned():
    a = unit()
    study(a, exam=None, description="CT Head")
    study(a, exam=None, description="CT Chest")
    exam = StandardExam.objects.get(code="ct-chest")
    nothing = MappingRule(field="study_description", match="contains", pattern="zzz", standard_exam=exam)
    assert "matches none" in mapping_rule_warnings(nothing)[0]
    everything = MappingRule(field="study_description", match="regex", pattern=".", standard_exam=exam)
    assert "every one" in mapping_rule_warnings(everything)[0]
    assert mapping_rule_warnings(MappingRule(field="study_description", match="regex", pattern="chest",
                                             standard_exam=exam)) == []


def test_map_studies_reapplies_rules():
    a = unit()
    s1 = study(a, exam=None, description="CT Abdomen Pelvis")
    s2 = study(a, exam="ct-head-stroke", description="CT Chest")  # wrong, re-mapped
    s3 = study(a, exam="ct-chest", description="nothing known")  # no rule: cleared
    counts = map_studies()
    assert counts["changed"] == 3
    codes = dict(Study.objects.values_list("pk", "standard_exam__code"))
    assert codes[s1.pk] == "ct-abdomen-pelvis" and codes[s2.pk] == "ct-chest" and codes[s3.pk] is None


GOOD_CSV = """standard_exam,indication,patient_group,age_min_years,age_max_years,quantity,value,unit,per
ct-head-stroke,Head,adult,,,dlp_total_mgycm,700,mGy.cm,examination
ct-head-stroke,Head,child 0-5 y,0,5,dlp_total_mgycm,0.3,Gy·cm,examination
ct-head-stroke,Head,child 5-10 y,5,10,dlp_total_mgycm,400,mGycm,examination
"""
# a site's file from before the catalogue keys: the old names are read as their keys
OLD_NAMES_CSV = """standard_exam,quantity,value,unit,per
ct-chest,dlp_mgycm,280,mGy·cm,examination
xa-pci,kap_gycm2,800,dGy·cm²,examination
xa-pci,ka_r_mgy,1200,mGy,examination
ct-chest,ctdivol_mgy,8,mGy,acquisition
"""


def test_drl_file_imported_and_bad_file_refused_naming_the_row(tmp_path):
    drl_set = drl_set_import_csv(text=GOOD_CSV, name="Local 2025", issuing_body="Our hospital", year=2025,
                                 source="local survey")
    assert drl_set.entries.count() == 3 and drl_set.local
    values = {e.patient_group: (e.quantity, e.value, e.unit) for e in drl_set.entries.all()}
    assert values == {"adult": ("dlp_total_mgycm", 700, "mGy·cm"), "child 0-5 y": ("dlp_total_mgycm", 300, "mGy·cm"),
                      "child 5-10 y": ("dlp_total_mgycm", 400, "mGy·cm")}  # 0.3 Gy·cm stored as 300 mGy·cm
    bad_unit = GOOD_CSV.replace("400,mGycm", "400,mGy")
    with pytest.raises(DrlValidationError, match=r"line 4: unit 'mGy' does not fit dlp_total_mgycm"):
        drl_set_import_csv(text=bad_unit, name="Bad", issuing_body="x", year=2025, source="x")
    overlap = GOOD_CSV.replace("child 5-10 y,5,10", "child 4-10 y,4,10")
    with pytest.raises(DrlValidationError, match=r"line 4: .*overlap"):
        drl_set_import_csv(text=overlap, name="Bad", issuing_body="x", year=2025, source="x")
    assert not DrlSet.objects.filter(name="Bad").exists()
    path = tmp_path / "bad.csv"
    path.write_text(bad_unit)
    with pytest.raises(CommandError, match="line 4: unit 'mGy'") as exc:
        call_command("drl_import_set", str(path), "--name", "Bad", "--issuing-body", "x", "--year", "2025",
                     "--source", "x")
    assert exc.value.returncode == 1 and not DrlSet.objects.filter(name="Bad").exists()


def test_drl_file_with_the_old_quantity_names_is_read_with_the_catalogue_keys():
    drl_set = drl_set_import_csv(text=OLD_NAMES_CSV, name="Old file", issuing_body="x", year=2020, source="x")
    got = sorted((e.standard_exam.code, e.quantity, e.per, e.value, e.unit) for e in drl_set.entries.all())
    assert got == [("ct-chest", "ctdivol_mgy", "acquisition", 8, "mGy"),
                   ("ct-chest", "dlp_total_mgycm", "examination", 280, "mGy·cm"),
                   ("xa-pci", "ka_r_total_mgy", "examination", 1200, "mGy"),
                   ("xa-pci", "kap_total_gycm2", "examination", pytest.approx(80), "Gy·cm²")]
    both = OLD_NAMES_CSV + "ct-chest,dlp_total_mgycm,290,mGy.cm,examination\n"
    with pytest.raises(DrlValidationError, match=r"line 6: duplicates line 2 \(ct-chest, adult, dlp_total_mgycm"):
        drl_set_import_csv(text=both, name="Twice", issuing_body="x", year=2020, source="x")


def test_shipped_sets_cite_sources_and_carry_verify():
    euclid = DrlSet.objects.get(name__startswith="European clinical DRLs, CT")
    assert euclid.verify and "Radiation Protection No 195" in euclid.source
    assert all(e.verify for e in euclid.entries.all()) and euclid.entries.count() == 20
    uk = DrlSet.objects.get(name__startswith="UK national DRLs")
    assert not uk.verify and "UKHSA" in uk.source and uk.entries.count() == 13 + 8
    ic = DrlSet.objects.get(name__contains="interventional cardiology")
    assert "Siiskonen" in ic.source and ic.entries.get(standard_exam__code="xa-tavi").value == 130


def test_equipment_change_marks_due_notifies_and_due_run_covers_the_period(make_user):
    _subscribe(make_user, "drl_due")
    a = unit()
    for k in range(3):
        study(a, dlp=300 + k, date=dt.date(2025, 2, 1))
    change = EquipmentChange.objects.create(equipment=a, kind="software", old_value="VA1", new_value="VA2",
                                            effective_date=dt.date(2025, 1, 15))
    note_equipment_change(change.pk)
    note_equipment_change(change.pk)  # idempotent
    due = DueComparison.objects.get()
    assert due.since == dt.date(2025, 1, 15) and "VA1 to VA2" in due.reason
    assert NotificationDelivery.objects.filter(topic="drl_due").count() == 1
    run = drl_due_run(due_id=due.pk, today=dt.date(2025, 3, 1))
    assert run.period_start == dt.date(2025, 1, 15) and run.equipment_id == a.pk and run.trigger == "due"
    assert run.rows.get(quantity="dlp_total_mgycm").n == 3
    due.refresh_from_db()
    assert due.resolved_by == run


def test_new_protocol_and_kvp_shift_make_comparisons_due():
    a = unit()
    for _ in range(6):
        map_study(study(a, exam=None, events=[{"protocol": "Chest routine", "kvp": 120.0}]).pk)
    assert not DueComparison.objects.exists()  # the unit's first protocols are its baseline
    map_study(study(a, exam=None, events=[{"protocol": "Chest low dose", "kvp": 100.0}]).pk)
    assert DueComparison.objects.get().kind == "new_protocol"
    map_study(study(a, exam=None, events=[{"protocol": "Chest routine", "kvp": 100.0}]).pk)
    shift = DueComparison.objects.get(kind="kvp_shift")
    assert "kVp 100" in shift.reason and "120" in shift.reason


def _copy_with_software(src: Path, dst: Path, software: str) -> Path:
    ds = pydicom.dcmread(src)
    ds.SoftwareVersions = software
    ds.StudyInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.save_as(dst)
    return dst


@pytest.mark.corpus
def test_software_change_between_two_rdsrs_makes_comparisons_due(corpus, tmp_path, make_user, tasks_in_process,
                                                                django_capture_on_commit_callbacks):
    _subscribe(make_user, "drl_due")
    src = corpus / "ct" / "CT-RDSR-Siemens-Continued-1.dcm"
    with django_capture_on_commit_callbacks(execute=True):  # the post-ingest steps run on commit
        call_command("import_dose", str(src), stdout=open("/dev/null", "w"), stderr=open("/dev/null", "w"))
    first = Study.objects.get()
    assert first.standard_exam.code == "ct-chest"  # 'Thorax^Thorax_NON_CON (Adult)' mapped on import
    DueComparison.objects.all().delete()  # the new-unit change of the first import
    copy = _copy_with_software(src, tmp_path / "changed.dcm", "syngo CT 2099Z")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_dose", str(copy), stdout=open("/dev/null", "w"), stderr=open("/dev/null", "w"))
    change = EquipmentChange.objects.get(kind="software")
    assert change.equipment_id == first.equipment_id and change.new_value.endswith("2099Z")
    due = DueComparison.objects.get(kind="equipment_change")
    assert due.equipment_id == first.equipment_id and "2099Z" in due.reason
    assert NotificationDelivery.objects.filter(topic="drl_due", object_id=str(due.pk)).exists()
