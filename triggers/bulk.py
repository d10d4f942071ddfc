"""Trigger checks for a batch of newly recorded studies (``generate_demo_data --bulk``, benchmark scale).

``check_study`` costs about a dozen queries per study.  Most studies raise nothing, so the batch entry point works out
in a few queries which studies *could* change anything, and runs the one per-study service, ``check_study``, only for
those.  The result is the same as calling ``check_study`` for every study, because ``check_study`` leaves a study
alone exactly when all of these hold, and this module tests the same conditions:

* the pure evaluator (``triggers.rules.evaluate``) finds no exceedance for the study's facts — built by the same
  ``_studies_facts`` that ``check_study`` uses, for the whole batch at once — without patient history;
* nor with the patient's history that ``check_study`` would load for the cumulative (patient window) rules (the
  patient's other studies inside the window, totals only), loaded here for the whole batch in a few queries;
* re-applying those window rules to the patient's later studies, whose window now holds this study, finds no
  exceedance either, and none of those later studies has a window-rule alert that could stop exceeding;
* the study has no alert yet (so there is no alert to update or mark as no longer exceeding).

Of the studies that do raise something, those with no alert yet, no later study of the patient's whose window
alerts would change, and no earlier-dated study of the same patient in the batch (so ``check_study`` would only
create alerts for their own hits, and no other study's check touches them) get their alerts created in bulk (``triggers.services.alerts_raise``); the others go through ``check_study``.
A batch costs a constant number of queries plus about a dozen per study that must go one by one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from functools import lru_cache

from django.db import IntegrityError
from django.db.models import QuerySet

from dosereg.registry.fixed_queries import fixed_rows, rows_in
from dosereg.registry.models import Study
from triggers import rules
from triggers.models import Alert, TriggerRule
from triggers.services import _studies_facts, alerts_raise, check_study, rule_spec, study_facts_qs


@dataclasses.dataclass
class _Triage:
    """The studies of a batch by what their check needs: nothing, alerts created in bulk, or ``check_study``."""

    one_by_one: list[int] = dataclasses.field(default_factory=list)
    to_raise: list[tuple[Study, list[rules.Exceedance]]] = dataclasses.field(default_factory=list)
    rules_by_id: dict[int, TriggerRule] = dataclasses.field(default_factory=dict)


def _window_history(studies: list[Study], facts: dict[int, rules.StudyFacts],
                    window_rules: list[TriggerRule]) -> dict[int, list[rules.StudyFacts]]:
    """Per patient with a window rule: their studies (the batch's and stored ones) in reach of the batch's windows,
    totals only, as ``patient_window_facts`` loads them (one query, or two)."""
    others: dict[int, list[rules.StudyFacts]] = defaultdict(list)
    dated = [s.study_date for s in studies if s.study_date]
    if not (window_rules and dated):
        return others
    max_days = max(r.window_days or 0 for r in window_rules)
    lo, hi = min(dated) - dt.timedelta(days=max_days), max(dated) + dt.timedelta(days=max_days)
    patients = {s.patient_id for s in studies if _window_rules_for(s, window_rules)}
    rows = list(study_facts_qs().filter(patient_id__in=patients, study_date__range=(lo, hi)).exclude(
        pk__in=list(facts)))
    for f in list(_studies_facts(rows, with_events=False).values()) + [
            _totals_only(f) for f in facts.values() if f.patient_id in patients]:
        others[f.patient_id].append(f)
    return others


@dataclasses.dataclass
class _Windows:
    """The batch's patient-window context: the patients' studies in reach, and which of them have window alerts."""

    others: dict[int, list[rules.StudyFacts]]
    later_alerts: set[int]
    specs: list[rules.RuleSpec]
    facts: dict[int, rules.StudyFacts]

    def history(self, study: Study, own: list[TriggerRule]) -> list[rules.StudyFacts]:
        if not (own and study.study_date):
            return []
        days = max(r.window_days or 0 for r in own)
        lo, hi = study.study_date - dt.timedelta(days=days), study.study_date + dt.timedelta(days=days)
        return [h for h in self.others[study.patient_id]
                if h.study_id != study.pk and h.study_date and lo <= h.study_date <= hi]

    def later_change(self, study: Study, own: list[TriggerRule], history: list[rules.StudyFacts]) -> bool:
        """check_study re-applies the window rules to the patient's later studies whose window now holds this one:
        would that create or change an alert?"""
        own_ids = {r.pk for r in own}
        own_specs = [spec for spec in self.specs if spec.id in own_ids]
        for h in history:
            if h.study_date and h.study_date > study.study_date:
                if h.study_id in self.later_alerts:
                    return True
                h_history = [x for x in history if x.study_id != h.study_id] + [_totals_only(self.facts[study.pk])]
                if rules.evaluate(h, h_history, own_specs):
                    return True
        return False

    def has_earlier_in_batch(self, study: Study) -> bool:
        """Another study of the batch, of the same patient, dated before this one: its check_study could re-apply
        the window rules to this study (check_study re-applies them to the patient's later studies only)."""
        if not study.study_date:
            return False
        return any(h.study_id != study.pk and h.study_id in self.facts and h.study_date
                   and h.study_date < study.study_date for h in self.others.get(study.patient_id, ()))


def _reads_events(rule: TriggerRule) -> bool:
    """Whether the evaluator reads a study's events (or Dose Check records) for this rule (``triggers.rules``: event
    rules, Dose Check rules, CTDIvol taken from the events, protocol patterns matched against event protocols)."""
    return (rule.scope == "event" or rule.kind == "dose_check" or bool(rule.protocol_pattern)
            or rule.quantity == "ctdivol_mgy")


def _batch_facts(studies: list[Study], active_rules: list[TriggerRule]) -> dict[int, rules.StudyFacts]:
    """The studies' facts, with their events only where a rule that reads events can apply (by modality): the
    events of a batch are most of what the checks load, and most are read by no rule."""
    event_kinds = {r.modality_type for r in active_rules if _reads_events(r)}
    every_kind = "" in event_kinds

    def needs_events(study: Study) -> bool:
        kinds = set(study.modality_types or ([study.modality_type] if study.modality_type else []))
        return every_kind or bool(kinds & event_kinds)

    with_events = [s for s in studies if needs_events(s)]
    without = [s for s in studies if not needs_events(s)]
    return {**(_studies_facts(with_events, with_events=True) if with_events else {}),
            **(_studies_facts(without, with_events=False) if without else {})}


def _triage(study_ids: list[int]) -> _Triage:
    ids = list(dict.fromkeys(study_ids))
    out = _Triage()
    if not ids:
        return out
    active_rules, specs, window_rules = _active_rules()
    out.rules_by_id = {r.pk: r for r in active_rules}
    with_alerts = set(rows_in(_studies_with_alerts, ids))
    if not active_rules:
        out.one_by_one = [sid for sid in ids if sid in with_alerts]
        return out
    studies = rows_in(_batch_studies, ids)
    facts = _batch_facts(studies, active_rules)
    others = _window_history(studies, facts, window_rules)
    later_alerts = set()
    if window_rules:
        later_alerts = set(Alert.objects.filter(
            study_id__in={h.study_id for hs in others.values() for h in hs}, still_exceeds=True,
            rule_id__in=[r.pk for r in window_rules]).order_by().values_list("study_id", flat=True).distinct())
    windows = _Windows(others, later_alerts, specs, facts)
    by_id = {s.pk: s for s in studies}
    for sid in ids:
        study = by_id.get(sid)
        if study is None:
            continue
        if sid in with_alerts:
            out.one_by_one.append(sid)
            continue
        own = _window_rules_for(study, window_rules)
        history = windows.history(study, own)
        hits = rules.evaluate(facts[sid], history, specs)
        if windows.later_change(study, own, history) or (hits and windows.has_earlier_in_batch(study)):
            out.one_by_one.append(sid)  # another study of the patient's is (or could be) re-checked with this one
        elif hits:
            out.to_raise.append((study, hits))
    return out


# Every batch asks for the active rules.  Their rows are read each time (an edit made in another process shows at the
# next batch), the rule objects and their specs for the evaluator are built again only when a row changed: the rows
# are the cache's key, as the mapping rules' in drl.services.
_RULE_COLUMNS = tuple(f.attname for f in TriggerRule._meta.concrete_fields)


def _active_rules() -> tuple[list[TriggerRule], list[rules.RuleSpec], list[TriggerRule]]:
    """The active rules (shared read-only objects while their rows are unchanged), their specs, and the patient-window
    threshold rules among them."""
    return _rules_of(fixed_rows(_active_rule_rows))


def _active_rule_rows() -> QuerySet:
    return TriggerRule.objects.filter(active=True).values_list(*_RULE_COLUMNS)


@lru_cache(maxsize=1)
def _rules_of(rows: tuple) -> tuple[list[TriggerRule], list[rules.RuleSpec], list[TriggerRule]]:
    active = [TriggerRule.from_db("default", _RULE_COLUMNS, row) for row in rows]
    window = [r for r in active if r.scope == "patient_window" and r.kind == "threshold"]
    return active, [rule_spec(r) for r in active], window


def _batch_studies(ids: list[int]) -> QuerySet:
    return study_facts_qs().filter(pk__in=ids)


def _studies_with_alerts(ids: list[int]) -> QuerySet:
    return Alert.objects.filter(study_id__in=ids).order_by().values_list("study_id", flat=True).distinct()


def studies_needing_check(study_ids: list[int]) -> list[int]:
    """The studies (of ``study_ids``, in that order) for which ``check_study`` could create or change an alert."""
    triage = _triage(study_ids)
    wanted = set(triage.one_by_one) | {s.pk for s, _ in triage.to_raise}
    return [sid for sid in dict.fromkeys(study_ids) if sid in wanted]


def _window_rules_for(study: Study, window_rules: list[TriggerRule]) -> list[TriggerRule]:
    """The window rules ``check_study`` applies to this study (by its modality types)."""
    kinds = set(study.modality_types or ([study.modality_type] if study.modality_type else []))
    return [r for r in window_rules if not r.modality_type or r.modality_type in kinds]


def _totals_only(facts: rules.StudyFacts) -> rules.StudyFacts:
    """A study's facts as ``patient_window_facts`` gives them (``with_events=False``: no events, no Dose Check)."""
    return dataclasses.replace(facts, events=(), dose_checks=())


def check_studies(study_ids: list[int]) -> dict[int, list[int]]:
    """What ``check_study`` for every study does (see the module docstring): alerts of studies that only raise new
    ones created in bulk, ``check_study`` for the rest that could raise or change an alert.  Returns {study id: its
    alert ids} for the studies that needed a check."""
    triage = _triage(study_ids)
    checked: dict[int, list[int]] = {}
    try:
        raised = alerts_raise(triage.to_raise, triage.rules_by_id)
    except IntegrityError:  # a concurrent check created one of them first: let check_study update those
        triage.one_by_one += [s.pk for s, _ in triage.to_raise]
    else:
        for study, _ in triage.to_raise:
            checked[study.pk] = []
        for study_id, alert_id in raised:
            checked[study_id].append(alert_id)
    for sid in triage.one_by_one:
        checked[sid] = check_study(sid)
    return checked
