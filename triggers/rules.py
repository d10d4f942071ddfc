"""Pure trigger evaluation: a study, the patient's relevant history and the rules in; exceedances out.

No ORM, no I/O: the dataclasses below are filled by ``triggers.services`` (or by a test).  All values are in the
quantity's canonical unit (``dosereg.core.quantities``).  A value at or above the threshold exceeds it.

Ka,r is a surrogate for skin dose, not a skin-dose estimate: it can under- or overestimate peak skin dose.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from dosereg.core.display import format_quantity
from dosereg.core.dose_report import PREGNANT
from dosereg.core.quantities import MODALITY_TOTALS, PLANE_QUANTITIES, QUANTITIES, RULE_QUANTITIES

# quantity (its export name) -> the irradiation event's column, for per-event rules
# rule quantity -> its irradiation event column, for per-event rules (a quantity without one, such as the peak skin
# dose of the whole procedure, has no per-event scope)
EVENT_FIELD = {name: QUANTITIES[name].event_column for name in RULE_QUANTITIES if QUANTITIES[name].event_column}

# Head regions: SNOMED RT / SNOMED CT codes (PS3.16 CID 4030) for head, brain, skull, and text keywords.
HEAD_CODES = {"T-D1100", "69536005", "T-A0100", "12738006", "T-11100", "89546000", "T-D1213", "T-D1200"}
HEAD_WORDS = re.compile(r"(head|brain|skull|cran|neuro|sinus|orbit|kopf|sch(ä|ae)del|hirn|stroke)", re.I)
BODY_WORDS = re.compile(r"(chest|thorax|lung|abd|pelvi|body|trunk|spine|neck|liver|kidney|heart|cardi|coronar|"
                        r"extremit|leg|arm|knee|hip|shoulder|colon|uro|kub|whole|torso)", re.I)
EXAM_REGION = {"head": "head", "neck": "body", "chest": "body", "trunk": "body", "abdomen": "body", "pelvis": "body"}
# Interventional procedures (for rules limited to diagnostic or interventional studies): mapped examinations known to
# be interventions, else keywords in the descriptions.  A study matching neither is treated as diagnostic.
INTERVENTIONAL_EXAMS = {"xa-pci", "xa-tavi", "xa-ep", "xa-pacemaker-single", "xa-pacemaker-dual", "xa-crt"}
INTERVENTIONAL_WORDS = re.compile(r"(interv|\bpci\b|\bptca\b|\bpta\b|stent|emboli|ablation|\btavi\b|\btavr\b|"
                                  r"drainage|angioplast|\btace\b|\btips\b|biops|implant|pacemaker|\bcrt\b|"
                                  r"thrombectom|\bercp\b|vertebroplast|kyphoplast|coil)", re.I)


@dataclass(frozen=True)
class PlaneTotals:
    plane: str  # 'A', 'B', 'single', or 'total' when the study has no per-plane rows
    ka_r_total_mgy: float | None = None
    kap_total_gycm2: float | None = None
    fluoro_time_total_s: float | None = None


@dataclass(frozen=True)
class EventFacts:
    uid: str | None
    sequence: int = 0
    event_type: str = ""
    protocol: str = ""
    target_region: str = ""
    target_region_code: str = ""
    plane: str = ""
    is_localizer: bool = False
    ctdi_phantom: str = ""
    values: dict[str, float | None] = field(default_factory=dict)  # event column -> value


@dataclass(frozen=True)
class DoseCheckFacts:
    """TID 10015 details of one acquisition."""

    uid: str | None
    kind: str  # 'notification' or 'alert'
    protocol: str = ""
    dlp_configured: bool = False
    ctdivol_configured: bool = False
    dlp_value_mgycm: float | None = None
    ctdivol_value_mgy: float | None = None
    dlp_forward_estimate_mgycm: float | None = None
    ctdivol_forward_estimate_mgy: float | None = None
    reason_for_proceeding: str = ""
    authorised_by: str = ""

    def exceeded(self) -> list[tuple[str, float, float]]:
        """(quantity, forward estimate, configured value) for each configured value the estimate exceeds."""
        out = []
        if self.dlp_configured and self.dlp_value_mgycm is not None and self.dlp_forward_estimate_mgycm is not None \
                and self.dlp_forward_estimate_mgycm > self.dlp_value_mgycm:
            out.append(("dlp_total_mgycm", self.dlp_forward_estimate_mgycm, self.dlp_value_mgycm))
        if self.ctdivol_configured and self.ctdivol_value_mgy is not None \
                and self.ctdivol_forward_estimate_mgy is not None \
                and self.ctdivol_forward_estimate_mgy > self.ctdivol_value_mgy:
            out.append(("ctdivol_mgy", self.ctdivol_forward_estimate_mgy, self.ctdivol_value_mgy))
        return out

    @property
    def is_override(self) -> bool:
        """A value was exceeded, or the scanner recorded a reason or an authorising person (TID 10015)."""
        return bool(self.exceeded() or self.reason_for_proceeding.strip() or self.authorised_by.strip())


@dataclass(frozen=True)
class StudyFacts:
    study_id: int
    patient_id: int
    study_date: dt.date | None
    modality_types: tuple[str, ...] = ()
    room_id: int | None = None
    equipment_id: int | None = None
    standard_exam_id: int | None = None
    exam_code: str = ""
    exam_body_region: str = ""
    texts: tuple[str, ...] = ()  # study / requested / performed procedure descriptions
    age_years: float | None = None
    demo: bool = False
    totals: dict[str, float | None] = field(default_factory=dict)  # export_doses totals names (+ ctdivol_mgy, agd_mgy)
    planes: tuple[PlaneTotals, ...] = ()
    events: tuple[EventFacts, ...] = ()
    dose_checks: tuple[DoseCheckFacts, ...] = ()
    pregnancy_status: str = ""  # dosereg.core.dose_report.PREGNANCY_STATUSES value, as the modality recorded it
    label: str = ""  # how the study is shown in a window listing (date, description)


@dataclass(frozen=True)
class RuleSpec:
    """A rule with its threshold in the quantity's canonical unit."""

    id: int
    name: str
    quantity: str
    threshold: float
    scope: str
    severity: str
    kind: str = "threshold"
    plane_mode: str = "each"
    step: float | None = None
    window_days: int | None = None
    min_procedures: int = 2
    modality_type: str = ""
    room_id: int | None = None
    equipment_id: int | None = None
    standard_exam_id: int | None = None
    protocol_pattern: str = ""
    protocol_exclude_pattern: str = ""
    body_region: str = ""
    ctdi_phantom: str = ""
    procedure_kind: str = "any"
    age_min_years: float | None = None
    age_max_years: float | None = None
    version: int = 1


