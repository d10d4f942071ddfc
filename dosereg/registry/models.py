"""The dose registry: patients, units and rooms, studies, dose reports, irradiation events, accumulated doses,
standard examinations, staff doses, the audit log and the notification service's rows.

Quantities are stored in one canonical unit each, named in the column (``ctdivol_mgy``, ``kap_gycm2`` ...); the value
and unit code exactly as the modality sent them are kept beside, in ``raw`` ({name: [value, unit]}).  Column names
are the ``export_doses`` field names.  See ``dosereg.core.dose_report`` for the parser's side of the contract.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from dosereg.core.quantities import MODALITY_CHOICES, STUDY_TOTALS

MODALITY_TYPE_CHOICES = MODALITY_CHOICES
PLANE_CHOICES = [("A", "Plane A"), ("B", "Plane B"), ("single", "Single plane")]
PREGNANCY_CHOICES = [("not_pregnant", "Not pregnant"), ("possibly_pregnant", "Possibly pregnant"),
                     ("pregnant", "Pregnant"), ("unknown", "Unknown")]


# The study columns a patient's history shows (page and API), carried by the index study_patient_history_idx so the
# history is an index-only scan on PostgreSQL (the key holds the patient, the order and the id).
PATIENT_HISTORY_COLUMNS = [
    "study_instance_uid", "accession_number", "equipment", "standard_exam", "modality_type", "modality_types",
    "study_description", "pregnancy_status", "demo", *STUDY_TOTALS,
]


def _quantity_field(**kwargs) -> models.FloatField:
    """A quantity column: canonical unit in the column's name (catalogue), null when not reported or invalid."""
    return models.FloatField(null=True, blank=True, **kwargs)


class DocumentJSONField(models.JSONField):
    """A JSON document kept as written and read back whole, never searched inside: the content tree of a report
    and of each irradiation event.  PostgreSQL: ``json`` (the text, checked to be JSON), not ``jsonb``, whose
    parse into a binary tree at every insert was most of the server's cost of recording a 316-event report; the
    columns are compressed with lz4 where the server has it (migration 0016).  Measured on PostgreSQL 15 by COPY
    of 6 636 event rows of 3 KB of JSON each (issue #14): jsonb with pglz 78 us a row, jsonb with lz4 56, json
    with pglz 42, json with lz4 30.  ``json`` has no equality operator: these columns are never compared, grouped
    or used in DISTINCT.  SQLite: text, as any JSONField."""

    def db_type(self, connection):
        return "json" if connection.vendor == "postgresql" else super().db_type(connection)

    def from_db_value(self, value, expression, connection):
        if connection.vendor == "postgresql":
            return value  # psycopg2 reads a json column into Python values itself
        return super().from_db_value(value, expression, connection)


class Room(models.Model):
    """A room groups units; a unit may report both fluoroscopy and radiography."""

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Equipment(models.Model):
    """An X-ray unit.  Identity: Device Observer UID when present, else (manufacturer, model, serial, station)."""

    identity_key = models.CharField(max_length=400, unique=True)
    device_observer_uid = models.CharField(max_length=64, blank=True, db_index=True)
    manufacturer = models.CharField(max_length=128, blank=True)
    model = models.CharField(max_length=128, blank=True)
    serial_number = models.CharField(max_length=128, blank=True)
    station_name = models.CharField(max_length=64, blank=True)
    institution = models.CharField(max_length=128, blank=True)
    department = models.CharField(max_length=128, blank=True)
    software_versions = models.CharField(max_length=255, blank=True)
    detector_id = models.CharField(max_length=128, blank=True)
    room = models.ForeignKey(Room, null=True, blank=True, on_delete=models.SET_NULL, related_name="units")
    sends_dose_reports = models.BooleanField(default=False, help_text="has sent at least one RDSR/RRDSR")
    first_seen = models.DateTimeField(auto_now_add=True)
    last_object_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_report_at = models.DateTimeField(null=True, blank=True)
    demo = models.BooleanField(default=False, db_index=True)

    class Meta:
        ordering = ["manufacturer", "model", "station_name"]
        verbose_name_plural = "equipment"
        permissions = [("manage_equipment", "Can map units to rooms and edit units")]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        name = " ".join(p for p in (self.manufacturer, self.model) if p) or "Unknown unit"
        return f"{name} ({self.station_name})" if self.station_name else name


