"""Value sanity at the border: whatever number or text a dose object carries, nothing it stores can break an export.

Property-based (hypothesis): any float (inf, NaN, negative, 1e308) in any accepted unit of any dose quantity, and any
text (NUL, lone surrogates, 100 KB) in the study's text fields, go through the real recording service and then
``export_doses`` (JSON and CSV) must succeed, with every stored value finite and every invalid one flagged."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import math

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dosereg.core import dose_report as dr
from dosereg.core.quantities import QUANTITIES
from dosereg.core.sanity import IMPLAUSIBLE_VALUE, INVALID_VALUE, TEXT_TRUNCATED
from dosereg.registry.models import IrradiationEvent, Study
from dosereg.registry.services.recording import record_report
from tests.ingest.factories import ct_event, ct_report, received

pytestmark = pytest.mark.django_db

STUDY_NUMBERS = itertools.count(1000)
DOSE_EVENT_QUANTITIES = ["ctdivol_mgy", "dlp_mgycm", "kap_gycm2", "ka_r_mgy", "agd_mgy", "activity_mbq",
                         "irradiation_duration_s", "effective_dose_msv"]
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([1e308, -1e308, -0.0, -1.0, 5e-324, 1e-12, 3.0]))
texts = st.one_of(st.text(max_size=300), st.sampled_from(["a\x00b", "\ud800x", "=cmd|' /C calc'!A0", "x" * 100_000]))


def _quantity(name: str, raw: float, unit: str) -> dr.Quantity:
    return dr.Quantity(value=raw * QUANTITIES[name].units[unit], raw_value=repr(raw), raw_unit=unit)


@st.composite
def hostile_reports(draw):
    name = draw(st.sampled_from(DOSE_EVENT_QUANTITIES))
    unit = draw(st.sampled_from(sorted(QUANTITIES[name].units)))
    value = draw(floats)
    event = ct_event("1.2.3", 100.0)
    event = dataclasses.replace(event, quantities={**event.quantities, name: _quantity(name, value, unit)},
                                protocol=draw(texts))
    report = ct_report(f"9.{next(STUDY_NUMBERS)}", [event])  # a new study per example (examples share the DB)
    study = dataclasses.replace(report.study, study_description=draw(texts), accession_number=draw(texts))
    return name, value * QUANTITIES[name].units[unit], dataclasses.replace(report, study=study)


def _export(fmt: str) -> str:
    out = io.StringIO()
    call_command("export_doses", "--format", fmt, stdout=out)
    return out.getvalue()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow])
@given(hostile_reports())
def test_any_value_and_text_never_breaks_the_export(hostile):
    name, canonical, report = hostile
    outcome = record_report(report, received(report))
    study = Study.objects.get(pk=outcome.study_id)
    event = IrradiationEvent.objects.get(study=study, irradiation_event_uid="1.2.3")
    stored = getattr(event, name)
    q = QUANTITIES[name]
    if not math.isfinite(canonical) or (canonical < 0 and not q.signed) or abs(canonical) > q.plausible_max * 1e6:
        assert stored is None and INVALID_VALUE in study.flags
        assert any(d["flag"] == INVALID_VALUE and d["quantity"] == name for d in study.flag_details)
    else:
        assert stored == canonical
        if abs(canonical) > q.plausible_max:
            # only an implausible dose holds the study out of DRL medians until a physicist confirms it
            assert IMPLAUSIBLE_VALUE in study.flags and study.values_unconfirmed is q.is_dose
    assert event.raw[name][1] in q.units  # the value and unit as sent are kept
    assert "\x00" not in study.study_description and "\x00" not in event.protocol
    rows = json.loads(_export("json"))  # strict JSON: no NaN or Infinity literals either
    assert any(r["study_instance_uid"] == report.study.study_instance_uid for r in rows)
    assert "NaN" not in _export("csv").split("\n", 1)[1] or "NaN" in report.study.study_description
    json.dumps(rows, allow_nan=False)


def test_overlong_text_is_cut_and_flagged():
    report = ct_report("9.1", [ct_event("1.2.3", 100.0)])
    report = dataclasses.replace(report, study=dataclasses.replace(report.study, study_description="x" * 100_000))
    study = Study.objects.get(pk=record_report(report, received(report)).study_id)
    assert len(study.study_description) == Study._meta.get_field("study_description").max_length
    assert TEXT_TRUNCATED in study.flags
    assert any(d["flag"] == TEXT_TRUNCATED and d["field"] == "study.study_description" for d in study.flag_details)


def test_negative_ctdivol_and_dlp_are_not_stored_and_the_study_says_why():
    event = dataclasses.replace(ct_event("1.2.3", 100.0), quantities={
        "ctdivol_mgy": dr.Quantity(-5.0, "-5", "mGy"), "dlp_mgycm": dr.Quantity(-100.0, "-100", "mGy.cm")})
    report = ct_report("9.2", [event])
    study = Study.objects.get(pk=record_report(report, received(report)).study_id)
    assert study.max_ctdivol_mgy is None
    reasons = {d["quantity"]: d["reason"] for d in study.flag_details if d["flag"] == INVALID_VALUE}
    assert reasons.keys() >= {"ctdivol_mgy", "dlp_mgycm"} and "cannot be negative" in reasons["dlp_mgycm"]


def test_a_device_total_that_differs_from_its_events_is_kept_and_flagged():
    report = ct_report("9.3", [ct_event("1", 100.0), ct_event("2", 50.0)], total=200.0)
    study = Study.objects.get(pk=record_report(report, received(report)).study_id)
    assert study.dlp_total_mgycm == 200.0  # the unit's total, as reported
    detail = next(d for d in study.flag_details if d["flag"] == "device_total_mismatch")
    assert (detail["reported"], detail["events_sum"]) == (200.0, 150.0)
    same = ct_report("9.4", [ct_event("3", 100.0), ct_event("4", 50.0)], total=151.0)  # within 5 %
    assert "device_total_mismatch" not in Study.objects.get(pk=record_report(same, received(same)).study_id).flags


def test_a_device_total_within_its_own_rounding_is_no_mismatch():
    from dosereg.core.sanity import PlaneSums, device_total_findings
    from dosereg.registry.services.recording.service import reported_resolution

    # a unit that writes Ka,r with one decimal (0.1 mGy) beside events summing to 0.066 mGy: rounding, not a mismatch
    resolution = reported_resolution(0.1, ["0.1", "mGy"])
    assert resolution == pytest.approx(0.05)
    assert reported_resolution(1.0, ["1e-3", "Gy"]) == pytest.approx(0.5)  # 1e-3 Gy = 1 mGy, last digit 1 mGy
    rounded = PlaneSums("A", {"ka_r_total_mgy": 0.1}, {"ka_r_total_mgy": 0.066}, {"ka_r_total_mgy": resolution})
    assert device_total_findings([rounded]) == []
    # the Philips sample's 19 % is well beyond its 12 written digits
    real = PlaneSums("A", {"kap_total_gycm2": 0.0784}, {"kap_total_gycm2": 0.0659},
                     {"kap_total_gycm2": reported_resolution(0.0784, ["7.8391324289e-06", "Gy.m2"])})
    (finding,) = device_total_findings([real])
    assert finding.detail["reported"] == 0.0784 and finding.detail["events_sum"] == 0.0659