@dataclass(frozen=True)
class Exceedance:
    rule_id: int
    quantity: str
    value: float
    unit: str
    threshold: float
    summary: str
    details: dict = field(default_factory=dict)


# --- classification helpers ---------------------------------------------------------------------------------------
def _search(pattern: str, texts: Sequence[str]) -> bool:
    rx = re.compile(pattern, re.I)
    return any(rx.search(t) for t in texts if t)


def region_of(*, target_region: str = "", target_region_code: str = "", exam_body_region: str = "",
              texts: Sequence[str] = ()) -> str | None:
    """'head' or 'body' from the Target Region, else the mapped examination, else the protocol/description text."""
    code = target_region_code.split(":")[-1].strip() if target_region_code else ""
    if code in HEAD_CODES:
        return "head"
    if target_region:
        if HEAD_WORDS.search(target_region):
            return "head"
        if BODY_WORDS.search(target_region):
            return "body"
    if code:
        return "body"  # a coded region that is not the head
    if exam_body_region in EXAM_REGION:
        return EXAM_REGION[exam_body_region]
    for text in texts:
        if text and HEAD_WORDS.search(text):
            return "head"
    for text in texts:
        if text and BODY_WORDS.search(text):
            return "body"
    return None


def is_interventional(study: StudyFacts) -> bool:
    if study.exam_code in INTERVENTIONAL_EXAMS:
        return True
    return _search(INTERVENTIONAL_WORDS.pattern, study.texts)


def phantom_of(value: str) -> str:
    v = (value or "").lower()
    if v in ("head", "16", "16cm", "16 cm"):
        return "head"
    if v in ("body", "32", "32cm", "32 cm"):
        return "body"
    return ""


