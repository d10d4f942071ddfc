"""Re-evaluation after a study's values change (a corrected re-issue, a re-import): an alert whose rule no longer
fires is kept with its history and marked, with the value the study shows now; an alert whose value changed but
still exceeds gets the new value.  Invalid values (None in the columns) never raise alerts; implausible ones do."""

from __future__ import annotations

import io
import math

import pytest
from django.core.management import call_command
from pydicom.uid import generate_uid

from dosereg.registry.models import AccumulatedDose, Study
from tests.dicomrx.synthetic import build_ct_rdsr, to_bytes
from tests.triggers.conftest import eager
from tests.triggers.factories import fluoro_study
from triggers.models import Alert, TriggerRule
from triggers.rules import RuleSpec, StudyFacts, evaluate
from triggers.services import check_study, rule_save

pytestmark = pytest.mark.django_db


def _rule(quantity: str, threshold: float, unit: str, *, scope: str = "study", modality: str = "") -> TriggerRule:
    return rule_save(rule=None, user=None, data={
        "name": f"Test {quantity} {threshold} {unit}", "quantity": quantity, "threshold": threshold, "unit": unit,
        "scope": scope, "severity": "alert", "source": "test", "modality_type": modality, "plane_mode": "sum"})


def _only_test_rules():
    TriggerRule.objects.update(active=False)


def _correct_fluoro(study: Study, ka_r_mgy: float) -> None:
    """What the registry does when a corrected report replaces a study's values (the lead's correction path writes
    the report's accumulated totals, the study totals and the ``corrected`` flag, then re-runs the check)."""
    AccumulatedDose.objects.filter(report__study=study).update(ka_r_total_mgy=ka_r_mgy)
    Study.objects.filter(pk=study.pk).update(ka_r_total_mgy=ka_r_mgy, flags=["corrected"])


def _history(alert: Alert) -> list[str]:
    return list(alert.history.values_list("action", flat=True))


def test_correction_below_the_level_keeps_the_alert_marked_with_the_new_value():
    _only_test_rules()
    rule = _rule("ka_r_total_mgy", 5, "Gy")
    study = fluoro_study(ka_r_mgy=6200.0)
    check_study(study.pk)
    alert = Alert.objects.get(study=study, rule=rule)
    assert alert.still_exceeds and alert.value == 6200.0 and alert.summary == "Ka,r total 6.2 Gy ≥ 5 Gy"

    _correct_fluoro(study, 4100.0)
    assert check_study(study.pk) == [alert.pk]  # kept, not deleted
    alert.refresh_from_db()
    assert not alert.still_exceeds
    assert alert.value == 6200.0  # the value that raised it stays on record
    withdrawn = alert.details["no_longer_exceeds"]
    assert withdrawn["value"] == 4100.0 and withdrawn["previous_value"] == 6200.0 and withdrawn["after_correction"]
    assert _history(alert) == ["raised", "no_longer_exceeds"]
    assert alert.history.last().detail["value"] == 4100.0

    check_study(study.pk)  # checking again changes nothing
    assert _history(alert) == ["raised", "no_longer_exceeds"]


def test_alert_page_says_the_alert_no_longer_applies_after_correction(client, make_user):
    _only_test_rules()
    _rule("ka_r_total_mgy", 5, "Gy")
    study = fluoro_study(ka_r_mgy=6200.0)
    check_study(study.pk)
    _correct_fluoro(study, 4100.0)
    check_study(study.pk)
    client.force_login(make_user("physicist"))
    page = client.get(f"/alerts/{Alert.objects.get().pk}/").content.decode()
    assert "No longer exceeded after the study's values were corrected: it now shows 4.1 Gy (was 6.2 Gy)" in page
    assert "value: 4.1 Gy; previous value: 6.2 Gy" in page  # the history, values with their units


def test_correction_still_above_the_level_updates_the_value():
    _only_test_rules()
    rule = _rule("ka_r_total_mgy", 5, "Gy")
    study = fluoro_study(ka_r_mgy=6200.0)
    check_study(study.pk)
    _correct_fluoro(study, 5400.0)
    check_study(study.pk)
    alert = Alert.objects.get(study=study, rule=rule)
    assert alert.still_exceeds and alert.value == 5400.0 and alert.summary == "Ka,r total 5.4 Gy ≥ 5 Gy"
    assert _history(alert) == ["raised", "updated"]
    assert alert.history.last().detail["before"]["value"] == 6200.0

    # corrected down, then up again: the same alert applies again
    _correct_fluoro(study, 3000.0)
    check_study(study.pk)
    _correct_fluoro(study, 5100.0)
    check_study(study.pk)
    alert.refresh_from_db()
    assert alert.still_exceeds and alert.value == 5100.0 and "no_longer_exceeds" not in alert.details
    assert _history(alert) == ["raised", "updated", "no_longer_exceeds", "updated"]
    assert Alert.objects.filter(study=study).count() == 1


