"""A study's current totals and effective dose: one implementation for the single and the batch paths.

Totals are the sums over the study's current reports' accumulated totals as written (RDSR, RRDSR, private summary),
quantity by quantity (catalogue ``SUMMED_TOTALS``); a quantity no current report carries comes from the image headers
that count (each exposure once).  Maxima and event counts come from the current events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone

from dosereg.core import dose_report as dr
from dosereg.core import effective_dose as ed
from dosereg.core.quantities import SUMMED_TOTALS, modality_order
from dosereg.core.versions import REPORT_KINDS
from dosereg.registry.models import AccumulatedDose, DoseReport, IrradiationEvent, Study
from dosereg.registry.services import effective_dose
from dosereg.registry.services.recording.bulk_sql import update_rows


def studies_update_effective_dose(study_ids: list[int], *, every_event: bool = False) -> int:
    """:func:`study_update_effective_dose` for many studies, in a few queries: the CT acquisitions of studies whose
    mapped examination has a body region, and that take the exam's region, are re-estimated (with their SSDE); the
    studies with KAP whose examination has a KAP coefficient, or whose figure came from one (the mapping moved them),
    are found in one query; those studies' totals are recomputed.  ``every_event``: every current event of the
    studies (after a change of the site's weighting basis or of the factor data).  Returns how many studies
    changed."""
    qs = Study.objects.filter(pk__in=list(study_ids)).select_related("standard_exam")
    events = IrradiationEvent.objects.only(
        "id", "study_id", "dlp_mgycm", "ctdivol_mgy", "target_region_code", "ctdi_phantom", "effective_dose_msv",
        "is_localizer", "ssde_mgy", "ssde_method", "ssde_reported_mgy", "water_equivalent_diameter_mm",
        "attributes")  # attributes: the patient dimensions of the SSDE item (effective_dose.event_dimensions_cm)
    if every_event:
        studies = {s.pk: s for s in qs}
        rows = list(events.filter(study_id__in=list(studies)))
        kap_studies: dict[int, Study] = {}
    else:  # only the acquisitions that take the exam's region (no Target Region the factors know), found in SQL:
        # a batch's CT events with known regions are most of its rows, and loading them was most of this step
        rows = [r for r in events.filter(
            study_id__in=list(study_ids), dlp_mgycm__isnull=False, study__standard_exam__isnull=False).exclude(
            study__standard_exam__body_region="").exclude(target_region_code__in=list(ed.REGION_BY_SCT))
            if effective_dose.region_for(r.target_region_code) is None]
        studies = {s.pk: s for s in qs.filter(pk__in={r.study_id for r in rows})} if rows else {}
        kap_studies = {s.pk: s for s in _kap_studies(qs)}
    for row in rows:
        study = studies[row.study_id]
        set_event_effective_dose(row, age=study.age_years,
                                 exam_region=study.standard_exam.body_region if study.standard_exam else "")
    if rows:
        update_rows(IrradiationEvent, rows, ["effective_dose_estimate_msv", "effective_dose_method", "ssde_mgy",
                                             "ssde_method", "ssde_reported_mgy"])
    changed = {r.study_id: studies[r.study_id] for r in rows}
    for pk, study in kap_studies.items():
        changed.setdefault(pk, study)
    studies_update_totals([changed[sid] for sid in sorted(changed)])
    return len(changed)


def _kap_studies(qs) -> list[Study]:
    """The studies of ``qs`` whose KAP-based effective dose depends on their mapped examination: KAP and an
    examination with a coefficient, or a figure taken from a coefficient (a re-mapping may have moved them off
    it).  One query; none while no coefficient is shipped."""
    exam_ids = effective_dose.exams_with_kap_coefficient()
    if not exam_ids:
        return []
    return list(qs.filter(kap_total_gycm2__isnull=False).filter(
        Q(standard_exam_id__in=exam_ids) | Q(effective_dose_method__contains=ed.KAP_METHOD)))


def set_event_effective_dose(row: IrradiationEvent, *, age: float | None, exam_region: str) -> None:
    """The event's derived quantities: effective dose (CT: DLP x k on the site's weighting basis, with a method
    label, or null with the reason; NM: as reported, with its reference authority; projection: null) and, for CT,
    SSDE (``effective_dose.set_event_ssde``)."""
    if row.effective_dose_msv is not None:  # reported (RRDSR)
        authority = (row.attributes or {}).get("effective_dose_reference_authority", "")
        basis = ed.weighting_of_authority(authority)
        row.effective_dose_estimate_msv = row.effective_dose_msv
        row.effective_dose_method = (f"as reported in the RRDSR ({authority or 'reference authority not stated'}"
                                     f"{', ' + basis + ' weighting' if basis else ''})")[:200]
        return
    if row.dlp_mgycm is None and row.ctdivol_mgy is None:
        row.effective_dose_estimate_msv, row.effective_dose_method = None, ""
        return
    effective_dose.set_event_ssde(row, age=age, exam_region=exam_region)
    region = effective_dose.region_for(row.target_region_code, exam_region)
    est = effective_dose.ct_effective_dose(dlp_mgycm=row.dlp_mgycm, region=region, age_years=age,
                                           phantom=row.ctdi_phantom)
    row.effective_dose_estimate_msv, row.effective_dose_method = est.value_msv, est.method


def study_update_effective_dose(study_id: int, *, every_event: bool = False) -> None:
    """:func:`studies_update_effective_dose` for one study."""
    studies_update_effective_dose([study_id], every_event=every_event)


def study_update_totals(study: Study) -> None:
    """Current totals of the study: sums over current reports' totals as written, quantity by quantity; image
    header values (each exposure once) for a quantity no current report carries."""
    studies_update_totals([study])


def studies_update_totals(studies: list[Study]) -> None:
    """:func:`study_update_totals` for many studies: three queries for the batch (their current reports'
    modality types, their accumulated rows, their current events) and one UPDATE."""
    if not studies:
        return
    ids = [s.pk for s in studies]
    facts = {sid: StudyTotalsFacts() for sid in ids}
    for sid, mts in DoseReport.objects.filter(study_id__in=ids, state=DoseReport.STATE_CURRENT).values_list(
            "study_id", "modality_types"):
        facts[sid].kinds.update(mts or [])
    for a in AccumulatedDose.objects.filter(report__study_id__in=ids).order_by("id").values(
            "report__study_id", "report__source_kind", "report__state", *ACC_COLUMNS):
        facts[a["report__study_id"]].accs.append(a)
    for ev in IrradiationEvent.objects.filter(study_id__in=ids, is_current=True).order_by("id").values(
            "study_id", "report__source_kind", *EVENT_COLUMNS):
        facts[ev["study_id"]].events.append(ev)
    now = timezone.now()
    for study in studies:
        study_apply_totals(study, facts[study.pk])
        study.updated_at = now
    if len(studies) == 1:
        studies[0].save(update_fields=TOTALS_FIELDS)
    else:
        update_rows(Study, studies, TOTALS_FIELDS)


# what the totals read of a study's rows: queried (above), or the rows the batch path has just built for a new study
ACC_COLUMNS = (*SUMMED_TOTALS, "effective_dose_msv")
EVENT_COLUMNS = ("ctdivol_mgy", "kap_gycm2", "ka_r_mgy", "activity_mbq", "agd_mgy", "laterality", "dlp_mgycm",
                 "effective_dose_estimate_msv", "effective_dose_msv", "effective_dose_method", "protocol",
                 "target_region", "attributes")
TOTALS_FIELDS = [*SUMMED_TOTALS, "effective_dose_msv", "effective_dose_method", "effective_dose_coverage",
                 "effective_dose_detail", "max_ctdivol_mgy", "event_count", "modality_types", "modality_type",
                 "updated_at"]


@dataclass
class StudyTotalsFacts:
    """A study's rows as its totals read them, as dicts.  ``kinds``: modality types of its current reports;
    ``accs``: every accumulated row (ACC_COLUMNS with ``report__source_kind`` and ``report__state``); ``events``:
    its current events (EVENT_COLUMNS with ``report__source_kind``), in the order they were recorded."""

    kinds: set[str] = field(default_factory=set)
    accs: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)


def new_report_facts(rep: DoseReport, acc_rows: list, event_rows: list) -> StudyTotalsFacts:
    """The facts of a study that holds only this report and the rows just built for it (the batch path)."""
    kind, state = rep.source_kind, rep.state
    current = state == DoseReport.STATE_CURRENT
    return StudyTotalsFacts(
        kinds=set(rep.modality_types or []) if current else set(),
        accs=[{**{c: getattr(a, c) for c in ACC_COLUMNS}, "report__source_kind": kind, "report__state": state}
              for a in acc_rows],
        events=[{**{c: getattr(e, c) for c in EVENT_COLUMNS}, "report__source_kind": kind}
                for e in event_rows if e.is_current])


def _sum(values) -> float | None:
    """SQL's SUM: None when there is no value."""
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _totals_of(facts: StudyTotalsFacts) -> tuple[dict, dict]:
    """Sums over the current reports' accumulated totals as written (and the image headers' DLP), and over the
    current events (image headers: each exposure once, already settled by ``is_current``)."""
    counted = [a for a in facts.accs if a["report__state"] == DoseReport.STATE_CURRENT
               and a["report__source_kind"] in REPORT_KINDS]
    acc = {f"t_{name}": _sum(a[name] for a in counted) for name in SUMMED_TOTALS}
    acc["report_ed"] = _sum(a["effective_dose_msv"] for a in counted)
    acc["img_dlp"] = _sum(a["dlp_total_mgycm"] for a in facts.accs
                          if a["report__source_kind"] == dr.SOURCE_IMAGE_HEADER)
    evs = facts.events
    img = [e for e in evs if e["report__source_kind"] not in REPORT_KINDS]
    ctdivols = [e["ctdivol_mgy"] for e in evs if e["ctdivol_mgy"] is not None]
    ev = {"n": len(evs), "max_ctdivol": max(ctdivols) if ctdivols else None,
          "kap": _sum(e["kap_gycm2"] for e in img), "ka_r": _sum(e["ka_r_mgy"] for e in img),
          "activity": _sum(e["activity_mbq"] for e in img),
          "agd_left": _sum(e["agd_mgy"] for e in img if e["laterality"] == "left"),
          "agd_right": _sum(e["agd_mgy"] for e in img if e["laterality"] == "right"),
          "ct_ed": _sum(e["effective_dose_estimate_msv"] for e in evs if e["effective_dose_msv"] is None),
          "nm_ed": _sum(e["effective_dose_msv"] for e in evs)}
    return acc, ev


