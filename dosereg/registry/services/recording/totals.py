"""A study's current totals and effective dose: one implementation for the single and the batch paths.

Totals are the sums over the study's current reports' accumulated totals as written (RDSR, RRDSR, private summary),
quantity by quantity (catalogue ``SUMMED_TOTALS``); a quantity no current report carries comes from the image headers
that count (each exposure once).  Maxima and event counts come from the current events.
"""

from __future__ import annotations

from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from dosereg.core import dose_report as dr
from dosereg.core.quantities import SUMMED_TOTALS, modality_order
from dosereg.core.versions import REPORT_KINDS
from dosereg.registry.models import AccumulatedDose, DoseReport, IrradiationEvent, Study
from dosereg.registry.services import effective_dose
from dosereg.registry.services.recording.bulk_sql import update_rows


def studies_update_effective_dose(study_ids: list[int]) -> int:
    """:func:`study_update_effective_dose` for many studies, in a few queries: the CT acquisitions of studies whose
    mapped examination has a body region, and that take the exam's region, are re-estimated, and those studies'
    totals recomputed.  Returns how many studies changed."""
    studies = {s.pk: s for s in Study.objects.filter(pk__in=list(study_ids), standard_exam__isnull=False)
               .exclude(standard_exam__body_region="").select_related("standard_exam")}
    if not studies:
        return 0
    rows = [r for r in IrradiationEvent.objects.filter(study_id__in=list(studies), dlp_mgycm__isnull=False).only(
        "id", "study_id", "dlp_mgycm", "ctdivol_mgy", "target_region_code", "ctdi_phantom", "effective_dose_msv")
        if effective_dose.region_for(r.target_region_code) is None]  # only those that take the exam's region
    if not rows:
        return 0
    for row in rows:
        study = studies[row.study_id]
        set_event_effective_dose(row, age=study.age_years, exam_region=study.standard_exam.body_region)
    update_rows(IrradiationEvent, rows, ["effective_dose_estimate_msv", "effective_dose_method"])
    changed = sorted({r.study_id for r in rows})
    studies_update_totals([studies[sid] for sid in changed])
    return len(changed)


def set_event_effective_dose(row: IrradiationEvent, *, age: float | None, exam_region: str) -> None:
    """CT: DLP x k with a method label, or null with the reason; NM: as reported; projection: null."""
    if row.effective_dose_msv is not None:  # reported (RRDSR)
        row.effective_dose_estimate_msv = row.effective_dose_msv
        row.effective_dose_method = "as reported in the RRDSR"
        return
    if row.dlp_mgycm is None and row.ctdivol_mgy is None:
        row.effective_dose_estimate_msv, row.effective_dose_method = None, ""
        return
    region = effective_dose.region_for(row.target_region_code, exam_region)
    est = effective_dose.ct_effective_dose(dlp_mgycm=row.dlp_mgycm, region=region, age_years=age,
                                           phantom=row.ctdi_phantom)
    row.effective_dose_estimate_msv, row.effective_dose_method = est.value_msv, est.method[:200]


def study_update_effective_dose(study_id: int) -> None:
    """:func:`studies_update_effective_dose` for one study."""
    studies_update_effective_dose([study_id])


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
    fields = [*SUMMED_TOTALS, "effective_dose_msv", "effective_dose_method", "max_ctdivol_mgy", "event_count",
              "modality_types", "modality_type", "updated_at"]
    now = timezone.now()
    for study in studies:
        _apply_totals(study, accs.get(study.pk, no_acc), evs.get(study.pk, no_ev), kinds.get(study.pk, set()))
        study.updated_at = now
    if len(studies) == 1:
        studies[0].save(update_fields=fields)
    else:
        update_rows(Study, studies, fields)


def _apply_totals(study: Study, acc: dict, ev: dict, kinds: set[str]) -> None:
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
    _set_study_effective_dose(study, ct=ct, nm=nm)
    study.max_ctdivol_mgy = ev["max_ctdivol"]
    study.event_count = ev["n"]
    study.modality_types = modality_order(kinds)
    study.modality_type = study.modality_types[0] if study.modality_types else ""


def _set_study_effective_dose(study: Study, *, ct: float | None, nm: float | None) -> None:
    """The study's effective dose: CT estimates of its current acquisitions (DLP x k) plus NM as the RRDSR reports
    it, with the method of each part (an estimate for comparing procedures, not a personal risk figure)."""
    parts, labels = [], []
    if ct is not None:
        parts.append(ct)
        labels.append(effective_dose.method_label())
    if nm is not None:
        parts.append(nm)
        labels.append("NM: as reported in the RRDSR")
    study.effective_dose_msv = sum(parts) if parts else None
    study.effective_dose_method = " + ".join(labels)[:200]
