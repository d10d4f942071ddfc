"""The pure evaluator: dataclasses in, exceedances out (no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from triggers.rules import DoseCheckFacts, EventFacts, PlaneTotals, RuleSpec, StudyFacts, evaluate, region_of

KAR_NOTE = RuleSpec(id=1, name="Ka,r 3 Gy", quantity="ka_r_total_mgy", threshold=3000, step=1000, scope="study",
                    severity="notification", modality_type="fluoroscopy")
KAR_NCRP = RuleSpec(id=2, name="NCRP Ka,r", quantity="ka_r_total_mgy", threshold=5000, scope="study",
                    severity="alert", modality_type="fluoroscopy")
KAP_NCRP = RuleSpec(id=3, name="NCRP KAP", quantity="kap_total_gycm2", threshold=500, scope="study", severity="alert",
                    modality_type="fluoroscopy")
TIME_NCRP = RuleSpec(id=4, name="NCRP time", quantity="fluoro_time_total_s", threshold=3600, scope="study",
                     severity="alert", modality_type="fluoroscopy")
DEFAULTS = [KAR_NOTE, KAR_NCRP, KAP_NCRP, TIME_NCRP]


def fluoro(study_id=1, *, kar, kap=100.0, time_s=1000.0, planes=(), date=dt.date(2026, 1, 10), texts=("Angio",),
           patient_id=1, exam_code=""):
    return StudyFacts(study_id=study_id, patient_id=patient_id, study_date=date, modality_types=("fluoroscopy",),
                      texts=texts, exam_code=exam_code, age_years=60,
                      totals={"ka_r_total_mgy": kar, "kap_total_gycm2": kap, "fluoro_time_total_s": time_s},
                      planes=tuple(planes))


def test_316_event_report_values_raise_exactly_the_two_kar_rules():
    # the 316-event report's totals (../shared/rdsr/README.md): Ka,r 7.69 Gy, KAP 468.8 Gy·cm², 47.1 min
    hits = evaluate(fluoro(kar=7690.0, kap=468.8, time_s=47.1 * 60), [], DEFAULTS)
    assert [h.rule_id for h in hits] == [1, 2]
    note = hits[0]
    assert note.details["steps_reached"] == [4000, 5000, 6000, 7000]
    assert note.unit == "mGy" and note.threshold == 3000


def test_low_dose_raises_nothing():
    assert evaluate(fluoro(kar=11.7, kap=2.4, time_s=72), [], DEFAULTS) == []


def test_threshold_is_inclusive():
    assert [h.rule_id for h in evaluate(fluoro(kar=5000.0), [], [KAR_NCRP])] == [2]


def test_biplane_each_plane_versus_sum():
    planes = [PlaneTotals("A", 2800.0, 100, 900), PlaneTotals("B", 2700.0, 80, 800)]
    study = fluoro(kar=5500.0, planes=planes)
    each = RuleSpec(id=9, name="each", quantity="ka_r_total_mgy", threshold=5000, scope="study", severity="alert")
    summed = RuleSpec(id=10, name="sum", quantity="ka_r_total_mgy", threshold=5000, scope="study", severity="alert",
                      plane_mode="sum")
    hits = evaluate(study, [], [each, summed])
    assert [h.rule_id for h in hits] == [10]  # no single plane reached 5 Gy; the sum did
    hits = evaluate(fluoro(kar=5500.0, planes=[PlaneTotals("A", 5100.0), PlaneTotals("B", 400.0)]), [], [each])
    assert hits[0].details["planes_exceeding"] == ["A"] and hits[0].value == 5100.0


def test_window_needs_two_procedures_and_sums_them():
    rule = RuleSpec(id=5, name="window", quantity="kap_total_gycm2", threshold=0.3, scope="patient_window",
                    severity="alert", window_days=7, plane_mode="sum")
    later = fluoro(2, kar=2.52, kap=0.16, date=dt.date(2016, 12, 3))
    earlier = fluoro(1, kar=2.52, kap=0.16, date=dt.date(2016, 12, 1))
    assert evaluate(later, [], [rule]) == []  # one procedure: the study rules cover it
    hit = evaluate(later, [earlier], [rule])[0]
    assert hit.value == pytest.approx(0.32)
    assert [p["study_id"] for p in hit.details["procedures"]] == [1, 2]
    assert evaluate(earlier, [later], [rule]) == []  # the later study is outside the earlier one's window
    far = fluoro(3, kar=1, kap=0.16, date=dt.date(2016, 11, 1))
    assert evaluate(later, [far], [rule]) == []
    other_patient = fluoro(4, kar=1, kap=0.16, date=dt.date(2016, 12, 2), patient_id=2)
    assert evaluate(later, [other_patient], [rule]) == []


def ct(events, *, exam_region="", texts=("CT",), age=50.0):
    return StudyFacts(study_id=1, patient_id=1, study_date=dt.date(2026, 1, 1), modality_types=("CT",), texts=texts,
                      exam_body_region=exam_region, age_years=age, events=tuple(events))


def ev(ctdivol, region="", code="", protocol="", localizer=False, phantom=""):
    return EventFacts(uid=f"e{ctdivol}", protocol=protocol, target_region=region, target_region_code=code,
                      is_localizer=localizer, ctdi_phantom=phantom, values={"ctdivol_mgy": ctdivol})


DE_BRAIN = RuleSpec(id=20, name="DE brain", quantity="ctdivol_mgy", threshold=120, scope="event",
                    severity="significant_event", modality_type="CT", body_region="head")
DE_BODY = RuleSpec(id=21, name="DE body", quantity="ctdivol_mgy", threshold=80, scope="event",
                   severity="significant_event", modality_type="CT", body_region="body")


def test_ct_criteria_per_acquisition_with_region_from_target_region_or_exam():
    hits = evaluate(ct([ev(100.0, region="Head"), ev(90.0, region="Chest")]), [], [DE_BRAIN, DE_BODY])
    assert [(h.rule_id, h.value) for h in hits] == [(21, 90.0)]  # 100 mGy head is under 120; 90 mGy chest is over 80
    hits = evaluate(ct([ev(130.0, code="SRT:T-D1100")]), [], [DE_BRAIN, DE_BODY])
    assert [h.rule_id for h in hits] == [20]
    # no Target Region: the mapped examination's region decides
    assert [h.rule_id for h in evaluate(ct([ev(100.0)], exam_region="head"), [], [DE_BRAIN, DE_BODY])] == []
    assert [h.rule_id for h in evaluate(ct([ev(100.0)], exam_region="abdomen"), [], [DE_BRAIN, DE_BODY])] == [21]
    # localizers are left out; acquisitions are not summed
    assert evaluate(ct([ev(200.0, region="Chest", localizer=True), ev(50.0, region="Chest"),
                        ev(50.0, region="Chest")]), [], [DE_BODY]) == []


def test_ct_age_band_and_phantom():
    paed32 = RuleSpec(id=30, name="paed torso 32", quantity="ctdivol_mgy", threshold=10, scope="event",
                      severity="notification", modality_type="CT", body_region="body", age_max_years=10,
                      ctdi_phantom="body")
    assert evaluate(ct([ev(12.0, region="Chest", phantom="body")], age=5), [], [paed32])
    assert not evaluate(ct([ev(12.0, region="Chest", phantom="head")], age=5), [], [paed32])
    assert not evaluate(ct([ev(12.0, region="Chest", phantom="body")], age=30), [], [paed32])
    assert not evaluate(ct([ev(12.0, region="Chest", phantom="body")], age=None), [], [paed32])


def test_german_dap_rule_only_for_diagnostic_fluoroscopy():
    rule = RuleSpec(id=40, name="DE DAP", quantity="kap_total_gycm2", threshold=200, scope="study",
                    severity="significant_event", modality_type="fluoroscopy", plane_mode="sum",
                    procedure_kind="diagnostic")
    assert evaluate(fluoro(kar=100, kap=250, texts=("Barium swallow",)), [], [rule])
    assert not evaluate(fluoro(kar=100, kap=250, texts=("Hepatic embolisation",)), [], [rule])
    assert not evaluate(fluoro(kar=100, kap=250, texts=("Cardiac",), exam_code="xa-pci"), [], [rule])


def test_dose_check_lists_every_acquisition_exceeded_and_ignores_configuration_only_blocks():
    rule = RuleSpec(id=50, name="dose check", quantity="dlp_total_mgycm", threshold=0, scope="study",
                    severity="notification", kind="dose_check")
    configured_only = DoseCheckFacts(uid="a", kind="alert", ctdivol_configured=True, ctdivol_value_mgy=1000.0)
    study = StudyFacts(study_id=1, patient_id=1, study_date=None, modality_types=("CT",),
                       dose_checks=(configured_only,))
    assert evaluate(study, [], [rule]) == []
    exceeded = [DoseCheckFacts(uid="a", kind="alert", dlp_configured=True, dlp_value_mgycm=100.0,
                               dlp_forward_estimate_mgycm=251.2, authorised_by="X"),
                DoseCheckFacts(uid="b", kind="alert", dlp_configured=True, dlp_value_mgycm=100.0,
                               dlp_forward_estimate_mgycm=502.4, ctdivol_configured=True, ctdivol_value_mgy=10.0,
                               ctdivol_forward_estimate_mgy=10.6)]
    hit = evaluate(StudyFacts(study_id=1, patient_id=1, study_date=None, modality_types=("CT",),
                              dose_checks=tuple(exceeded)), [], [rule])[0]
    assert hit.value == 502.4 and hit.threshold == 100.0 and len(hit.details["acquisitions"]) == 2


def test_region_of_prefers_target_region_then_exam_then_text():
    assert region_of(target_region="Brain", exam_body_region="abdomen") == "head"
    assert region_of(exam_body_region="head", texts=("Chest",)) == "head"
    assert region_of(texts=("CT Abdomen",)) == "body"
    assert region_of() is None
