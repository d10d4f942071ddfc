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
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict

from dosereg.registry.models import Study
from triggers import rules
from triggers.models import Alert, TriggerRule
from triggers.services import _studies_facts, _study_qs, check_study, rule_spec


def studies_needing_check(study_ids: list[int]) -> list[int]:
    """The studies (of ``study_ids``, in that order) for which ``check_study`` could create or change an alert."""
    ids = list(dict.fromkeys(study_ids))
    if not ids:
        return []
    active_rules = list(TriggerRule.objects.filter(active=True))
    with_alerts = set(Alert.objects.filter(study_id__in=ids).values_list("study_id", flat=True).distinct())
    if not active_rules:
        return [sid for sid in ids if sid in with_alerts]
    specs = [rule_spec(r) for r in active_rules]
    window_rules = [r for r in active_rules if r.scope == "patient_window" and r.kind == "threshold"]
    studies = list(_study_qs().filter(pk__in=ids))
    facts = _studies_facts(studies, with_events=True)

    # the patients' other studies, for the window rules (totals only, as patient_window_facts loads them)
    others: dict[int, list[rules.StudyFacts]] = defaultdict(list)
    if window_rules:
        max_days = max(r.window_days or 0 for r in window_rules)
        dated = [s.study_date for s in studies if s.study_date]
        if dated:
            lo = min(dated) - dt.timedelta(days=max_days)
            hi = max(dated) + dt.timedelta(days=max_days)
            patients = {s.patient_id for s in studies if _window_rules_for(s, window_rules)}
            in_batch = {sid: f for sid, f in facts.items()}
            rows = list(_study_qs().filter(patient_id__in=patients, study_date__range=(lo, hi)).exclude(
                pk__in=list(in_batch)))
            for f in list(_studies_facts(rows, with_events=False).values()) + [
                    _totals_only(f) for f in in_batch.values() if f.patient_id in patients]:
                others[f.patient_id].append(f)

    def needs_check(study: Study) -> bool:
        if study.pk in with_alerts:
            return True
        own = _window_rules_for(study, window_rules)
        history: list[rules.StudyFacts] = []
        if own and study.study_date:
            days = max(r.window_days or 0 for r in own)
            lo, hi = study.study_date - dt.timedelta(days=days), study.study_date + dt.timedelta(days=days)
            history = [h for h in others[study.patient_id]
                       if h.study_id != study.pk and h.study_date and lo <= h.study_date <= hi]
        mine = facts[study.pk]
        if rules.evaluate(mine, history, specs):
            return True
        # check_study re-applies the window rules to the patient's later studies whose window now holds this one
        own_specs = [spec for spec in specs if spec.id in {r.pk for r in own}]
        for h in history:
            if h.study_date and h.study_date > study.study_date:
                if h.study_id in later_alerts:
                    return True
                h_history = [x for x in history if x.study_id != h.study_id] + [_totals_only(mine)]
                if rules.evaluate(h, h_history, own_specs):
                    return True
        return False

    later_alerts = set()
    if window_rules:
        later_alerts = set(Alert.objects.filter(
            study_id__in={h.study_id for hs in others.values() for h in hs}, still_exceeds=True,
            rule_id__in=[r.pk for r in window_rules]).values_list("study_id", flat=True).distinct())
    by_id = {s.pk: s for s in studies}
    return [sid for sid in ids if sid in by_id and needs_check(by_id[sid])]


def _window_rules_for(study: Study, window_rules: list[TriggerRule]) -> list[TriggerRule]:
    """The window rules ``check_study`` applies to this study (by its modality types)."""
    kinds = set(study.modality_types or ([study.modality_type] if study.modality_type else []))
    return [r for r in window_rules if not r.modality_type or r.modality_type in kinds]


def _totals_only(facts: rules.StudyFacts) -> rules.StudyFacts:
    """A study's facts as ``patient_window_facts`` gives them (``with_events=False``: no events, no Dose Check)."""
    return dataclasses.replace(facts, events=(), dose_checks=())


def check_studies(study_ids: list[int]) -> dict[int, list[int]]:
    """``check_study`` for every study that could raise or change an alert (see the module docstring); returns
    {study id: its alert ids} for the studies checked."""
    return {sid: check_study(sid) for sid in studies_needing_check(study_ids)}