def study_apply_totals(study: Study, facts: StudyTotalsFacts) -> None:
    """The one implementation of a study's totals and effective dose, set on the Study object (not saved): with
    queried rows by :func:`studies_update_totals`, with the rows just built by the batch path for a study it opens."""
    acc, ev = _totals_of(facts)
    _apply_totals(study, acc, ev, facts.kinds, _effective_dose_parts(facts.events))


def _effective_dose_parts(events: list[dict]) -> tuple[list, list]:
    """The study's current CT acquisitions and NM administrations for its effective dose."""
    acqs: list = []
    admins: list = []
    for ev in events:
        if ev["dlp_mgycm"] is None and ev["effective_dose_msv"] is None and ev["activity_mbq"] is None:
            continue
        if ev["effective_dose_msv"] is not None or ev["dlp_mgycm"] is None:  # NM: reported, or activity (issue 15)
            admins.append(effective_dose.nm_administration(
                ev, from_header=ev["report__source_kind"] == dr.SOURCE_IMAGE_HEADER))
        else:
            method = ev["effective_dose_method"] or ""
            acqs.append(ed.CtAcquisition(ev["dlp_mgycm"], ev["effective_dose_estimate_msv"],
                                         " ".join(p for p in (ev["protocol"], ev["target_region"]) if p),
                                         _reason_of(method, ev["effective_dose_estimate_msv"]), method))
    return acqs, admins


