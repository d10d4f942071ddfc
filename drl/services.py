"""DRL services: mapping studies onto standard examinations, the comparison (snapshots), re-comparison after
changes, and DRL-set import.  The read-only views (a study's position against its DRL, a snapshot's rows, the
unmapped names) are in ``drl.selectors``.

Entry points called by other apps: ``map_study(study_id)`` and ``note_equipment_change(change_id)`` after a study is
recorded; ``map_studies``, ``note_unmapped_names_of(ids)`` and ``note_protocols_of(ids)`` for a batch.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from django.db import transaction
from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from dosereg.core.quantities import QUANTITIES
from dosereg.registry import spreadsheet
from dosereg.registry.fixed_queries import fixed_rows, rows_in
from dosereg.registry.models import Equipment, EquipmentChange, IrradiationEvent, SiteSettings, StandardExam, Study
from dosereg.registry.services.audit import audit_record
from dosereg.registry.services.notifications import notification_send
from dosereg.registry.services.recording import studies_update_effective_dose
from dosereg.registry.services.recording.bulk_sql import update_rows
from dosereg.registry.services.studies import study_set_standard_exam
from drl.comparison import (
    DEFAULT_QUANTITIES,
    PER_ACQUISITION,
    VIEW_SYNONYMS,
    Band,
    DrlValidationError,
    bands_check,
    comparison_status,
    entry_check,
    ratio,
    thickness_check,
    thickness_overlap,
    value_column,
)
from drl.models import (
    DrlComparison,
    DrlComparisonRow,
    DrlEntry,
    DrlSet,
    DueComparison,
    MappingRule,
    ProtocolSeen,
    UnmappedName,
)
from drl.selectors import (
    Figures,
    FiguresRequest,
    Scope,
    Stats,
    drl_aggregates,
    drl_comparison_figures,
    drl_entries_in_force,
    drl_groups,
    drl_view_entries_in_force,
    entry_band,
)

log = logging.getLogger(__name__)
# A protocol's technique counts as changed when a study's mean kVp for it lies this far from the protocol's baseline
# (the mean of its first KVP_BASELINE_STUDIES studies on the unit).  10 kV is one step on most CT units' kV scale.
KVP_SHIFT_KV = 10.0
KVP_BASELINE_STUDIES = 5
NO_DESCRIPTION = "(no description)"
# Bounds on one statement's parameters when re-mapping: name combinations OR-ed into one query (five parameters each),
# study ids in one UPDATE.
COMBINATIONS_PER_QUERY = 200
IDS_PER_UPDATE = 5000


class MappingError(ValueError):
    """A mapping rule that cannot be accepted (bad pattern)."""


# --- mapping ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _CompiledRule:
    pk: int
    field: str
    modality_type: str
    equipment_id: int | None
    exam_id: int
    test: object  # str -> bool


def mapping_rule_compile(rule: MappingRule) -> _CompiledRule:
    pattern = rule.pattern
    if rule.match == "exact":
        want = pattern.strip().lower()

        def test(value: str) -> bool:
            return value.strip().lower() == want
    elif rule.match == "contains":
        want = pattern.lower()

        def test(value: str) -> bool:
            return want in value.lower()
    else:
        try:
            test = re.compile(pattern, re.IGNORECASE).search
        except re.error as exc:
            raise MappingError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from exc
    return _CompiledRule(rule.pk, rule.field, rule.modality_type, rule.equipment_id, rule.standard_exam_id, test)


def mapping_rules_in_order(rules) -> list[MappingRule]:
    """The rules in the order they are tried (``MappingRule.order_key``: priority, field weight, id)."""
    return sorted(rules, key=lambda r: r.order_key)


# What compiling a rule reads.  Every batch of ingest asks for the active rules and the examinations; their rows are
# read each time (a change made by another process shows at the next batch), the objects are built again only when
# the rows changed (one entry each, as the KAP-covered examinations in registry.services.effective_dose).
_RULE_COLUMNS = ("id", "priority", "field", "match", "pattern", "modality_type", "equipment_id", "standard_exam_id",
                 "active")


def _active_rules(extra: MappingRule | None = None) -> list[_CompiledRule]:
    """The active rules compiled, in the order they are tried; ``extra``: an unsaved rule tried among them (a
    preview)."""
    rows = fixed_rows(_active_rule_rows)
    if extra is None:
        return _compiled_rules(rows)
    return _compile([*_rules_of(rows), extra], extra)


def _active_rule_rows() -> QuerySet:
    return MappingRule.objects.filter(active=True).order_by("pk").values_list(*_RULE_COLUMNS)


@lru_cache(maxsize=1)
def _compiled_rules(rows: tuple) -> list[_CompiledRule]:
    return _compile(_rules_of(rows), None)


def _rules_of(rows: tuple) -> list[MappingRule]:
    return [MappingRule.from_db("default", _RULE_COLUMNS, row) for row in rows]


def _compile(rules: list[MappingRule], extra: MappingRule | None) -> list[_CompiledRule]:
    compiled = []
    for rule in mapping_rules_in_order(rules):
        try:
            compiled.append(mapping_rule_compile(rule))
        except MappingError as exc:
            if rule is extra:
                raise
            log.warning("mapping rule %s skipped: %s", rule.pk, exc)
    return compiled


_EXAM_COLUMNS = tuple(f.attname for f in StandardExam._meta.concrete_fields)


def _standard_exams() -> dict[int, StandardExam]:
    """Every standard examination by id (shared read-only objects while the table is unchanged)."""
    return _exams_of(fixed_rows(_exam_rows))


def _exam_rows() -> QuerySet:
    return StandardExam.objects.order_by("pk").values_list(*_EXAM_COLUMNS)


@lru_cache(maxsize=1)
def _exams_of(rows: tuple) -> dict[int, StandardExam]:
    return {row[0]: StandardExam.from_db("default", _EXAM_COLUMNS, row) for row in rows}


_NEEDS_PROTOCOLS = object()


def study_exam_matcher() -> Callable[[dict, Callable[[], list[str]]], StandardExam | None]:
    """The active rules compiled once, as the standard exam of a study about to be written: from its columns by
    attname (the rules read ``_FIELDS``) and, only when a protocol rule must be tested, its current events' protocols (``protocols()``).
    The same ``_match`` as ``map_studies_of``, for a writer that settles the mapping before it writes the study."""
    compiled = _active_rules()
    exams = _standard_exams()
    by_names: dict[tuple, object] = {}

    def exam_of(fields: dict, protocols: Callable[[], list[str]]) -> StandardExam | None:
        names = tuple(fields.get(f) for f in _FIELDS)
        exam_id = by_names.get(names)
        if exam_id is None and names not in by_names:
            exam_id = by_names[names] = _match(compiled, fields, None)
        if exam_id is _NEEDS_PROTOCOLS:
            exam_id = _match(compiled, fields, protocols())
        return exams[exam_id] if exam_id else None

    return exam_of


def _match(compiled: list[_CompiledRule], fields: dict, protocols: list[str] | None):
    """The exam id of the first rule that matches; ``_NEEDS_PROTOCOLS`` when a protocol rule must be tested and the
    protocols were not given."""
    for rule in compiled:
        if rule.modality_type and rule.modality_type != fields.get("modality_type"):
            continue
        if rule.equipment_id and rule.equipment_id != fields.get("equipment_id"):
            continue
        if rule.field == "protocol":
            if protocols is None:
                return _NEEDS_PROTOCOLS
            if any(rule.test(p) for p in protocols if p):
                return rule.exam_id
            continue
        value = fields.get(rule.field) or ""
        if value and rule.test(value):
            return rule.exam_id
    return None


_FIELDS = ("modality_type", "equipment_id", "study_description", "requested_procedure_description", "reason_for_study",
           "requested_procedure_code")


def _study_protocols(study_id: int) -> list[str]:
    return _studies_protocols([study_id]).get(study_id, [])


def _studies_protocols(study_ids: list[int]) -> dict[int, list[str]]:
    """The acquisition protocols of these studies' current events (one query)."""
    out: dict[int, list[str]] = defaultdict(list)
    for sid, protocol in (IrradiationEvent.objects.filter(study_id__in=study_ids, is_current=True)
                          .exclude(protocol="").values_list("study_id", "protocol").distinct()):
        out[sid].append(protocol)
    return out


