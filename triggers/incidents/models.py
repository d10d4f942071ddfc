"""Incident reports: accidental and unintended medical exposures (Directive 2013/59/Euratom Art. 63).

An incident report records what happened (category, date, room/unit, linked studies and alerts, reporter,
description), a snapshot of the physical dose quantities of the linked studies taken when the report was made (kept
unchanged when a study is re-imported), the analysis (DRL and trigger levels, Ka,r as a surrogate for skin dose,
an effective dose estimate for comparison only, root cause, actions, who was informed), its significance against the
active ``significant_event`` trigger rules (e.g. German StrlSchV Anlage 14) with the notification due date and the
notification record, and its review workflow draft -> submitted -> under_review -> closed.

These models belong to the ``triggers`` app (``triggers/models.py`` imports this module).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.urls import reverse

__all__ = ["IncidentReport", "IncidentAction", "IncidentComment"]

CATEGORY_CHOICES = [
    ("wrong_patient", "Wrong patient"),
    ("wrong_examination_or_side", "Wrong examination or side"),
    ("repeated_exposure", "Repeated exposure"),
    ("dose_higher_than_intended", "Dose much higher than intended"),
    ("equipment_malfunction", "Equipment malfunction"),
    ("wrong_radiopharmaceutical_or_activity", "Wrong radiopharmaceutical or activity"),
    ("pregnant_patient_unknown", "Exposure of a pregnant patient not known to be pregnant"),
    ("other", "Other"),
]
KIND_CHOICES = [("accidental", "Accidental exposure"), ("unintended", "Unintended exposure")]
ORIGIN_CHOICES = [("blank", "Blank report"), ("study", "Reported from a study"), ("alert", "Escalated from an alert"),
                  ("automatic", "Automatic draft from a significant-event alert")]


class IncidentReport(models.Model):
    """An accidental or unintended exposure, recorded and analysed for the QA committee (Euratom Art. 63)."""

    STATE_DRAFT, STATE_SUBMITTED, STATE_UNDER_REVIEW, STATE_CLOSED = "draft", "submitted", "under_review", "closed"
    STATE_CHOICES = [(STATE_DRAFT, "Draft"), (STATE_SUBMITTED, "Submitted"), (STATE_UNDER_REVIEW, "Under QA review"),
                     (STATE_CLOSED, "Closed")]

    kind = models.CharField(max_length=12, choices=KIND_CHOICES, default="unintended")
    category = models.CharField(max_length=40, choices=CATEGORY_CHOICES)
    incident_date = models.DateField(help_text="date of the exposure")
    discovered_date = models.DateField(null=True, blank=True, help_text="date the exposure was discovered")
    room = models.ForeignKey("registry.Room", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="incident_reports")
    equipment = models.ForeignKey("registry.Equipment", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="incident_reports")
    studies = models.ManyToManyField("registry.Study", blank=True, related_name="incident_reports")
    alerts = models.ManyToManyField("triggers.Alert", blank=True, related_name="incident_reports")
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="incident_reports")
    origin = models.CharField(max_length=12, choices=ORIGIN_CHOICES, default="blank")
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    state = models.CharField(max_length=14, choices=STATE_CHOICES, default=STATE_DRAFT, db_index=True)

    # dose parameters of the linked studies when the report was made (see services.dose_snapshot)
    dose_snapshot = models.JSONField(default=dict, blank=True)
    snapshot_taken_at = models.DateTimeField(null=True, blank=True)

    # analysis (physicists)
    drl_comparison = models.TextField(blank=True, help_text="position against the DRL")
    trigger_level_comparison = models.TextField(blank=True)
    skin_dose_note = models.TextField(blank=True, help_text="Ka,r is a surrogate for skin dose, not an estimate")
    effective_dose_estimate_msv = models.FloatField(null=True, blank=True)
    effective_dose_method = models.CharField(max_length=200, blank=True)
    root_cause = models.TextField(blank=True)
    analysis_notes = models.TextField(blank=True)
    patient_informed = models.BooleanField(null=True, blank=True)
    patient_informed_date = models.DateField(null=True, blank=True)
    referrer_informed = models.BooleanField(null=True, blank=True)
    referrer_informed_date = models.DateField(null=True, blank=True)

    # significance (active significant_event rules) and the notification to the competent authority
    is_significant = models.BooleanField(default=False, db_index=True)
    significance_reasons = models.JSONField(default=list, blank=True)
    notification_due_date = models.DateField(null=True, blank=True)
    notified_date = models.DateField(null=True, blank=True)
    notified_authority = models.CharField(max_length=200, blank=True)
    notification_reference = models.CharField(max_length=120, blank=True)
    notification_notes = models.TextField(blank=True)
    notified_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "triggers"
        ordering = ["-incident_date", "-id"]
        indexes = [
            models.Index(fields=["state", "-incident_date"], name="incident_state_date_idx"),
            models.Index(fields=["reporter", "-incident_date"], name="incident_reporter_idx"),
        ]
        permissions = [
            ("view_all_incidents", "Can read every incident report"),
            ("report_exposure", "Can report an exposure from a study"),
            ("edit_incident_analysis", "Can edit the analysis of an incident report"),
            ("review_incident", "Can review, close and reopen incident reports (QA committee)"),
        ]

    def __str__(self) -> str:
        return f"Incident {self.pk}: {self.get_category_display()} ({self.incident_date})"

    def get_absolute_url(self) -> str:
        return reverse("incidents:detail", args=[self.pk])

    @property
    def notification_overdue(self) -> bool:
        """Due date passed and no notification recorded (also true at once for an exposure discovered late)."""
        return bool(self.is_significant and self.notification_due_date and not self.notified_date
                    and self.notification_due_date < dt.date.today())


class IncidentAction(models.Model):
    """A corrective or preventive action with its owner and due date."""

    KIND_CHOICES = [("corrective", "Corrective"), ("preventive", "Preventive")]
    incident = models.ForeignKey(IncidentReport, on_delete=models.CASCADE, related_name="actions")
    kind = models.CharField(max_length=12, choices=KIND_CHOICES)
    description = models.TextField()
    owner = models.CharField(max_length=150)
    due_date = models.DateField()
    done_date = models.DateField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "triggers"
        ordering = ["due_date", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} action (due {self.due_date})"

    @property
    def is_open(self) -> bool:
        return self.done_date is None


class IncidentComment(models.Model):
    """A comment on an incident; workflow transitions carry their comment here too (from/to state)."""

    incident = models.ForeignKey(IncidentReport, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    text = models.TextField(blank=True)
    from_state = models.CharField(max_length=14, blank=True)
    to_state = models.CharField(max_length=14, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "triggers"
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Comment on incident {self.incident_id}"
