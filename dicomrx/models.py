"""Models of the dicomrx app: who may send, what the listener refused, and the listener's heartbeat.

The received objects themselves are registry rows (``dosereg.registry.models.ReceivedObject``).
"""

from __future__ import annotations

from django.db import models


class AllowedCallingAE(models.Model):
    """A calling AE title allowed to open an association, optionally only from one host (IP address or name).

    Together with DOSEREG_ALLOWED_CALLING_AETS these entries form the allowlist; when both are empty (or the
    setting is '*' and no active entry exists) any caller is accepted.
    """

    ae_title = models.CharField(max_length=16)
    host = models.CharField(max_length=255, blank=True, help_text="IP address or host name; blank for any host")
    active = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True, help_text="which unit or PACS this is")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["ae_title", "host"]
        verbose_name = "allowed calling AE"
        constraints = [models.UniqueConstraint(fields=["ae_title", "host"], name="allowed_calling_ae_identity")]

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}" if self.host else self.ae_title


class RefusedObject(models.Model):
    """An association or an object the listener refused, with the DICOM status or rejection and its reason.

    Objects that were stored and then rejected by ingest (not a dose report, unknown unit...) are ReceivedObject
    rows in state 'rejected'; these rows are what never reached the inbox.
    """

    KIND_ASSOCIATION, KIND_STORE = "association", "c-store"
    KIND_CHOICES = [(KIND_ASSOCIATION, "Association rejected"), (KIND_STORE, "C-STORE refused")]

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=12, choices=KIND_CHOICES)
    calling_ae = models.CharField(max_length=16, blank=True, db_index=True)
    peer_address = models.CharField(max_length=64, blank=True)
    sop_class_uid = models.CharField(max_length=64, blank=True)
    sop_instance_uid = models.CharField(max_length=128, blank=True)
    status = models.PositiveIntegerField(null=True, blank=True, help_text="DIMSE status returned (C-STORE)")
    reason = models.TextField()

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.calling_ae} {self.reason[:40]}"

    @property
    def status_hex(self) -> str:
        return f"0x{self.status:04X}" if self.status is not None else ""


class ListenerStatus(models.Model):
    """The heartbeat of a running ``dicom_listen`` process (one row per AE title, host and port)."""

    name = models.CharField(max_length=120, unique=True)
    hostname = models.CharField(max_length=100)
    pid = models.PositiveIntegerField()
    ae_title = models.CharField(max_length=16)
    bind = models.CharField(max_length=100)
    port = models.PositiveIntegerField()
    tls = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    stored_count = models.PositiveBigIntegerField(default=0)
    refused_count = models.PositiveBigIntegerField(default=0)
    active_associations = models.PositiveIntegerField(default=0)
    ingest_backlog = models.PositiveIntegerField(default=0)
    allowlist = models.TextField(blank=True, help_text="the effective allowlist at the last heartbeat")

    class Meta:
        verbose_name_plural = "listener status"
        permissions = [("view_listener_status", "Can view the DICOM listener status page")]

    def __str__(self) -> str:
        return self.name
