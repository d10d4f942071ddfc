"""What an incident report shows (the page, the printable page, the PDF): the snapshot's studies as tables, the
differences from the registry now, the trigger levels reached; numbers through the catalogue's formatter."""

from __future__ import annotations

from django.utils import timezone

from dosereg.core import procedure_chart
from dosereg.core.display import column_label, format_quantity
from dosereg.core.quantities import PLANE_QUANTITIES
from dosereg.core.skin_map import SkinMapUnavailable, render_png
from dosereg.registry.models import IrradiationEvent, Study
from dosereg.registry.services.skin_dose import skin_dose_result
from triggers.incidents import services
from triggers.incidents.models import IncidentReport
from triggers.selectors import incident_alerts


def _snapshot_study(s: dict) -> dict:
    """One study of the snapshot as the page, the printable page and the PDF show it (catalogue labels and format)."""
    events = s.get("events", [])
    event_names = [k for k in services.SNAPSHOT_EVENT_QUANTITIES if any(e.get(k) is not None for e in events)]
    return {
        **s,
        "total_rows": services.total_rows(s),
        "event_cols": [column_label(k) for k in event_names],
        "event_rows": [{"n": i, "type": services.event_type_words(e.get("event_type", "")),
                        "protocol": e.get("protocol", ""), "plane": e.get("plane", ""),
                        "region": e.get("target_region", ""), "values": services.column_values(event_names, e)}
                       for i, e in enumerate(events, 1)],
        "plane_cols": [column_label(k) for k in PLANE_QUANTITIES],
        "plane_rows": [{"plane": p["plane"] or "single", "values": services.column_values(PLANE_QUANTITIES, p)}
                       for p in s.get("planes", [])],
        "has_ka_r": s["totals"].get("ka_r_total_mgy") is not None,
        "drl": s.get("drl"),
    }


def document_context(incident: IncidentReport) -> dict:
    """Everything the page, the printable page and the PDF show about one incident."""
    snapshot = incident.dose_snapshot or {}
    linked_alerts = incident_alerts(incident)
    patients = {s.patient_id: s.patient for s in incident.studies.select_related("patient")}
    patients.update({a.patient_id: a.patient for a in linked_alerts if a.patient_id not in patients})
    return {
        "incident": incident,
        "linked_alerts": linked_alerts,
        "incident_patients": list(patients.values()),
        "snapshot": snapshot,
        "snapshot_studies": [_snapshot_study(s) for s in snapshot.get("studies", [])],
        "differences": services.snapshot_differences(incident),
        "triggers": services.trigger_level_rows(incident),
        "significance": [{"text": services.reason_text(r), "source": r.get("source", ""),
                          "verify": bool(r.get("verify"))} for r in incident.significance_reasons or []],
        "effective_dose_text": format_quantity("effective_dose_msv", incident.effective_dose_estimate_msv),
        "actions": list(incident.actions.all()),
        "comments": list(incident.comments.select_related("author")),
        "ka_r_note": services.KA_R_NOTE,
        "effective_dose_note": services.EFFECTIVE_DOSE_NOTE,
        "today": timezone.now().date(),
        "generated_at": timezone.now(),
    }


def study_pictures(study_id: int | None) -> dict:
    """The pictures of one fluoroscopy study for the PDF, drawn from the registry's current events: the procedure
    chart (SVG text, ``dosereg.core.procedure_chart``), the skin dose summary and its map (PNG bytes) where the
    geometry is complete.  Empty for other studies or a study no longer in the registry."""
    study = Study.objects.filter(pk=study_id).first() if study_id else None
    if study is None or "fluoroscopy" not in (study.modality_types or [study.modality_type]):
        return {}
    events = IrradiationEvent.objects.filter(study=study, is_current=True, is_localizer=False).order_by(
        "report_id", "sequence", "id")
    chart = procedure_chart.procedure_chart(procedure_chart.ChartEvent.of(e) for e in events)
    out = {"chart_svg": procedure_chart.render_svg(chart) if chart else "", "skin": study.skin_dose or {},
           "skin_png": b"", "ka_r_total_mgy": study.ka_r_total_mgy}
    result = skin_dose_result(study)
    if result is not None and result.geometry_complete:
        try:
            out["skin_png"] = render_png(result)
        except SkinMapUnavailable:
            out["skin"] = {**out["skin"], "geometry_complete": False}
    return out
