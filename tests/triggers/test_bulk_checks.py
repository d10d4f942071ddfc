"""triggers.bulk.check_studies: a batch's new alerts created in bulk, the same as check_study one study at a time."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dosereg.registry.models import AccumulatedDose, NotificationDelivery, NotificationSubscription, Study
from tests.factories import RoomFactory
from tests.triggers.factories import fluoro_study
from triggers.bulk import check_studies
from triggers.models import Alert, AlertEvent, TriggerRule
from triggers.services import _studies_facts, check_study, study_facts_qs

pytestmark = pytest.mark.django_db


@pytest.fixture
def kap_rule():
    TriggerRule.objects.update(active=False)
    return TriggerRule.objects.create(key="t-kap", name="KAP above 50", quantity="kap_total_gycm2", threshold=50,
                                      unit="Gy·cm²", scope="study", modality_type="fluoroscopy",
                                      severity="notification", source="test", kind="threshold")


def _studies(room_name: str, kaps: list[float]) -> list[int]:
    room = RoomFactory(name=room_name)
    return [fluoro_study(ka_r_mgy=100.0, kap_gycm2=kap, room=room).pk for kap in kaps]


def _positions(value, order: dict[int, int]):
    """Study ids inside an alert's details replaced by the study's position in its batch (the batches differ in ids)."""
    if isinstance(value, dict):
        return {k: order.get(v, v) if k == "study_id" else _positions(v, order) for k, v in value.items()}
    if isinstance(value, list):
        return [_positions(v, order) for v in value]
    return value


def _alerts(ids: list[int]) -> list[tuple]:
    order = {sid: i for i, sid in enumerate(ids)}
    rows = [(order[a.study_id], a.rule_id, a.rule_version, a.severity, a.scope, a.quantity, a.quantity_label, a.value,
             a.unit, a.threshold, _positions(a.details, order), a.summary, a.demo, a.still_exceeds, a.state, a.notified, a.patient_id
             == a.study.patient_id, [(e.action, e.to_state, _positions(e.detail, order)) for e in AlertEvent.objects.filter(alert=a).order_by("pk")])
            for a in Alert.objects.filter(study_id__in=ids).select_related("study")]
    return sorted(rows, key=lambda r: (r[0], r[1]))


@pytest.mark.parametrize("subscribed", [True, False])
def test_bulk_alerts_equal_check_study_alerts(kap_rule, make_user, subscribed):
    if subscribed:
        user = make_user("physicist", username="ann", email="ann@example.org")
        NotificationSubscription.objects.create(user=user, topic="alert")
    kaps = [80.0, 10.0, 120.0, 49.0, 51.0]
    one_by_one = _studies("Angio A", kaps)
    for sid in one_by_one:
        check_study(sid)
    batch = _studies("Angio B", kaps)
    checked = check_studies(batch)
    expected = _alerts(one_by_one)
    assert [r[0] for r in expected] == [0, 2, 4]
    assert _alerts(batch) == expected
    assert set(checked) == {batch[0], batch[2], batch[4]}
    assert all(len(v) == 1 for v in checked.values())
    # the subscriber is told of each alert, as alert_notify does one by one; nobody subscribed: each is written
    # notified, as alert_notify leaves it
    assert NotificationDelivery.objects.filter(object_type="alert", object_id__in=[
        str(pk) for pk in Alert.objects.filter(study_id__in=batch).values_list("pk", flat=True)]).count() == (
        3 if subscribed else 0)
    assert all(row[15] for row in _alerts(batch))


def test_queries_of_a_batch_do_not_grow_with_its_alerts(kap_rule):
    def queries(n: int, room: str) -> int:
        ids = _studies(room, [80.0, 10.0] * n)
        with CaptureQueriesContext(connection) as ctx:
            check_studies(ids)
        assert Alert.objects.filter(study_id__in=ids).count() == n
        assert AlertEvent.objects.filter(alert__study_id__in=ids, action="raised").count() == n
        assert not Alert.objects.filter(study_id__in=ids, notified=False).exists()
        return len(ctx)

    small, large = queries(3, "Angio C"), queries(12, "Angio D")
    assert large == small
    assert small <= 15


def test_facts_of_studies_loaded_with_only_their_fact_columns_equal_those_of_whole_studies():
    """The batch checks load FACT_FIELDS only: the facts are the same, and reading them loads no deferred column."""
    from dosereg.registry.models import StandardExam

    ids = _studies("Angio F", [80.0, 10.0])
    exam = StandardExam.objects.create(code="T-FACTS", name="Coronary angiography", body_region="chest")
    Study.objects.filter(pk=ids[0]).update(standard_exam=exam, study_description="Coronary angio",
                                           age_years=61.5, pregnancy_status="not_pregnant", psd_mgy=900.0)
    whole = _studies_facts(list(Study.objects.select_related("equipment", "standard_exam").filter(pk__in=ids)),
                           with_events=True)
    narrow = list(study_facts_qs().filter(pk__in=ids))
    with CaptureQueriesContext(connection) as ctx:
        facts = _studies_facts(narrow, with_events=True)
    assert facts == whole
    assert len(ctx) == 3  # planes, events, Dose Check records: no deferred column loaded study by study
    assert facts[ids[0]].exam_code == "T-FACTS" and facts[ids[0]].room_id is not None


def test_a_study_with_an_alert_is_checked_again_one_by_one(kap_rule):
    [sid] = _studies("Angio E", [80.0])
    check_studies([sid])
    alert = Alert.objects.get(study_id=sid)
    # a correction brought KAP under 50
    Study.objects.filter(pk=sid).update(kap_total_gycm2=20.0)
    AccumulatedDose.objects.filter(report__study_id=sid).update(kap_total_gycm2=20.0)
    check_studies([sid])
    alert.refresh_from_db()
    assert alert.still_exceeds is False
    assert alert.details["no_longer_exceeds"]["value"] == pytest.approx(20.0)


@pytest.mark.parametrize("days", [(0, 0, 0), (0, 30, 10)], ids=["same day", "different days"])
def test_patient_window_alerts_equal_check_study_alerts(days):
    TriggerRule.objects.update(active=False)
    TriggerRule.objects.create(key="t-kap-window", name="KAP window", quantity="kap_total_gycm2", threshold=40,
                               unit="Gy·cm²", scope="patient_window", window_days=365, min_procedures=2,
                               modality_type="fluoroscopy", severity="notification", source="test", kind="threshold")

    def patient_studies(room_name: str) -> list[int]:
        room = RoomFactory(name=room_name)
        first = fluoro_study(ka_r_mgy=100.0, kap_gycm2=15.0, room=room,
                             study_date=dt.date(2026, 3, 2) + dt.timedelta(days=days[0]))
        return [first.pk] + [fluoro_study(ka_r_mgy=100.0, kap_gycm2=15.0, room=room, patient=first.patient,
                                          study_date=dt.date(2026, 3, 2) + dt.timedelta(days=d)).pk
                             for d in days[1:]]

    one_by_one = patient_studies("Angio F")
    for sid in one_by_one:
        check_study(sid)
    batch = patient_studies("Angio G")
    check_studies(batch)
    expected = _alerts(one_by_one)
    assert expected  # 45 Gy·cm² in the window on three procedures
    assert _alerts(batch) == expected


def test_a_batch_sees_the_rules_as_edited_since_the_last_batch(kap_rule):
    """The rules are built once while their rows are unchanged: an edited threshold, a deactivated rule and a new rule
    each show at the next batch (edited with update(), as another process would: no signal, no save hook)."""
    assert set(check_studies(_studies("Angio A", [60.0]))) != set()
    TriggerRule.objects.filter(pk=kap_rule.pk).update(threshold=70)
    assert check_studies(_studies("Angio B", [60.0])) == {}
    TriggerRule.objects.filter(pk=kap_rule.pk).update(threshold=50)
    [sid] = _studies("Angio C", [60.0])
    check_studies([sid])
    assert Alert.objects.filter(study_id=sid, rule=kap_rule).exists()
    TriggerRule.objects.filter(pk=kap_rule.pk).update(active=False)
    assert check_studies(_studies("Angio D", [60.0])) == {}
    TriggerRule.objects.create(key="t-kap-2", name="KAP above 55", quantity="kap_total_gycm2", threshold=55,
                               unit="Gy·cm²", scope="study", modality_type="fluoroscopy", severity="notification",
                               source="test", kind="threshold")
    [sid] = _studies("Angio E", [60.0])
    check_studies([sid])
    assert list(Alert.objects.filter(study_id=sid).values_list("rule__key", flat=True)) == ["t-kap-2"]