class EquipmentChange(models.Model):
    """A new unit, or a software, serial or detector change on a known one (makes DRL re-comparison due)."""

    KIND_CHOICES = [("new_unit", "New unit"), ("software", "Software version"), ("serial", "Serial number"),
                    ("detector", "Detector")]
    equipment = models.ForeignKey(Equipment, on_delete=models.CASCADE, related_name="changes")
    kind = models.CharField(max_length=20, choices=KIND_CHOICES)
    old_value = models.CharField(max_length=255, blank=True)
    new_value = models.CharField(max_length=255, blank=True)
    detected_at = models.DateTimeField(auto_now_add=True)
    effective_date = models.DateField(null=True, blank=True, help_text="study date of the first object showing it")
    source_sop_instance_uid = models.CharField(max_length=64, blank=True)
    handled = models.BooleanField(default=False)

    class Meta:
        ordering = ["-detected_at"]
        indexes = [models.Index(fields=["equipment", "-detected_at"])]


class Patient(models.Model):
    """A patient: (Issuer of Patient ID, Patient ID).  With a pseudonym key, ``patient_id`` is the keyed HMAC and
    name and birth date stay empty."""

    patient_id = models.CharField(max_length=128)
    issuer = models.CharField(max_length=128, blank=True, default="")
    name = models.CharField(max_length=200, blank=True)
    sex = models.CharField(max_length=1, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    pseudonymised = models.BooleanField(default=False)
    flags = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "patient_id"], name="patient_identity")]
        indexes = [models.Index(fields=["patient_id"]), models.Index(fields=["name"]),
                   # the search by the beginning of an ID (LIKE 'B1798%'): a plain btree under a non-C collation
                   # cannot serve a prefix; the pattern operator class compares bytes (PostgreSQL only)
                   models.Index(fields=["patient_id"], name="patient_id_prefix_idx",
                                opclasses=["varchar_pattern_ops"])]
        permissions = [
            ("view_patient_history", "Can view a patient's dose history"),
            ("view_patient_sheet", "Can print the patient dose sheet"),
        ]

    def __str__(self) -> str:
        return f"Patient {self.pk}"


class StandardExam(models.Model):
    """A standard examination or clinical indication (what DRLs are set for); ``drl`` maps studies onto it."""

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    modality_type = models.CharField(max_length=20, choices=MODALITY_TYPE_CHOICES)
    body_region = models.CharField(max_length=40, blank=True, help_text="effective-dose region: head, chest, ...")
    # "not for DRL": radiotherapy planning, QA, phantom, research - mapped so they are known, kept out of DRL medians
    # and of the Art. 64 population figures (they still get an effective dose estimate with its coverage)
    not_for_drl = models.BooleanField(default=False, help_text="studies mapped here stay out of DRL medians")
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["modality_type", "name"]

    def __str__(self) -> str:
        return self.name


