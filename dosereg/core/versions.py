"""Report identity and versions, as pure functions (design §4): facts about the incoming report and the study's
stored reports in, a plan out.  The registry's recording service carries the plan out; tests check it as a table.

- **The same object** is the same SOP Instance UID with the same dose content, whatever its file meta header or
  transfer syntax: ``already_present``, never a conflict.
- A report whose Irradiation Event UIDs are a **subset** of a current report's is an earlier partial one: kept, not
  current (``superseded``); the same events with the same values under another SOP Instance UID likewise.
- A **superset** (a cumulative report) replaces the current report (``replaced``).
- **Disjoint** events: another report of the same study (a continued report; totals add up, ``imported``).
- **Partial overlap**: union by event UID, the newer report's values win for the shared events, flagged.
- **The same events with other values** is a re-issue: a **correction** when the incoming report names the stored
  one in its Predecessor Documents Sequence, or, without one, when its content date/time is later (arrival order
  when either is unknown); the stored report is kept but no longer current (``corrected``).  An older version
  arriving late changes nothing but is kept (``superseded``).
- Image headers never take part: :func:`header_counts` decides whether a header's events count at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dosereg.core import dose_report as dr
from dosereg.core.json_text import text_encoder

REPORT_KINDS = (dr.SOURCE_RDSR, dr.SOURCE_RRDSR, dr.SOURCE_PRIVATE_SUMMARY)  # the sources of study totals

# outcomes (RecordOutcome.status; import_dose counts them)
IMPORTED = "imported"
ALREADY_PRESENT = "already_present"
SUPERSEDED = "superseded"
REPLACED = "replaced"
CORRECTED = "corrected"
OUTCOMES = (IMPORTED, ALREADY_PRESENT, SUPERSEDED, REPLACED, CORRECTED)

PARTIAL_OVERLAP = "partial_overlap"
SOP_INSTANCE_UID_REUSED = "sop_instance_uid_reused"


@dataclass(frozen=True)
class ReportFacts:
    """What the version rules need to know of one report (incoming, or stored with its ``report_id``)."""

    sop_instance_uid: str
    source_kind: str
    dose_digest: str
    events: Mapping[str, str] = field(default_factory=dict)  # Irradiation Event UID -> digest of its values
    content_datetime: dt.datetime | None = None  # aware
    predecessors: frozenset[str] = frozenset()  # SOP Instance UIDs of the Predecessor Documents Sequence
    report_id: int | None = None
    current: bool = True


@dataclass(frozen=True)
class VersionPlan:
    outcome: str
    duplicate_of: int | None = None  # already_present: the stored report
    superseded_by: int | None = None  # the incoming report is kept but not current, because of this stored one
    supersede: tuple[int, ...] = ()  # stored reports no longer current
    corrects: tuple[int, ...] = ()  # of those, the ones whose values the incoming report corrects
    take_over: tuple[tuple[int, frozenset[str]], ...] = ()  # stored report -> its events the incoming one replaces
    keep_stored: frozenset[str] = frozenset()  # incoming events a newer stored report keeps
    flags: tuple[str, ...] = ()

    @property
    def incoming_current(self) -> bool:
        return self.superseded_by is None and self.outcome != ALREADY_PRESENT


def _newer(new: ReportFacts, old: ReportFacts) -> bool:
    """Is ``new`` the later version?  Content date/time decides; when either is unknown or both are equal, the later
    arrival (``new``) is taken as the later version."""
    if new.content_datetime is None or old.content_datetime is None:
        return True
    return new.content_datetime >= old.content_datetime


def _values_differ(new: ReportFacts, old: ReportFacts, uids) -> bool:
    return any(new.events.get(u) != old.events.get(u) for u in uids)


@dataclass(frozen=True)
class _Verdict:
    """What the incoming report is to one stored current report."""

    kind: str  # "older" (the incoming one is kept, not current), "supersede", "take_over", "keep_stored", "apart"
    corrects: bool = False
    uids: frozenset[str] = frozenset()


_APART = _Verdict("apart")


def _compare_summary(new: ReportFacts, old: ReportFacts, named: bool) -> _Verdict:
    """Reports without event UIDs: only the same object re-issued (same SOP Instance UID and kind) or one the
    incoming report names as its predecessor is a version of it."""
    same_object = old.sop_instance_uid == new.sop_instance_uid and old.source_kind == new.source_kind
    if not (named or same_object):
        return _APART
    if not named and not _newer(new, old):
        return _Verdict("older")
    return _Verdict("supersede", corrects=old.dose_digest != new.dose_digest)


def _compare(new: ReportFacts, old: ReportFacts) -> _Verdict:
    new_uids, old_uids = frozenset(new.events), frozenset(old.events)
    named = old.sop_instance_uid in new.predecessors
    if named or not new_uids or not old_uids:
        return _compare_summary(new, old, named)
    if new_uids == old_uids:
        if (not _values_differ(new, old, new_uids) and old.dose_digest == new.dose_digest) or not _newer(new, old):
            return _Verdict("older")  # the same content again, or an older version arriving late
        return _Verdict("supersede", corrects=True)
    if new_uids < old_uids:
        return _Verdict("older")
    if new_uids > old_uids:
        return _Verdict("supersede", corrects=_values_differ(new, old, old_uids))
    shared = new_uids & old_uids
    if not shared:
        return _APART  # a continued report
    return _Verdict("take_over" if _newer(new, old) else "keep_stored", uids=shared)


def _early_plan(new: ReportFacts, stored: Sequence[ReportFacts], flags: list[str]) -> VersionPlan | None:
    """The plans decided before comparing events: the same object, an image header, a report already replaced."""
    for old in stored:
        if old.sop_instance_uid == new.sop_instance_uid and old.dose_digest == new.dose_digest:
            return VersionPlan(ALREADY_PRESENT, duplicate_of=old.report_id)
    if any(old.sop_instance_uid == new.sop_instance_uid for old in stored):
        flags.append(SOP_INSTANCE_UID_REUSED)
    if new.source_kind not in REPORT_KINDS:
        return VersionPlan(IMPORTED, flags=tuple(flags))
    for old in stored:  # a stored report that names the incoming one as its predecessor: this one is older
        if new.sop_instance_uid in old.predecessors and old.source_kind in REPORT_KINDS:
            return VersionPlan(SUPERSEDED, superseded_by=old.report_id, flags=tuple(flags))
    return None


def report_version_plan(new: ReportFacts, stored: Sequence[ReportFacts]) -> VersionPlan:
    """The plan for ``new`` among the study's ``stored`` reports (current and superseded)."""
    flags: list[str] = []
    early = _early_plan(new, stored, flags)
    if early is not None:
        return early
    supersede: list[int] = []
    corrects: list[int] = []
    take_over: list[tuple[int, frozenset[str]]] = []
    keep_stored: set[str] = set()
    for old in (o for o in stored if o.current and o.source_kind in REPORT_KINDS):
        verdict = _compare(new, old)
        if verdict.kind == "older":
            return VersionPlan(SUPERSEDED, superseded_by=old.report_id, flags=tuple(flags))
        if verdict.kind == "supersede":
            supersede.append(old.report_id)
            if verdict.corrects:
                corrects.append(old.report_id)
        elif verdict.kind in ("take_over", "keep_stored"):
            if verdict.kind == "take_over":
                take_over.append((old.report_id, verdict.uids))
            else:
                keep_stored |= verdict.uids
            if PARTIAL_OVERLAP not in flags:
                flags.append(PARTIAL_OVERLAP)
    outcome = CORRECTED if corrects else REPLACED if supersede else IMPORTED
    return VersionPlan(outcome, supersede=tuple(supersede), corrects=tuple(corrects), take_over=tuple(take_over),
                       keep_stored=frozenset(keep_stored), flags=tuple(flags))


