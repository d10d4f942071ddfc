"""Send the FHIR and HL7 deliveries whose next attempt is due (cron in the embedded mode; Celery beat otherwise)."""

from __future__ import annotations

from dosereg.interop.models import Delivery
from dosereg.interop.push import deliveries_retry_due
from dosereg.registry.management.base import DoseRegCommand


class Command(DoseRegCommand):
    help = "Retry the pending FHIR/HL7 deliveries that are due; print how many were sent and how many still wait."

    def handle(self, *args, **options):
        sent = deliveries_retry_due()
        waiting = Delivery.objects.filter(state=Delivery.STATE_PENDING).count()
        failed = Delivery.objects.filter(state=Delivery.STATE_FAILED).count()
        self.stdout.write(f"sent={sent} pending={waiting} failed={failed}")