class Study(models.Model):
    """A study, with its current totals (sums over current reports' totals as written, or image totals)."""

    study_instance_uid = models.CharField(max_length=64, unique=True)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="studies")
    equipment = models.ForeignKey(Equipment, null=True, blank=True, on_delete=models.PROTECT, related_name="studies")
    accession_number = models.CharField(max_length=64, blank=True, db_index=True)
    study_datetime = models.DateTimeField(null=True, blank=True)
    study_date = models.DateField(null=True, blank=True)
    modality_type = models.CharField(max_length=20, choices=MODALITY_TYPE_CHOICES, blank=True)
    modality_types = models.JSONField(default=list, blank=True)
    study_description = models.CharField(max_length=255, blank=True)
    requested_procedure_description = models.CharField(max_length=255, blank=True)
    requested_procedure_code = models.CharField(max_length=64, blank=True)
    requested_procedure_scheme = models.CharField(max_length=32, blank=True)
    reason_for_study = models.CharField(max_length=255, blank=True, help_text="Reason for the Requested Procedure")
    performed_procedure_description = models.CharField(max_length=255, blank=True)
    referring_physician = models.CharField(max_length=200, blank=True)
    performing_physician = models.CharField(max_length=200, blank=True)
    operators = models.CharField(max_length=255, blank=True)
    age_years = _quantity_field()
    sex = models.CharField(max_length=1, blank=True)
    # Pregnancy Status (0010,21C0) as the modality recorded it (Directive 2013/59/Euratom Art. 62)
    pregnancy_status = models.CharField(max_length=20, blank=True, choices=PREGNANCY_CHOICES)
    weight_kg = _quantity_field()
    height_m = _quantity_field()
    standard_exam = models.ForeignKey(StandardExam, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="studies")
    demo = models.BooleanField(default=False)
    flags = models.JSONField(default=list, blank=True)
    # each finding behind a flag: {"flag", "quantity", "reason", ...} (dosereg.core.sanity.Finding.as_dict)
    flag_details = models.JSONField(default=list, blank=True)
    # an implausible value awaits a physicist's confirmation: the study stays out of DRL medians until then
    values_unconfirmed = models.BooleanField(default=False)
    values_confirmed_by = models.CharField(max_length=150, blank=True)
    values_confirmed_at = models.DateTimeField(null=True, blank=True)
    # current totals, maintained by the recording service from the current reports (see services.recording)
    dlp_total_mgycm = _quantity_field()
    kap_total_gycm2 = _quantity_field()
    ka_r_total_mgy = _quantity_field()
    fluoro_time_total_s = _quantity_field()
    agd_left_mgy = _quantity_field()
    agd_right_mgy = _quantity_field()
    activity_mbq = _quantity_field()
    effective_dose_msv = _quantity_field()
    effective_dose_method = models.CharField(max_length=200, blank=True)
    # share (0-1) of the study's DLP (or activity, KAP) the estimate covers; below 1 the estimate is partial
    effective_dose_coverage = _quantity_field()
    # dosereg.core.effective_dose.StudyEstimate.detail(): weighting, parts, what was left out and why
    effective_dose_detail = models.JSONField(default=dict, blank=True)
    max_ctdivol_mgy = _quantity_field()
    # peak skin dose (dosereg.core.skin_dose): null where the geometry is incomplete (Ka,r is then the surrogate)
    psd_mgy = _quantity_field()
    # SkinDoseResult.as_dict(): method, uncertainty, per-plane PSD, peak, or the reasons; the map (large) apart
    skin_dose = models.JSONField(default=dict, blank=True)
    skin_dose_map = models.JSONField(default=dict, blank=True)
    event_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "studies"
        indexes = [
            models.Index(fields=["-study_date", "-id"], name="study_date_idx"),
            # a patient's history (dosereg.web.selectors.patient_history) in order, from this index alone
            models.Index(fields=["patient", "study_date", "study_datetime", "id"], name="study_patient_history_idx",
                         include=PATIENT_HISTORY_COLUMNS),
            models.Index(fields=["modality_type", "-study_date"], name="study_modality_date_idx"),
            # the dashboard's studies per modality and week: an index-only scan of the weeks shown, not the table
            models.Index(fields=["study_date", "modality_type"], name="study_date_modality_idx"),
            models.Index(fields=["equipment", "study_date"], name="study_unit_date_idx"),
            models.Index(fields=["standard_exam", "study_date"], name="study_exam_date_idx"),
            models.Index(fields=["demo", "study_date"], name="study_demo_date_idx"),
            models.Index(fields=["study_description"], name="study_description_idx"),
        ]
        permissions = [
            ("view_study_detail", "Can view a study's physical quantities"),
            ("download_dicom", "Can download the original DICOM object"),
            ("export_studies", "Can export study lists"),
            ("import_dose", "Can import dose objects and reprocess them"),
        ]

    def __str__(self) -> str:
        return self.study_instance_uid


