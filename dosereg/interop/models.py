"""Deliveries to the hospital's other systems: one row per message to send, like the e-mail NotificationDelivery.

A row is written first (in the transaction that decided to send), sent after commit, retried with backoff until it
is acknowledged or ``DOSEREG_INTEROP_MAX_ATTEMPTS`` is reached, and never sent twice once acknowledged.  ``key``
identifies what is sent (the dose report's SOP Instance UID for FHIR; the accession number or Study Instance UID for
HL7) and ``version`` what it said (the digest of the payload): a corrected study sends again, an unchanged one not.
"""

from __future__ import annotations

from django.db import models

from dosereg.registry.models import Study


class Delivery(models.Model):
    KIND_FHIR, KIND_HL7_ORU = "fhir", "hl7-oru"
    KIND_CHOICES = [(KIND_FHIR, "FHIR transaction Bundle"), (KIND_HL7_ORU, "HL7 v2 ORU^R01")]
    STATE_PENDING, STATE_SENT, STATE_FAILED = "pending", "sent", "failed"
    STATE_CHOICES = [(s, s) for s in (STATE_PENDING, STATE_SENT, STATE_FAILED)]

    kind = models.CharField(max_length=10, choices=KIND_CHOICES)
    study = models.ForeignKey(Study, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries")
    key = models.CharField(max_length=128, help_text="what is sent: SOP Instance UID, accession or Study UID")
    version = models.CharField(max_length=64, help_text="digest of the payload: the same content is sent once")
    destination = models.CharField(max_length=255)
    payload = models.TextField()
    state = models.CharField(max_length=10, choices=STATE_CHOICES, default=STATE_PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    response = models.TextField(blank=True, help_text="the peer's answer: ACK or HTTP status and body (shortened)")
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "key", "version", "destination"],
                                               name="interop_delivery_once")]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="interop_due_idx")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} ({self.state})"
