"""The read-side functions the web pages call instead of looking into the Alert model: badges per study, the open
alerts in the order they need acting on, their count (one query each)."""

from __future__ import annotations

import pytest

from tests.triggers.factories import fluoro_study
from triggers.models import Alert, TriggerRule
from triggers.selectors import alert_badges, open_alert_count, open_alerts

pytestmark = pytest.mark.django_db


def _alert(study, severity: str, *, state: str = "new", value: float = 5100.0) -> Alert:
    rule = TriggerRule.objects.create(key=f"r-{severity}-{study.pk}-{state}", name=f"{severity} rule",
                                      quantity="ka_r_total_mgy", threshold=5000, unit="mGy", scope="study",
                                      severity=severity, source="test")
    return Alert.objects.create(study=study, rule=rule, patient=study.patient, severity=severity, scope="study",
                                quantity="ka_r_total_mgy", quantity_label="Ka,r total", value=value, unit="mGy",
                                threshold=5000.0, summary=f"Ka,r total {value / 1000:g} Gy ≥ 5 Gy", state=state)


def test_alert_badges_most_severe_first_in_one_query(django_assert_num_queries):
    one, two, quiet = fluoro_study(ka_r_mgy=5100.0), fluoro_study(ka_r_mgy=5200.0), fluoro_study(ka_r_mgy=100.0)
    note = _alert(one, "notification")
    significant = _alert(one, "significant_event", state="closed")
    other = _alert(two, "alert", value=5200.0)
    Alert.objects.filter(pk=other.pk).update(still_exceeds=False)
    with django_assert_num_queries(1):
        badges = alert_badges([one.pk, two.pk, quiet.pk])
    assert [b["id"] for b in badges[one.pk]] == [significant.pk, note.pk]
    assert badges[one.pk][0] == {"id": significant.pk, "severity": "significant_event", "state": "closed",
                                 "rule_name": "significant_event rule", "quantity": "ka_r_total_mgy",
                                 "text": "Ka,r total 5.1 Gy ≥ 5 Gy", "still_exceeds": True, "demo": False}
    assert badges[two.pk][0]["text"] == "Ka,r total 5.2 Gy ≥ 5 Gy (no longer exceeded)"
    assert quiet.pk not in badges
    assert alert_badges([]) == {}


def test_open_alerts_what_needs_acting_on_first(django_assert_num_queries, make_user):
    a, b, c = (fluoro_study(ka_r_mgy=5100.0) for _ in range(3))
    older_alert = _alert(a, "alert")
    note = _alert(b, "notification", state="acknowledged")
    newer_alert = _alert(c, "alert", state="follow_up")
    significant = _alert(a, "significant_event")
    _alert(b, "significant_event", state="closed")
    _alert(c, "notification", state="escalated")
    with django_assert_num_queries(1):
        rows = list(open_alerts())
        assert [x.study.study_instance_uid for x in rows] and rows[0].patient.patient_id and rows[0].rule.name
    # severity, then new before follow-up, then newest
    assert [x.pk for x in rows] == [significant.pk, older_alert.pk, newer_alert.pk, note.pk]
    assert [x.pk for x in open_alerts(limit=2)] == [significant.pk, older_alert.pk]
    assert open_alert_count() == 4
    assert list(open_alerts(user=make_user(None))) == []
    assert len(open_alerts(user=make_user("physicist"))) == 4
