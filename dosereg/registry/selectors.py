"""Read-side of the registry shared by exports and the API: the ``export_doses`` study object (issue 3).

``study_export_dict(study)`` builds one study object; ``iter_export_dicts(queryset)`` streams them chunk by chunk
(keyset pagination on the primary key, a few prefetch queries per chunk, never all rows in memory).  Quantities are
JSON numbers exactly as stored (no rounding), null where the object had no value or the value is not a finite number
(a value stored before the border checks, or written past them, never breaks an export).  ``flags`` names each
finding of the study; ``flag_details`` gives its quantity and reason (``dosereg.core.sanity``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from django.db.models import Prefetch, QuerySet

from dosereg.core.quantities import EVENT_QUANTITIES
from dosereg.core.versions import REPORT_KINDS
from dosereg.registry.models import AccumulatedDose, DoseReport, IrradiationEvent, Study

EVENT_NUMBERS = tuple(EVENT_QUANTITIES) + ("effective_dose_estimate_msv", "ssde_reported_mgy")
EVENT_FIELDS = ("id", "study_id", "report_id", "irradiation_event_uid", "source_sop_instance_uid", "sequence",
                "event_type", "datetime", "protocol", "target_region", "target_region_code", "plane",
                "is_localizer", "ctdi_phantom", "laterality", "view", "effective_dose_method", "ssde_method") + EVENT_NUMBERS


def _finite(value):
    """A stored number as JSON can carry it: None for NaN and infinities."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_safe(value):
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return _finite(value)


def _plane(value: str) -> str:
    return value or "single"


def export_prefetches(*, events: bool = True) -> list:
    reports = DoseReport.objects.only("id", "study_id", "sop_instance_uid", "state", "source_kind",
                                      "recorded_at").order_by("id").prefetch_related(
        Prefetch("accumulated", queryset=AccumulatedDose.objects.defer("raw", "attributes").order_by("id")))
    out = [Prefetch("reports", queryset=reports, to_attr="export_reports")]
    if events:
        out.append(Prefetch("events", to_attr="export_events", queryset=IrradiationEvent.objects.filter(
            is_current=True).only(*EVENT_FIELDS).order_by("report_id", "sequence", "id")))
    return out


def _planes(study: Study) -> list[dict]:
    reports = getattr(study, "export_reports", None)
    if reports is None:
        reports = list(study.reports.order_by("id").prefetch_related("accumulated"))
    by_plane: dict[str, dict] = {}
    for rep in reports:
        if rep.state != DoseReport.STATE_CURRENT or rep.source_kind not in REPORT_KINDS:
            continue
        for acc in rep.accumulated.all():
            if acc.kap_total_gycm2 is None and acc.ka_r_total_mgy is None and acc.fluoro_time_total_s is None:
                continue
            p = by_plane.setdefault(_plane(acc.plane), {"plane": _plane(acc.plane), "kap_total_gycm2": None,
                                                        "ka_r_total_mgy": None, "fluoro_time_total_s": None})
            for key in ("kap_total_gycm2", "ka_r_total_mgy", "fluoro_time_total_s"):
                v = getattr(acc, key)
                if _finite(v) is not None:
                    p[key] = v if p[key] is None else p[key] + v
    return [by_plane[k] for k in sorted(by_plane)]


def event_export_dict(ev: IrradiationEvent) -> dict:
    d = {
        "irradiation_event_uid": ev.irradiation_event_uid,
        "source_sop_instance_uid": ev.source_sop_instance_uid,
        "event_type": ev.event_type,
        "datetime": ev.datetime.isoformat() if ev.datetime else None,
        "protocol": ev.protocol or None,
        "target_region": ev.target_region or None,
        "plane": ev.plane or None,
        "is_localizer": ev.is_localizer,
        "ctdi_phantom": ev.ctdi_phantom or None,
        "laterality": ev.laterality or None,
        "view": ev.view or None,
    }
    for name in EVENT_NUMBERS:
        d[name] = _finite(getattr(ev, name))
    d["effective_dose_method"] = ev.effective_dose_method or None
    d["ssde_method"] = ev.ssde_method or None  # DICOM CID 10023 code of ssde_mgy (DoseReg's own)
    return d