class ReceivedObject(models.Model):
    """Every object received (C-STORE, import, query/retrieve), kept on disk so any import can be replayed."""

    STATE_RECEIVED, STATE_INGESTED, STATE_REJECTED = "received", "ingested", "rejected"
    STATE_SUPERSEDED, STATE_DUPLICATE, STATE_SKIPPED = "superseded", "duplicate", "skipped"
    STATE_CHOICES = [(s, s) for s in ("received", "ingested", "rejected", "superseded", "duplicate", "skipped")]
    SOURCE_CHOICES = [("c-store", "C-STORE"), ("import", "Import"), ("query-retrieve", "Query/retrieve"),
                      ("demo", "Demo data")]

    sop_instance_uid = models.CharField(max_length=128, db_index=True)
    sop_class_uid = models.CharField(max_length=64, blank=True)
    sha256 = models.CharField(max_length=64)
    study_instance_uid = models.CharField(max_length=128, blank=True, db_index=True)
    modality = models.CharField(max_length=16, blank=True)
    source = models.CharField(max_length=20, choices=SOURCE_CHOICES)
    calling_ae = models.CharField(max_length=16, blank=True, db_index=True)
    peer_address = models.CharField(max_length=64, blank=True)
    file_path = models.CharField(max_length=500, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=12, choices=STATE_CHOICES, default=STATE_RECEIVED)
    reason = models.TextField(blank=True)
    warnings = models.JSONField(default=list, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sop_instance_uid", "sha256"], name="received_object_identity")]
        indexes = [
            models.Index(fields=["state", "received_at"], name="received_state_idx"),
            models.Index(fields=["calling_ae", "-received_at"], name="received_ae_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.sop_instance_uid} ({self.state})"


class DoseReport(models.Model):
    """One recorded dose object of a study: an RDSR, RRDSR, private summary, PRDSR or dose-carrying image."""

    STATE_CURRENT, STATE_SUPERSEDED = "current", "superseded"
    received_object = models.OneToOneField(ReceivedObject, on_delete=models.CASCADE, related_name="report")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="reports")
    sop_instance_uid = models.CharField(max_length=128, db_index=True)
    sop_class_uid = models.CharField(max_length=64)
    source_kind = models.CharField(max_length=20)
    template = models.CharField(max_length=40, blank=True)
    state = models.CharField(max_length=12, default=STATE_CURRENT,
                             choices=[("current", "current"), ("superseded", "superseded")])
    superseded_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="supersedes")
    modality_types = models.JSONField(default=list, blank=True)
    content_datetime = models.DateTimeField(null=True, blank=True)
    scope_of_accumulation = models.CharField(max_length=40, blank=True)
    scope_uid = models.CharField(max_length=128, blank=True)
    event_uid_count = models.PositiveIntegerField(default=0)
    # the dose content's digest (dosereg.core.versions.dose_digest): same SOP Instance UID and digest = same object
    dose_digest = models.CharField(max_length=64, blank=True)
    predecessor_sop_uids = models.JSONField(default=list, blank=True)  # Predecessor Documents Sequence
    # what this report corrected: [{"quantity", "old", "new"}] against the report(s) it superseded
    corrections = models.JSONField(default=list, blank=True)
    flags = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    content = DocumentJSONField(default=list, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["study", "state"], name="report_study_state_idx"),
                   models.Index(fields=["sop_instance_uid", "dose_digest"], name="report_sop_digest_idx")]