def map_study(study_id: int) -> str | None:
    """Set the study's standard examination from the mapping rules (through the registry service) and return the
    exam code; note a new unmapped name and the unit's protocols (a new protocol or a kVp shift makes the unit's
    comparisons due).  Called right after the study is recorded, before triggers run."""
    study = Study.objects.filter(pk=study_id).values("id", "study_date", *_FIELDS).first()
    if study is None:
        return None
    protocols = _study_protocols(study_id)
    exam_id = _match(_active_rules(), study, protocols)
    exam = StandardExam.objects.get(pk=exam_id) if exam_id else None
    study_set_standard_exam(study_ids=[study_id], exam=exam)
    if exam is None:
        _note_unmapped(study["modality_type"] or "", study["study_description"] or NO_DESCRIPTION)
    if study["equipment_id"]:
        _note_protocols(study)
    return exam.code if exam else None


@dataclass
class _MappingPlan:
    """What re-applying the rules to a set of studies does: exam id (None: unmapped) -> conditions selecting the
    studies that get it; and (current exam id, new exam id) -> number of studies moved."""

    targets: dict[int | None, list[Q]]
    moves: Counter
    mapped: int = 0
    unmapped: int = 0


def _mapping_plan(qs: QuerySet, compiled: list[_CompiledRule]) -> _MappingPlan:
    """Match each distinct combination of names (grouped in the database) once; one study at a time only where a
    protocol rule must be tested.  Reads only."""
    plan = _MappingPlan(defaultdict(list), Counter())
    per_study: list[Q] = []
    for combo in qs.values(*_FIELDS, "standard_exam_id").annotate(n=Count("id")).order_by():
        n, current = combo.pop("n"), combo.pop("standard_exam_id")
        exam_id = _match(compiled, combo, None)
        where = Q(standard_exam_id=current, **combo)
        if exam_id is _NEEDS_PROTOCOLS:
            per_study.append(where)
            continue
        plan.targets[exam_id].append(where)
        plan.moves[(current, exam_id)] += n if current != exam_id else 0
        if exam_id:
            plan.mapped += n
        else:
            plan.unmapped += n
    # the studies whose names reach a protocol rule: their protocols in one query per chunk of combinations
    for i in range(0, len(per_study), COMBINATIONS_PER_QUERY):
        chunk = Q()
        for where in per_study[i:i + COMBINATIONS_PER_QUERY]:
            chunk |= where
        studies = list(qs.filter(chunk).values("id", "standard_exam_id", *_FIELDS))
        protocols = _studies_protocols([s["id"] for s in studies])
        for study in studies:
            exam_id = _match(compiled, study, protocols.get(study["id"], []))
            plan.targets[exam_id].append(Q(pk=study["id"]))
            plan.moves[(study["standard_exam_id"], exam_id)] += 1 if study["standard_exam_id"] != exam_id else 0
            if exam_id:
                plan.mapped += 1
            else:
                plan.unmapped += 1
    plan.moves = Counter({k: n for k, n in plan.moves.items() if n})
    return plan


def _plan_apply(qs: QuerySet, plan: _MappingPlan) -> list[int]:
    """Apply the plan; returns the ids of the studies whose examination changed."""
    exams = {e.pk: e for e in StandardExam.objects.all()}
    return [pk for exam_id, wheres in plan.targets.items() for pk in _set_exam(qs, wheres, exams.get(exam_id))]


def map_studies(queryset: QuerySet | None = None) -> dict[str, int]:
    """Re-apply the mapping rules to stored studies (all, or the queryset's).  Returns {"changed": n, "mapped": n,
    "unmapped": n}."""
    qs = Study.objects.all() if queryset is None else queryset
    plan = _mapping_plan(qs, _active_rules())
    changed = _plan_apply(qs, plan)
    # the effective dose of a moved study may depend on its examination (a CT acquisition without a Target Region
    # takes the exam's body region; KAP takes the exam's coefficient): re-estimated, a batch at a time
    for j in range(0, len(changed), IDS_PER_UPDATE):
        studies_update_effective_dose(changed[j:j + IDS_PER_UPDATE])
    return {"changed": len(changed), "mapped": plan.mapped, "unmapped": plan.unmapped}


def map_studies_of(study_ids: list[int]) -> dict[str, int]:
    """``map_studies`` for a batch of newly recorded studies, in a constant number of queries: the studies' names,
    the rules, the protocols of those whose names reach a protocol rule, the exams, one UPDATE per exam assigned."""
    rows = list(Study.objects.filter(pk__in=list(study_ids)).values("id", "standard_exam_id", *_FIELDS))
    compiled = _active_rules()
    by_names: dict[tuple, object] = {}
    for row in rows:
        names = tuple(row[f] for f in _FIELDS)
        if names not in by_names:
            by_names[names] = _match(compiled, row, None)
    needing = [r["id"] for r in rows if by_names[tuple(r[f] for f in _FIELDS)] is _NEEDS_PROTOCOLS]
    protocols = _studies_protocols(needing) if needing else {}
    targets: dict[int | None, list[int]] = defaultdict(list)
    counts = {"changed": 0, "mapped": 0, "unmapped": 0}
    for row in rows:
        exam_id = by_names[tuple(row[f] for f in _FIELDS)]
        if exam_id is _NEEDS_PROTOCOLS:
            exam_id = _match(compiled, row, protocols.get(row["id"], []))
        counts["mapped" if exam_id else "unmapped"] += 1
        if exam_id != row["standard_exam_id"]:
            targets[exam_id].append(row["id"])
    # one UPDATE per exam assigned (an IN list by primary key: faster here than one UPDATE ... FROM VALUES)
    exams = StandardExam.objects.in_bulk([e for e in targets if e]) if any(targets) else {}
    for exam_id, ids in targets.items():
        for j in range(0, len(ids), IDS_PER_UPDATE):
            counts["changed"] += study_set_standard_exam(study_ids=ids[j:j + IDS_PER_UPDATE],
                                                         exam=exams.get(exam_id))
    return counts


