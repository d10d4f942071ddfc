"""Diagnostic reference levels: DRL sets and their entries, the mapping rules that put studies onto standard
examinations, comparison snapshots (ICRP Publication 135 method) and the comparisons made due by a change.

Standard examinations themselves live in the registry (``registry.StandardExam``, ``Study.standard_exam``); ``drl``
owns the rules and sets ``Study.standard_exam`` through ``dosereg.registry.services.studies``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from dosereg.core.quantities import MODALITY_CHOICES, QUANTITIES
from drl.comparison import (
    PER_ACQUISITION,
    PER_CHOICES,
    VIEW_CHOICES,
    Band,
    DrlValidationError,
    bands_check,
    entry_check,
    quantity_choices,
    thickness_check,
    thickness_overlap,
    thickness_text,
    value_column,
)


class DrlSet(models.Model):
    """A published (national, European) or local set of DRLs, with its citation.

    ``verify`` is shown wherever its values appear: the values were not checked against the primary publication
    (see ../shared/reference, reference-data.md section 3)."""

    name = models.CharField(max_length=200, unique=True)
    issuing_body = models.CharField(max_length=200)
    country = models.CharField(max_length=60, blank=True, help_text="ISO code or 'EU'; blank for local")
    year = models.PositiveSmallIntegerField()
    source = models.TextField(help_text="citation of the publication the values come from")
    verify = models.BooleanField(default=False, help_text="verify the values against the primary publication")
    notes = models.TextField(blank=True)
    local = models.BooleanField(default=False, help_text="set by this site (local DRLs)")
    active = models.BooleanField(default=True, help_text="used in comparisons")
    priority = models.PositiveSmallIntegerField(
        default=50, help_text="when several active sets give a DRL for the same examination and quantity, the lowest "
                              "priority number wins (local sets default to 10)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["priority", "name"]
        verbose_name = "DRL set"
        permissions = [("manage_drl_sets", "Can add, import and edit DRL sets")]

    def __str__(self) -> str:
        return self.name


class DrlEntry(models.Model):
    """One DRL: a standard examination (or clinical indication) and patient group, a quantity, its value and unit,
    per examination or per acquisition.  Patient group ``adult`` = age 18 or over, or unknown; a band (age and/or
    weight limits, lower inclusive, upper exclusive) carries its own label, e.g. ``child 5-10 y``."""

    drl_set = models.ForeignKey(DrlSet, on_delete=models.CASCADE, related_name="entries")
    standard_exam = models.ForeignKey("registry.StandardExam", on_delete=models.PROTECT, related_name="drl_entries")
    indication = models.CharField(max_length=200, blank=True, help_text="the examination/indication as published")
    patient_group = models.CharField(max_length=60, default="adult")
    age_min_years = models.FloatField(null=True, blank=True)
    age_max_years = models.FloatField(null=True, blank=True)
    weight_min_kg = models.FloatField(null=True, blank=True)
    weight_max_kg = models.FloatField(null=True, blank=True)
    quantity = models.CharField(max_length=20, choices=quantity_choices, help_text="catalogue key")
    value = models.FloatField()
    unit = models.CharField(max_length=20)
    per = models.CharField(max_length=12, choices=PER_CHOICES)
    view = models.CharField(
        max_length=8, blank=True, choices=VIEW_CHOICES,
        help_text="radiography and mammography, per radiograph (image): the projection the DRL is set for; only "
                  "current events of that view (IrradiationEvent.view) enter the median (blank: every event)")
    thickness_min_mm = models.FloatField(
        null=True, blank=True, help_text="mammography, per image: compressed breast thickness band, lower limit "
                                         "(inclusive); only events whose thickness is in the band enter the median")
    thickness_max_mm = models.FloatField(
        null=True, blank=True, help_text="upper limit of the compressed breast thickness band (exclusive)")
    verify = models.BooleanField(default=False)
    note = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["drl_set", "standard_exam", "quantity", "patient_group", "view", "thickness_min_mm"]
        verbose_name = "DRL entry"
        verbose_name_plural = "DRL entries"
        constraints = [
            models.UniqueConstraint(fields=["drl_set", "standard_exam", "patient_group", "quantity", "per", "view"],
                                    condition=models.Q(thickness_min_mm__isnull=True, thickness_max_mm__isnull=True),
                                    name="drl_entry_identity_view"),
            models.UniqueConstraint(fields=["drl_set", "standard_exam", "patient_group", "quantity", "per", "view",
                                            "thickness_min_mm", "thickness_max_mm"],
                                    name="drl_entry_identity_thickness"),
            models.CheckConstraint(condition=models.Q(value__gt=0), name="drl_entry_value_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.standard_exam_id} {self.quantity} {self.value} {self.unit}"

    @property
    def is_band(self) -> bool:
        return self.patient_group != "adult"

    @property
    def thickness(self) -> tuple[float | None, float | None]:
        return self.thickness_min_mm, self.thickness_max_mm

    @property
    def thickness_text(self) -> str:
        return thickness_text(*self.thickness)

    def clean(self):
        """Unit must fit the quantity (the value is converted to its canonical unit); bands of the same examination
        and quantity must not overlap."""

        def band(e):
            return Band(e.patient_group or "adult", e.age_min_years, e.age_max_years, e.weight_min_kg,
                        e.weight_max_kg)

        try:
            checked = entry_check(quantity=self.quantity, unit=self.unit, per=self.per, value=self.value)
            self.quantity, self.value, self.unit = checked.quantity, checked.value, checked.unit
            if self.view and self.per != PER_ACQUISITION:
                raise DrlValidationError("a projection (view) is set only for a DRL per radiograph (per acquisition)")
            thickness_check(*self.thickness, per=self.per)
            if self.drl_set_id and self.standard_exam_id:
                siblings = DrlEntry.objects.filter(drl_set_id=self.drl_set_id, standard_exam_id=self.standard_exam_id,
                                                   quantity=self.quantity, per=self.per,
                                                   view=self.view).exclude(pk=self.pk)
                same_group = [e for e in siblings if e.patient_group == self.patient_group]
                if any(thickness_overlap(self.thickness, e.thickness) for e in same_group):
                    raise DrlValidationError("its compressed breast thickness band overlaps another entry's")
                bands_check([band(self), *(band(e) for e in siblings if e.patient_group != self.patient_group)])
            else:
                bands_check([band(self)])
        except DrlValidationError as exc:
            raise ValidationError(str(exc)) from exc


class MappingRule(models.Model):
    """Maps what the modality sends onto a standard examination.  Rules are tried in ascending ``priority``, then
    by the weight of their field (``FIELD_WEIGHT``), then id; the first whose pattern is found in its field wins.
    ``match`` = ``regex`` (Python regular expression, searched case-insensitively), ``contains`` or ``exact`` (both
    case-insensitive).

    Field weight, heaviest first: what the referrer asked for (the requested procedure's code, then its
    description) says the indication; the study description is what the radiographer chose on the console; the
    acquisition protocol is the technique, run for many indications.  The reason for the study (DICOM Reason for
    the Requested Procedure) sits between the requested procedure and the study description."""

    FIELD_CHOICES = [  # in order of weight
        ("requested_procedure_code", "Requested procedure code"),
        ("requested_procedure_description", "Requested procedure description"),
        ("reason_for_study", "Reason for the requested procedure"),
        ("study_description", "Study description"),
        ("protocol", "Acquisition protocol (any irradiation event)"),
    ]
    FIELD_WEIGHT = {field: rank for rank, (field, _) in enumerate(FIELD_CHOICES)}
    MATCH_CHOICES = [("exact", "exact (case-insensitive)"), ("contains", "contains"), ("regex", "regular expression")]

    priority = models.PositiveIntegerField(default=100)
    field = models.CharField(max_length=40, choices=FIELD_CHOICES, default="study_description")
    match = models.CharField(max_length=10, choices=MATCH_CHOICES, default="regex")
    pattern = models.CharField(max_length=255)
    modality_type = models.CharField(max_length=20, choices=MODALITY_CHOICES, blank=True)
    equipment = models.ForeignKey("registry.Equipment", null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="mapping_rules", help_text="only for this unit (blank: every unit)")
    standard_exam = models.ForeignKey("registry.StandardExam", on_delete=models.CASCADE, related_name="mapping_rules")
    active = models.BooleanField(default=True)
    shipped = models.BooleanField(default=False, help_text="part of the default mapping")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["priority", "id"]
        permissions = [("manage_mapping", "Can edit mapping rules and map names to standard examinations")]

    def __str__(self) -> str:
        return f"{self.field} {self.match} {self.pattern!r} -> {self.standard_exam_id}"

    @property
    def order_key(self) -> tuple:
        """Where the rule is tried: priority, then field weight, then id (an unsaved rule last among its equals)."""
        return self.priority, self.FIELD_WEIGHT.get(self.field, len(self.FIELD_WEIGHT)), self.pk or float("inf")


class UnmappedName(models.Model):
    """A name no rule maps, as first seen (the mapping page lists current counts; this row remembers that the
    physicists were told)."""

    modality_type = models.CharField(max_length=20, blank=True)
    name = models.CharField(max_length=255)
    first_seen = models.DateTimeField(auto_now_add=True)
    notified = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["modality_type", "name"], name="unmapped_name_identity")]


class ProtocolSeen(models.Model):
    """Acquisition protocols a unit has used, with a kVp baseline: a new protocol name on a known unit, or a shift
    of a protocol's kVp from its baseline, is a protocol change that makes the unit's comparisons due."""

    equipment = models.ForeignKey("registry.Equipment", on_delete=models.CASCADE, related_name="protocols_seen")
    protocol = models.CharField(max_length=255)
    first_seen_date = models.DateField(null=True, blank=True)
    studies = models.PositiveIntegerField(default=0)
    kvp_baseline = models.FloatField(null=True, blank=True, help_text="mean kVp of the first studies")
    kvp_baseline_n = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["equipment", "protocol"], name="protocol_seen_identity")]


class DrlComparison(models.Model):
    """One comparison run: an immutable snapshot.  The report issued for a year stays as issued; a re-run is a new
    snapshot.  The settings in force (standard-size band, minimum n) are copied in."""

    TRIGGER_CHOICES = [("yearly", "Yearly (scheduled)"), ("on_demand", "On demand"), ("due", "After a change")]

    period_start = models.DateField()
    period_end = models.DateField(help_text="inclusive")
    trigger = models.CharField(max_length=12, choices=TRIGGER_CHOICES, default="on_demand")
    equipment = models.ForeignKey("registry.Equipment", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="drl_comparisons", help_text="only this unit (a due re-comparison)")
    include_demo = models.BooleanField(default=False)
    standard_size = models.BooleanField(default=False)
    weight_min_kg = models.FloatField(null=True, blank=True)
    weight_max_kg = models.FloatField(null=True, blank=True)
    min_patients = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    duration_s = models.FloatField(null=True, blank=True)
    note = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "DRL comparison"
        permissions = [("run_drl_comparison", "Can run a DRL comparison")]

    def __str__(self) -> str:
        return f"DRL comparison {self.pk} ({self.period_start} to {self.period_end})"

    def save(self, *args, **kwargs):
        if self.pk and not kwargs.pop("allow_update", False):
            raise ValueError("a DRL comparison is an immutable snapshot; run a new one")
        super().save(*args, **kwargs)


class DrlComparisonRow(models.Model):
    """One line of a snapshot: a unit, a standard examination, a patient group and a DRL quantity.

    ``n`` counts the values in the median (studies per examination, non-localizer acquisitions per acquisition);
    ``n_studies`` the studies contributing them; ``n_unconfirmed`` the studies with a value that were left out because
    a value awaits confirmation.  Names are copied so the snapshot reads the same later."""

    comparison = models.ForeignKey(DrlComparison, on_delete=models.CASCADE, related_name="rows")
    equipment = models.ForeignKey("registry.Equipment", null=True, on_delete=models.SET_NULL, related_name="+")
    equipment_name = models.CharField(max_length=300)
    room_name = models.CharField(max_length=100, blank=True)
    standard_exam = models.ForeignKey("registry.StandardExam", null=True, on_delete=models.SET_NULL,
                                      related_name="+")
    exam_code = models.CharField(max_length=64)
    exam_name = models.CharField(max_length=200)
    patient_group = models.CharField(max_length=60)
    quantity = models.CharField(max_length=20, choices=quantity_choices, help_text="catalogue key")
    unit = models.CharField(max_length=20)
    per = models.CharField(max_length=12, choices=PER_CHOICES)
    view = models.CharField(max_length=8, blank=True, help_text="the projection compared, per radiograph (blank: all)")
    thickness_min_mm = models.FloatField(null=True, help_text="compressed breast thickness band compared (inclusive)")
    thickness_max_mm = models.FloatField(null=True, help_text="upper limit of the band (exclusive)")
    n = models.PositiveIntegerField()
    n_studies = models.PositiveIntegerField()
    n_unconfirmed = models.PositiveIntegerField(
        default=0, help_text="studies left out: a value awaits a physicist's confirmation (Study.values_unconfirmed)")
    median = models.FloatField(null=True)
    p25 = models.FloatField(null=True)
    p75 = models.FloatField(null=True)
    mean = models.FloatField(null=True)
    minimum = models.FloatField(null=True)
    maximum = models.FloatField(null=True)
    drl = models.FloatField(null=True)
    drl_entry = models.ForeignKey(DrlEntry, null=True, on_delete=models.SET_NULL, related_name="+")
    drl_set_name = models.CharField(max_length=200, blank=True)
    drl_source = models.TextField(blank=True)
    ratio = models.FloatField(null=True)
    status = models.CharField(max_length=20)
    size_filter = models.BooleanField(default=False)
    verify = models.BooleanField(default=False)
    previous_median = models.FloatField(null=True)
    trend = models.FloatField(null=True, help_text="median / previous period's median")

    class Meta:
        ordering = ["comparison", "exam_code", "equipment_name", "patient_group", "quantity", "view",
                    "thickness_min_mm"]
        indexes = [models.Index(fields=["comparison", "exam_code"], name="drl_row_exam_idx")]

    @property
    def column(self) -> str:
        """The registry column compared (a catalogue name: ``dlp_total_mgycm`` per examination, ``dlp_mgycm`` per
        acquisition), whose label and display rule the reports use."""
        return value_column(self.quantity, self.per) or self.quantity

    @property
    def label(self) -> str:
        q = QUANTITIES.get(self.column)
        return q.label if q else self.quantity

    @property
    def per_text(self) -> str:
        """What one value is: ``examination``, ``acquisition``, or for a DRL per radiograph of one projection
        ``radiograph (PA)``, with a compressed-breast-thickness band ``radiograph (CC, CBT 40-<60 mm)``; rows of
        different projections or bands are different comparisons (and plots)."""
        what = ", ".join(t for t in (self.view, thickness_text(self.thickness_min_mm, self.thickness_max_mm)) if t)
        return f"radiograph ({what})" if what else self.per


class DueComparison(models.Model):
    """A unit whose comparisons are due because of an equipment or protocol change; resolved by a comparison run
    for the period since the change."""

    KIND_CHOICES = [("equipment_change", "Equipment change"), ("new_protocol", "New protocol"),
                    ("kvp_shift", "Protocol technique (kVp) shift")]

    equipment = models.ForeignKey("registry.Equipment", on_delete=models.CASCADE, related_name="due_comparisons")
    kind = models.CharField(max_length=20, choices=KIND_CHOICES)
    reason = models.CharField(max_length=300)
    since = models.DateField(help_text="the period of the re-comparison starts here")
    equipment_change = models.ForeignKey("registry.EquipmentChange", null=True, blank=True,
                                         on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_by = models.ForeignKey(DrlComparison, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="resolved_dues")
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["equipment_change"], condition=models.Q(
            equipment_change__isnull=False), name="due_per_equipment_change")]
