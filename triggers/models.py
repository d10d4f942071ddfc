"""Trigger level rules (versioned, each with a cited source) and the alerts they raise.

Alerts are rows before they are messages: one alert per (study, rule), updated — never duplicated — when the study is
re-imported or superseded or the rule is re-evaluated; the e-mail is sent through the registry's notification service.
Ka,r (air kerma at the interventional reference point) is a surrogate for skin dose, never a skin-dose estimate: it can
under- or overestimate peak skin dose.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from dosereg.core.quantities import (
    MODALITY_CHOICES,
    PLANE_QUANTITIES,
    QUANTITIES,
    RULE_QUANTITIES,
    input_units,
    unit_factor,
)

# The quantities a rule may watch, by their export name (the catalogue's ``QuantityDef.key``), and the units its
# threshold may be typed in (display spellings; the catalogue converts them).
QUANTITY_CHOICES = [(name, f"{QUANTITIES[name].label} ({name})") for name in RULE_QUANTITIES]


def quantity_choices() -> list[tuple[str, str]]:
    """The rule quantities of the catalogue (a callable, so a new catalogue quantity needs no migration)."""
    return [(name, f"{QUANTITIES[name].label} ({name})") for name in RULE_QUANTITIES]
UNIT_CHOICES = sorted({(u, u) for name in RULE_QUANTITIES for u in input_units(name)})
SCOPE_CHOICES = [("event", "Per irradiation event"), ("study", "Per study"),
                 ("patient_window", "Cumulative per patient over a window")]
SEVERITY_CHOICES = [("notification", "Notification"), ("alert", "Alert"), ("significant_event", "Significant event")]
PLANE_MODE_CHOICES = [("each", "Each plane (any plane at or above the threshold)"), ("sum", "Sum of planes")]
BODY_REGION_CHOICES = [("", "Any"), ("head", "Head / brain"), ("body", "Body (not head)")]
PROCEDURE_KIND_CHOICES = [("any", "Any"), ("diagnostic", "Diagnostic only (not interventions)"),
                          ("interventional", "Interventional only")]
PHANTOM_CHOICES = [("", "Any"), ("head", "16 cm (head) phantom"), ("body", "32 cm (body) phantom")]
KIND_CHOICES = [("threshold", "Threshold"), ("dose_check", "CT Dose Check override (TID 10015)"),
                ("pregnancy", "Exposure of a patient recorded as (possibly) pregnant")]


class TriggerRule(models.Model):
    """A trigger level: which studies, which quantity, threshold and unit, scope, severity, and its cited source.

    Versioned: every change increments ``version`` and keeps a :class:`TriggerRuleVersion` snapshot; alerts record
    the version that raised them."""

    key = models.SlugField(max_length=80, unique=True, help_text="stable identifier (packs use it)")
    name = models.CharField(max_length=200)
    pack = models.CharField(max_length=40, blank=True, help_text="default rule pack this rule came from")
    kind = models.CharField(max_length=12, choices=KIND_CHOICES, default="threshold")
    # which studies
    modality_type = models.CharField(max_length=20, choices=MODALITY_CHOICES, blank=True)
    room = models.ForeignKey("registry.Room", null=True, blank=True, on_delete=models.PROTECT)
    equipment = models.ForeignKey("registry.Equipment", null=True, blank=True, on_delete=models.PROTECT)
    standard_exam = models.ForeignKey("registry.StandardExam", null=True, blank=True, on_delete=models.PROTECT)
    protocol_pattern = models.CharField(max_length=200, blank=True,
                                        help_text="regular expression searched (case-insensitive) in the study "
                                                  "description, procedure descriptions and acquisition protocols")
    protocol_exclude_pattern = models.CharField(max_length=200, blank=True,
                                                help_text="regular expression; a match excludes the study/event")
    body_region = models.CharField(max_length=8, choices=BODY_REGION_CHOICES, blank=True,
                                   help_text="CT: region from Target Region, else the mapped examination, "
                                             "else the protocol text")
    ctdi_phantom = models.CharField(max_length=8, choices=PHANTOM_CHOICES, blank=True)
    procedure_kind = models.CharField(max_length=16, choices=PROCEDURE_KIND_CHOICES, default="any")
    age_min_years = models.FloatField(null=True, blank=True, help_text="inclusive")
    age_max_years = models.FloatField(null=True, blank=True, help_text="exclusive")
    # what and how much
    quantity = models.CharField(max_length=32, choices=quantity_choices)
    plane_mode = models.CharField(max_length=4, choices=PLANE_MODE_CHOICES, default="each",
                                  help_text="Ka,r, KAP and fluoroscopy time: per plane (biplane beams enter at "
                                            "different skin sites) or summed")
    threshold = models.FloatField(help_text="in the unit given")
    unit = models.CharField(max_length=12, choices=UNIT_CHOICES)
    step = models.FloatField(null=True, blank=True,
                             help_text="further steps above the threshold listed inside the one alert (same unit)")
    scope = models.CharField(max_length=16, choices=SCOPE_CHOICES)
    window_days = models.PositiveIntegerField(null=True, blank=True, help_text="patient_window scope only")
    window_basis = models.TextField(blank=True, help_text="why this window length (state honestly if unconfirmed)")
    min_procedures = models.PositiveSmallIntegerField(default=2, help_text="patient_window: fire only with at "
                                                                           "least this many procedures")
    severity = models.CharField(max_length=20, choices=SEVERITY_CHOICES)
    # where it comes from
    source = models.TextField(help_text="the cited source of the value")
    verify = models.BooleanField(default=False, help_text="verify against the primary publication before "
                                                          "clinical use")
    note = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["pack", "modality_type", "name"]
        permissions = [("manage_rules", "Can create and change trigger rules")]

    def __str__(self) -> str:
        return self.name

    @property
    def quantity_label(self) -> str:
        q = QUANTITIES.get(self.quantity)
        return q.label if q else self.quantity

    @property
    def watches_planes(self) -> bool:
        """Ka,r, KAP and fluoroscopy time: reported per plane by biplane units, so the plane mode applies."""
        return self.quantity in PLANE_QUANTITIES

    @property
    def canonical_unit(self) -> str:
        q = QUANTITIES.get(self.quantity)
        return q.unit_symbol if q else ""

    @property
    def threshold_factor(self) -> float:
        """The factor from the rule's unit to the quantity's canonical unit (validated when the rule is saved)."""
        return unit_factor(self.quantity, self.unit)

    @property
    def threshold_canonical(self) -> float:
        return self.threshold * self.threshold_factor


class TriggerRuleVersion(models.Model):
    """A snapshot of a rule as it was at one version (who changed it, when, why)."""

    rule = models.ForeignKey(TriggerRule, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    data = models.JSONField()
    changed_at = models.DateTimeField(auto_now_add=True)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    comment = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["rule", "-version"]
        constraints = [models.UniqueConstraint(fields=["rule", "version"], name="rule_version_unique")]


class Alert(models.Model):
    """One alert per study and rule.  ``value``/``threshold`` are in ``unit`` (the quantity's canonical unit);
    ``details`` holds the per-plane values, steps, acquisitions or window procedures behind it."""

    STATES = [("new", "New"), ("acknowledged", "Acknowledged"), ("follow_up", "Follow-up scheduled"),
              ("closed", "Closed"), ("escalated", "Escalated to an incident report")]
    OPEN_STATES = ("new", "acknowledged", "follow_up")
    REASONS = [("justified_clinical", "Justified by clinical need"), ("patient_size", "Patient size"),
               ("documentation_error", "Documentation or coding error"), ("equipment_fault", "Equipment fault"),
               ("false_alert", "False alert"), ("protocol_issue", "Protocol to be reviewed"), ("other", "Other")]

    study = models.ForeignKey("registry.Study", on_delete=models.CASCADE, related_name="alerts")
    rule = models.ForeignKey(TriggerRule, on_delete=models.PROTECT, related_name="alerts")
    rule_version = models.PositiveIntegerField(default=1)
    patient = models.ForeignKey("registry.Patient", on_delete=models.CASCADE, related_name="alerts")
    severity = models.CharField(max_length=20, choices=SEVERITY_CHOICES)
    scope = models.CharField(max_length=16, choices=SCOPE_CHOICES)
    quantity = models.CharField(max_length=32)
    quantity_label = models.CharField(max_length=40)
    value = models.FloatField()
    unit = models.CharField(max_length=12)
    threshold = models.FloatField()
    details = models.JSONField(default=dict, blank=True)
    summary = models.CharField(max_length=400, blank=True)
    demo = models.BooleanField(default=False)
    still_exceeds = models.BooleanField(default=True, help_text="false when a re-import or rule change means the "
                                                                "study no longer exceeds; the alert is kept")
    state = models.CharField(max_length=12, choices=STATES, default="new", db_index=True)
    reason = models.CharField(max_length=24, choices=REASONS, blank=True)
    comment = models.TextField(blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    follow_up_date = models.DateField(null=True, blank=True)
    follow_up_check = models.CharField(max_length=255, blank=True, help_text="the check to be done / done")
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=24, choices=REASONS, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    notified = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["study", "rule"], name="one_alert_per_study_rule")]
        indexes = [models.Index(fields=["state", "-created_at"], name="alert_state_idx"),
                   models.Index(fields=["rule", "state"], name="alert_rule_state_idx"),
                   models.Index(fields=["patient", "-created_at"], name="alert_patient_idx")]
        permissions = [("acknowledge_alert", "Can acknowledge alerts"),
                       ("follow_up_alert", "Can schedule follow-up and close alerts"),
                       ("escalate_alert", "Can escalate alerts to incident reports"),
                       ("export_alerts", "Can export alerts and see tuning figures")]

    def __str__(self) -> str:
        return f"Alert {self.pk}: {self.rule_id} on study {self.study_id}"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES


class AlertEvent(models.Model):
    """The history of one alert: raised, updated, acknowledged, follow-up, closed, escalated."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="history")
    at = models.DateTimeField(auto_now_add=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    action = models.CharField(max_length=20)
    from_state = models.CharField(max_length=12, blank=True)
    to_state = models.CharField(max_length=12, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]


# Incident reports live in triggers/incidents/; their models join this app's label.
from triggers.incidents.models import *  # noqa: E402, F401, F403