def _set_exam(qs: QuerySet, wheres: list[Q], exam: StandardExam | None) -> list[int]:
    """Set ``exam`` on the studies of ``qs`` matching any of ``wheres`` that do not have it yet; returns their ids."""
    changed: list[int] = []
    for i in range(0, len(wheres), COMBINATIONS_PER_QUERY):
        chunk = Q()
        for w in wheres[i:i + COMBINATIONS_PER_QUERY]:
            chunk |= w
        matching = qs.filter(chunk)
        stale = matching.exclude(standard_exam=exam) if exam else matching.exclude(standard_exam__isnull=True)
        ids = list(stale.values_list("id", flat=True))
        for j in range(0, len(ids), IDS_PER_UPDATE):
            study_set_standard_exam(study_ids=ids[j:j + IDS_PER_UPDATE], exam=exam)
        changed.extend(ids)
    return changed


def _note_unmapped(modality_type: str, name: str) -> None:
    row, created = UnmappedName.objects.get_or_create(modality_type=modality_type, name=name[:255])
    if created:
        notification_send(
            topic="unmapped_names", subject=f"New unmapped examination name: {name[:120]}",
            body=(f"A {modality_type or 'study'} study arrived with the name {name!r}, which no mapping rule maps "
                  f"to a standard examination. Map it on the mapping page (/mapping/) so it counts in the DRL "
                  f"comparison."),
            object_type="unmapped_name", object_id=str(row.pk), modality_type=modality_type)
        UnmappedName.objects.filter(pk=row.pk).update(notified=True)


def mapping_rule_warnings(rule: MappingRule) -> list[str]:
    """Warn about a rule that matches none, or every one, of the stored names it looks at."""
    compiled = mapping_rule_compile(rule)  # raises MappingError for a bad pattern
    if rule.field == "protocol":
        qs = IrradiationEvent.objects.filter(is_current=True).exclude(protocol="")
        if rule.modality_type:
            qs = qs.filter(study__modality_type=rule.modality_type)
        if rule.equipment_id:
            qs = qs.filter(study__equipment_id=rule.equipment_id)
        names = list(qs.values_list("protocol", flat=True).distinct()[:20000])
    else:
        qs = Study.objects.exclude(**{rule.field: ""})
        if rule.modality_type:
            qs = qs.filter(modality_type=rule.modality_type)
        if rule.equipment_id:
            qs = qs.filter(equipment_id=rule.equipment_id)
        names = list(qs.values_list(rule.field, flat=True).distinct()[:20000])
    if not names:
        return []
    matched = sum(1 for n in names if compiled.test(n))
    if matched == 0:
        return [f"the rule matches none of the {len(names)} stored names it looks at"]
    if matched == len(names) and len(names) > 1:
        return [f"the rule matches every one of the {len(names)} stored names it looks at; is it too broad?"]
    return []


def mapping_rule_save(rule: MappingRule, *, user=None, apply: bool = True) -> tuple[MappingRule, list[str], dict]:
    """Validate and save a rule, warn if it matches nothing or everything, and re-apply the rules to the studies
    it may concern.  Returns (rule, warnings, map_studies counts)."""
    warnings = mapping_rule_warnings(rule)
    rule.save()
    audit_record(user=user, action="drl_mapping_rule_saved", object_type="drl.MappingRule", object_id=str(rule.pk),
                 detail={"field": rule.field, "match": rule.match, "pattern": rule.pattern,
                         "exam": rule.standard_exam.code, "warnings": warnings})
    counts = {}
    if apply:
        qs = Study.objects.all()
        if rule.modality_type:
            qs = qs.filter(modality_type=rule.modality_type)
        counts = map_studies(qs)
    return rule, warnings, counts


def mapping_name_assign(*, name: str, modality_type: str, exam: StandardExam, user=None) -> tuple[MappingRule, dict]:
    """Map one study description (exactly, case-insensitively) to a standard examination: a local rule ahead of
    the defaults, applied at once to the stored studies with that name."""
    rule = mapping_name_rule(name=name, modality_type=modality_type, exam=exam, user=user)
    rule.save()
    audit_record(user=user, action="drl_name_mapped", object_type="drl.MappingRule", object_id=str(rule.pk),
                 detail={"name": name, "modality_type": modality_type, "exam": exam.code})
    counts = map_studies(mapping_name_studies(name=name, modality_type=modality_type))
    UnmappedName.objects.filter(name=name, modality_type=modality_type).delete()
    return rule, counts


# --- mapping preview -------------------------------------------------------------------------------------------------
# The preview recomputes medians only up to this many moved studies (beyond it the counts alone are shown: the
# re-mapping is then a matter for the "re-apply" run, not a click), and lists at most this many median rows.
PREVIEW_MAX_MOVED = 20000
PREVIEW_MAX_ROWS = 60


@dataclass(frozen=True)
class MappingMove:
    from_exam: str  # exam name, or "" for unmapped
    to_exam: str
    n: int


@dataclass(frozen=True)
class MedianShift:
    """One unit's median of one examination and DRL quantity, before and after a mapping (adults, the period)."""

    equipment_name: str
    exam_name: str
    quantity: str
    per: str
    column: str  # the catalogue name of the values (display)
    before: Stats
    after: Stats
    drl: float | None
    status_before: str
    status_after: str


@dataclass(frozen=True)
class MappingPreview:
    moved: int
    moves: list[MappingMove]
    period_start: dt.date
    period_end: dt.date
    shifts: list[MedianShift]
    medians_skipped: bool  # too many studies move (PREVIEW_MAX_MOVED) for the medians to be recomputed
    rows_capped: bool  # more median rows than PREVIEW_MAX_ROWS


class _PreviewRollback(Exception):
    """Undoes the trial re-mapping of a preview."""


def _mapping_scope(rule: MappingRule, queryset: QuerySet | None) -> QuerySet:
    """The studies that saving ``rule`` re-maps (``mapping_rule_save``: those of its modality type)."""
    if queryset is not None:
        return queryset
    qs = Study.objects.all()
    return qs.filter(modality_type=rule.modality_type) if rule.modality_type else qs


