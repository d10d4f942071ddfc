"""record_reports_bulk and the batch post-commit steps give what the per-object path gives, object by object."""

from __future__ import annotations

import dataclasses

import pytest

from dicomrx.demo import demo_report, demo_studies
from dicomrx.management.commands.generate_demo_data import purge_demo_data
from dicomrx.pipeline import after_studies_recorded
from dosereg.registry.models import (
    DoseReport,
    Equipment,
    EquipmentChange,
    IrradiationEvent,
    ReceivedObject,
    Study,
)
from dosereg.registry.selectors import iter_export_dicts
from dosereg.registry.services.recording import bulk_sha256, record_report, record_reports_bulk
from drl.models import DueComparison, ProtocolSeen, UnmappedName
from tests.ingest.factories import ct_event, ct_report
from triggers.models import Alert, TriggerRule

pytestmark = pytest.mark.django_db


def _continued(report, suffix: str):
    """Another report of the same study with disjoint events (a continued report: totals add up)."""
    events = tuple(dataclasses.replace(e, irradiation_event_uid=e.irradiation_event_uid + suffix)
                   for e in report.events)
    return dataclasses.replace(report, sop_instance_uid=report.sop_instance_uid + suffix, events=events)


def _reports():
    """Demo reports of every kind, with a software change on a unit, continued reports (one in the batch of its
    study, one in a later batch) and an unmapped description."""
    reports = [demo_report(s) for s in demo_studies(150, year=2024, seed=21)]
    for i in (60, 61, 100):  # a new software version on this unit from the 61st object on
        eq = reports[i].equipment
        reports[i] = dataclasses.replace(reports[i], equipment=dataclasses.replace(eq, software_versions="NEW-1"))
    reports[5] = dataclasses.replace(reports[5], study=dataclasses.replace(reports[5].study,
                                                                           study_description="MYSTERY EXAM"))
    reports.insert(12, _continued(reports[10], ".9"))  # same batch as its study
    reports.append(_continued(reports[3], ".8"))  # a later batch
    return reports


def _rules():
    """Rules that fire often on demo data: a per-study DLP level and a cumulative KAP window."""
    common = {"severity": "notification", "source": "test", "kind": "threshold"}
    TriggerRule.objects.create(key="t-dlp", name="DLP", quantity="dlp_total_mgycm", threshold=700, unit="mGy·cm",
                               scope="study", modality_type="CT", **common)
    TriggerRule.objects.create(key="t-kap-window", name="KAP window", quantity="kap_total_gycm2", threshold=20,
                               unit="Gy·cm²", scope="patient_window", window_days=365, min_procedures=2,
                               modality_type="fluoroscopy", **common)


def _per_object(reports):
    for r in reports:
        received = ReceivedObject.objects.create(
            sop_instance_uid=r.sop_instance_uid, sop_class_uid=r.sop_class_uid, sha256=bulk_sha256(r),
            study_instance_uid=r.study.study_instance_uid, modality="SR", source="demo")
        outcome = record_report(r, received, demo=True)
        after_studies_recorded([outcome.study_id], outcome.equipment_change_ids)


def _bulk(reports, batch: int):
    for i in range(0, len(reports), batch):
        outcomes = record_reports_bulk(reports[i:i + batch], demo=True)
        assert all(o.status in ("imported", "replaced", "superseded") for o in outcomes)
        after_studies_recorded([o.study_id for o in outcomes], [c for o in outcomes for c in o.equipment_change_ids])


