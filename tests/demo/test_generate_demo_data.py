"""generate_demo_data: real RDSRs through the import path, and --bulk through the same recording service."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from dicomrx.demo import demo_dataset, demo_report, demo_studies
from dicomrx.parse import parse_dose_object
from dosereg.registry.models import Study


def _encode(study) -> bytes:
    buf = io.BytesIO()
    demo_dataset(study).save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_demo_rdsr_parses_to_the_same_values_as_the_bulk_dataclasses():
    """The two renderings of a demo study agree, so --bulk data is what an import of the files would give."""
    seen = set()
    for study in demo_studies(80, year=2025, seed=7):
        parsed = parse_dose_object(_encode(study))
        built = demo_report(study)
        seen.add(study.unit.kind)
        assert parsed.modality_types == built.modality_types
        assert [e.irradiation_event_uid for e in parsed.events] == [e.irradiation_event_uid for e in built.events]
        for a, b in zip(parsed.events, built.events, strict=True):
            assert a.event_type == b.event_type
            assert a.plane == b.plane
            assert {k: q.value for k, q in a.quantities.items()} == {k: q.value for k, q in b.quantities.items()}
        for a, b in zip(parsed.accumulated, built.accumulated, strict=True):
            assert {k: q.value for k, q in a.quantities.items()} == {k: q.value for k, q in b.quantities.items()}
    assert seen == {"ct", "ir", "fluoro", "dx", "mg", "nm"}


def test_same_seed_same_studies():
    a = [(s.study_uid, s.description) for s in demo_studies(20, year=2024, seed=3)]
    b = [(s.study_uid, s.description) for s in demo_studies(20, year=2024, seed=3)]
    assert a == b


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("bulk", [False, True])
def test_generate_demo_data_records_demo_studies_and_purge_removes_them(bulk):
    out = io.StringIO()
    call_command("generate_demo_data", studies=40, year=2024, seed=11, bulk=bulk, stdout=out)
    assert out.getvalue().strip().splitlines()[-1] == "imported=40 failed=0"
    studies = Study.objects.all()
    assert studies.count() == 40
    assert not studies.filter(demo=False).exists()
    assert set(studies.values_list("study_date__year", flat=True)) == {2024}
    kinds = set(studies.values_list("modality_type", flat=True))
    assert {"CT", "radiography"} <= kinds
    exported = io.StringIO()
    call_command("export_doses", format="json", stdout=exported)
    rows = json.loads(exported.getvalue())
    assert len(rows) == 40 and all(row["demo"] is True for row in rows)
    ct = next(row for row in rows if row["modality_type"] == "CT")
    assert ct["totals"]["dlp_total_mgycm"] > 0
    from dosereg.registry.models import Equipment, Room

    units = Equipment.objects.filter(demo=True).select_related("room")
    assert units and all(u.room and u.room.name == "Demo room " + u.station_name.removeprefix("DEMO-") for u in units)
    purge = io.StringIO()
    call_command("generate_demo_data", purge=True, stdout=purge)
    assert "purged_studies=40" in purge.getvalue()
    assert Study.objects.count() == 0
    assert not Room.objects.filter(name__startswith="Demo room ").exists()


def _export() -> list[dict]:
    from dosereg.registry.models import Equipment
    from dosereg.registry.selectors import iter_export_dicts

    station = dict(Equipment.objects.values_list("id", "station_name"))
    rows = []
    for row in iter_export_dicts(Study.objects.all()):
        row["equipment_id"] = station[row["equipment_id"]]
        rows.append(row)
    return sorted(rows, key=lambda r: r["study_instance_uid"])


@pytest.mark.django_db(transaction=True)
def test_bulk_batches_give_the_same_registry_whatever_their_size_and_a_rerun_changes_nothing():
    out = io.StringIO()
    call_command("generate_demo_data", studies=30, year=2024, seed=4, bulk=True, batch_size=7, stdout=out)
    assert out.getvalue().strip().splitlines()[-1] == "imported=30 failed=0"
    small = _export()
    assert all(row["standard_exam"] for row in small if row["modality_type"] == "CT")  # mapped after recording
    again = io.StringIO()
    call_command("generate_demo_data", studies=30, year=2024, seed=4, bulk=True, stdout=again)
    assert again.getvalue().strip().splitlines()[-1] == "imported=0 failed=0 already_present=30"
    assert _export() == small
    call_command("generate_demo_data", purge=True, stdout=io.StringIO())
    call_command("generate_demo_data", studies=30, year=2024, seed=4, bulk=True, stdout=io.StringIO())
    assert _export() == small


def test_batch_size_must_be_positive():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--batch-size"):
        call_command("generate_demo_data", studies=3, bulk=True, batch_size=0)


@pytest.mark.django_db(transaction=True)
def test_bulk_run_leaves_the_garbage_collector_as_it_found_it():
    """--bulk quiets the collector for its batches and restores it (a long-lived caller keeps its settings)."""
    import gc

    before = gc.get_threshold(), gc.get_freeze_count()
    call_command("generate_demo_data", studies=5, year=2024, seed=2, bulk=True, stdout=io.StringIO(),
                 stderr=io.StringIO())
    assert Study.objects.count() == 5
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


def test_parts_of_a_seed_are_its_studies_each_patient_in_one_part():
    whole = [(s.study_uid, s.patient_id, s.description, s.when) for s in demo_studies(300, year=2024, seed=5)]
    parts = [[(s.study_uid, s.patient_id, s.description, s.when)
              for s in demo_studies(300, year=2024, seed=5, part=(k, 3))] for k in range(3)]
    assert sorted(x for part in parts for x in part) == sorted(whole)
    for part in parts:
        assert part == [x for x in whole if x in set(part)]  # in the sequence's order
    patients = [{x[1] for x in part} for part in parts]
    assert all(part for part in patients) and not (patients[0] & patients[1] or patients[0] & patients[2]
                                                   or patients[1] & patients[2])


@pytest.mark.django_db(transaction=True)
def test_jobs_record_the_same_studies_as_one_process():
    """--jobs 3 (PostgreSQL: three recording processes; SQLite: one) gives the registry one process gives."""
    from triggers.models import Alert

    call_command("generate_demo_data", studies=120, year=2024, seed=6, bulk=True, batch_size=25,
                 stdout=io.StringIO(), stderr=io.StringIO())
    one = _export()
    alerts = sorted(Alert.objects.values_list("study__study_instance_uid", "rule__key"))
    call_command("generate_demo_data", purge=True, stdout=io.StringIO())
    out = io.StringIO()
    call_command("generate_demo_data", studies=120, year=2024, seed=6, bulk=True, batch_size=25, jobs=3,
                 stdout=out, stderr=io.StringIO())
    assert out.getvalue().strip().splitlines()[-1] == "imported=120 failed=0"
    assert _export() == one
    assert sorted(Alert.objects.values_list("study__study_instance_uid", "rule__key")) == alerts


def test_jobs_must_be_positive():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--jobs"):
        call_command("generate_demo_data", studies=3, bulk=True, jobs=0)


def _indexes() -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                       "ORDER BY tablename, indexname")
        return cursor.fetchall()


def _require_postgresql() -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("secondary indexes are left out of a bulk load on PostgreSQL only")


@pytest.mark.django_db(transaction=True)
def test_bulk_into_an_empty_registry_builds_its_indexes_again_as_the_migrations_made_them():
    _require_postgresql()
    before = _indexes()
    err = io.StringIO()
    call_command("generate_demo_data", studies=60, year=2024, seed=8, bulk=True, batch_size=25, stdout=io.StringIO(),
                 stderr=err)
    assert "secondary indexes left out while loading" in err.getvalue()
    assert _indexes() == before
    err = io.StringIO()  # a registry with rows is not the load's own: its indexes stay
    call_command("generate_demo_data", studies=10, year=2024, seed=9, bulk=True, stdout=io.StringIO(), stderr=err)
    assert "secondary indexes" not in err.getvalue()
    assert Study.objects.count() == 70


@pytest.mark.django_db(transaction=True)
def test_bulk_load_that_fails_still_builds_the_indexes_again(monkeypatch):
    _require_postgresql()
    from django.core.management.base import CommandError

    from dicomrx.management.commands import generate_demo_data

    before = _indexes()

    def fail(*args, **kwargs):
        assert len(_indexes()) < len(before)  # left out while loading
        raise CommandError("stopped")

    monkeypatch.setattr(generate_demo_data.Command, "_generate_bulk", fail)
    with pytest.raises(CommandError, match="stopped"):
        call_command("generate_demo_data", studies=5, year=2024, bulk=True, stdout=io.StringIO(),
                     stderr=io.StringIO())
    assert _indexes() == before


@pytest.mark.django_db(transaction=True)
def test_bulk_rows_are_consistent_across_tables():
    """One received object and one report per study; the events and accumulated rows of each report belong to its
    study; totals, effective dose, examination mapping and alerts written as the import path writes them."""
    from django.db.models import Count, F

    from dosereg.registry.models import AccumulatedDose, DoseReport, IrradiationEvent, Patient, ReceivedObject
    from triggers.models import Alert

    call_command("generate_demo_data", studies=300, year=2024, seed=12, bulk=True, batch_size=70,
                 stdout=io.StringIO(), stderr=io.StringIO())
    assert Study.objects.count() == DoseReport.objects.count() == ReceivedObject.objects.count() == 300
    assert not DoseReport.objects.exclude(received_object__sop_instance_uid=F("sop_instance_uid")).exists()
    assert not IrradiationEvent.objects.exclude(study_id=F("report__study_id")).exists()
    assert AccumulatedDose.objects.values("report_id").distinct().count() == 300
    per_study = dict(Study.objects.values_list("id", "event_count"))
    counted = dict(IrradiationEvent.objects.filter(is_current=True).values("study_id").annotate(n=Count("id"))
                   .values_list("study_id", "n"))
    assert counted == {sid: n for sid, n in per_study.items() if n}
    assert Patient.objects.count() < 300 and not Patient.objects.filter(studies__isnull=True).exists()
    ct = Study.objects.filter(modality_type="CT")
    assert not ct.filter(effective_dose_method="").exists()  # an estimate, or why there is none
    assert ct.filter(effective_dose_msv__isnull=False).count() > ct.count() / 2
    assert not ct.filter(standard_exam__isnull=True).exists()
    assert Alert.objects.exists()