def _shift_keys(exam_ids: set[int], entries, exams: dict[int, StandardExam]) -> dict[tuple[str, str], list[int]]:
    """(quantity, per) -> the affected exams compared on it (the modality's default quantities and the adult DRLs
    in force)."""
    keys: dict[tuple[str, str], set[int]] = defaultdict(set)
    for ex in exam_ids:
        for quantity, per in DEFAULT_QUANTITIES.get(exams[ex].modality_type, []):
            keys[(quantity, per)].add(ex)
    for (ex, group, quantity, per) in entries:
        if ex in exam_ids and group == "adult":
            keys[(quantity, per)].add(ex)
    return {k: sorted(v) for k, v in keys.items()}


def _median_shifts(before: dict, after: dict, ctx: dict) -> list[MedianShift]:
    shifts = []
    for (quantity, per), by_unit in before.items():
        for eq, ex in sorted(set(by_unit) | set(after[(quantity, per)])):
            b, a = by_unit.get((eq, ex), Stats()), after[(quantity, per)].get((eq, ex), Stats())
            if (b.n, b.median) == (a.n, a.median):
                continue
            entry = ctx["entries"].get((ex, "adult", quantity, per))
            drl = entry.value if entry else None
            status = [comparison_status(median=s.median, drl=drl, n_patients=s.n_studies,
                                        min_patients=ctx["min_patients"]) for s in (b, a)]
            shifts.append(MedianShift(
                equipment_name=ctx["units"].get(eq, str(eq)), exam_name=ctx["exams"][ex].name, quantity=quantity,
                per=per, column=value_column(quantity, per) or quantity, before=b, after=a, drl=drl,
                status_before=status[0], status_after=status[1]))
    shifts.sort(key=lambda s: (s.exam_name, s.equipment_name, s.quantity, s.per))
    return shifts


def mapping_preview(rule: MappingRule, *, queryset: QuerySet | None = None,
                    today: dt.date | None = None) -> MappingPreview:
    """What saving ``rule`` (unsaved) would do, without doing it: how many studies move from which examination to
    which, and how each affected unit's median (adults, the run form's default period: the last calendar year)
    shifts against its DRL.  The medians are the comparison's own (``drl_aggregates``), computed on the trial
    re-mapping inside a transaction that is rolled back.  ``queryset``: the studies saving re-maps (default: the
    rule's modality type)."""
    qs = _mapping_scope(rule, queryset)
    plan = _mapping_plan(qs, _active_rules(extra=rule))  # raises MappingError for a bad pattern
    exams = {e.pk: e for e in StandardExam.objects.all()}
    moved = sum(plan.moves.values())
    moves = [MappingMove(exams[old].name if old else "", exams[new].name if new else "", n)
             for (old, new), n in plan.moves.most_common()]
    start, end = last_calendar_year(today)
    site = SiteSettings.load()
    scope = _site_scope(site, start, end, False, None)
    affected = {ex for pair in plan.moves for ex in pair if ex and not exams[ex].not_for_drl}
    if not moved or not affected or moved > PREVIEW_MAX_MOVED:
        return MappingPreview(moved, moves, start, end, [], moved > PREVIEW_MAX_MOVED, False)
    entries = drl_entries_in_force()
    keys = _shift_keys(affected, entries, exams)
    adult = Band("adult")
    before = {k: drl_aggregates(scope, adult, *k, ex_list) for k, ex_list in keys.items()}
    after: dict = {}
    try:
        with transaction.atomic():
            _plan_apply(qs, plan)
            after = {k: drl_aggregates(scope, adult, *k, ex_list) for k, ex_list in keys.items()}
            raise _PreviewRollback
    except _PreviewRollback:
        pass
    unit_ids = {eq for stats in (*before.values(), *after.values()) for eq, _ in stats}
    ctx = {"entries": entries, "exams": exams, "min_patients": site.drl_min_patients,
           "units": {u.pk: u.display_name for u in Equipment.objects.filter(pk__in=unit_ids)}}
    shifts = _median_shifts(before, after, ctx)
    return MappingPreview(moved, moves, start, end, shifts[:PREVIEW_MAX_ROWS], False,
                          len(shifts) > PREVIEW_MAX_ROWS)


def mapping_name_rule(*, name: str, modality_type: str, exam: StandardExam, user=None) -> MappingRule:
    """The (unsaved) rule that maps one study description, exactly and case-insensitively, to a standard
    examination: a local rule ahead of the defaults."""
    return MappingRule(priority=5, field="study_description", match="exact", pattern=name,
                       modality_type=modality_type, standard_exam=exam,
                       created_by=user if user and user.pk else None)


def mapping_name_studies(*, name: str, modality_type: str) -> QuerySet:
    """The stored studies a name mapping re-maps."""
    return Study.objects.filter(study_description__iexact=name, modality_type=modality_type)


# --- changes that make a comparison due --------------------------------------------------------------------------
def _mark_due(*, equipment: Equipment, kind: str, reason: str, since: dt.date,
              change: EquipmentChange | None = None) -> DueComparison | None:
    if change is not None and DueComparison.objects.filter(equipment_change=change).exists():
        return None
    if change is None and DueComparison.objects.filter(equipment=equipment, kind=kind, reason=reason,
                                                       resolved_by__isnull=True).exists():
        return None
    due = DueComparison.objects.create(equipment=equipment, kind=kind, reason=reason[:300], since=since,
                                       equipment_change=change)
    notification_send(
        topic="drl_due", subject=f"DRL comparison due: {equipment.display_name}"[:255],
        body=(f"{reason}. The DRL comparisons of {equipment.display_name} are due: run the comparison for the "
              f"period since {since.isoformat()} on the DRL page (/drl/)."),
        object_type="drl_due", object_id=str(due.pk), room_id=equipment.room_id)
    log.info("DRL comparison due for unit %s: %s", equipment.pk, reason)
    return due


def note_equipment_change(change_id: int) -> None:
    """An equipment change logged at import (new unit, software, serial, detector) makes the unit's comparisons
    due, from the change's effective date."""
    change = EquipmentChange.objects.select_related("equipment").filter(pk=change_id).first()
    if change is None:
        return
    what = dict(EquipmentChange.KIND_CHOICES).get(change.kind, change.kind)
    if change.kind == "new_unit":
        reason = "New unit"
    else:
        reason = f"{what} changed from {change.old_value or '(blank)'} to {change.new_value or '(blank)'}"
    since = change.effective_date or timezone.localdate(change.detected_at)
    _mark_due(equipment=change.equipment, kind="equipment_change", reason=reason, since=since, change=change)


