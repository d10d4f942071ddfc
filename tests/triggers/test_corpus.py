"""Real files from ../shared/rdsr through import_dose and the default rule packs."""

from __future__ import annotations

import pytest

from dosereg.registry.models import Study
from triggers.models import Alert, TriggerRule
from triggers.services import check_study, rule_save

pytestmark = [pytest.mark.corpus, pytest.mark.django_db]


def test_316_event_report_raises_its_two_kar_alerts(corpus, import_dose):
    print(import_dose(corpus / "rf" / "RF-Pat-Orientation-Modifier-Missing.dcm"))
    study = Study.objects.get()
    alerts = {a.rule.key: a for a in Alert.objects.filter(study=study).select_related("rule")}
    assert set(alerts) == {"mppg12a-kar-notification", "ncrp168-kar"}
    note = alerts["mppg12a-kar-notification"]
    assert note.severity == "notification"
    assert note.unit == "mGy" and note.threshold == 3000
    assert note.value == pytest.approx(study.ka_r_total_mgy)
    assert 7000 <= note.value < 8000  # 7.69 Gy (../shared/rdsr/README.md)
    assert note.details["steps_reached"] == [4000, 5000, 6000, 7000]
    assert note.summary == "Ka,r total 7.69 Gy ≥ 3 Gy; further steps reached: 4 Gy, 5 Gy, 6 Gy, 7 Gy"
    ncrp = alerts["ncrp168-kar"]
    assert ncrp.severity == "alert" and ncrp.threshold == 5000 and ncrp.state == "new"
    # KAP 468.8 Gy·cm² and 47.1 min stay below 500 Gy·cm² and 60 min
    assert study.kap_total_gycm2 < 500 and study.fluoro_time_total_s < 3600


LOW_DOSE = ["rf/RF-RDSR-GE.dcm", "rf/RF-RDSR-Philips_Allura.dcm", "rf/Dual-RDSR-RF.dcm", "rf/RF-RDSR-Siemens_Zee-HFS.dcm",
            "ct/CT-RDSR-GEPixelMed.dcm", "ct/CT-RDSR-Siemens-Multi-1.dcm", "ct/CT-ESR-GE_Optima.dcm"]


def test_low_dose_reports_raise_no_alert(corpus, import_dose):
    import_dose(*[corpus / f for f in LOW_DOSE])
    assert Study.objects.count() == len(LOW_DOSE)
    assert list(Alert.objects.values_list("rule__key", "study__study_description")) == []


def test_reimport_raises_nothing_new(corpus, import_dose):
    path = corpus / "rf" / "RF-Pat-Orientation-Modifier-Missing.dcm"
    import_dose(path)
    before = list(Alert.objects.order_by("pk").values_list("pk", "rule__key", "value", "state"))
    import_dose(path)  # identical bytes again
    check_study(Study.objects.get().pk)  # and an explicit re-evaluation (as after a supersede)
    after = list(Alert.objects.order_by("pk").values_list("pk", "rule__key", "value", "state"))
    assert after == before and len(after) == 2


def _window_rule(quantity: str, threshold: float, unit: str, key: str) -> TriggerRule:
    return rule_save(rule=None, user=None, data=dict(
        key=key, name=f"test window {quantity}", modality_type="fluoroscopy", quantity=quantity, plane_mode="sum",
        threshold=threshold, unit=unit, scope="patient_window", window_days=7, severity="notification",
        source="test"))


def test_siemens_zee_pair_sums_in_the_cumulative_window(corpus, import_dose):
    _window_rule("kap_total_gycm2", 0.3, "Gy·cm²", "test-kap-window")
    _window_rule("ka_r_total_mgy", 5.0, "mGy", "test-kar-window")
    import_dose(corpus / "rf" / "RF-RDSR-Siemens-Zee.dcm")
    assert not Alert.objects.filter(rule__key__startswith="test-").exists()  # one procedure: study rules cover it
    import_dose(corpus / "rf" / "RF-RDSR-Siemens-Zee_adjusted.dcm")  # same patient, 2 days earlier
    studies = list(Study.objects.order_by("study_date"))
    assert len(studies) == 2 and studies[0].patient_id == studies[1].patient_id
    assert (studies[1].study_date - studies[0].study_date).days == 2
    kap = Alert.objects.get(rule__key="test-kap-window")
    kar = Alert.objects.get(rule__key="test-kar-window")
    assert kap.value == pytest.approx(0.32) and kap.unit == "Gy·cm²"
    assert kar.value == pytest.approx(5.04) and kar.unit == "mGy"
    assert kap.study_id == studies[1].pk  # raised on the later study, whose window holds both
    assert [p["study_id"] for p in kap.details["procedures"]] == [studies[0].pk, studies[1].pk]
    # the default cumulative rules (5 Gy, 500 Gy·cm²) stay silent at these doses
    assert not Alert.objects.filter(rule__pack="cumulative").exists()


def test_toshiba_dose_check_report_yields_its_override_alert(corpus, import_dose):
    import_dose(corpus / "ct" / "CT-RDSR-Toshiba_DoseCheck.dcm")
    alerts = list(Alert.objects.select_related("rule"))
    assert [a.rule.key for a in alerts] == ["ct-dose-check-override"]
    alert = alerts[0]
    acquisitions = alert.details["acquisitions"]
    assert len({a["irradiation_event_uid"] for a in acquisitions}) == 2  # every acquisition, one alert
    assert sorted(a["dlp_forward_estimate_mgycm"] for a in acquisitions) == [251.2, 502.4]
    assert alert.quantity == "dlp_total_mgycm" and alert.value == pytest.approx(502.4)
    assert alert.threshold == pytest.approx(100)