def rule_applies(rule: RuleSpec, study: StudyFacts) -> bool:
    """Study-level applicability (modality, unit, room, examination, age band, procedure kind, text patterns)."""
    if rule.modality_type and rule.modality_type not in study.modality_types:
        return False
    if rule.room_id and rule.room_id != study.room_id:
        return False
    if rule.equipment_id and rule.equipment_id != study.equipment_id:
        return False
    if rule.standard_exam_id and rule.standard_exam_id != study.standard_exam_id:
        return False
    if study.age_years is None:
        if rule.age_max_years is not None:  # paediatric bands need a known age; adult rules apply
            return False
    else:
        if rule.age_min_years is not None and study.age_years < rule.age_min_years:
            return False
        if rule.age_max_years is not None and study.age_years >= rule.age_max_years:
            return False
    if rule.procedure_kind == "diagnostic" and is_interventional(study):
        return False
    if rule.procedure_kind == "interventional" and not is_interventional(study):
        return False
    if rule.scope != "event":  # event rules look at each acquisition's protocol too (see _event_matches)
        texts = study.texts + tuple(e.protocol for e in study.events)
        if rule.protocol_pattern and not _search(rule.protocol_pattern, texts):
            return False
        if rule.protocol_exclude_pattern and _search(rule.protocol_exclude_pattern, study.texts):
            return False
        if rule.body_region and region_of(exam_body_region=study.exam_body_region, texts=texts) != rule.body_region:
            return False
    return True


def _event_matches(rule: RuleSpec, study: StudyFacts, event: EventFacts) -> bool:
    texts = study.texts + (event.protocol,)
    if rule.protocol_pattern and not _search(rule.protocol_pattern, texts):
        return False
    if rule.protocol_exclude_pattern and _search(rule.protocol_exclude_pattern, texts):
        return False
    if rule.ctdi_phantom and phantom_of(event.ctdi_phantom) != rule.ctdi_phantom:
        return False
    if rule.body_region:
        region = region_of(target_region=event.target_region, target_region_code=event.target_region_code,
                           exam_body_region=study.exam_body_region, texts=(event.protocol,) + study.texts)
        if region != rule.body_region:
            return False
    return True


# --- values ---------------------------------------------------------------------------------------------------------
def _usable(value) -> float | None:
    """A value a rule may compare: the registry stores an invalid value as None (never a number), so this only keeps
    a stray non-finite float from raising an alert.  Implausible values are real numbers and are compared."""
    return value if value is not None and math.isfinite(value) else None


def _planes(study: StudyFacts) -> tuple[PlaneTotals, ...]:
    if study.planes:
        return study.planes
    t = study.totals
    return (PlaneTotals("total", t.get("ka_r_total_mgy"), t.get("kap_total_gycm2"), t.get("fluoro_time_total_s")),)


def study_value(study: StudyFacts, quantity: str, plane_mode: str = "sum") -> tuple[float | None, dict[str, float]]:
    """(value used for the rule, per-plane values) of a study for a study-scope rule."""
    if quantity in PLANE_QUANTITIES:
        per_plane = {p.plane: _usable(getattr(p, quantity)) for p in _planes(study)}
        per_plane = {plane: v for plane, v in per_plane.items() if v is not None}
        if plane_mode == "each":
            return (max(per_plane.values()) if per_plane else None), per_plane
        total = _usable(study.totals.get(quantity))
        if total is None and per_plane:
            total = sum(per_plane.values())
        return total, per_plane
    if quantity == "ctdivol_mgy":
        values = [_usable(e.values.get("ctdivol_mgy")) for e in study.events if not e.is_localizer]
        values = [v for v in values if v is not None]
        return (max(values) if values else _usable(study.totals.get("ctdivol_mgy"))), {}
    return _usable(study.totals.get(quantity)), {}


def _steps(value: float, threshold: float, step: float | None) -> list[float]:
    if not step or step <= 0:
        return []
    steps, level = [], threshold + step
    while level <= value + 1e-9 and len(steps) < 1000:
        steps.append(round(level, 9))
        level += step
    return steps


def _shown(quantity: str, value: float) -> str:
    """A value of the rule's quantity as people read it (the catalogue's formatter: unit always shown)."""
    return format_quantity(quantity, value)


def _label(quantity: str) -> str:
    return QUANTITIES[quantity].label


def _unit(quantity: str) -> str:
    return QUANTITIES[quantity].unit_symbol


def _evaluate_study_scope(rule: RuleSpec, study: StudyFacts) -> Exceedance | None:
    value, per_plane = study_value(study, rule.quantity, rule.plane_mode)
    if value is None or value < rule.threshold:
        return None
    q = rule.quantity
    details: dict = {"plane_mode": rule.plane_mode if rule.quantity in PLANE_QUANTITIES else None,
                     "per_plane": per_plane}
    if rule.quantity in PLANE_QUANTITIES:
        details["planes_exceeding"] = sorted(p for p, v in per_plane.items() if v >= rule.threshold)
    summary = f"{_label(q)} {_shown(q, value)} ≥ {_shown(q, rule.threshold)}"
    steps = _steps(value, rule.threshold, rule.step)
    if rule.step:
        details["first_level"] = rule.threshold
        details["step"] = rule.step
        details["steps_reached"] = steps
        if steps:
            summary += f"; further steps reached: {', '.join(_shown(q, s) for s in steps)}"
    return Exceedance(rule.id, q, value, _unit(q), rule.threshold, summary, details)