def _note_protocols(study: dict) -> None:
    """A new acquisition protocol name on a unit that already has history, or a kVp shift of a known protocol
    (``KVP_SHIFT_KV`` from its baseline), makes the unit's comparisons due."""
    per_protocol: dict[str, list[float]] = defaultdict(list)
    for protocol, kvp in (IrradiationEvent.objects.filter(study_id=study["id"], is_current=True, is_localizer=False)
                          .exclude(protocol="").values_list("protocol", "kvp")):
        per_protocol[protocol[:255]].append(kvp)
    if not per_protocol:
        return
    equipment_id = study["equipment_id"]
    seen = {p.protocol: p for p in ProtocolSeen.objects.filter(equipment_id=equipment_id,
                                                               protocol__in=list(per_protocol))}
    unit_has_history = bool(seen) or ProtocolSeen.objects.filter(equipment_id=equipment_id).exists()
    since = study["study_date"] or timezone.localdate()
    equipment = None
    for protocol, kvps in per_protocol.items():
        known = [k for k in kvps if k is not None]
        kvp = sum(known) / len(known) if known else None
        row = seen.get(protocol)
        if row is None:
            ProtocolSeen.objects.get_or_create(
                equipment_id=equipment_id, protocol=protocol,
                defaults={"first_seen_date": study["study_date"], "studies": 1, "kvp_baseline": kvp,
                          "kvp_baseline_n": 1 if kvp is not None else 0})
            if unit_has_history:
                equipment = equipment or Equipment.objects.get(pk=equipment_id)
                _mark_due(equipment=equipment, kind="new_protocol", since=since,
                          reason=f"New acquisition protocol {protocol!r}")
            continue
        row.studies += 1
        if kvp is not None:
            if row.kvp_baseline is None or row.kvp_baseline_n < KVP_BASELINE_STUDIES:
                base_n = row.kvp_baseline_n if row.kvp_baseline is not None else 0
                row.kvp_baseline = ((row.kvp_baseline or 0) * base_n + kvp) / (base_n + 1)
                row.kvp_baseline_n = base_n + 1
            elif abs(kvp - row.kvp_baseline) >= KVP_SHIFT_KV:
                equipment = equipment or Equipment.objects.get(pk=equipment_id)
                _mark_due(equipment=equipment, kind="kvp_shift", since=since,
                          reason=f"Protocol {protocol!r}: kVp {kvp:.0f} against a baseline of {row.kvp_baseline:.0f}")
                row.kvp_baseline, row.kvp_baseline_n = kvp, 1  # the new technique is the new baseline
        row.save(update_fields=["studies", "kvp_baseline", "kvp_baseline_n"])


