"""What the pages show of the interop deliveries (the study page lists a study's FHIR and HL7 deliveries)."""

from __future__ import annotations

from django.db.models import QuerySet

from dosereg.interop.models import Delivery


def study_deliveries(study_id: int) -> QuerySet[Delivery]:
    """The study's deliveries, newest first: kind, state, attempts, last error, sent at."""
    return Delivery.objects.filter(study_id=study_id).only(
        "kind", "state", "attempts", "last_error", "created_at", "sent_at", "destination", "study_id")