# --- image headers -------------------------------------------------------------------------------------------------
HEADER_MATCH_SECONDS = 1.0  # acquisition date/time of a header and an RDSR event: the same exposure within this


def header_counts(header_modality_types: Sequence[str], report_modality_types: Sequence[str]) -> bool:
    """Do an image header's events count in its study?  Not when a current report of the study covers the header's
    modality type: totals, event counts and maxima then come from the report (the header is kept, matched to the
    report's event where it can be)."""
    covered = set(report_modality_types)
    return not covered or not (set(header_modality_types) & covered)


@dataclass(frozen=True)
class EventStamp:
    """An event's identity for matching: its UID and acquisition date/time (aware)."""

    uid: str | None
    datetime: dt.datetime | None
    key: int | None = None  # the stored row's id


def match_header_event(header: EventStamp, events: Sequence[EventStamp]) -> int | None:
    """The stored report event an image header describes: the same Irradiation Event UID, else the one acquired at
    the same date/time (within a second; only when exactly one is)."""
    if header.uid:
        for ev in events:
            if ev.uid and ev.uid == header.uid:
                return ev.key
    if header.datetime is None:
        return None
    close = [ev for ev in events if ev.datetime is not None
             and abs((ev.datetime - header.datetime).total_seconds()) <= HEADER_MATCH_SECONDS]
    return close[0].key if len(close) == 1 else None