def _evaluate_event_scope(rule: RuleSpec, study: StudyFacts) -> Exceedance | None:
    column = EVENT_FIELD.get(rule.quantity)
    if column is None:  # rule_validate refuses this; a row edited around it evaluates to nothing
        return None
    hits = []
    for event in study.events:
        if rule.quantity in ("ctdivol_mgy", "dlp_total_mgycm") and event.is_localizer:
            continue  # per-acquisition CT criteria leave out localizers
        v = _usable(event.values.get(column))
        if v is None or v < rule.threshold or not _event_matches(rule, study, event):
            continue
        hits.append({"irradiation_event_uid": event.uid, "sequence": event.sequence, "protocol": event.protocol,
                     "target_region": event.target_region, "plane": event.plane, "value": v})
    if not hits:
        return None
    value = max(h["value"] for h in hits)
    q = rule.quantity
    summary = (f"{_label(q)} {_shown(q, value)} ≥ {_shown(q, rule.threshold)} in {len(hits)} "
               f"irradiation event{'s' if len(hits) != 1 else ''}")
    return Exceedance(rule.id, q, value, _unit(q), rule.threshold, summary, {"events": hits})


def window_sum(rule: RuleSpec, study: StudyFacts, history: Sequence[StudyFacts]) -> tuple[list[StudyFacts], float,
                                                                                         dict[str, float]]:
    """The patient's procedures in the window ending on this study's date (this one included), and the sums."""
    if study.study_date is None:
        return [study], 0.0, {}
    start = study.study_date - dt.timedelta(days=(rule.window_days or 1) - 1)
    members = [study] + [h for h in history
                         if h.study_id != study.study_id and h.patient_id == study.patient_id
                         and h.study_date is not None and start <= h.study_date <= study.study_date
                         and rule_applies(rule, h)]
    per_plane: dict[str, float] = {}
    total = 0.0
    for m in members:
        v, planes = study_value(m, rule.quantity, "sum")
        total += v or 0.0
        for p, pv in planes.items():
            per_plane[p] = per_plane.get(p, 0.0) + (pv or 0.0)
    return members, total, per_plane


def _evaluate_window_scope(rule: RuleSpec, study: StudyFacts, history: Sequence[StudyFacts]) -> Exceedance | None:
    members, total, per_plane = window_sum(rule, study, history)
    if len(members) < max(rule.min_procedures, 2):
        return None  # a single procedure is covered by the study rules
    value = max(per_plane.values()) if (rule.plane_mode == "each" and rule.quantity in PLANE_QUANTITIES
                                        and per_plane) else total
    if value < rule.threshold:
        return None
    q = rule.quantity
    listing = [{"study_id": m.study_id, "study_date": m.study_date.isoformat() if m.study_date else None,
                "label": m.label, "value": study_value(m, rule.quantity, "sum")[0]}
               for m in sorted(members, key=lambda m: (m.study_date or dt.date.min, m.study_id))]
    summary = (f"{_label(q)} {_shown(q, value)} summed over {len(members)} procedures in {rule.window_days} days "
               f"≥ {_shown(q, rule.threshold)}")
    if q == "psd_mgy":  # the peaks of different procedures need not lie on the same skin: the sum is an upper bound
        summary += " (peak skin doses added conservatively: their maps are not added in one phantom frame)"
    return Exceedance(rule.id, q, value, _unit(q), rule.threshold, summary,
                      {"window_days": rule.window_days, "procedures": listing, "per_plane": per_plane,
                       "plane_mode": rule.plane_mode, "sum": total})


