"""Report identity and versions as a pure function: a table of cases, no database."""

from __future__ import annotations

import datetime as dt

import pytest

from dosereg.core import dose_report as dr
from dosereg.core.versions import (
    ALREADY_PRESENT,
    CORRECTED,
    IMPORTED,
    PARTIAL_OVERLAP,
    REPLACED,
    SOP_INSTANCE_UID_REUSED,
    SUPERSEDED,
    EventStamp,
    ReportFacts,
    dose_digest,
    event_digest,
    header_counts,
    match_header_event,
    report_version_plan,
)

T0 = dt.datetime(2024, 3, 1, 10, 0, tzinfo=dt.UTC)
LATER, EARLIER = T0 + dt.timedelta(hours=2), T0 - dt.timedelta(hours=2)


def facts(sop, events, *, digest=None, when=T0, predecessors=(), report_id=None, current=True, kind=dr.SOURCE_RDSR):
    """``events``: {uid: value digest}; the dose digest follows the events unless given."""
    return ReportFacts(sop_instance_uid=sop, source_kind=kind,
                       dose_digest=digest or "d:" + ",".join(f"{k}={v}" for k, v in sorted(events.items())),
                       events=dict(events), content_datetime=when, predecessors=frozenset(predecessors),
                       report_id=report_id, current=current)


STORED = facts("1.1", {"a": "1", "b": "1"}, report_id=10)

CASES = [
    # name, incoming, stored, outcome, superseded_by, supersede, corrects
    ("same object again (other file meta)", facts("1.1", {"a": "1", "b": "1"}), [STORED], ALREADY_PRESENT, None, (),
     ()),
    ("superset: a cumulative report", facts("1.2", {"a": "1", "b": "1", "c": "1"}), [STORED], REPLACED, None,
     (10,), ()),
    ("subset: an earlier partial report", facts("1.2", {"a": "1"}), [STORED], SUPERSEDED, 10, (), ()),
    ("disjoint: a continued report", facts("1.2", {"c": "1", "d": "1"}), [STORED], IMPORTED, None, (), ()),
    ("partial overlap: union", facts("1.2", {"b": "1", "c": "1"}), [STORED], IMPORTED, None, (), ()),
    ("same events, same values, other SOP", facts("1.2", {"a": "1", "b": "1"}), [STORED], SUPERSEDED, 10, (), ()),
    ("same events, new values, later: correction", facts("1.2", {"a": "1", "b": "2"}, when=LATER), [STORED],
     CORRECTED, None, (10,), (10,)),
    ("same events, new values, earlier: older version", facts("1.2", {"a": "1", "b": "2"}, when=EARLIER), [STORED],
     SUPERSEDED, 10, (), ()),
    ("same events, new values, no content time: arrival order", facts("1.2", {"a": "1", "b": "2"}, when=None),
     [STORED], CORRECTED, None, (10,), (10,)),
    ("predecessor sequence names the stored report (even if its time is earlier)",
     facts("1.2", {"a": "1", "b": "2"}, when=EARLIER, predecessors=("1.1",)), [STORED], CORRECTED, None, (10,),
     (10,)),
    ("the stored report names the incoming one as its predecessor",
     facts("1.0", {"a": "1", "b": "0"}, when=LATER), [facts("1.1", {"a": "1", "b": "1"}, report_id=10,
                                                            predecessors=("1.0",))], SUPERSEDED, 10, (), ()),
    ("same SOP Instance UID, other values, later: a re-issue under the same UID",
     facts("1.1", {"a": "1", "b": "3"}, when=LATER), [STORED], CORRECTED, None, (10,), (10,)),
    ("superset with a changed shared value: replaces and corrects", facts("1.2", {"a": "2", "b": "1", "c": "1"}),
     [STORED], CORRECTED, None, (10,), (10,)),
    ("a superseded stored report does not take part", facts("1.3", {"a": "1"}),
     [facts("1.2", {"a": "1", "b": "1"}, report_id=9, current=False)], IMPORTED, None, (), ()),
    ("summary-only re-issue under the same SOP, later", facts("1.1", {}, digest="x", when=LATER),
     [facts("1.1", {}, digest="y", report_id=10)], CORRECTED, None, (10,), (10,)),
    ("summary-only report of another object", facts("1.5", {}, digest="x"),
     [facts("1.1", {}, digest="y", report_id=10)], IMPORTED, None, (), ()),
    ("an image header never supersedes", facts("2.1", {"a": "9"}, kind=dr.SOURCE_IMAGE_HEADER), [STORED],
     IMPORTED, None, (), ()),
]


@pytest.mark.parametrize(("name", "incoming", "stored", "outcome", "superseded_by", "supersede", "corrects"), CASES,
                         ids=[c[0] for c in CASES])
