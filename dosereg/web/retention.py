"""Legal holds for the retention purge: studies linked to an incident report that is not closed, directly or through
one of their alerts.  Lives above the registry (which may not import ``triggers``) and is handed to
``dosereg.registry.services.euratom.purge_studies``.  Issued DRL snapshots hold aggregates, not studies, so they hold
nothing; incident dose snapshots are JSON on the incident report and survive the study."""

from __future__ import annotations

from triggers.incidents.models import IncidentReport


def incident_legal_holds(study_ids: list[int]) -> dict[int, str]:
    """{study id: reason} for the studies among ``study_ids`` that an open incident report holds."""
    open_reports = IncidentReport.objects.exclude(state=IncidentReport.STATE_CLOSED)
    holds: dict[int, str] = {}
    for study_id, report_id in (open_reports.filter(studies__in=study_ids).order_by("pk")
                                .values_list("studies", "pk")):
        holds.setdefault(study_id, f"linked to open incident report {report_id}")
    for study_id, report_id in (open_reports.filter(alerts__study_id__in=study_ids).order_by("pk")
                                .values_list("alerts__study_id", "pk")):
        holds.setdefault(study_id, f"an alert of it is linked to open incident report {report_id}")
    return holds