def study_export_dict(study: Study, *, events: bool = True) -> dict:
    """The ``export_doses`` object of one study (use ``export_prefetches`` on querysets to avoid per-study
    queries)."""
    unit = study.equipment
    patient = study.patient
    reports = getattr(study, "export_reports", None)
    if reports is None:
        reports = list(study.reports.order_by("id").prefetch_related("accumulated"))
    sops: list[str] = []
    for rep in reports:
        if rep.sop_instance_uid not in sops:
            sops.append(rep.sop_instance_uid)
    d = {
        "study_instance_uid": study.study_instance_uid,
        "equipment_id": study.equipment_id,
        "standard_exam": study.standard_exam.code if study.standard_exam_id else None,
        "demo": study.demo,
        "source_sop_instance_uids": sops,
        "modality_type": study.modality_type or None,
        "modality_types": list(study.modality_types or []),
        "manufacturer": unit.manufacturer if unit else None,
        "model": unit.model if unit else None,
        "station_name": unit.station_name if unit else None,
        "study_date": study.study_date.isoformat() if study.study_date else None,
        "study_datetime": study.study_datetime.isoformat() if study.study_datetime else None,
        "accession_number": study.accession_number or None,
        "study_description": study.study_description or None,
        "patient": {"id": patient.patient_id, "sex": study.sex or patient.sex or None, "age_years": study.age_years,
                    "weight_kg": study.weight_kg},
        "totals": {
            "dlp_total_mgycm": study.dlp_total_mgycm,
            "kap_total_gycm2": study.kap_total_gycm2,
            "ka_r_total_mgy": study.ka_r_total_mgy,
            "fluoro_time_total_s": study.fluoro_time_total_s,
            "agd_total_mgy": {"left": study.agd_left_mgy, "right": study.agd_right_mgy},
            "activity_mbq": study.activity_mbq,
            "effective_dose_msv": study.effective_dose_msv,
            "effective_dose_method": study.effective_dose_method or None,
            "effective_dose_coverage": _finite(study.effective_dose_coverage),
            "effective_dose_detail": _json_safe(study.effective_dose_detail or {}),
            "max_ctdivol_mgy": study.max_ctdivol_mgy,
            "psd_mgy": study.psd_mgy,
            "psd_method": (study.skin_dose or {}).get("psd_method") if study.psd_mgy is not None else None,
            "event_count": study.event_count,
            "planes": _planes(study),
        },
        "flags": list(study.flags or []),
        "flag_details": _json_safe(list(study.flag_details or [])),
        "values_unconfirmed": study.values_unconfirmed,
    }
    d["totals"] = _json_safe(d["totals"])
    d["patient"] = _json_safe(d["patient"])
    if events:
        evs = getattr(study, "export_events", None)
        if evs is None:
            evs = list(study.events.filter(is_current=True).only(*EVENT_FIELDS).order_by("report_id", "sequence",
                                                                                          "id"))
        d["events"] = [event_export_dict(ev) for ev in evs]
    return d


def iter_export_dicts(queryset: QuerySet[Study], chunk_size: int = 500, *, events: bool = True) -> Iterator[dict]:
    """Stream export objects in primary-key order, ``chunk_size`` studies per round of queries."""
    base = queryset.select_related("equipment", "patient", "standard_exam").defer("skin_dose_map").prefetch_related(
        *export_prefetches(events=events)).order_by("pk")
    last = 0
    while True:
        chunk = list(base.filter(pk__gt=last)[:chunk_size])
        if not chunk:
            return
        for study in chunk:
            yield study_export_dict(study, events=events)
        last = chunk[-1].pk
        if len(chunk) < chunk_size:
            return
