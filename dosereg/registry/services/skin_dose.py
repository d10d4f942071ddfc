"""Peak skin dose of fluoroscopy and interventional studies, kept on the study with its totals when it is recorded.

The engine is the core's (``dosereg.core.skin_dose``, pure); this service feeds it the study's current projection
events, the patient's size and the unit, and keeps the result on the study: ``psd_mgy`` where the geometry is
complete, else null with the reasons (the pages then show Ka,r with its label, never invented positions).  Like the
totals, it is fed two ways: from the rows the batch path has just built for a study it opens (no query, no JSON read
back: :func:`study_apply_skin_dose`), and from the database (:func:`studies_update_skin_dose`) whenever a known
study's events change (a corrected or cumulative report).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict

from dosereg.core import skin_dose
from dosereg.registry.models import IrradiationEvent, Study
from dosereg.registry.services.recording.bulk_sql import update_rows

log = logging.getLogger(__name__)

SKIN_EVENT_VALUES = ("ka_r_mgy", "kap_gycm2", "kvp", "positioner_primary_angle_deg", "positioner_secondary_angle_deg",
                     "table_longitudinal_position_mm", "table_lateral_position_mm", "table_height_position_mm",
                     "distance_source_to_isocenter_mm", "distance_source_to_detector_mm", "distance_source_to_rp_mm",
                     "collimated_field_height_mm", "collimated_field_width_mm", "collimated_field_area_m2")


def skin_events_of_rows(rows) -> list[skin_dose.SkinEvent]:
    """The skin-dose events among the event rows just built for a new study (``recording.rows.EventRow``, in
    sequence order): the same events, values and order as :func:`_skin_events_of` reads back from the database."""
    return [skin_dose.skin_event_from_parts(row.__dict__, row.attributes, row.content, plane=row.plane or None,
                                            event_uid=row.irradiation_event_uid or "")
            for row in rows if row.is_current and not row.is_localizer and row.ka_r_mgy is not None
            and row.event_type != "image_header"]


def _skin_events_of(study_ids: list[int]) -> dict[int, list[skin_dose.SkinEvent]]:
    """The current projection events with Ka,r of these studies, in report and sequence order (one query)."""
    rows = IrradiationEvent.objects.filter(study_id__in=study_ids, is_current=True, is_localizer=False,
                                           ka_r_mgy__isnull=False).exclude(event_type="image_header").order_by(
        "study_id", "report_id", "sequence").values("study_id", "irradiation_event_uid", "plane", "attributes",
                                                    "content", *SKIN_EVENT_VALUES)
    events: dict[int, list[skin_dose.SkinEvent]] = defaultdict(list)
    for r in rows:
        events[r["study_id"]].append(skin_dose.skin_event_from_parts(
            {k: r[k] for k in SKIN_EVENT_VALUES}, r["attributes"], r["content"], plane=r["plane"] or None,
            event_uid=r["irradiation_event_uid"] or ""))
    return events


def _finite_or_none(value):
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def _compute(study, unit, events: list[skin_dose.SkinEvent]) -> skin_dose.SkinDoseResult | None:
    if not events:
        return None
    return skin_dose.compute_skin_dose(
        events, unit=skin_dose.Unit(manufacturer=unit.manufacturer if unit else "", model=unit.model if unit else ""),
        patient=skin_dose.Patient(height_m=study.height_m, weight_kg=study.weight_kg))


def _keep(study, result: skin_dose.SkinDoseResult | None) -> None:
    """The result on the study's columns (not saved)."""
    if result is None:
        study.skin_dose, study.skin_dose_map, study.psd_mgy = {}, {}, None
        return
    full = result.as_dict(include_map=True)
    study.skin_dose_map = {"map": full.pop("map")} if "map" in full else {}
    study.skin_dose = full
    study.psd_mgy = _finite_or_none(result.psd_mgy) if result.geometry_complete else None


def study_skin_dose(study: Study) -> skin_dose.SkinDoseResult | None:
    """The skin-dose result of a study, or None when it has no projection event with Ka,r."""
    return _compute(study, study.equipment, _skin_events_of([study.pk]).get(study.pk, []))


def study_apply_skin_dose(study, events: list[skin_dose.SkinEvent], *, unit) -> bool:
    """Set the skin dose of a study the batch path opens (a ``StudyRow`` with its totals) from its events in memory,
    to be written with the study; ``unit``: its Equipment.  Returns whether one was computed."""
    result = _compute(study, unit, events)
    _keep(study, result)
    return result is not None


def studies_update_skin_dose(study_ids: list[int]) -> int:
    """Compute and keep the peak skin dose of these studies' fluoroscopy parts; returns how many were computed.
    Three queries for a batch whatever its size: the fluoroscopy studies, their events, one bulk UPDATE."""
    # the JSON list's text holds the token; the exact test on the decoded list follows
    studies = [s for s in Study.objects.filter(pk__in=list(study_ids), modality_types__icontains='"fluoroscopy"')
               .select_related("equipment").only("id", "modality_types", "height_m", "weight_kg",
                                                 "equipment__manufacturer", "equipment__model")
               if "fluoroscopy" in (s.modality_types or [])]
    if not studies:
        return 0
    events = _skin_events_of([s.pk for s in studies])
    done = 0
    for study in studies:
        result = _compute(study, study.equipment, events.get(study.pk, []))
        _keep(study, result)
        done += result is not None
    update_rows(Study, studies, ["skin_dose", "skin_dose_map", "psd_mgy"])
    return done


def skin_dose_result(study: Study) -> skin_dose.SkinDoseResult | None:
    """The stored result of a study with its map, for pages and pictures (None when none was computed)."""
    if not study.skin_dose:
        return None
    return skin_dose.SkinDoseResult.from_dict({**study.skin_dose, **(study.skin_dose_map or {})})