class AccumulatedDose(models.Model):
    """Accumulated dose of a report, per plane (TID 10002, 10012, 10005; TID 10021 totals), as written."""

    report = models.ForeignKey(DoseReport, on_delete=models.CASCADE, related_name="accumulated")
    plane = models.CharField(max_length=8, blank=True, choices=PLANE_CHOICES)
    dlp_total_mgycm = _quantity_field()
    ct_event_count = _quantity_field()
    kap_total_gycm2 = _quantity_field()
    fluoro_kap_total_gycm2 = _quantity_field()
    acquisition_kap_total_gycm2 = _quantity_field()
    ka_r_total_mgy = _quantity_field()
    fluoro_ka_r_total_mgy = _quantity_field()
    acquisition_ka_r_total_mgy = _quantity_field()
    fluoro_time_total_s = _quantity_field()
    acquisition_time_total_s = _quantity_field()
    total_number_of_radiographic_frames = _quantity_field()
    agd_left_mgy = _quantity_field()
    agd_right_mgy = _quantity_field()
    agd_both_mgy = _quantity_field()
    activity_mbq = _quantity_field()
    effective_dose_msv = _quantity_field()
    raw = models.JSONField(default=dict, blank=True)
    attributes = models.JSONField(default=dict, blank=True)


class IrradiationEvent(models.Model):
    """An irradiation event (TID 10003/10013/10022), or one dose-carrying image (``event_type='image_header'``).

    ``is_current`` is false for events of a superseded report, for an image exposure already counted (the same
    exposure sent for processing and for presentation), and for an image header of a study whose report covers its
    modality (``attributes["matched_event_id"]`` then names the report's event it describes, when one matches)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="events")
    report = models.ForeignKey(DoseReport, on_delete=models.CASCADE, related_name="events")
    irradiation_event_uid = models.CharField(max_length=128, null=True, blank=True)
    source_sop_instance_uid = models.CharField(max_length=128, blank=True)
    is_current = models.BooleanField(default=True)
    sequence = models.PositiveIntegerField(default=0, help_text="order in the source object")
    event_type = models.CharField(max_length=40, blank=True)
    datetime = models.DateTimeField(null=True, blank=True)
    protocol = models.CharField(max_length=255, blank=True)
    target_region = models.CharField(max_length=128, blank=True)
    target_region_code = models.CharField(max_length=64, blank=True)
    plane = models.CharField(max_length=8, blank=True, choices=PLANE_CHOICES)
    is_localizer = models.BooleanField(default=False)
    ctdi_phantom = models.CharField(max_length=16, blank=True)
    laterality = models.CharField(max_length=8, blank=True)
    view = models.CharField(max_length=64, blank=True)
    exposure_key = models.CharField(max_length=255, blank=True)
    value_digest = models.CharField(max_length=32, blank=True)  # dosereg.core.versions.event_digest
    # CT
    ctdivol_mgy = _quantity_field()
    dlp_mgycm = _quantity_field()
    ctdiw_mgy = _quantity_field()
    scanning_length_mm = _quantity_field()
    exposure_time_s = _quantity_field()
    pitch_factor = _quantity_field()
    nominal_single_collimation_mm = _quantity_field()
    nominal_total_collimation_mm = _quantity_field()
    exposure_time_per_rotation_s = _quantity_field()
    ssde_mgy = _quantity_field()  # DoseReg's own (dosereg.core.ssde), method in ssde_method
    ssde_method = models.CharField(max_length=8, blank=True, help_text="DICOM CID 10023 code")
    ssde_reported_mgy = _quantity_field()  # the scanner's own SSDE, as sent
    water_equivalent_diameter_mm = _quantity_field()
    number_of_xray_sources = _quantity_field()
    # projection
    kap_gycm2 = _quantity_field()
    ka_r_mgy = _quantity_field()
    positioner_primary_angle_deg = _quantity_field()
    positioner_secondary_angle_deg = _quantity_field()
    table_longitudinal_position_mm = _quantity_field()
    table_lateral_position_mm = _quantity_field()
    table_height_position_mm = _quantity_field()
    distance_source_to_isocenter_mm = _quantity_field()
    distance_source_to_detector_mm = _quantity_field()
    distance_source_to_rp_mm = _quantity_field()
    collimated_field_area_m2 = _quantity_field()
    collimated_field_height_mm = _quantity_field()
    collimated_field_width_mm = _quantity_field()
    pulse_rate_per_s = _quantity_field()
    pulse_width_ms = _quantity_field()
    number_of_pulses = _quantity_field()
    irradiation_duration_s = _quantity_field()
    exposure_mas = _quantity_field()
    number_of_frames = _quantity_field()
    kvp = _quantity_field()
    tube_current_ma = _quantity_field()
    max_tube_current_ma = _quantity_field()
    # mammography
    agd_mgy = _quantity_field()
    esak_mgy = _quantity_field()
    compression_thickness_mm = _quantity_field()
    hvl_mmal = _quantity_field()
    # nuclear medicine
    activity_mbq = _quantity_field()
    effective_dose_msv = _quantity_field()
    # derived (method label and the source of the factors)
    effective_dose_estimate_msv = _quantity_field()
    effective_dose_method = models.CharField(max_length=200, blank=True)
    raw = DocumentJSONField(default=dict, blank=True)
    attributes = DocumentJSONField(default=dict, blank=True)
    content = DocumentJSONField(default=list, blank=True)

    class Meta:
        ordering = ["study_id", "sequence", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "irradiation_event_uid"],
                                    condition=Q(is_current=True) & Q(irradiation_event_uid__isnull=False),
                                    name="current_event_uid_per_study"),
        ]
        indexes = [
            models.Index(fields=["study", "is_current"], name="event_study_idx"),
            models.Index(fields=["irradiation_event_uid"], name="event_uid_idx"),
        ]


class DoseCheckOverride(models.Model):
    """TID 10015 CT Dose Check details of one acquisition: notification or alert value exceeded, reason, who."""

    report = models.ForeignKey(DoseReport, on_delete=models.CASCADE, related_name="dose_checks")
    irradiation_event_uid = models.CharField(max_length=128, blank=True)
    kind = models.CharField(max_length=12)
    dlp_configured = models.BooleanField(default=False)
    ctdivol_configured = models.BooleanField(default=False)
    dlp_value_mgycm = _quantity_field()
    ctdivol_value_mgy = _quantity_field()
    dlp_forward_estimate_mgycm = _quantity_field()
    ctdivol_forward_estimate_mgy = _quantity_field()
    reason_for_proceeding = models.TextField(blank=True)
    person_name = models.CharField(max_length=200, blank=True)


class SiteSettings(models.Model):
    """Site-wide choices made by an administrator (a single row, pk=1)."""

    REFERRER_CHOICES = [("physical", "Physical quantities"), ("effective_dose", "Effective dose estimate"),
                        ("drl", "Position against the DRL")]
    EFFECTIVE_DOSE_WEIGHTING_CHOICES = [("ICRP 103", "ICRP 103 (Directive 2013/59/Euratom)"),
                                        ("ICRP 60", "ICRP 60 (continuity with older reports)")]
    referrer_summary = models.CharField(max_length=20, choices=REFERRER_CHOICES, default="physical")
    dose_text_template = models.TextField(blank=True, help_text="Art. 58(b) dose text; blank uses the default")
    drl_standard_size = models.BooleanField(default=False, help_text="ICRP 135 standard-size adults only")
    drl_weight_min_kg = models.FloatField(default=50)
    drl_weight_max_kg = models.FloatField(default=90)
    drl_min_patients = models.PositiveIntegerField(default=20)
    retention = models.JSONField(default=dict, blank=True)
    effective_dose_weighting = models.CharField(max_length=10, choices=EFFECTIVE_DOSE_WEIGHTING_CHOICES,
                                                default="ICRP 103")
    population_include_partial = models.BooleanField(
        default=False, help_text="Art. 64 totals also count partial effective dose estimates")

    class Meta:
        verbose_name_plural = "site settings"
        permissions = [("manage_site_settings", "Can change site settings"),
                       ("view_metrics", "Can read the Prometheus metrics (/metrics)")]

    @classmethod
    def load(cls) -> SiteSettings:
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class AuditLog(models.Model):
    """Who viewed or changed what, and when.  Written by services and views; read by administrators."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=40, db_index=True)
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=128, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]
        permissions = [("view_audit_trail", "Can view the audit trail")]


