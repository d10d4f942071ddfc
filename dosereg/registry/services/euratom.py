"""Directive 2013/59/Euratom duties the registry helps with (see docs/euratom.md for the article-by-article table).

- ``equipment_reporting_status()``: Art. 60(3) -- which units send dose reports and since when nothing arrived.
- ``population_rows(year=...)``: Art. 64 -- examination frequencies and dose distributions by examination, age band
  and sex, for the population dose estimate.
- ``retention_settings()`` and ``purge_studies(before=..., legal_holds=...)``: how long data are kept, and deleting
  what is older, skipping what is under a legal hold.  The registry imports no other app: the caller says which
  studies are held (the ``purge`` command asks the incident reports, ``dosereg.web.retention``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection, transaction
from django.db.models import Aggregate, Avg, Case, CharField, Count, F, FloatField, Q, Value, When
from django.db.models.deletion import ProtectedError, RestrictedError
from django.utils import timezone

from dosereg.core.quantities import STUDY_TOTALS
from dosereg.registry.models import DoseReport, Equipment, Patient, ReceivedObject, SiteSettings, Study
from dosereg.registry.services.audit import audit_record

logger = logging.getLogger(__name__)


# --- Art. 60(3): units that report dose ----------------------------------------------------------------------------
def _silent_after_days() -> int:
    raw = os.environ.get("DOSEREG_UNIT_SILENT_DAYS", "").strip()
    try:
        return max(1, int(raw)) if raw else 30
    except ValueError:
        return 30


def equipment_reporting_status(*, now: dt.datetime | None = None, include_demo: bool = False) -> list[dict]:
    """Per unit: does it send dose reports (RDSR/RRDSR), when did the last report and the last object arrive, and
    its status: ``reporting`` (a report within DOSEREG_UNIT_SILENT_DAYS, default 30), ``silent`` (reported before,
    nothing since), ``never`` (objects but never a dose report: images only, or nothing parsed)."""
    now = now or timezone.now()
    limit = dt.timedelta(days=_silent_after_days())
    units = Equipment.objects.select_related("room").annotate(study_count=Count("studies")).order_by(
        "room__name", "manufacturer", "model", "station_name")
    if not include_demo:
        units = units.filter(demo=False)
    out = []
    for unit in units:
        last = unit.last_report_at
        if not unit.sends_dose_reports or last is None:
            status = "never"
        elif now - last > limit:
            status = "silent"
        else:
            status = "reporting"
        out.append({
            "id": unit.pk, "name": unit.display_name, "room": unit.room.name if unit.room_id else "",
            "sends_dose_reports": unit.sends_dose_reports, "last_report_at": last,
            "last_object_at": unit.last_object_at, "first_seen": unit.first_seen, "studies": unit.study_count,
            "days_since_last_report": (now - last).days if last else None,
            "status": status, "silent_after_days": limit.days,
        })
    return out


# --- Art. 64: population doses -------------------------------------------------------------------------------------
# (label, lower bound inclusive, upper bound exclusive) in years at the examination
AGE_BANDS = [("0", 0, 1), ("1-4", 1, 5), ("5-9", 5, 10), ("10-14", 10, 15), ("15-17", 15, 18), ("18-39", 18, 40),
             ("40-59", 40, 60), ("60-74", 60, 75), ("75+", 75, None)]
POPULATION_QUANTITIES = STUDY_TOTALS  # the study totals of the catalogue; each name carries its unit
STATS = ("n", "median", "mean", "p75")


class Percentile(Aggregate):
    """PostgreSQL ``percentile_cont(p) WITHIN GROUP (ORDER BY x)`` (nulls ignored)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(p)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, p: float, **extra):
        super().__init__(expression, p=float(p), **extra)


def _age_band_expr():
    whens = []
    for label, lo, hi in AGE_BANDS:
        cond = Q(age_years__gte=lo) if hi is None else Q(age_years__gte=lo, age_years__lt=hi)
        whens.append(When(cond, then=Value(label)))
    return Case(*whens, default=Value("unknown"), output_field=CharField())


def _sex_expr():
    return Case(When(sex__in=["M", "m"], then=Value("M")), When(sex__in=["F", "f"], then=Value("F")),
                When(sex__in=["O", "o"], then=Value("O")), default=Value("unknown"), output_field=CharField())


def population_queryset(*, year: int, include_demo: bool = False):
    qs = Study.objects.filter(study_date__gte=dt.date(year, 1, 1), study_date__lte=dt.date(year, 12, 31))
    if not include_demo:
        qs = qs.filter(demo=False)
    return qs


