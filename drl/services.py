"""DRL services: mapping studies onto standard examinations, the comparison (snapshots), re-comparison after
changes, DRL-set import, and a study's position against its DRL.

Entry points called by other apps (exact names, see the post-ingest contract): ``map_study(study_id)``,
``note_equipment_change(change_id)``, ``drl_position(study_id)``.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import json
import logging
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from dosereg.registry.models import Equipment, EquipmentChange, IrradiationEvent, SiteSettings, StandardExam, Study
from dosereg.registry.services.audit import audit_record
from dosereg.registry.services.notifications import notification_send
from dosereg.registry.services.studies import study_set_standard_exam
from drl import comparison as rules
from drl.comparison import Band, DrlValidationError
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
from drl.selectors import Scope, Stats, drl_aggregates, drl_groups

log = logging.getLogger(__name__)
DATA_DIR = Path(__file__).resolve().parent / "data"
# A protocol's technique counts as changed when a study's mean kVp for it lies this far from the protocol's baseline
# (the mean of its first KVP_BASELINE_STUDIES studies on the unit).  10 kV is one step on most CT units' kV scale.
KVP_SHIFT_KV = 10.0
KVP_BASELINE_STUDIES = 5
NO_DESCRIPTION = "(no description)"


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


def _compile(rule: MappingRule) -> _CompiledRule:
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


def _active_rules() -> list[_CompiledRule]:
    compiled = []
    for rule in MappingRule.objects.filter(active=True).order_by("priority", "id"):
        try:
            compiled.append(_compile(rule))
        except MappingError as exc:
            log.warning("mapping rule %s skipped: %s", rule.pk, exc)
    return compiled


_NEEDS_PROTOCOLS = object()


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


_FIELDS = ("modality_type", "equipment_id", "study_description", "requested_procedure_description",
           "requested_procedure_code")


def _study_protocols(study_id: int) -> list[str]:
    return list(IrradiationEvent.objects.filter(study_id=study_id, is_current=True).exclude(protocol="")
                .values_list("protocol", flat=True).distinct())


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


def map_studies(queryset: QuerySet | None = None) -> dict[str, int]:
    """Re-apply the mapping rules to stored studies (all, or the queryset's).  Works on distinct name combinations
    (grouped in the database), falling back to one study at a time only where a protocol rule must be tested.
    Returns {"changed": n, "mapped": n, "unmapped": n}."""
    qs = Study.objects.all() if queryset is None else queryset
    compiled = _active_rules()
    counts = {"changed": 0, "mapped": 0, "unmapped": 0}
    exams = {e.pk: e for e in StandardExam.objects.all()}
    targets: dict[int | None, list[Q]] = defaultdict(list)
    per_study: list[Q] = []
    for combo in qs.values(*_FIELDS).annotate(n=Count("id")).order_by():
        n = combo.pop("n")
        exam_id = _match(compiled, combo, None)
        where = Q(**{k: v for k, v in combo.items()})
        if exam_id is _NEEDS_PROTOCOLS:
            per_study.append(where)
            continue
        targets[exam_id].append(where)
        counts["mapped" if exam_id else "unmapped"] += n
    for where in per_study:
        for study in qs.filter(where).values("id", *_FIELDS):
            exam_id = _match(compiled, study, _study_protocols(study["id"]))
            targets[exam_id].append(Q(pk=study["id"]))
            counts["mapped" if exam_id else "unmapped"] += 1
    for exam_id, wheres in targets.items():
        for i in range(0, len(wheres), 200):
            chunk = Q()
            for w in wheres[i:i + 200]:
                chunk |= w
            ids = list(qs.filter(chunk).exclude(standard_exam_id=exam_id).values_list("id", flat=True)
                       if exam_id else qs.filter(chunk).exclude(standard_exam__isnull=True).values_list("id", flat=True))
            for j in range(0, len(ids), 5000):
                counts["changed"] += study_set_standard_exam(study_ids=ids[j:j + 5000], exam=exams.get(exam_id))
    return counts


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


def unmapped_names(limit: int = 200) -> list[dict]:
    """Names of unmapped studies by frequency (grouped in the database), each with suggested standard exams."""
    rows = list(Study.objects.filter(standard_exam__isnull=True).values("modality_type", "study_description")
                .annotate(n=Count("id"), last=Count("equipment", distinct=True)).order_by("-n")[:limit])
    exams = list(StandardExam.objects.all())
    examples = _default_examples()
    for row in rows:
        row["name"] = row["study_description"] or ""
        row["units"] = row.pop("last")
        row["suggestions"] = suggest_exams(row["name"], row["modality_type"], exams=exams, examples=examples)
    return rows


def _default_examples() -> dict[str, list[str]]:
    data = json.loads((DATA_DIR / "default_mapping.json").read_text(encoding="utf-8"))
    out: dict[str, list[str]] = defaultdict(list)
    for rule in data["rules"]:
        out[rule["exam"]].extend(rule.get("examples", []))
    return out


def suggest_exams(name: str, modality_type: str, *, exams=None, examples=None, limit: int = 3) -> list[StandardExam]:
    """Standard examinations whose name or known examples look most like ``name`` (same modality type first)."""
    exams = exams if exams is not None else list(StandardExam.objects.all())
    examples = examples if examples is not None else _default_examples()
    words = set(re.findall(r"[a-z]{3,}", name.lower())) - {"with", "without", "contrast", "adult"}
    scored = []
    for exam in exams:
        if modality_type and exam.modality_type != modality_type:
            continue
        candidates = [exam.name, *examples.get(exam.code, [])]
        best = max(difflib.SequenceMatcher(None, name.lower(), c.lower()).ratio() for c in candidates)
        cand_words = set(re.findall(r"[a-z]{3,}", " ".join(candidates).lower()))
        best += 0.3 * len(words & cand_words) / max(len(words), 1)
        scored.append((best, exam))
    scored.sort(key=lambda t: -t[0])
    return [exam for score, exam in scored[:limit] if score > 0.3]


def mapping_rule_warnings(rule: MappingRule) -> list[str]:
    """Warn about a rule that matches none, or every one, of the stored names it looks at."""
    compiled = _compile(rule)  # raises MappingError for a bad pattern
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
    rule = MappingRule(priority=5, field="study_description", match="exact", pattern=name,
                       modality_type=modality_type, standard_exam=exam, created_by=user if user and user.pk else None)
    rule.save()
    audit_record(user=user, action="drl_name_mapped", object_type="drl.MappingRule", object_id=str(rule.pk),
                 detail={"name": name, "modality_type": modality_type, "exam": exam.code})
    counts = map_studies(Study.objects.filter(study_description__iexact=name, modality_type=modality_type))
    UnmappedName.objects.filter(name=name, modality_type=modality_type).delete()
    return rule, counts


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


# --- DRL entries -----------------------------------------------------------------------------------------------------
def drl_entries_in_force() -> dict[tuple[int, str, str, str], DrlEntry]:
    """(exam_id, patient_group, quantity, per) -> the entry of the active set with the lowest priority number."""
    chosen: dict[tuple[int, str, str, str], DrlEntry] = {}
    for entry in (DrlEntry.objects.filter(drl_set__active=True).select_related("drl_set")
                  .order_by("drl_set__priority", "drl_set_id", "id")):
        chosen.setdefault((entry.standard_exam_id, entry.patient_group, entry.quantity, entry.per), entry)
    return chosen


def _band_of(entry: DrlEntry) -> Band:
    if entry.patient_group == "adult":
        return Band("adult")
    return Band(entry.patient_group, entry.age_min_years, entry.age_max_years, entry.weight_min_kg,
                entry.weight_max_kg)


CSV_COLUMNS = ["standard_exam", "indication", "patient_group", "age_min_years", "age_max_years", "weight_min_kg",
               "weight_max_kg", "quantity", "value", "unit", "per", "verify", "note"]
CSV_REQUIRED = ["standard_exam", "quantity", "value", "unit", "per"]


def _float(text: str, what: str) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return float(text.replace(",", "."))
    except ValueError:
        raise DrlValidationError(f"{what} {text!r} is not a number") from None


def drl_set_import_csv(*, text: str, name: str, issuing_body: str, year: int, source: str, country: str = "",
                       verify: bool = False, local: bool = True, priority: int = 10, user=None) -> DrlSet:
    """Import a DRL set from CSV (columns ``CSV_COLUMNS``; header required).  Any bad row refuses the whole file,
    naming the row (line number in the file, the header being line 1)."""
    if DrlSet.objects.filter(name=name).exists():
        raise DrlValidationError(f"a DRL set named {name!r} already exists")
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in CSV_REQUIRED if c not in header]
    if missing:
        raise DrlValidationError(f"line 1: missing column(s) {', '.join(missing)} (columns: {', '.join(CSV_COLUMNS)})")
    exams = {e.code: e for e in StandardExam.objects.all()}
    entries: list[DrlEntry] = []
    seen: dict[tuple, int] = {}
    bands: dict[tuple, list[tuple[int, Band]]] = defaultdict(list)
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(row.values()):
            continue
        try:
            exam = exams.get(row.get("standard_exam", ""))
            if exam is None:
                raise DrlValidationError(f"unknown standard examination {row.get('standard_exam')!r}")
            value = _float(row.get("value", ""), "value")
            unit = rules.entry_check(quantity=row["quantity"], unit=row["unit"], per=row["per"], value=value)
            group = row.get("patient_group") or "adult"
            band = Band(group, _float(row.get("age_min_years", ""), "age_min_years"),
                        _float(row.get("age_max_years", ""), "age_max_years"),
                        _float(row.get("weight_min_kg", ""), "weight_min_kg"),
                        _float(row.get("weight_max_kg", ""), "weight_max_kg"))
            rules.bands_check([band])
            key = (exam.code, group, row["quantity"], row["per"])
            if key in seen:
                raise DrlValidationError(f"duplicates line {seen[key]} ({exam.code}, {group}, {row['quantity']} "
                                         f"per {row['per']})")
            seen[key] = line
            for other_line, other in bands[key[:1] + key[2:]]:
                try:
                    rules.bands_check([other, band])
                except DrlValidationError as exc:
                    raise DrlValidationError(f"{exc} (line {other_line})") from None
            bands[key[:1] + key[2:]].append((line, band))
        except DrlValidationError as exc:
            raise DrlValidationError(f"line {line}: {exc}") from None
        entries.append(DrlEntry(
            standard_exam=exam, indication=row.get("indication", "")[:200], patient_group=group,
            age_min_years=band.age_min, age_max_years=band.age_max, weight_min_kg=band.weight_min,
            weight_max_kg=band.weight_max, quantity=row["quantity"], value=value, unit=unit, per=row["per"],
            verify=row.get("verify", "").lower() in ("1", "true", "yes", "y") or verify,
            note=row.get("note", "")[:255]))
    if not entries:
        raise DrlValidationError("the file holds no DRL rows")
    with transaction.atomic():
        drl_set = DrlSet.objects.create(name=name, issuing_body=issuing_body, country=country, year=year,
                                        source=source, verify=verify, local=local, priority=priority)
        for e in entries:
            e.drl_set = drl_set
        DrlEntry.objects.bulk_create(entries)
        audit_record(user=user, action="drl_set_imported", object_type="drl.DrlSet", object_id=str(drl_set.pk),
                     detail={"name": name, "entries": len(entries)})
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


def drl_comparison_run(*, period_start: dt.date, period_end: dt.date, trigger: str = "on_demand", user=None,
                       include_demo: bool = False, equipment_id: int | None = None, note: str = "") -> DrlComparison:
    """Compare every unit's median per standard examination (and patient group) with the DRL in force; store an
    immutable snapshot and return it."""
    if period_end < period_start:
        raise DrlValidationError("the period ends before it starts")
    started = time.perf_counter()
    site = SiteSettings.load()
    scope = Scope(period_start, period_end, include_demo, equipment_id, site.drl_standard_size,
                  site.drl_weight_min_kg, site.drl_weight_max_kg)
    prev_start, prev_end = previous_period(period_start, period_end)
    prev_scope = Scope(prev_start, prev_end, include_demo, equipment_id, site.drl_standard_size,
                       site.drl_weight_min_kg, site.drl_weight_max_kg)
    exams = {e.pk: e for e in StandardExam.objects.all()}
    entries = drl_entries_in_force()
    groups = drl_groups(scope, Band("adult"))

    # what to compute: (band, quantity, per) -> exam ids
    wanted: dict[tuple[Band, str, str], set[int]] = defaultdict(set)
    exam_ids_in_data = {ex for _, ex in groups}
    for ex in exam_ids_in_data:
        for q, per in rules.DEFAULT_QUANTITIES.get(exams[ex].modality_type, []):
            wanted[(Band("adult"), q, per)].add(ex)
    band_exams: set[int] = set()
    for (ex, _group, q, per), entry in entries.items():
        band = _band_of(entry)
        wanted[(band, q, per)].add(ex)
        if not band.is_adult:
            band_exams.add(ex)
    if band_exams:  # units with paediatric studies of an exam that has banded DRLs but no adult studies
        for key in drl_groups(Scope(period_start, period_end, include_demo, equipment_id), Band("any", 0, 200)):
            groups.setdefault(key, 0)

    rows: list[DrlComparisonRow] = []
    units = {u.pk: u for u in Equipment.objects.filter(pk__in={eq for eq, _ in groups}).select_related("room")}
    for (band, q, per), ex_ids in wanted.items():
        ex_list = sorted(ex_ids)
        current = drl_aggregates(scope, band, q, per, ex_list)
        previous = drl_aggregates(prev_scope, band, q, per, ex_list)
        for (eq, ex) in sorted(groups):
            if ex not in ex_ids:
                continue
            stats = current.get((eq, ex), Stats())
            if not band.is_adult and stats.n == 0:
                continue
            entry = entries.get((ex, band.label, q, per))
            drl = entry.value if entry else None
            prev = previous.get((eq, ex))
            unit = units[eq]
            rows.append(DrlComparisonRow(
                equipment=unit, equipment_name=unit.display_name, room_name=unit.room.name if unit.room else "",
                standard_exam=exams[ex], exam_code=exams[ex].code, exam_name=exams[ex].name,
                patient_group=band.label, quantity=q, unit=rules.QUANTITY_UNITS[q], per=per, n=stats.n,
                n_studies=stats.n_studies, median=stats.median, p25=stats.p25, p75=stats.p75, mean=stats.mean,
                minimum=stats.minimum, maximum=stats.maximum, drl=drl, drl_entry=entry,
                drl_set_name=entry.drl_set.name if entry else "", drl_source=entry.drl_set.source if entry else "",
                ratio=rules.ratio(stats.median, drl),
                status=rules.comparison_status(median=stats.median, drl=drl, n_patients=stats.n_studies,
                                               min_patients=site.drl_min_patients),
                size_filter=bool(site.drl_standard_size and band.is_adult),
                verify=bool(entry and (entry.verify or entry.drl_set.verify)),
                previous_median=prev.median if prev else None,
                trend=rules.ratio(stats.median, prev.median if prev else None)))
    with transaction.atomic():
        run = DrlComparison.objects.create(
            period_start=period_start, period_end=period_end, trigger=trigger, equipment_id=equipment_id,
            include_demo=include_demo, standard_size=site.drl_standard_size,
            weight_min_kg=site.drl_weight_min_kg if site.drl_standard_size else None,
            weight_max_kg=site.drl_weight_max_kg if site.drl_standard_size else None,
            min_patients=site.drl_min_patients, created_by=user if user and user.pk else None, note=note[:255])
        for r in rows:
            r.comparison = run
        DrlComparisonRow.objects.bulk_create(rows, batch_size=1000)
        DrlComparison.objects.filter(pk=run.pk).update(duration_s=time.perf_counter() - started)
        run.duration_s = time.perf_counter() - started
        if equipment_id is None:
            # a full comparison covering a change's date resolves it
            dues = DueComparison.objects.filter(resolved_by__isnull=True, since__gte=period_start,
                                                since__lte=period_end)
        else:
            dues = DueComparison.objects.filter(resolved_by__isnull=True, equipment_id=equipment_id,
                                                since__gte=period_start)
        dues.update(resolved_by=run, resolved_at=timezone.now())
        audit_record(user=user, action="drl_comparison_run", object_type="drl.DrlComparison", object_id=str(run.pk),
                     detail={"period": [period_start.isoformat(), period_end.isoformat()], "trigger": trigger,
                             "rows": len(rows), "equipment_id": equipment_id, "include_demo": include_demo})
    log.info("DRL comparison %s: %d rows in %.2f s", run.pk, len(rows), run.duration_s)
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


def drl_report_rows(run: DrlComparison) -> list[dict]:
    """The rows of a snapshot in the ``drl_report`` JSON shape."""
    out = []
    for r in run.rows.all().order_by("exam_code", "equipment_name", "patient_group", "quantity", "per"):
        out.append({
            "equipment": r.equipment_name, "equipment_id": r.equipment_id, "standard_exam": r.exam_code,
            "patient_group": r.patient_group, "quantity": r.quantity, "unit": r.unit, "per": r.per, "n": r.n,
            "n_studies": r.n_studies, "median": r.median, "p75": r.p75, "mean": r.mean, "drl": r.drl,
            "ratio": r.ratio, "status": r.status, "size_filter": r.size_filter, "verify": r.verify,
        })
    return out


def drl_latest_for_year(year: int, *, include_demo: bool = False) -> DrlComparison | None:
    return (DrlComparison.objects.filter(period_start=dt.date(year, 1, 1), period_end=dt.date(year, 12, 31),
                                         equipment__isnull=True, include_demo=include_demo)
            .order_by("-created_at", "-id").first())


# --- a study's position against its DRL ----------------------------------------------------------------------------
_POSITION_ORDER = ["dlp_mgycm", "kap_gycm2", "ka_r_mgy", "activity_mbq"]


def drl_position(study_id: int) -> dict | None:
    """The study's per-examination value against the DRL of its mapped examination (adult or its band), or None
    when the study is unmapped or no DRL applies.  ``positions`` lists every quantity that has one."""
    study = Study.objects.select_related("standard_exam").filter(pk=study_id).first()
    if study is None or study.standard_exam is None:
        return None
    positions = []
    for (ex, group, q, per), entry in drl_entries_in_force().items():
        if ex != study.standard_exam_id or per != "examination":
            continue
        if not rules.in_band(_band_of(entry), study.age_years, study.weight_kg):
            continue
        value = getattr(study, rules.STUDY_COLUMNS[q])
        if value is None:
            continue
        r = rules.ratio(value, entry.value)
        positions.append({
            "standard_exam": study.standard_exam.code, "exam_name": study.standard_exam.name,
            "patient_group": group, "quantity": q, "unit": entry.unit, "per": per, "value": value,
            "drl": entry.value, "ratio": r, "status": "above" if value > entry.value else "below",
            "drl_set": entry.drl_set.name, "source": entry.drl_set.source,
            "verify": bool(entry.verify or entry.drl_set.verify),
            "note": "a single study above the DRL is not a breach: DRLs apply to the median of a patient group",
        })
    if not positions:
        return None
    positions.sort(key=lambda p: _POSITION_ORDER.index(p["quantity"]))
    result = dict(positions[0])
    result["positions"] = positions
    return result


REPORT_FIELDS = ["equipment", "equipment_id", "standard_exam", "patient_group", "quantity", "unit", "per", "n",
                 "n_studies", "median", "p75", "mean", "drl", "ratio", "status", "size_filter", "verify"]


def drl_report_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row[k] is None else row[k]) for k in REPORT_FIELDS})
    return out.getvalue()


# --- batch steps for generate_demo_data --bulk (dicomrx.bulk) -----------------------------------------------------
def note_unmapped_names_of(ids: list[int]) -> None:
    """As ``map_study`` does per study: note the names of these studies that no rule maps (batch)."""
    note = _note_unmapped

    names = (Study.objects.filter(pk__in=ids, standard_exam__isnull=True)
             .values_list("modality_type", "study_description").distinct())
    for modality_type, description in sorted(set(names)):
        note(modality_type or "", description or NO_DESCRIPTION)


def note_protocols_of(ids: list[int]) -> None:
    """As ``map_study`` does per study, for a batch: track the units' acquisition protocols.  The per-study
    ``_note_protocols`` runs only for a study that brings a protocol new to its unit, a kVp baseline still forming,
    or a kVp shift; the others are only counted, with one UPDATE per (unit, protocol)."""
    note = _note_protocols

    per_study: dict[int, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for sid, protocol, kvp in (IrradiationEvent.objects.filter(study_id__in=ids, is_current=True, is_localizer=False)
                               .exclude(protocol="").values_list("study_id", "protocol", "kvp")):
        per_study[sid][protocol[:255]].append(kvp)
    if not per_study:
        return
    studies = {s["id"]: s for s in Study.objects.filter(pk__in=list(per_study), equipment_id__isnull=False)
               .values("id", "study_date", "equipment_id")}
    units = {s["equipment_id"] for s in studies.values()}
    seen = {(p.equipment_id, p.protocol): p for p in ProtocolSeen.objects.filter(equipment_id__in=units)}
    counts: Counter = Counter()
    full = 0
    for sid in ids:  # a study recorded twice in the batch counts twice, as with map_study per object
        study = studies.get(sid)
        if study is None:
            continue
        eq = study["equipment_id"]
        needs_full = False
        for protocol, kvps in per_study[sid].items():
            row = seen.get((eq, protocol))
            known = [k for k in kvps if k is not None]
            kvp = sum(known) / len(known) if known else None
            if row is None:
                needs_full = True
            elif kvp is not None and (row.kvp_baseline is None or row.kvp_baseline_n < KVP_BASELINE_STUDIES
                                      or abs(kvp - row.kvp_baseline) >= KVP_SHIFT_KV):
                needs_full = True
        if needs_full:
            note(study)
            full += 1
            for p in ProtocolSeen.objects.filter(equipment_id=eq, protocol__in=list(per_study[sid])):
                seen[(eq, p.protocol)] = p
        else:
            for protocol in per_study[sid]:
                counts[(eq, protocol)] += 1
    for (eq, protocol), n in counts.items():
        ProtocolSeen.objects.filter(equipment_id=eq, protocol=protocol).update(studies=F("studies") + n)
    log.debug("protocols of %d studies noted (%d one by one)", len(studies), full)
