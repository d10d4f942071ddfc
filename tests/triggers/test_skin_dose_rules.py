"""Trigger rules on the peak skin dose (dosereg.core.skin_dose): a study value, summed conservatively over a window."""

from __future__ import annotations

import pytest


def test_a_window_rule_on_peak_skin_dose_says_the_sum_is_conservative():
    import datetime as dt

    from triggers import rules

    def facts(sid, day, psd):
        return rules.StudyFacts(study_id=sid, patient_id=1, study_date=dt.date(2024, 1, day),
                                modality_types=("fluoroscopy",), totals={"psd_mgy": psd})

    spec = rules.RuleSpec(id=1, name="PSD window", quantity="psd_mgy", threshold=3000.0, scope="patient_window",
                          severity="alert", kind="threshold", plane_mode="sum", window_days=84, min_procedures=2)
    (hit,) = rules.evaluate(facts(2, 20, 1800.0), [facts(1, 5, 1500.0)], [spec])
    assert hit.value == pytest.approx(3300.0) and "added conservatively" in hit.summary