# --- digests of dose content ---------------------------------------------------------------------------------------
def _num(value: float | None):
    if value is None:
        return None
    if not math.isfinite(value):
        return repr(value)
    return float(f"{value:.9g}")  # digits a re-encoding (DS string, float32) cannot change


# json.dumps(items, separators=(",", ":")), with its encoder made once for every event of every report
_COMPACT_JSON = text_encoder(separators=(",", ":"))
# _num of the non-zero finite floats met (an RDSR repeats its kVp, angles and distances in every event)
_NUMS: dict[float, float] = {}
_NUMS_LIMIT = 50_000


def _digest_num(value):
    """:func:`_num` of a quantity's value, the non-zero finite floats kept in ``_NUMS``."""
    num = _NUMS.get(value) if type(value) is float and value else None  # 0.0 and -0.0 are equal keys: not kept
    if num is None:
        num = _num(value)
        if type(value) is float and value and math.isfinite(value):
            if len(_NUMS) >= _NUMS_LIMIT:
                _NUMS.clear()
            _NUMS[value] = num
    return num


def quantities_digest(quantities: Mapping[str, dr.Quantity], memo: dict | None = None) -> str:
    """``memo``: a dict kept for one report's events.  The parser gives a quantity an event repeats from an earlier
    one (the same kVp, angles, distances) as the same object, so its item's text is made once per report, by
    identity, and the list's text joined as ``_COMPACT_JSON`` writes it (names are unique: sorting the items is
    sorting by name)."""
    if memo is None:
        items = [(name, _digest_num(q.value), q.raw_unit) for name, q in quantities.items()]
        items.sort()
        return hashlib.sha256(_COMPACT_JSON(items).encode()).hexdigest()[:32]
    parts = []
    for name, q in quantities.items():
        known = memo.get(id(q))
        if known is None or known[0] is not q or known[1][0] != name:
            known = memo[id(q)] = (q, (name, _COMPACT_JSON((name, _digest_num(q.value), q.raw_unit))))
        parts.append(known[1])
    parts.sort()
    return hashlib.sha256(("[" + ",".join([text for _, text in parts]) + "]").encode()).hexdigest()[:32]


def event_digest(event: dr.IrradiationEventData, memo: dict | None = None) -> str:
    """A digest of an event's dose values (what a correction changes); ``memo``: see :func:`quantities_digest`."""
    return quantities_digest(event.quantities, memo)


def dose_digest(report: dr.DoseReport, event_digests: Sequence[str] | None = None) -> str:
    """A digest of a report's dose content: its study, events and their values, accumulated totals and dose checks;
    not its file meta header, transfer syntax or patient demographics.  ``event_digests``: the events'
    :func:`event_digest` when the caller has them already (the recording keeps one per event row)."""
    digests = event_digests if event_digests is not None else [event_digest(e) for e in report.events]
    content = {
        "study": report.study.study_instance_uid,
        "kind": report.source_kind,
        "events": [(e.irradiation_event_uid or "", e.event_type, e.plane or "", d)
                   for e, d in zip(report.events, digests, strict=True)],
        "accumulated": [(a.plane or "", quantities_digest(a.quantities)) for a in report.accumulated],
        "checks": [(c.irradiation_event_uid or "", c.kind, _num(c.dlp_value_mgycm), _num(c.ctdivol_value_mgy))
                   for c in report.dose_checks],
    }
    return hashlib.sha256(json.dumps(content, separators=(",", ":"), default=str).encode()).hexdigest()