def test_report_version_plan(name, incoming, stored, outcome, superseded_by, supersede, corrects):
    plan = report_version_plan(incoming, stored)
    assert (plan.outcome, plan.superseded_by, plan.supersede, plan.corrects) == (
        outcome, superseded_by, supersede, corrects)


def test_already_present_names_the_stored_report_and_is_not_current():
    plan = report_version_plan(facts("1.1", {"a": "1", "b": "1"}), [STORED])
    assert plan.duplicate_of == 10 and not plan.incoming_current


def test_partial_overlap_newer_takes_the_shared_events_older_keeps_them():
    newer = report_version_plan(facts("1.2", {"b": "2", "c": "1"}, when=LATER), [STORED])
    assert newer.take_over == ((10, frozenset({"b"})),) and not newer.keep_stored
    assert PARTIAL_OVERLAP in newer.flags
    older = report_version_plan(facts("1.2", {"b": "2", "c": "1"}, when=EARLIER), [STORED])
    assert older.keep_stored == frozenset({"b"}) and not older.take_over and older.incoming_current


def test_same_sop_other_content_is_flagged_but_not_a_conflict():
    plan = report_version_plan(facts("1.1", {"c": "1"}), [STORED])
    assert SOP_INSTANCE_UID_REUSED in plan.flags and plan.outcome == IMPORTED


@pytest.mark.parametrize(("header", "reports", "counts"), [
    (("CT",), (), True),  # header first: it counts until a report covers it
    (("CT",), ("CT",), False),  # header after the RDSR: kept, not counted
    (("radiography",), ("CT",), True),  # another modality's header still counts
    (("CT",), ("nuclear_medicine",), True),  # PET/CT: the RRDSR does not cover the CT part
])
def test_header_counts(header, reports, counts):
    assert header_counts(header, reports) is counts


def test_header_is_matched_by_uid_else_by_acquisition_time():
    events = [EventStamp("u1", T0, 1), EventStamp("u2", T0 + dt.timedelta(seconds=30), 2)]
    assert match_header_event(EventStamp("u2", None), events) == 2
    assert match_header_event(EventStamp(None, T0 + dt.timedelta(milliseconds=400)), events) == 1
    assert match_header_event(EventStamp(None, T0 + dt.timedelta(seconds=10)), events) is None
    close = [EventStamp("u1", T0, 1), EventStamp("u2", T0, 2)]
    assert match_header_event(EventStamp(None, T0), close) is None  # ambiguous: not matched


def _report(values, sop="1.1"):
    study = dr.StudyInfo(study_instance_uid="9.9")
    events = tuple(dr.IrradiationEventData(irradiation_event_uid=f"e{i}", event_type="helical",
                                           quantities={"dlp_mgycm": dr.Quantity(v, str(v), "mGy.cm")})
                   for i, v in enumerate(values))
    return dr.DoseReport(source_kind=dr.SOURCE_RDSR, sop_class_uid="1.2", sop_instance_uid=sop, study=study,
                         patient=dr.PatientInfo(patient_id="p"), equipment=dr.EquipmentInfo(), events=events)


def test_dose_digest_ignores_identity_and_demographics_but_not_values():
    a = _report([100.0, 50.0])
    assert dose_digest(a) == dose_digest(_report([100.0, 50.0], sop="1.2"))
    assert dose_digest(a) == dose_digest(_report([100.0 + 1e-12, 50.0]))  # float noise of a re-encoding
    assert dose_digest(a) != dose_digest(_report([100.0, 51.0]))


def test_event_digest_with_a_report_memo_is_the_digest_without_one():
    """A quantity object repeated across events (as the parser gives a repeated item) is written once per report;
    the same object under another name, and values the digest writes specially (0.0, -0.0, NaN, None), give the
    digest made without the memo."""
    kvp, angle = dr.Quantity(80.0, "80", "kV"), dr.Quantity(-0.0, "-0", "deg")
    events = [
        {"kvp": kvp, "ka_r_mgy": dr.Quantity(1.5, "1.5", "mGy"), "positioner_primary_angle_deg": angle},
        {"positioner_primary_angle_deg": angle, "kvp": kvp, "ka_r_mgy": dr.Quantity(float("nan"), "NaN", "mGy")},
        {"kvp": angle, "tube_current_ma": kvp, "pulse_width_ms": dr.Quantity(None, "", "ms"),
         "ka_r_mgy": dr.Quantity(0.0, "0", "mGy")},
        {},
    ]
    memo: dict = {}
    for quantities in events * 2:
        event = dr.IrradiationEventData(irradiation_event_uid="1", event_type="fluoroscopy", quantities=quantities)
        assert event_digest(event, memo) == event_digest(event)
    assert event_digest(dr.IrradiationEventData(irradiation_event_uid="1", event_type="fluoroscopy",
                                                quantities=events[0]), memo) != \
        event_digest(dr.IrradiationEventData(irradiation_event_uid="1", event_type="fluoroscopy",
                                             quantities=events[1]), memo)