def _percentile(sorted_values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (as PostgreSQL percentile_cont)."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = p * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def population_rows(*, year: int, include_demo: bool = False) -> list[dict]:
    """One row per (examination, age band, sex): the number of examinations and, per dose quantity, the number of
    studies with a value, the median, mean and 75th percentile.  The examination is the mapped standard examination,
    else the modality type.  Effective dose: the study's recorded estimate (with its method labels); blank where no
    method exists (e.g. radiography and fluoroscopy: no KAP-to-E coefficients in the reference data)."""
    qs = (population_queryset(year=year, include_demo=include_demo)
          .annotate(age_band=_age_band_expr(), sex_band=_sex_expr()))
    keys = ["standard_exam_id", "standard_exam__code", "standard_exam__name", "modality_type", "age_band", "sex_band"]
    aggregates = {"examinations": Count("pk")}
    postgres = connection.vendor == "postgresql"
    for name in POPULATION_QUANTITIES:
        aggregates[f"{name}_n"] = Count(name)
        aggregates[f"{name}_mean"] = Avg(name)
        if postgres:
            aggregates[f"{name}_median"] = Percentile(F(name), 0.5)
            aggregates[f"{name}_p75"] = Percentile(F(name), 0.75)
    groups = list(qs.values(*keys).annotate(**aggregates).order_by())

    def key_of(row) -> tuple:
        return tuple(row[k] for k in keys)

    if not postgres:  # the embedded SQLite mode: percentiles in Python over one year's values, one query per quantity
        for name in POPULATION_QUANTITIES:
            values: dict[tuple, list[float]] = defaultdict(list)
            for row in qs.filter(**{f"{name}__isnull": False}).values(*keys, name).order_by(name):
                values[key_of(row)].append(row[name])
            for g in groups:
                v = values.get(key_of(g))
                g[f"{name}_median"] = statistics.median(v) if v else None
                g[f"{name}_p75"] = _percentile(v, 0.75) if v else None
    methods: dict[tuple, set[str]] = defaultdict(set)
    for row in (qs.filter(effective_dose_msv__isnull=False).exclude(effective_dose_method="")
                .values(*keys, "effective_dose_method").distinct().order_by()):
        methods[key_of(row)].add(row["effective_dose_method"])

    band_order = {label: i for i, (label, _lo, _hi) in enumerate(AGE_BANDS)}
    out = []
    for g in groups:
        exam = g["standard_exam_id"] is not None
        row = {
            "year": year,
            "group_type": "standard_exam" if exam else "modality_type",
            "exam_code": g["standard_exam__code"] if exam else (g["modality_type"] or "unknown"),
            "exam_name": g["standard_exam__name"] if exam else (g["modality_type"] or "unknown modality"),
            "modality_type": g["modality_type"] or "unknown",
            "age_band": g["age_band"], "sex": g["sex_band"], "examinations": g["examinations"],
        }
        for name in POPULATION_QUANTITIES:
            for stat in STATS:
                row[f"{name}_{stat}"] = g.get(f"{name}_{stat}")
        found = sorted(methods.get(key_of(g), ()))
        row["effective_dose_method"] = "; ".join(found) if found else (
            "" if not row["effective_dose_msv_n"] else "method not recorded")
        if not row["effective_dose_msv_n"]:
            row["effective_dose_method"] = "no estimate (no method for this examination)"
        out.append(row)
    out.sort(key=lambda r: (r["group_type"] != "standard_exam", r["modality_type"], r["exam_code"],
                            band_order.get(r["age_band"], 99), r["sex"]))
    return out


def population_columns() -> list[str]:
    cols = ["year", "group_type", "exam_code", "exam_name", "modality_type", "age_band", "sex", "examinations"]
    for name in POPULATION_QUANTITIES:  # every name carries its unit (mgycm, mgy, gycm2, s, mbq, msv)
        cols += [f"{name}_{stat}" for stat in STATS]
    return cols + ["effective_dose_method"]


# --- retention and purge -------------------------------------------------------------------------------------------
RETENTION_TYPES = {
    "studies": "studies with their dose reports, irradiation events and accumulated doses",
    "received_files": "received DICOM objects (the stored files)",
    "staff_doses": "staff dosimeter readings",
    "audit": "audit trail entries",
}


def retention_settings() -> dict[str, int | None]:
    """The minimum retention in years per data type: environment ``DOSEREG_RETENTION_<TYPE>_YEARS`` (e.g.
    DOSEREG_RETENTION_STUDIES_YEARS=10), else ``SiteSettings.retention`` ({"studies": 10, ...}), else None (no
    minimum configured).  ``purge`` refuses to delete data younger than the configured minimum."""
    site = SiteSettings.load().retention or {}
    out: dict[str, int | None] = {}
    for key in RETENTION_TYPES:
        raw = os.environ.get(f"DOSEREG_RETENTION_{key.upper()}_YEARS", "").strip()
        value = raw or site.get(key)
        try:
            out[key] = int(value) if value not in (None, "") else None
        except (TypeError, ValueError):
            logger.warning("retention for %s is not a whole number of years: %r (ignored)", key, value)
            out[key] = None
    return out


# study ids of a batch -> {study id: why it must be kept}; given by the caller (the registry imports no other app)
LegalHolds = Callable[[list[int]], dict[int, str]]


@dataclass
class PurgeResult:
    before: dt.date
    dry_run: bool
    candidates: int = 0
    deleted_studies: int = 0
    deleted_received_objects: int = 0
    deleted_files: int = 0
    deleted_patients: int = 0
    held: dict[int, str] = field(default_factory=dict)
    missing_files: int = 0

    def lines(self) -> list[str]:
        verb = "would delete" if self.dry_run else "deleted"
        out = [f"studies before {self.before.isoformat()}: {self.candidates}",
               f"{verb} studies: {self.deleted_studies}",
               f"{verb} received objects: {self.deleted_received_objects} (files: {self.deleted_files})",
               f"{verb} patients left without studies: {self.deleted_patients}",
               f"kept under a legal hold: {len(self.held)}"]
        out += [f"  study {sid}: {reason}" for sid, reason in sorted(self.held.items())]
        if self.missing_files:
            out.append(f"files already missing: {self.missing_files}")
        return out


class RetentionViolation(Exception):
    """--before would delete data younger than the configured retention period."""


def purge_studies(*, before: dt.date, legal_holds: LegalHolds, dry_run: bool = False, user=None,
                  today: dt.date | None = None, batch_size: int = 500) -> PurgeResult:
    """Delete the studies dated before ``before`` (and their reports, events, accumulated doses, alerts, received
    objects with their files, and patients left without studies), skipping those ``legal_holds`` names (asked once
    per batch).  Writes one audit entry.  With ``dry_run`` nothing changes."""
    today = today or timezone.localdate()
    years = retention_settings().get("studies")
    if years:
        try:
            earliest = today.replace(year=today.year - years)
        except ValueError:  # 29 February
            earliest = today.replace(year=today.year - years, day=28)
        if before > earliest:
            raise RetentionViolation(f"--before {before.isoformat()} would delete studies younger than the retention "
                                     f"period of {years} years (earliest allowed: {earliest.isoformat()})")
    result = PurgeResult(before=before, dry_run=dry_run)
    candidates = list(Study.objects.filter(study_date__lt=before).values_list("pk", flat=True).order_by("pk"))
    result.candidates = len(candidates)
    for i in range(0, len(candidates), batch_size):
        batch = candidates[i:i + batch_size]
        holds = legal_holds(batch)
        result.held.update(holds)
        ids = [pk for pk in batch if pk not in holds]
        if ids:
            _purge_batch(ids, result, dry_run)
    audit_record(user=user, action="purge" if not dry_run else "purge_dry_run", object_type="study",
                 object_id=f"before {before.isoformat()}",
                 detail={"before": before.isoformat(), "dry_run": dry_run, "candidates": result.candidates,
                         "deleted_studies": result.deleted_studies,
                         "deleted_received_objects": result.deleted_received_objects,
                         "deleted_patients": result.deleted_patients, "held": len(result.held),
                         "held_ids": sorted(result.held)[:1000]})
    return result


def _purge_batch(ids: list[int], result: PurgeResult, dry_run: bool) -> None:
    uids = list(Study.objects.filter(pk__in=ids).values_list("study_instance_uid", flat=True))
    patient_ids = set(Study.objects.filter(pk__in=ids).values_list("patient_id", flat=True))
    received = set(DoseReport.objects.filter(study_id__in=ids).values_list("received_object_id", flat=True))
    received |= set(ReceivedObject.objects.filter(study_instance_uid__in=uids).values_list("pk", flat=True))
    files = [p for p in ReceivedObject.objects.filter(pk__in=received).values_list("file_path", flat=True) if p]
    if dry_run:
        result.deleted_studies += len(ids)
        result.deleted_received_objects += len(received)
        result.deleted_files += len(files)
        remaining = set(Study.objects.filter(patient_id__in=patient_ids).exclude(pk__in=ids)
                        .values_list("patient_id", flat=True))
        result.deleted_patients += len(patient_ids - remaining)
        return
    deleted_ids = ids
    try:
        with transaction.atomic():
            Study.objects.filter(pk__in=ids).delete()
    except (ProtectedError, RestrictedError):
        deleted_ids = []  # one by one, holding those another app protects
        for pk in ids:
            try:
                with transaction.atomic():
                    Study.objects.filter(pk=pk).delete()
                deleted_ids.append(pk)
            except (ProtectedError, RestrictedError) as exc:
                models = sorted({type(o).__name__ for o in getattr(exc, "protected_objects", None)
                                 or getattr(exc, "restricted_objects", ())})
                result.held[pk] = f"protected by {', '.join(models) or 'another record'}"
        kept_uids = set(Study.objects.filter(pk__in=ids).values_list("study_instance_uid", flat=True))
        received = set(ReceivedObject.objects.filter(pk__in=received).exclude(study_instance_uid__in=kept_uids)
                       .values_list("pk", flat=True))
        files = [p for p in ReceivedObject.objects.filter(pk__in=received).values_list("file_path", flat=True) if p]
    with transaction.atomic():
        ReceivedObject.objects.filter(pk__in=received).delete()
        orphans = Patient.objects.filter(pk__in=patient_ids, studies__isnull=True)
        result.deleted_patients += orphans.count()
        orphans.delete()
    result.deleted_studies += len(deleted_ids)
    result.deleted_received_objects += len(received)
    for path in files:
        try:
            Path(path).unlink()
            result.deleted_files += 1
        except FileNotFoundError:
            result.missing_files += 1
        except OSError as exc:
            logger.warning("purge: cannot delete %s: %s", path, exc.strerror)