def _evaluate_dose_check(rule: RuleSpec, study: StudyFacts) -> Exceedance | None:
    """One exceedance listing every acquisition whose Dose Check notification or alert value was exceeded (or whose
    override reason / authorising person was recorded).  Blocks that only state the configuration are ignored."""
    concerned = [dc for dc in study.dose_checks if dc.is_override]
    if not concerned:
        return None
    rows, best = [], None  # best: (quantity, forward estimate, configured value), DLP preferred
    for dc in concerned:
        exceeded = dc.exceeded()
        rows.append({"irradiation_event_uid": dc.uid, "protocol": dc.protocol, "kind": dc.kind,
                     "exceeded": [q for q, _, _ in exceeded],
                     "dlp_value_mgycm": dc.dlp_value_mgycm, "dlp_forward_estimate_mgycm": dc.dlp_forward_estimate_mgycm,
                     "ctdivol_value_mgy": dc.ctdivol_value_mgy,
                     "ctdivol_forward_estimate_mgy": dc.ctdivol_forward_estimate_mgy,
                     "reason_for_proceeding": dc.reason_for_proceeding, "authorised_by": dc.authorised_by})
        for q, fwd, conf in exceeded:
            rank = (q == "dlp_total_mgycm", fwd / conf if conf else 0.0)
            if best is None or rank > best[3]:
                best = (q, fwd, conf, rank)
    if best is None:  # a reason or person recorded without a value: report the largest DLP forward estimate
        fwd = max((dc.dlp_forward_estimate_mgycm or 0.0) for dc in concerned)
        best = ("dlp_total_mgycm", fwd, 0.0, None)
    quantity, value, threshold = best[0], best[1], best[2]
    kinds = sorted({dc.kind for dc in concerned})
    n = len({dc.uid for dc in concerned})
    summary = (f"CT Dose Check {'/'.join(kinds)} value exceeded in {n} acquisition{'s' if n != 1 else ''}; "
               f"largest: {_label(quantity)} forward estimate {_shown(quantity, value)} vs configured "
               f"{_shown(quantity, threshold)}")
    return Exceedance(rule.id, quantity, value, _unit(quantity), threshold, summary, {"acquisitions": rows})


def _evaluate_pregnancy(rule: RuleSpec, study: StudyFacts) -> Exceedance | None:
    """A patient the modality recorded as pregnant or possibly pregnant was exposed (Directive 2013/59/Euratom
    Art. 62: special protection; the physicist estimates the conceptus dose where the beam or scan covered the
    pelvis).  The rule's quantity is the one shown beside; its threshold (often 0) is the least value that counts."""
    if study.pregnancy_status not in PREGNANT:
        return None
    # the rule's quantity, else the study's own main quantity (a fluoroscopy study has no effective dose estimate)
    candidates = [rule.quantity] + [q for m in study.modality_types for q in MODALITY_TOTALS.get(m, ())] + list(
        RULE_QUANTITIES)
    quantity, value = rule.quantity, None
    for name in candidates:
        value = study_value(study, name, "sum")[0] if name in RULE_QUANTITIES or name in study.totals else None
        if value is not None:
            quantity = name
            break
    if value is not None and value < rule.threshold:
        return None
    status = "possibly pregnant" if study.pregnancy_status == "possibly_pregnant" else "pregnant"
    shown = f"{_label(quantity)} {_shown(quantity, value)}" if value is not None else "no dose value reported"
    summary = (f"Patient recorded as {status} by the modality (Pregnancy Status); {shown}: check the justification "
               "and, where the exposure covered the pelvis, have a medical physicist estimate the conceptus dose")
    return Exceedance(rule.id, quantity, value or 0.0, _unit(quantity), rule.threshold, summary,
                      {"pregnancy_status": study.pregnancy_status})


def current_value(rule: RuleSpec, study: StudyFacts) -> float | None:
    """The study's own value of the rule's quantity, as the rule reads it (the highest event value for an event rule),
    e.g. to say what a corrected study now shows once an alert no longer applies.  None when it has none."""
    if rule.scope == "event" and rule.quantity in EVENT_FIELD:
        column = EVENT_FIELD[rule.quantity]
        values = [_usable(e.values.get(column)) for e in study.events]
        values = [v for v in values if v is not None]
        return max(values) if values else None
    return study_value(study, rule.quantity, rule.plane_mode if rule.scope == "study" else "sum")[0]


def evaluate(study: StudyFacts, history: Sequence[StudyFacts], rules: Sequence[RuleSpec]) -> list[Exceedance]:
    """Every rule the study exceeds (at most one exceedance per rule)."""
    out = []
    for rule in rules:
        if not rule_applies(rule, study):
            continue
        if rule.kind == "dose_check":
            hit = _evaluate_dose_check(rule, study)
        elif rule.kind == "pregnancy":
            hit = _evaluate_pregnancy(rule, study)
        elif rule.scope == "event":
            hit = _evaluate_event_scope(rule, study)
        elif rule.scope == "study":
            hit = _evaluate_study_scope(rule, study)
        elif rule.scope == "patient_window":
            hit = _evaluate_window_scope(rule, study, history)
        else:
            hit = None
        if hit is not None:
            out.append(hit)
    return out