def _state():
    """Everything the recording and the post-commit steps leave, without database ids."""
    station = dict(Equipment.objects.values_list("id", "station_name"))
    export = []
    for row in iter_export_dicts(Study.objects.all()):
        row["equipment_id"] = station[row["equipment_id"]]
        export.append(row)
    export.sort(key=lambda r: r["study_instance_uid"])
    return {
        "export": export,
        "alerts": sorted(Alert.objects.values_list("study__study_instance_uid", "rule__key", "value", "threshold",
                                                   "still_exceeds", "state", "summary")),
        "protocols": sorted(ProtocolSeen.objects.values_list("equipment__station_name", "protocol", "studies",
                                                             "kvp_baseline", "kvp_baseline_n", "first_seen_date")),
        "due": sorted(DueComparison.objects.values_list("equipment__station_name", "kind", "reason", "since")),
        "changes": sorted(EquipmentChange.objects.values_list("equipment__station_name", "kind", "old_value",
                                                              "new_value", "effective_date")),
        "unmapped": sorted(UnmappedName.objects.values_list("modality_type", "name")),
        "units": sorted(Equipment.objects.values_list("station_name", "software_versions", "sends_dose_reports")),
        "reports": sorted(DoseReport.objects.values_list("sop_instance_uid", "state", "flags")),
    }


def _wipe():
    purge_demo_data()
    UnmappedName.objects.all().delete()
    assert not Study.objects.exists() and not Equipment.objects.exists()


def test_bulk_path_gives_the_same_registry_as_the_per_object_path():
    _rules()
    reports = _reports()
    _per_object(reports)
    expected = _state()
    _wipe()
    _bulk(reports, batch=40)
    got = _state()
    assert len(expected["export"]) == 150
    assert expected["alerts"] and any(a[1] == "t-kap-window" for a in expected["alerts"])
    assert any(c[1] == "software" for c in expected["changes"])
    assert any(name == "MYSTERY EXAM" for _, name in expected["unmapped"])
    for key in expected:
        assert got[key] == expected[key], key


def test_existing_study_falls_back_to_record_report_and_totals_add_up():
    first = ct_report("9.1", [ct_event("1", 100.0), ct_event("2", 50.0)])
    [out] = record_reports_bulk([first])
    assert out.status == "imported"
    second = ct_report("9.1", [ct_event("3", 25.0)], sop="9.1.second")
    new = ct_report("9.2", [ct_event("1", 10.0)], sop="9.2.first")
    outs = record_reports_bulk([second, new, first])
    assert [o.status for o in outs] == ["imported", "imported", "already_present"]
    assert outs[0].study_id == out.study_id and outs[2].study_id == out.study_id
    study = Study.objects.get(study_instance_uid="9.1")
    assert study.dlp_total_mgycm == 175.0 and study.event_count == 3
    assert Study.objects.get(study_instance_uid="9.2").dlp_total_mgycm == 10.0
    assert ReceivedObject.objects.filter(source="demo", state="ingested", file_path="").count() == 3
    assert IrradiationEvent.objects.filter(study=study, is_current=True).count() == 3


def test_duplicate_event_uid_inside_one_object_counts_once():
    report = ct_report("9.3", [ct_event("1", 100.0), ct_event("1", 100.0)], total=100.0)
    [out] = record_reports_bulk([report])
    study = Study.objects.get(pk=out.study_id)
    assert study.event_count == 1
    assert list(IrradiationEvent.objects.filter(study=study).order_by("sequence").values_list(
        "is_current", flat=True)) == [True, False]


def test_studies_needing_check_finds_every_study_check_study_would_alert():
    """The prefilter leaves out only studies for which check_study does nothing."""
    from triggers.bulk import studies_needing_check
    from triggers.services import check_study

    _rules()
    reports = [demo_report(s) for s in demo_studies(120, year=2024, seed=5)]
    outcomes = record_reports_bulk(reports, demo=True)
    ids = [o.study_id for o in outcomes]
    needed = set(studies_needing_check(ids))
    assert needed and len(needed) < len(ids)
    for sid in ids:
        if sid not in needed:
            assert check_study(sid) == [], sid
    assert not Alert.objects.exclude(study_id__in=needed).exists()
    for sid in needed:
        check_study(sid)
    assert Alert.objects.exists()