class NotificationSubscription(models.Model):
    """A user's wish to be told about a topic, optionally narrowed by room, modality type or minimum severity."""

    TOPICS = [("alert", "Dose alerts"), ("drl_due", "DRL comparison due"), ("unmapped_names", "Unmapped names"),
              ("incident", "Incident reports")]
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscriptions")
    topic = models.CharField(max_length=20, choices=TOPICS)
    room = models.ForeignKey(Room, null=True, blank=True, on_delete=models.CASCADE)
    modality_type = models.CharField(max_length=20, blank=True, choices=MODALITY_TYPE_CHOICES)
    min_severity = models.CharField(max_length=20, blank=True)
    active = models.BooleanField(default=True)


class NotificationDelivery(models.Model):
    """One message to one recipient; rows first, sending after (retried on transient failure, never twice)."""

    STATE_CHOICES = [("pending", "pending"), ("sent", "sent"), ("failed", "failed")]
    dedupe_key = models.CharField(max_length=200, unique=True)
    topic = models.CharField(max_length=20)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    address = models.CharField(max_length=254)
    subject = models.CharField(max_length=255)
    body = models.TextField()
    object_type = models.CharField(max_length=60, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=10, choices=STATE_CHOICES, default="pending", db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)


# --- staff dosimetry -----------------------------------------------------------------------------------------------
class StaffMember(models.Model):
    """A member of staff who wears dosimeters.  Staff doses are personal data: owner, physicists, admins only."""

    name = models.CharField(max_length=200)
    role = models.CharField(max_length=100, blank=True)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="staff_member")
    pregnancy_declared = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        permissions = [("view_all_staff_doses", "Can view every staff member's doses")]

    def __str__(self) -> str:
        return self.name