def _apply_totals(study: Study, acc: dict, ev: dict, kinds: set[str], parts: tuple[list, list]) -> None:
    image_totals = {
        "dlp_total_mgycm": acc["img_dlp"], "kap_total_gycm2": ev["kap"], "ka_r_total_mgy": ev["ka_r"],
        "fluoro_time_total_s": None, "agd_left_mgy": ev["agd_left"], "agd_right_mgy": ev["agd_right"],
        "activity_mbq": ev["activity"],
    }
    for name in SUMMED_TOTALS:
        setattr(study, name, acc[f"t_{name}"] if acc[f"t_{name}"] is not None else image_totals[name])
    # effective dose: CT estimates of current acquisitions (DLP x k) + NM as reported
    ct = ev["ct_ed"]
    nm = acc["report_ed"] if acc["report_ed"] is not None else ev["nm_ed"]
    _set_study_effective_dose(study, ct=ct, nm=nm, parts=parts)
    study.max_ctdivol_mgy = ev["max_ctdivol"]
    study.event_count = ev["n"]
    study.modality_types = modality_order(kinds)
    study.modality_type = study.modality_types[0] if study.modality_types else ""


def _set_study_effective_dose(study: Study, *, ct: float | None, nm: float | None,
                              parts: tuple[list, list]) -> None:
    """The study's effective dose on the site's weighting basis (``dosereg.core.effective_dose.study_estimate``): the
    CT part (its current acquisitions' DLP x k) plus the NM part as the RRDSR reports it when that is on the same
    basis, each part kept in ``effective_dose_detail``; ``effective_dose_coverage`` says how much of the study's DLP
    (or administrations, KAP) the figure covers, and the detail what was left out and why.  An estimate for
    comparing procedures and for population statistics, not a personal risk figure.  ``ct``/``nm``: the sums the
    totals query already has; ``parts``: its current CT acquisitions and NM administrations (read for the batch).
    Written by the totals' UPDATE."""
    has_dose = any(v is not None for v in (ct, nm, study.dlp_total_mgycm, study.activity_mbq, study.kap_total_gycm2,
                                           study.agd_left_mgy, study.agd_right_mgy))
    if not has_dose:
        study.effective_dose_msv, study.effective_dose_method = None, ""
        study.effective_dose_coverage, study.effective_dose_detail = None, {}
        return
    acqs, admins = list(parts[0]), list(parts[1])
    if not admins and nm is not None:  # an accumulated total without its events: authority unknown
        admins.append(ed.NmAdministration(nm, "", "accumulated total"))
    mammography = study.agd_left_mgy is not None or study.agd_right_mgy is not None
    exam, exam_codes = effective_dose.study_exam(study)
    est = ed.study_estimate(factors=effective_dose.site_factor_set(), ct=acqs, nm=admins,
                            activity_mbq=study.activity_mbq if not admins else None,
                            kap_gycm2=None if mammography else study.kap_total_gycm2, mammography=mammography,
                            nm_table=effective_dose.nm_coefficients(), kap_table=effective_dose.kap_coefficients(),
                            exam=exam, exam_codes=exam_codes, age_years=study.age_years)
    study.effective_dose_msv, study.effective_dose_method = est.value_msv, est.method
    study.effective_dose_coverage, study.effective_dose_detail = est.coverage, est.detail()


def _reason_of(method: str, value: float | None) -> str:
    """The reason code behind an event's ``not estimated: ...`` method text."""
    if value is not None:
        return ""
    text = method.removeprefix("not estimated: ")
    return next((code for code, why in ed.REASON_TEXT.items() if why == text), ed.REGION_UNKNOWN)