def test_invalid_values_never_raise_alerts_implausible_values_do():
    _only_test_rules()
    _rule("ka_r_total_mgy", 5, "Gy")
    invalid = fluoro_study(ka_r_mgy=6000.0)
    # the border check stored the value as invalid: None in the columns, the study flagged
    AccumulatedDose.objects.filter(report__study=invalid).update(ka_r_total_mgy=None)
    Study.objects.filter(pk=invalid.pk).update(ka_r_total_mgy=None, flags=["invalid_value"])
    invalid.events.update(ka_r_mgy=None)
    implausible = fluoro_study(ka_r_mgy=400000.0)  # above the catalogue's plausible range: stored and flagged
    Study.objects.filter(pk=implausible.pk).update(flags=["implausible_value"], values_unconfirmed=True)
    assert check_study(invalid.pk) == []
    assert len(check_study(implausible.pk)) == 1
    assert Alert.objects.get(study=implausible).summary == "Ka,r total 400 Gy ≥ 5 Gy"


def test_a_non_finite_value_never_fires_a_rule():
    rule = RuleSpec(id=1, name="KAP", quantity="kap_total_gycm2", threshold=500, scope="study", severity="alert")
    facts = [StudyFacts(study_id=i, patient_id=1, study_date=None, totals={"kap_total_gycm2": v})
             for i, v in enumerate((math.inf, math.nan, None), 1)]
    assert [evaluate(f, [], [rule]) for f in facts] == [[], [], []]


@pytest.mark.parametrize(("quantity", "value", "threshold", "text"), [
    ("kap_total_gycm2", 0.000321, 0.0003, "KAP total 0.000321 Gy·cm² ≥ 0.0003 Gy·cm²"),
    ("dlp_total_mgycm", 2463.7, 1000.0, "DLP total 2,460 mGy·cm ≥ 1,000 mGy·cm"),
    ("fluoro_time_total_s", 2827.0, 1800.0, "Fluoroscopy time 47:07 min ≥ 30:00 min"),
])
def test_alert_texts_use_the_catalogue_format(quantity, value, threshold, text):
    rule = RuleSpec(id=1, name="r", quantity=quantity, threshold=threshold, scope="study", severity="alert")
    facts = StudyFacts(study_id=1, patient_id=1, study_date=None, totals={quantity: value})
    [hit] = evaluate(facts, [], [rule])
    assert hit.summary == text and "e-" not in hit.summary and "e+" not in hit.summary


@pytest.fixture
def import_ct(tmp_path, django_capture_on_commit_callbacks):
    """import_ct(study_uid, event_uid, dlp, content_time) -> imports a one-event CT RDSR with `manage.py import_dose`
    (on-commit steps, the trigger check among them, run in this process)."""
    eager()

    def _import(study_uid: str, event_uid: str, dlp: float, content_time: str) -> str:
        ds = build_ct_rdsr(study_uid, [{"uid": event_uid, "ctdivol": 10.0, "dlp": dlp}], as_dataset=True)
        ds.ContentTime = content_time
        path = tmp_path / f"{generate_uid()}.dcm"
        path.write_bytes(to_bytes(ds))
        out = io.StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            try:
                call_command("import_dose", str(path), stdout=out, stderr=io.StringIO())
            except SystemExit:
                pass
        return out.getvalue()

    return _import


def test_corrected_reissue_re_evaluates_the_alert(import_ct):
    """A re-issue of the same report (same irradiation event, new values, later content time) is a correction: the
    registry replaces the values and re-runs the check, and the alert follows."""
    _only_test_rules()
    rule = _rule("dlp_total_mgycm", 1000, "mGy·cm", modality="CT")
    study_uid, event_uid = generate_uid(), generate_uid()
    import_ct(study_uid, event_uid, 2000.0, "103000")
    alert = Alert.objects.get(rule=rule)
    assert alert.value == 2000.0 and alert.still_exceeds

    out = import_ct(study_uid, event_uid, 800.0, "113000")
    assert "corrected=1" in out
    alert.refresh_from_db()
    assert Study.objects.get(study_instance_uid=study_uid).dlp_total_mgycm == 800.0
    assert not alert.still_exceeds and alert.details["no_longer_exceeds"]["value"] == 800.0
    assert _history(alert) == ["raised", "no_longer_exceeds"]

    import_ct(study_uid, event_uid, 1500.0, "123000")
    alert.refresh_from_db()
    assert alert.still_exceeds and alert.value == 1500.0
    assert Alert.objects.filter(rule=rule).count() == 1
