"""dosereg.registry.fixed_queries: a query compiled once gives what Django's queryset gives, whatever the values."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext

from dosereg.registry.fixed_queries import fixed_rows, rows_in
from dosereg.registry.models import Patient, Study
from tests.factories import PatientFactory, RoomFactory, StandardExamFactory, StudyFactory

pytestmark = pytest.mark.django_db


def _names_like(ids: list[int]) -> QuerySet:  # parameters on both sides of the list, a literal % in the SQL
    return (Patient.objects.filter(name__contains="%", pk__in=ids).exclude(sex="X")
            .values_list("pk", "name", "birth_date", "pseudonymised", "flags"))


def _by_patient_id(patient_ids: list[str]) -> QuerySet:
    return Patient.objects.filter(patient_id__in=patient_ids).order_by("pk").values("patient_id", "birth_date")


def _ids_newest_first(ids: list[int]) -> QuerySet:
    return Patient.objects.filter(pk__in=ids).order_by("-pk").values_list("pk", flat=True)


def _studies_with_their_unit_and_exam(ids: list[int]) -> QuerySet:
    return (Study.objects.select_related("equipment", "standard_exam")
            .only("study_date", "modality_types", "equipment__room_id", "standard_exam__code").filter(pk__in=ids))


def _every_patient() -> QuerySet:
    return Patient.objects.order_by("pk").values_list("pk", "patient_id", "flags")


def test_look_ups_give_what_the_queryset_gives():
    rows = [PatientFactory(name=f"{i}% Doe", sex="F" if i % 2 else "M", birth_date=dt.date(1950 + i, 1, 1),
                           pseudonymised=bool(i % 3), flags=["x"] * (i % 2)) for i in range(6)]
    ids = [p.pk for p in rows]
    for values in (ids, ids[:1], ids[::-1] + [None, ids[0], 999_999], ids[2:4]):
        assert rows_in(_names_like, values) == list(_names_like(values))
        assert rows_in(_ids_newest_first, values) == list(_ids_newest_first(values))
    patient_ids = [p.patient_id for p in rows[:3]] + ["none such", "50% O'Brien"]
    assert rows_in(_by_patient_id, patient_ids) == list(_by_patient_id(patient_ids))
    assert isinstance(rows_in(_by_patient_id, patient_ids)[0]["birth_date"], dt.date)  # columns converted


def test_no_values_no_query():
    with CaptureQueriesContext(connection) as ctx:
        assert rows_in(_ids_newest_first, [None]) == []
        assert rows_in(_ids_newest_first, []) == []
    assert len(ctx) == 0


def test_values_of_another_type_are_refused():
    with pytest.raises(TypeError):
        rows_in(_ids_newest_first, [1, "2"])


def test_fixed_rows_read_the_rows_each_time():
    first = PatientFactory(flags=["a"])
    assert fixed_rows(_every_patient) == tuple(_every_patient())
    Patient.objects.filter(pk=first.pk).update(flags=["b"])
    second = PatientFactory()
    assert fixed_rows(_every_patient) == ((first.pk, first.patient_id, ["b"]), (second.pk, second.patient_id, []))


def test_model_look_ups_give_the_objects_the_queryset_gives():
    exam = StandardExamFactory()
    studies = [StudyFactory(standard_exam=exam), StudyFactory(study_date=None),
               StudyFactory(equipment__room=RoomFactory(name="Angio A"))]
    ids = [s.pk for s in studies]

    def seen(study: Study) -> tuple:
        return (type(study), study.pk, study.study_date, study.modality_types, sorted(study.get_deferred_fields()),
                study.equipment.pk, study.equipment.room_id, sorted(study.equipment.get_deferred_fields()),
                study.standard_exam and (study.standard_exam.pk, study.standard_exam.code,
                                         sorted(study.standard_exam.get_deferred_fields())), study._state.adding,
                study._state.db)

    with CaptureQueriesContext(connection) as ctx:
        got = [seen(s) for s in rows_in(_studies_with_their_unit_and_exam, ids)]
    assert len(ctx) == 1  # the unit and the examination came with the study
    assert got == [seen(s) for s in _studies_with_their_unit_and_exam(ids)]
