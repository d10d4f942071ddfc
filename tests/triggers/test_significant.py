"""The German StrlSchV Anlage 14 pack (inactive by default) and the AAPM CT notification values on CT studies."""

from __future__ import annotations

import importlib.util

import pytest

from tests.triggers.factories import ct_study
from triggers.models import Alert, TriggerRule
from triggers.services import alert_escalate, check_study

pytestmark = pytest.mark.django_db


def test_german_pack_is_inactive_by_default_and_raises_significant_events_when_active():
    over = ct_study(acquisitions=[(130.0, "Head"), (20.0, "Head")], description="CT Head")
    check_study(over.pk)
    assert not Alert.objects.filter(severity="significant_event").exists()
    TriggerRule.objects.filter(pack="de_strlschv_anlage14").update(active=True)
    check_study(over.pk)
    alert = Alert.objects.get(study=over, severity="significant_event")
    assert alert.rule.key == "de-anlage14-ct-brain" and alert.value == 130.0 and alert.scope == "event"
    assert [e["value"] for e in alert.details["events"]] == [130.0]  # the acquisition concerned, on its own
    under = ct_study(acquisitions=[(110.0, "Head")], description="CT Head")
    check_study(under.pk)
    assert not Alert.objects.filter(study=under, severity="significant_event").exists()
    if importlib.util.find_spec("triggers.incidents.services") is not None:
        assert alert.incident_reports.count() == 1  # the draft incident report, opened automatically


def test_aapm_notification_values_by_category():
    head = ct_study(acquisitions=[(85.0, "Head")], description="CT Head")  # adult head: 80 mGy
    torso = ct_study(acquisitions=[(45.0, "Chest")], description="CT Chest")  # adult torso: 50 mGy
    child = ct_study(acquisitions=[(12.0, "Chest")], description="CT Chest", age=4.0)  # paed torso 32 cm: 10 mGy
    for s in (head, torso, child):
        check_study(s.pk)
    assert list(Alert.objects.filter(study=head).values_list("rule__key", flat=True)) == ["aapm-ct-adult-head"]
    assert not Alert.objects.filter(study=torso).exists()
    assert list(Alert.objects.filter(study=child).values_list("rule__key", flat=True)) == ["aapm-ct-paed-torso-32"]


def test_escalate_is_idempotent(make_user):
    user = make_user("physicist")
    study = ct_study(acquisitions=[(85.0, "Head")], description="CT Head")
    check_study(study.pk)
    alert = Alert.objects.get(study=study)
    alert_escalate(alert, user)
    alert_escalate(alert, user)
    alert.refresh_from_db()
    assert alert.state == "escalated"
    assert list(alert.history.values_list("action", flat=True)) == ["raised", "escalated"]