class Dosimeter(models.Model):
    POSITIONS = [("under_apron", "Under apron"), ("over_apron_collar", "Over apron, collar"), ("eye", "Eye"),
                 ("ring", "Ring"), ("wrist", "Wrist")]
    SOURCES = [("epd", "Electronic personal dosimeter"), ("approved_service", "Approved dosimetry service")]
    dosimeter_id = models.CharField(max_length=64, unique=True)
    staff_member = models.ForeignKey(StaffMember, on_delete=models.CASCADE, related_name="dosimeters")
    position = models.CharField(max_length=20, choices=POSITIONS)
    source = models.CharField(max_length=20, choices=SOURCES)
    room = models.ForeignKey(Room, null=True, blank=True, on_delete=models.SET_NULL)

    def __str__(self) -> str:
        return self.dosimeter_id


class StaffDoseReading(models.Model):
    """A dosimeter reading over an interval; EPD readings are matched to procedures, approved-service readings
    are the legal record."""

    dosimeter = models.ForeignKey(Dosimeter, on_delete=models.CASCADE, related_name="readings")
    start = models.DateTimeField()
    end = models.DateTimeField()
    source = models.CharField(max_length=20, choices=Dosimeter.SOURCES)
    room = models.ForeignKey(Room, null=True, blank=True, on_delete=models.SET_NULL)
    hp10_usv = _quantity_field()
    hp007_usv = _quantity_field()
    hp3_usv = _quantity_field()
    raw = models.JSONField(default=dict, blank=True)
    study = models.ForeignKey(Study, null=True, blank=True, on_delete=models.SET_NULL, related_name="staff_readings")
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dosimeter", "start", "end"], name="reading_identity")]
        indexes = [models.Index(fields=["room", "start"], name="reading_room_start_idx")]
