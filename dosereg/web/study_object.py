"""The API's study object: the ``export_doses`` study object (``dosereg.registry.selectors``, the ingestion
engineer's) plus the referrer's ``dose_text``.  Until that selector exists, a local builder with the same fields."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import QuerySet

from dosereg.registry.models import AccumulatedDose, IrradiationEvent, ReceivedObject, SiteSettings, Study
from dosereg.web.dose_text import study_dose_text

EVENT_FIELDS = ["irradiation_event_uid", "source_sop_instance_uid", "event_type", "protocol", "plane",
                "target_region", "is_localizer", "ctdi_phantom", "laterality", "view", "ctdivol_mgy", "dlp_mgycm",
                "scanning_length_mm", "pitch_factor", "kap_gycm2", "ka_r_mgy", "positioner_primary_angle_deg",
                "positioner_secondary_angle_deg", "collimated_field_height_mm", "collimated_field_width_mm",
                "number_of_frames", "irradiation_duration_s", "pulse_rate_per_s", "agd_mgy", "esak_mgy",
                "compression_thickness_mm", "activity_mbq", "effective_dose_msv", "effective_dose_estimate_msv",
                "effective_dose_method", "kvp", "exposure_mas", "ssde_mgy", "water_equivalent_diameter_mm"]


def _registry_selectors():
    try:
        from dosereg.registry import selectors  # noqa: PLC0415 - provided by the ingestion engineer
    except ImportError:
        return None
    return selectors if hasattr(selectors, "study_export_dict") else None


def _local_export_dict(study: Study, *, events: bool, sources: list[str], planes: list[dict],
                       event_rows: list[dict] | None) -> dict:
    eq = study.equipment
    obj = {
        "study_instance_uid": study.study_instance_uid,
        "accession_number": study.accession_number,
        "equipment_id": study.equipment_id,
        "standard_exam": study.standard_exam.code if study.standard_exam_id else None,
        "demo": study.demo,
        "source_sop_instance_uids": sources,
        "modality_type": study.modality_type,
        "modality_types": study.modality_types,
        "manufacturer": eq.manufacturer if eq else None,
        "model": eq.model if eq else None,
        "station_name": eq.station_name if eq else None,
        "study_date": study.study_date.isoformat() if study.study_date else None,
        "study_description": study.study_description,
        "patient": {"id": study.patient.patient_id, "sex": study.sex or study.patient.sex or None,
                    "age_years": study.age_years, "weight_kg": study.weight_kg},
        "totals": {
            "dlp_total_mgycm": study.dlp_total_mgycm, "kap_total_gycm2": study.kap_total_gycm2,
            "ka_r_total_mgy": study.ka_r_total_mgy, "fluoro_time_total_s": study.fluoro_time_total_s,
            "agd_total_mgy": {"left": study.agd_left_mgy, "right": study.agd_right_mgy},
            "activity_mbq": study.activity_mbq, "effective_dose_msv": study.effective_dose_msv,
            "effective_dose_method": study.effective_dose_method or None, "planes": planes,
        },
    }
    if events:
        obj["events"] = event_rows or []
    return obj


def _batch_parts(studies: list[Study], events: bool):
    ids = [s.pk for s in studies]
    uids = [s.study_instance_uid for s in studies]
    sources: dict[str, list[str]] = defaultdict(list)
    for suid, sop in (ReceivedObject.objects.filter(study_instance_uid__in=uids).exclude(state="rejected")
                      .order_by("received_at", "pk").values_list("study_instance_uid", "sop_instance_uid")):
        sources[suid].append(sop)
    planes: dict[int, list[dict]] = defaultdict(list)
    for row in (AccumulatedDose.objects.filter(report__study_id__in=ids, report__state="current")
                .exclude(plane="").values("report__study_id", "plane", "kap_total_gycm2", "ka_r_total_mgy",
                                          "fluoro_time_total_s").order_by("report__study_id", "plane")):
        planes[row.pop("report__study_id")].append(row)
    event_rows: dict[int, list[dict]] = defaultdict(list)
    if events:
        for row in (IrradiationEvent.objects.filter(study_id__in=ids, is_current=True)
                    .order_by("study_id", "sequence", "id").values("study_id", *EVENT_FIELDS)):
            event_rows[row.pop("study_id")].append(row)
    return sources, planes, event_rows


def study_objects(studies, *, events: bool = False, dose_text: bool = True) -> list[dict]:
    """Study objects for a page of studies (a fixed number of queries)."""
    if isinstance(studies, QuerySet):
        studies = list(studies.select_related("equipment", "standard_exam", "patient"))
    sel = _registry_selectors()
    site = SiteSettings.load() if dose_text else None
    out = []
    if sel is not None:
        qs = Study.objects.filter(pk__in=[s.pk for s in studies])
        if hasattr(sel, "iter_export_dicts"):
            by_uid = {d["study_instance_uid"]: d for d in sel.iter_export_dicts(qs, events=events)}
        else:
            by_uid = {}
        dicts = [by_uid.get(s.study_instance_uid) or sel.study_export_dict(s, events=events) for s in studies]
    else:
        sources, planes, event_rows = _batch_parts(studies, events)
        dicts = [_local_export_dict(s, events=events, sources=sources.get(s.study_instance_uid, []),
                                    planes=planes.get(s.pk, []), event_rows=event_rows.get(s.pk))
                 for s in studies]
    for s, d in zip(studies, dicts, strict=True):
        d = dict(d)
        d.setdefault("accession_number", s.accession_number)
        d.setdefault("study_description", s.study_description)
        if dose_text:
            d["dose_text"] = study_dose_text(s, site=site)
        out.append(d)
    return out


def study_object(study: Study) -> dict:
    return study_objects([study], events=True)[0]
