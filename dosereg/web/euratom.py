"""The Euratom page (/euratom/): what Directive 2013/59/Euratom asks of the registry, on one page, from the services
that already compute it (dosereg.registry.services.euratom) and the DRL and incident records.

- Art. 64: examinations and effective dose estimates per modality and examination in a year (complete and partial
  estimates counted apart: a partial estimate covers only part of the examination, dosereg.core.effective_dose).
- Art. 60(3): the units that report dose and those that do not.
- Art. 56 and 58(f): when the DRL comparison was last made and when it is due again; units due after a change.
- Art. 63: significant events and the date each must be notified by.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict

from django.db.models import Count, Q, Sum
from django.utils import timezone

from dosereg.core.display import Separators, format_number
from dosereg.core.quantities import MODALITY_TYPES
from dosereg.registry.models import SiteSettings
from dosereg.registry.services.euratom import (
    equipment_reporting_status,
    population_columns,
    population_queryset,
    population_rows,
)
from dosereg.registry.spreadsheet import write_csv
from drl.models import DrlComparison, DrlSet, DueComparison
from triggers.incidents.models import IncidentReport

# ICRP Publication 135 (2017) asks for local practice to be compared with the DRLs at regular intervals; DoseReg
# schedules a yearly comparison, so a review is due a year after the last one.
DRL_REVIEW_INTERVAL = dt.timedelta(days=365)
_CSV_NUMBER = Separators(thousands="", decimal=".")  # machine-readable: no grouping, never an exponent


def population_by_exam(*, year: int, include_demo: bool = False) -> list[dict]:
    """Per examination (the mapped standard examination, else the modality type): the number of examinations, how
    many have a complete, a partial or no effective dose estimate, and the sum and mean of the complete ones (and
    of the partial ones too where the site counts them, SiteSettings.population_include_partial)."""
    include_partial = SiteSettings.load().population_include_partial
    complete = Q(effective_dose_msv__isnull=False) & (Q(effective_dose_coverage__isnull=True)
                                                      | Q(effective_dose_coverage__gte=1.0))
    partial = Q(effective_dose_msv__isnull=False, effective_dose_coverage__lt=1.0)
    counted = complete | partial if include_partial else complete
    rows = (population_queryset(year=year, include_demo=include_demo)
            .values("modality_type", "standard_exam_id", "standard_exam__code", "standard_exam__name")
            .annotate(examinations=Count("pk"), complete=Count("pk", filter=complete),
                      partial=Count("pk", filter=partial), counted=Count("pk", filter=counted),
                      e_sum=Sum("effective_dose_msv", filter=counted)).order_by())
    out = []
    for r in rows:
        exam = r["standard_exam_id"] is not None
        out.append({
            "modality_type": r["modality_type"] or "",
            "exam": r["standard_exam__name"] if exam else "",
            "exam_code": r["standard_exam__code"] if exam else "",
            "examinations": r["examinations"], "complete": r["complete"], "partial": r["partial"],
            "without": r["examinations"] - r["complete"] - r["partial"],
            "e_sum_msv": r["e_sum"], "e_mean_msv": r["e_sum"] / r["counted"] if r["counted"] else None,
        })
    order = {m: i for i, m in enumerate(MODALITY_TYPES)}
    out.sort(key=lambda r: (order.get(r["modality_type"], 99), r["exam"] == "", r["exam"]))
    return out


def modality_totals(rows: list[dict]) -> list[tuple[str, int]]:
    """Examinations per modality type, in the catalogue's order (for the bar chart)."""
    totals: dict[str, int] = defaultdict(int)
    for r in rows:
        totals[r["modality_type"]] += r["examinations"]
    return [(m, totals[m]) for m in MODALITY_TYPES if totals.get(m)] + [
        (m, n) for m, n in totals.items() if m not in MODALITY_TYPES]


def drl_review(*, today: dt.date | None = None) -> dict:
    """The last yearly (or any) DRL comparison, the date the next review is due, the units due after a change and
    the DRL sets in use with their publication year."""
    today = today or timezone.localdate()
    last = DrlComparison.objects.filter(equipment__isnull=True).order_by("-created_at").first()
    due_date = (last.created_at.date() + DRL_REVIEW_INTERVAL) if last else None
    return {
        "last": last, "due_date": due_date, "overdue": last is None or (due_date is not None and due_date < today),
        "due_units": list(DueComparison.objects.filter(resolved_at__isnull=True).select_related("equipment")
                          .order_by("since")),
        "sets": list(DrlSet.objects.filter(active=True).order_by("priority", "name")),
    }


def notification_deadlines(*, today: dt.date | None = None) -> list[IncidentReport]:
    """Significant events (Art. 63) not yet notified, the earliest deadline first, each marked ``overdue``."""
    today = today or timezone.localdate()
    rows = list(IncidentReport.objects.filter(is_significant=True, notified_date__isnull=True)
                .order_by("notification_due_date", "id"))
    for r in rows:
        r.overdue = bool(r.notification_due_date and r.notification_due_date < today)
    return rows


def euratom_overview(*, year: int, include_demo: bool = False) -> dict:
    population = population_by_exam(year=year, include_demo=include_demo)
    units = equipment_reporting_status(include_demo=include_demo)
    return {
        "year": year, "include_demo": include_demo, "population": population,
        "modality_totals": modality_totals(population),
        "examinations": sum(r["examinations"] for r in population),
        "units": units, "units_not_reporting": [u for u in units if u["status"] != "reporting"],
        "drl": drl_review(), "notifications": notification_deadlines(),
        "include_partial": SiteSettings.load().population_include_partial,
    }


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return format_number(value, 6, seps=_CSV_NUMBER)
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return value


def population_csv(*, year: int, include_demo: bool = False) -> str:
    """The Art. 64 table by examination, age band and sex: the same file as ``manage.py euratom_population``."""
    columns = population_columns()
    buffer = io.StringIO()
    write_csv(buffer, columns, ([_cell(r[c]) for c in columns]
                                for r in population_rows(year=year, include_demo=include_demo)))
    return buffer.getvalue()


UNIT_COLUMNS = ["id", "name", "room", "status", "sends_dose_reports", "last_report_at", "days_since_last_report",
                "last_object_at", "first_seen", "studies", "silent_after_days"]


def units_csv(*, include_demo: bool = False) -> str:
    """Art. 60(3): every unit, whether it reports dose, the last report."""
    buffer = io.StringIO()
    write_csv(buffer, UNIT_COLUMNS, ([_cell(u[c]) for c in UNIT_COLUMNS]
                                     for u in equipment_reporting_status(include_demo=include_demo)))
    return buffer.getvalue()
