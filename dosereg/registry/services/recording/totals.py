"""A study's current totals and effective dose: one implementation for the single and the batch paths.

Totals are the sums over the study's current reports' accumulated totals as written (RDSR, RRDSR, private summary),
quantity by quantity (catalogue ``SUMMED_TOTALS``); a quantity no current report carries comes from the image headers
that count (each exposure once).  Maxima and event counts come from the current events.
"""

from __future__ import annotations

from django.db.models import Count, Max, Q, Sum
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
    mapped examination has a body region, and that take the exam's region, are re-estimated (with their SSDE), and
    those studies' totals recomputed.  ``every_event``: every current event of the studies (after a change of the
    site's weighting basis or of the factor data).  Returns how many studies changed."""
    qs = Study.objects.filter(pk__in=list(study_ids)).select_related("standard_exam")
    if not every_event:
        qs = qs.filter(standard_exam__isnull=False).exclude(standard_exam__body_region="")
    studies = {s.pk: s for s in qs}
    if not studies:
        return 0
    events = IrradiationEvent.objects.filter(study_id__in=list(studies)).only(
        "id", "study_id", "dlp_mgycm", "ctdivol_mgy", "target_region_code", "ctdi_phantom", "effective_dose_msv",
        "is_localizer", "ssde_mgy", "ssde_method", "ssde_reported_mgy", "water_equivalent_diameter_mm")
    if every_event:
        rows = list(events)
    else:  # only those that take the exam's region
        rows = [r for r in events.filter(dlp_mgycm__isnull=False) if effective_dose.region_for(r.target_region_code)
                is None]
    if not rows:
        return 0
    for row in rows:
        study = studies[row.study_id]
        set_event_effective_dose(row, age=study.age_years,
                                 exam_region=study.standard_exam.body_region if study.standard_exam else "")
    update_rows(IrradiationEvent, rows, ["effective_dose_estimate_msv", "effective_dose_method", "ssde_mgy",
                                         "ssde_method", "ssde_reported_mgy"])
    changed = sorted({r.study_id for r in rows})
    studies_update_totals([studies[sid] for sid in changed])
    return len(changed)


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
    """:func:`study_update_totals` for many studies: three grouped queries and one UPDATE per study."""
    if not studies:
        return
    ids = [s.pk for s in studies]
    # accumulated totals (reports as written; image-header DLP), current events, modality types
    is_rep = Q(report__state=DoseReport.STATE_CURRENT, report__source_kind__in=REPORT_KINDS)
    accs = {row["report__study_id"]: row for row in AccumulatedDose.objects.filter(report__study_id__in=ids).values(
        "report__study_id").order_by().annotate(
        **{f"t_{k}": Sum(k, filter=is_rep) for k in SUMMED_TOTALS}, report_ed=Sum("effective_dose_msv", filter=is_rep),
        img_dlp=Sum("dlp_total_mgycm", filter=Q(report__source_kind=dr.SOURCE_IMAGE_HEADER)))}
    img = ~Q(report__source_kind__in=REPORT_KINDS)
    evs = {row["study_id"]: row for row in IrradiationEvent.objects.filter(study_id__in=ids, is_current=True).values(
        "study_id").order_by().annotate(
        n=Count("id"), max_ctdivol=Max("ctdivol_mgy"), kap=Sum("kap_gycm2", filter=img),
        ka_r=Sum("ka_r_mgy", filter=img), activity=Sum("activity_mbq", filter=img),
        agd_left=Sum("agd_mgy", filter=img & Q(laterality="left")),
        agd_right=Sum("agd_mgy", filter=img & Q(laterality="right")),
        ct_ed=Sum("effective_dose_estimate_msv", filter=Q(effective_dose_msv__isnull=True)),
        nm_ed=Sum("effective_dose_msv"))}
    kinds: dict[int, set[str]] = {}
    for sid, mts in DoseReport.objects.filter(study_id__in=ids, state=DoseReport.STATE_CURRENT).values_list(
            "study_id", "modality_types"):
        kinds.setdefault(sid, set()).update(mts or [])
    no_acc = {f"t_{k}": None for k in SUMMED_TOTALS} | {"report_ed": None, "img_dlp": None}
    no_ev = dict.fromkeys(("max_ctdivol", "kap", "ka_r", "activity", "agd_left", "agd_right", "ct_ed", "nm_ed"),
                          None) | {"n": 0}
    fields = [*SUMMED_TOTALS, "effective_dose_msv", "effective_dose_method", "effective_dose_coverage",
              "effective_dose_detail", "max_ctdivol_mgy", "event_count", "modality_types", "modality_type",
              "updated_at"]
    now = timezone.now()
    parts = _effective_dose_parts(ids)
    for study in studies:
        _apply_totals(study, accs.get(study.pk, no_acc), evs.get(study.pk, no_ev), kinds.get(study.pk, set()),
                      parts.get(study.pk, ([], [])))
        study.updated_at = now
    if len(studies) == 1:
        studies[0].save(update_fields=fields)
    else:
        update_rows(Study, studies, fields)


def _effective_dose_parts(ids: list[int]) -> dict[int, tuple[list, list]]:
    """The studies' current CT acquisitions and NM administrations for their effective dose, in one query."""
    out: dict[int, tuple[list, list]] = {}
    for ev in IrradiationEvent.objects.filter(study_id__in=ids, is_current=True).filter(
            Q(dlp_mgycm__isnull=False) | Q(effective_dose_msv__isnull=False)).values(
            "study_id", "dlp_mgycm", "effective_dose_estimate_msv", "effective_dose_msv", "effective_dose_method",
            "protocol", "target_region", "attributes"):
        acqs, admins = out.setdefault(ev["study_id"], ([], []))
        if ev["effective_dose_msv"] is not None:
            admins.append(ed.NmAdministration(ev["effective_dose_msv"], (ev["attributes"] or {}).get(
                "effective_dose_reference_authority", ""), ev["protocol"]))
        else:
            method = ev["effective_dose_method"] or ""
            acqs.append(ed.CtAcquisition(ev["dlp_mgycm"], ev["effective_dose_estimate_msv"],
                                         " ".join(p for p in (ev["protocol"], ev["target_region"]) if p),
                                         _reason_of(method, ev["effective_dose_estimate_msv"]), method))
    return out


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
    est = ed.study_estimate(factors=effective_dose.site_factor_set(), ct=acqs, nm=admins,
                            activity_mbq=study.activity_mbq if not admins else None,
                            kap_gycm2=None if mammography else study.kap_total_gycm2, mammography=mammography)
    study.effective_dose_msv, study.effective_dose_method = est.value_msv, est.method
    study.effective_dose_coverage, study.effective_dose_detail = est.coverage, est.detail()


def _reason_of(method: str, value: float | None) -> str:
    """The reason code behind an event's ``not estimated: ...`` method text."""
    if value is not None:
        return ""
    text = method.removeprefix("not estimated: ")
    return next((code for code, why in ed.REASON_TEXT.items() if why == text), ed.REGION_UNKNOWN)