def _protocols_count(by_pk: dict[int, int]) -> None:
    """Add n to each ProtocolSeen row's study count, in one UPDATE per chunk (an increment, so a concurrent batch's
    counts are not overwritten)."""
    pks = sorted(by_pk)
    for i in range(0, len(pks), IDS_PER_UPDATE // 10):
        chunk = pks[i:i + IDS_PER_UPDATE // 10]
        ProtocolSeen.objects.filter(pk__in=chunk).update(studies=F("studies") + Case(
            *[When(pk=pk, then=Value(by_pk[pk])) for pk in chunk], output_field=IntegerField()))


CSV_COLUMNS = ["standard_exam", "indication", "patient_group", "age_min_years", "age_max_years", "weight_min_kg",
               "weight_max_kg", "quantity", "value", "unit", "per", "view", "thickness_min_mm", "thickness_max_mm",
               "verify", "note"]
CSV_REQUIRED = ["standard_exam", "quantity", "value", "unit", "per"]


def _float(text: str, what: str) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return float(text.replace(",", "."))
    except ValueError:
        raise DrlValidationError(f"{what} {text!r} is not a number") from None


def _row_band(row: dict) -> Band:
    band = Band(row.get("patient_group") or "adult", _float(row.get("age_min_years", ""), "age_min_years"),
                _float(row.get("age_max_years", ""), "age_max_years"),
                _float(row.get("weight_min_kg", ""), "weight_min_kg"),
                _float(row.get("weight_max_kg", ""), "weight_max_kg"))
    bands_check([band])
    return band


def _row_entry(row: dict, exams: dict[str, StandardExam], *, verify: bool) -> tuple[DrlEntry, Band]:
    """One CSV row as an unsaved entry (value in the catalogue's canonical unit) and its patient group."""
    exam = exams.get(row.get("standard_exam", ""))
    if exam is None:
        raise DrlValidationError(f"unknown standard examination {row.get('standard_exam')!r}")
    checked = entry_check(quantity=row["quantity"], unit=row["unit"], per=row["per"],
                          value=_float(row.get("value", ""), "value"))
    band = _row_band(row)
    view = row.get("view", "").upper()
    if view and view not in VIEW_SYNONYMS:
        raise DrlValidationError(f"unknown view {row.get('view')!r} (one of {', '.join(VIEW_SYNONYMS)}, or blank)")
    if view and row["per"] != PER_ACQUISITION:
        raise DrlValidationError("a projection (view) is set only for a DRL per radiograph (per acquisition)")
    thickness = (_float(row.get("thickness_min_mm", ""), "thickness_min_mm"),
                 _float(row.get("thickness_max_mm", ""), "thickness_max_mm"))
    thickness_check(*thickness, per=row["per"])
    entry = DrlEntry(
        standard_exam=exam, indication=row.get("indication", "")[:200], patient_group=band.label,
        age_min_years=band.age_min, age_max_years=band.age_max, weight_min_kg=band.weight_min,
        weight_max_kg=band.weight_max, quantity=checked.quantity, value=checked.value, unit=checked.unit,
        per=row["per"], view=view, thickness_min_mm=thickness[0], thickness_max_mm=thickness[1],
        verify=row.get("verify", "").lower() in ("1", "true", "yes", "y") or verify,
        note=row.get("note", "")[:255])
    return entry, band


class _FileEntries:
    """The entries of one DRL file so far, refusing a duplicate, a patient band that overlaps another of the same
    examination, quantity, per and view, or a thickness band that overlaps another of the same patient group too."""

    def __init__(self):
        self.entries: list[DrlEntry] = []
        self._bands: dict[tuple, list[tuple[int, Band]]] = defaultdict(list)
        self._thickness: dict[tuple, list[tuple[int, tuple]]] = defaultdict(list)

    def add(self, line: int, entry: DrlEntry, band: Band) -> None:
        code = entry.standard_exam.code
        what = f"{code}, {band.label}, {entry.quantity} per {entry.per}" + (f", {entry.view}" if entry.view else "")
        same_group = self._thickness[(code, band.label, entry.quantity, entry.per, entry.view)]
        for other_line, other in same_group:
            if other == entry.thickness:
                raise DrlValidationError(f"duplicates line {other_line} ({what})")
            if thickness_overlap(other, entry.thickness):
                raise DrlValidationError(f"its compressed breast thickness band overlaps line {other_line} ({what})")
        same_group.append((line, entry.thickness))
        siblings = self._bands[(code, entry.quantity, entry.per, entry.view)]
        for other_line, other in siblings:
            if other.label == band.label:  # the same group, in another thickness band (checked above)
                continue
            try:
                bands_check([other, band])
            except DrlValidationError as exc:
                raise DrlValidationError(f"{exc} (line {other_line})") from None
        siblings.append((line, band))
        self.entries.append(entry)


def drl_set_import_csv(*, text: str, name: str, issuing_body: str, year: int, source: str, country: str = "",
                       verify: bool = False, local: bool = True, priority: int = 10, user=None) -> DrlSet:
    """Import a DRL set from CSV (columns ``CSV_COLUMNS``; header required).  ``quantity`` is a catalogue key
    (``dlp_total_mgycm`` ...; the older ``dlp_mgycm``, ``kap_gycm2``, ``ka_r_mgy`` are read as their keys), ``unit``
    any unit the catalogue accepts for it (values are stored in the canonical unit).  Any bad row refuses the whole
    file, naming the row (line number in the file, the header being line 1)."""
    if DrlSet.objects.filter(name=name).exists():
        raise DrlValidationError(f"a DRL set named {name!r} already exists")
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in CSV_REQUIRED if c not in header]
    if missing:
        raise DrlValidationError(f"line 1: missing column(s) {', '.join(missing)} (columns: {', '.join(CSV_COLUMNS)})")
    exams = {e.code: e for e in StandardExam.objects.all()}
    found = _FileEntries()
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(row.values()):
            continue
        try:
            found.add(line, *_row_entry(row, exams, verify=verify))
        except DrlValidationError as exc:
            raise DrlValidationError(f"line {line}: {exc}") from None
    if not found.entries:
        raise DrlValidationError("the file holds no DRL rows")
    with transaction.atomic():
        drl_set = DrlSet.objects.create(name=name, issuing_body=issuing_body, country=country, year=year,
                                        source=source, verify=verify, local=local, priority=priority)
        for e in found.entries:
            e.drl_set = drl_set
        DrlEntry.objects.bulk_create(found.entries)
        audit_record(user=user, action="drl_set_imported", object_type="drl.DrlSet", object_id=str(drl_set.pk),
                     detail={"name": name, "entries": len(found.entries)})
    return drl_set


# --- the comparison ----------------------------------------------------------------------------------------------
def previous_period(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The period before: the previous calendar year for a calendar year, else the same number of days before."""
    if start.month == 1 and start.day == 1 and end == dt.date(start.year, 12, 31):
        return dt.date(start.year - 1, 1, 1), dt.date(start.year - 1, 12, 31)
    prev_end = start - dt.timedelta(days=1)
    return prev_end - (end - start), prev_end


def last_calendar_year(today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    year = (today or timezone.localdate()).year - 1
    return dt.date(year, 1, 1), dt.date(year, 12, 31)


def _wanted(exams: dict[int, StandardExam], exam_ids: set[int],
            entries: dict[tuple[int, str, str, str], DrlEntry]) -> tuple[dict[tuple[Band, str, str], set[int]], bool]:
    """What to compute: (patient group, quantity, per) -> exam ids (the modality's default quantities for every exam
    with studies, and every DRL in force); and whether any DRL is set for a band (not adults)."""
    wanted: dict[tuple[Band, str, str], set[int]] = defaultdict(set)
    for ex in exam_ids:
        for quantity, per in DEFAULT_QUANTITIES.get(exams[ex].modality_type, []):
            wanted[(Band("adult"), quantity, per)].add(ex)
    banded = False
    for (ex, _group, quantity, per), entry in entries.items():
        band = entry_band(entry)
        wanted[(band, quantity, per)].add(ex)
        banded = banded or not band.is_adult
    return wanted, banded


@dataclass(frozen=True)
class _RunContext:
    site: SiteSettings
    scope: Scope
    previous_scope: Scope
    exams: dict[int, StandardExam]
    units: dict[int, Equipment]
    entries: dict[tuple[int, str, str, str], DrlEntry]
    groups: dict[tuple[int, int], int]
    view_entries: dict[tuple, DrlEntry]


def _comparison_rows(ctx: _RunContext, request: FiguresRequest,
                     figures: dict[tuple[int, int], Figures]) -> list[DrlComparisonRow]:
    """The snapshot rows of one (patient group, quantity, per[, radiographic view][, compressed-breast-thickness
    band]): one per unit and examination."""
    band, quantity, per, view = request.band, request.quantity, request.per, request.view
    subset = bool(view) or request.thickness != (None, None)
    unit_symbol = QUANTITIES[quantity].unit_symbol
    rows = []
    for eq, ex in sorted(ctx.groups):
        group = figures.get((eq, ex), Figures(Stats()))
        stats, n_unconfirmed = group.stats, group.n_unconfirmed
        if ex not in request.exam_ids or (not band.is_adult and stats.n == 0 and n_unconfirmed == 0):
            continue
        entry = (ctx.view_entries.get((ex, band.label, quantity, per, view, *request.thickness)) if subset
                 else ctx.entries.get((ex, band.label, quantity, per)))
        drl = entry.value if entry else None
        previous_median = group.previous_median
        unit, exam = ctx.units[eq], ctx.exams[ex]
        rows.append(DrlComparisonRow(
            equipment=unit, equipment_name=unit.display_name, room_name=unit.room.name if unit.room else "",
            standard_exam=exam, exam_code=exam.code, exam_name=exam.name, patient_group=band.label,
            quantity=quantity, unit=unit_symbol, per=per, view=view, thickness_min_mm=request.thickness[0],
            thickness_max_mm=request.thickness[1], n=stats.n, n_studies=stats.n_studies,
            n_unconfirmed=n_unconfirmed, median=stats.median, p25=stats.p25, p75=stats.p75, mean=stats.mean,
            minimum=stats.minimum, maximum=stats.maximum, drl=drl, drl_entry=entry,
            drl_set_name=entry.drl_set.name if entry else "", drl_source=entry.drl_set.source if entry else "",
            ratio=ratio(stats.median, drl),
            status=comparison_status(median=stats.median, drl=drl, n_patients=stats.n_studies,
                                     min_patients=ctx.site.drl_min_patients),
            size_filter=bool(ctx.site.drl_standard_size and band.is_adult),
            verify=bool(entry and (entry.verify or entry.drl_set.verify)),
            previous_median=previous_median, trend=ratio(stats.median, previous_median)))
    return rows


def _site_scope(site: SiteSettings, start: dt.date, end: dt.date, include_demo: bool,
                equipment_id: int | None) -> Scope:
    return Scope(start, end, include_demo, equipment_id, site.drl_standard_size, site.drl_weight_min_kg,
                 site.drl_weight_max_kg)


def drl_comparison_run(*, period_start: dt.date, period_end: dt.date, trigger: str = "on_demand", user=None,
                       include_demo: bool = False, equipment_id: int | None = None, note: str = "") -> DrlComparison:
    """Compare every unit's median per standard examination (and patient group) with the DRL in force; store an
    immutable snapshot and return it.  Studies whose values await confirmation are left out and counted
    (``n_unconfirmed``)."""
    if period_end < period_start:
        raise DrlValidationError("the period ends before it starts")
    started = time.perf_counter()
    site = SiteSettings.load()
    scope = _site_scope(site, period_start, period_end, include_demo, equipment_id)
    exams = {e.pk: e for e in StandardExam.objects.all()}
    entries = drl_entries_in_force()
    # adults, and every study of known age: the units with paediatric studies of an exam that has banded DRLs
    counts = drl_groups(scope, Band("adult"), Band("any", 0, 200))
    groups = {key: adults for key, (adults, _) in counts.items() if adults}
    wanted, banded = _wanted(exams, {ex for _, ex in groups}, entries)
    view_entries = drl_view_entries_in_force()
    view_wanted: dict[tuple, set[int]] = defaultdict(set)
    for (ex, _group, quantity, per, view, *thickness), entry in view_entries.items():
        # per radiograph of one projection and/or one compressed-breast-thickness band
        view_wanted[(entry_band(entry), quantity, per, view, tuple(thickness))].add(ex)
    if banded:  # units with paediatric studies of an exam that has banded DRLs but no adult studies
        for key, (_, any_age) in counts.items():
            if any_age:
                groups.setdefault(key, 0)
    ctx = _RunContext(
        site=site, scope=scope,
        previous_scope=_site_scope(site, *previous_period(period_start, period_end), include_demo, equipment_id),
        exams=exams, entries=entries, groups=groups, view_entries=view_entries,
        units={u.pk: u for u in Equipment.objects.filter(pk__in={eq for eq, _ in groups}).select_related("room")})
    requests = [FiguresRequest(band, quantity, per, tuple(sorted(exam_ids)))
                for (band, quantity, per), exam_ids in wanted.items()]
    requests += [FiguresRequest(band, quantity, per, tuple(sorted(exam_ids)), view, thickness)
                 for (band, quantity, per, view, thickness), exam_ids in view_wanted.items()]
    figures = drl_comparison_figures(ctx.scope, ctx.previous_scope, requests)
    rows = [row for request in requests for row in _comparison_rows(ctx, request, figures[request])]
    run = _snapshot_store(ctx, rows, trigger=trigger, user=user, note=note, started=started)
    log.info("DRL comparison %s: %d rows in %.2f s", run.pk, len(rows), run.duration_s)
    return run


def _snapshot_store(ctx: _RunContext, rows: list[DrlComparisonRow], *, trigger: str, user, note: str,
                    started: float) -> DrlComparison:
    """Store the snapshot with its rows and resolve the due comparisons it covers."""
    scope, site = ctx.scope, ctx.site
    with transaction.atomic():
        run = DrlComparison.objects.create(
            period_start=scope.period_start, period_end=scope.period_end, trigger=trigger,
            equipment_id=scope.equipment_id, include_demo=scope.include_demo, standard_size=site.drl_standard_size,
            weight_min_kg=site.drl_weight_min_kg if site.drl_standard_size else None,
            weight_max_kg=site.drl_weight_max_kg if site.drl_standard_size else None,
            min_patients=site.drl_min_patients, created_by=user if user and user.pk else None, note=note[:255])
        for r in rows:
            r.comparison = run
        DrlComparisonRow.objects.bulk_create(rows, batch_size=1000)
        run.duration_s = time.perf_counter() - started
        DrlComparison.objects.filter(pk=run.pk).update(duration_s=run.duration_s)
        if scope.equipment_id is None:
            # a full comparison covering a change's date resolves it
            dues = DueComparison.objects.filter(resolved_by__isnull=True, since__gte=scope.period_start,
                                                since__lte=scope.period_end)
        else:
            dues = DueComparison.objects.filter(resolved_by__isnull=True, equipment_id=scope.equipment_id,
                                                since__gte=scope.period_start)
        dues.update(resolved_by=run, resolved_at=timezone.now())
        audit_record(user=user, action="drl_comparison_run", object_type="drl.DrlComparison", object_id=str(run.pk),
                     detail={"period": [scope.period_start.isoformat(), scope.period_end.isoformat()],
                             "trigger": trigger, "rows": len(rows), "equipment_id": scope.equipment_id,
                             "include_demo": scope.include_demo})
    return run


def drl_yearly_run(year: int | None = None, *, include_demo: bool = False) -> DrlComparison:
    """The scheduled yearly comparison (default: the last calendar year)."""
    if year is None:
        start, end = last_calendar_year()
    else:
        start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
    return drl_comparison_run(period_start=start, period_end=end, trigger="yearly", include_demo=include_demo)


def drl_due_run(*, due_id: int, user=None, today: dt.date | None = None) -> DrlComparison:
    """Run a due comparison: the unit, from the earliest unresolved change to today."""
    due = DueComparison.objects.get(pk=due_id)
    since = min(d.since for d in DueComparison.objects.filter(equipment_id=due.equipment_id,
                                                              resolved_by__isnull=True)) if due.resolved_by_id is None \
        else due.since
    end = max(today or timezone.localdate(), since)
    return drl_comparison_run(period_start=since, period_end=end, trigger="due", user=user,
                              equipment_id=due.equipment_id, note=f"after: {due.reason}")


def _due_units_ready(today: dt.date, min_patients: int) -> dict[int, dt.date]:
    """Units with an unresolved due comparison whose period since the earliest change (to ``today``) holds at
    least ``min_patients`` patients of one mapped examination (non-demo studies).  unit id -> since."""
    since_by_unit: dict[int, dt.date] = {}
    for eq, since in DueComparison.objects.filter(resolved_by__isnull=True).values_list("equipment_id", "since"):
        since_by_unit[eq] = min(since, since_by_unit.get(eq, since))
    ready = {}
    for eq, since in since_by_unit.items():
        counts = (Study.objects.filter(equipment_id=eq, study_date__gte=since, study_date__lte=today, demo=False,
                                       standard_exam__isnull=False, standard_exam__not_for_drl=False)
                  .values("standard_exam_id").order_by().annotate(n=Count("patient_id", distinct=True)))
        if any(c["n"] >= min_patients for c in counts):
            ready[eq] = since
    return ready


def drl_due_comparisons_run(*, today: dt.date | None = None) -> list[DrlComparison]:
    """Run the due comparisons that can be run: for each unit whose period since its change holds enough patients
    (``SiteSettings.drl_min_patients`` of one examination), compare that period and store the snapshot (resolving
    the unit's due rows), and tell the physicists.  Called by Celery beat (``drl.due_comparisons``) and, in the
    embedded mode, by the ingest thread's timer; safe to call often (a unit not ready is left for next time)."""
    today = today or timezone.localdate()
    site = SiteSettings.load()
    runs = []
    for eq, since in sorted(_due_units_ready(today, site.drl_min_patients).items()):
        due = DueComparison.objects.filter(equipment_id=eq, resolved_by__isnull=True).order_by("since").first()
        if due is None:  # resolved meanwhile by another run
            continue
        run = drl_due_run(due_id=due.pk, today=today)
        unit = due.equipment
        above = run.rows.filter(status="above").count()
        notification_send(
            topic="drl_due", subject=f"DRL re-comparison done: {unit.display_name}"[:255],
            body=(f"The DRL comparison of {unit.display_name} for {since.isoformat()} to {run.period_end.isoformat()} "
                  f"(after: {due.reason}) ran on its own: {run.rows.count()} rows, {above} above the DRL. "
                  f"Snapshot {run.pk} on the DRL page (/drl/)."),
            object_type="drl_comparison", object_id=str(run.pk), room_id=unit.room_id)
        log.info("due DRL comparison of unit %s ran on its own: snapshot %s", eq, run.pk)
        runs.append(run)
    return runs


REPORT_FIELDS = ["equipment", "equipment_id", "standard_exam", "patient_group", "quantity", "unit", "per", "view",
                 "thickness_min_mm", "thickness_max_mm", "n", "n_studies", "median", "p75", "mean", "drl", "drl_set",
                 "drl_source", "ratio", "status",
                 "size_filter", "verify"]


def drl_report_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    spreadsheet.write_dict_csv(out, REPORT_FIELDS, rows)
    return out.getvalue()


# --- batch steps for generate_demo_data --bulk (dicomrx.bulk) -----------------------------------------------------
def note_unmapped_names_of(ids: list[int]) -> None:
    """As ``map_study`` does per study: note the names of these studies that no rule maps (batch)."""
    names = {(m or "", (d or NO_DESCRIPTION)[:255]) for m, d in rows_in(_unmapped_names, ids)}
    if not names:
        return
    # the names already noted cost nothing more: one query for them, get_or_create only for the new ones
    known = set(UnmappedName.objects.filter(name__in={n for _, n in names}).values_list("modality_type", "name"))
    for modality_type, description in sorted(names - known):
        _note_unmapped(modality_type, description)


def _unmapped_names(ids: list[int]) -> QuerySet:
    return Study.objects.filter(pk__in=ids, standard_exam__isnull=True).values_list(
        "modality_type", "study_description").distinct()


def _protocols_of(ids: list[int]) -> QuerySet:
    return (IrradiationEvent.objects.filter(study_id__in=ids, is_current=True, is_localizer=False)
            .exclude(protocol="").values_list("study_id", "protocol", "kvp"))


def note_protocols_of(ids: list[int]) -> None:
    """As ``map_study`` does per study (``_note_protocols``), for a batch, in a constant number of queries: the
    studies' protocols, the units' ProtocolSeen rows, then the studies are followed in order in memory (new
    protocols, kVp baselines forming, kVp shifts) and the rows written at the end: new ones in one INSERT, study
    counts as one increment, baselines in one UPDATE.  Only a comparison made due costs queries of its own."""
    per_study: dict[int, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for sid, protocol, kvp in rows_in(_protocols_of, ids):
        per_study[sid][protocol[:255]].append(kvp)
    if not per_study:
        return
    studies = {s["id"]: s for s in Study.objects.filter(pk__in=list(per_study), equipment_id__isnull=False)
               .values("id", "study_date", "equipment_id")}
    track = _ProtocolTrack({(p.equipment_id, p.protocol): p for p in ProtocolSeen.objects.filter(
        equipment_id__in={s["equipment_id"] for s in studies.values()})})
    for sid in ids:  # a study recorded twice in the batch counts twice, as with map_study per object
        if sid in studies:
            track.study(studies[sid], per_study[sid])
    track.save()


class _ProtocolTrack:
    """``_note_protocols`` for a sequence of studies, on ProtocolSeen rows held in memory."""

    def __init__(self, seen: dict[tuple[int, str], ProtocolSeen]):
        self.seen = seen
        self.units_with_history = {eq for eq, _ in seen}
        self.counts: Counter = Counter()  # existing row pk -> studies to add
        self.rebased: dict[int, ProtocolSeen] = {}  # existing rows whose kVp baseline changed
        self.new: list[ProtocolSeen] = []
        self.due: list[dict] = []

    def study(self, study: dict, protocols: dict[str, list]) -> None:
        eq = study["equipment_id"]
        since = study["study_date"] or timezone.localdate()
        unit_has_history = eq in self.units_with_history
        for protocol, kvps in protocols.items():
            known = [k for k in kvps if k is not None]
            kvp = sum(known) / len(known) if known else None
            row = self.seen.get((eq, protocol))
            if row is None:
                row = ProtocolSeen(equipment_id=eq, protocol=protocol, first_seen_date=study["study_date"],
                                   studies=1, kvp_baseline=kvp, kvp_baseline_n=1 if kvp is not None else 0)
                self.seen[(eq, protocol)] = row
                self.new.append(row)
                if unit_has_history:
                    self.due.append({"equipment_id": eq, "kind": "new_protocol", "since": since,
                                     "reason": f"New acquisition protocol {protocol!r}"})
                continue
            if row.pk is None:
                row.studies += 1
            else:
                self.counts[row.pk] += 1
            if kvp is None:
                continue
            if row.kvp_baseline is None or row.kvp_baseline_n < KVP_BASELINE_STUDIES:
                base_n = row.kvp_baseline_n if row.kvp_baseline is not None else 0
                row.kvp_baseline = ((row.kvp_baseline or 0) * base_n + kvp) / (base_n + 1)
                row.kvp_baseline_n = base_n + 1
            elif abs(kvp - row.kvp_baseline) >= KVP_SHIFT_KV:
                self.due.append({"equipment_id": eq, "kind": "kvp_shift", "since": since,
                                 "reason": f"Protocol {protocol!r}: kVp {kvp:.0f} against a baseline of "
                                           f"{row.kvp_baseline:.0f}"})
                row.kvp_baseline, row.kvp_baseline_n = kvp, 1  # the new technique is the new baseline
            else:
                continue
            if row.pk is not None:
                self.rebased[row.pk] = row
        self.units_with_history.add(eq)

    def save(self) -> None:
        # a row another worker created meanwhile keeps its own counts (get_or_create in _note_protocols did the same)
        ProtocolSeen.objects.bulk_create(self.new, ignore_conflicts=True)
        _protocols_count(self.counts)
        update_rows(ProtocolSeen, list(self.rebased.values()), ["kvp_baseline", "kvp_baseline_n"])
        if self.due:
            units = Equipment.objects.in_bulk({d["equipment_id"] for d in self.due})
            for due in self.due:
                _mark_due(equipment=units[due.pop("equipment_id")], **due)
        log.debug("protocols noted: %d new, %d counted, %d comparisons due", len(self.new), len(self.counts),
                  len(self.due))
