"""Read-side queries for the pages and the API.  Aggregation happens in the database; every function issues a
small, fixed number of queries however many rows it lists."""

from __future__ import annotations

import datetime as dt
import re
import socket
from collections import defaultdict

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Max, Min, Q, QuerySet
from django.db.models import F as models_F
from django.utils import timezone

from dosereg.core.quantities import MODALITY_TOTALS, MODALITY_TYPES, QUANTITIES, STUDY_TOTALS
from dosereg.registry.models import (
    PATIENT_HISTORY_COLUMNS,
    AccumulatedDose,
    DoseReport,
    Equipment,
    EquipmentChange,
    IrradiationEvent,
    Patient,
    ReceivedObject,
    StandardExam,
    Study,
)
from dosereg.registry.services.pseudonyms import patient_pseudonym, pseudonym_enabled
from dosereg.web import formatting
from triggers import selectors as alert_selectors

LIST_CAP = 1_000  # lists count at most this many rows past the current page (then "N+"): never scan millions


# --- patients ------------------------------------------------------------------------------------------------------
# letters and the accented forms a name may carry in the registry (DICOM PN in ISO_IR 100/192 text): a search for
# "muller" finds "Müller", "Mueller" is left to the user (a transliteration, not an accent)
_ACCENTS = {
    "a": "aàáâãäåā", "c": "cçćč", "e": "eèéêëēė", "i": "iìíîïī", "n": "nñń", "o": "oòóôõöøō", "s": "sśšß",
    "u": "uùúûüū", "y": "yýÿ", "z": "zźżž",
}
_FOLD = {ch: base for base, chars in _ACCENTS.items() for ch in chars}


def _fold(text: str) -> str:
    """Lower case without accents ("Müller" -> "muller")."""
    return "".join(_FOLD.get(ch, ch) for ch in text.lower())


def name_pattern(part: str) -> str:
    """A regular expression matching ``part`` whatever the case and accents of the stored name (used with
    ``__iregex``, which SQLite and PostgreSQL both run in the database)."""
    out = []
    for ch in _fold(part):
        chars = _ACCENTS.get(ch)
        out.append(f"[{chars}{chars.upper()}]" if chars else re.escape(ch))
    return "".join(out)


def _name_matches(query: str, limit: int) -> set[int]:
    """Patients whose name holds every part of the query (family or given name, any order, any case or accent)."""
    parts = [p for p in re.split(r"[\s,^]+", query) if len(p) >= 2]
    if not parts:
        return set()
    qs = Patient.objects.exclude(name="")
    for part in parts:
        qs = qs.filter(name__iregex=name_pattern(part))
    return set(qs.values_list("pk", flat=True)[:limit])


def patient_search(*, query: str = "", date: dt.date | None = None, limit: int = 50) -> list[dict]:
    """Patients matching an ID or the beginning of one, an accession number, the parts of a name (case and accents
    ignored), or having a study on a date.  Each criterion is its own query (an OR across a join would scan the
    study table).  With pseudonymisation on, the registry holds only the pseudonym: the real ID must be typed
    whole (its pseudonym is looked up), and there are no names."""
    query = (query or "").strip()
    if not query and date is None:
        return []
    pks: set[int] | None = None
    if query:
        found = set(Patient.objects.filter(patient_id__startswith=query).values_list("pk", flat=True)[:limit])
        if pseudonym_enabled():
            found |= set(Patient.objects.filter(patient_id=patient_pseudonym(query)).values_list("pk", flat=True))
        found |= set(Study.objects.filter(accession_number=query).values_list("patient_id", flat=True)[:limit])
        looks_like_name = not any(ch.isdigit() for ch in query)  # an ID or accession number: no name scan
        if not pseudonym_enabled() and looks_like_name and len(found) < limit:
            found |= _name_matches(query, limit)
        pks = found
    if date is not None:
        on_date = Study.objects.filter(study_date=date)
        if pks is not None:
            on_date = on_date.filter(patient_id__in=pks)
        pks = set(on_date.values_list("patient_id", flat=True).distinct()[:limit])
    if not pks:
        return []
    rows = list(Patient.objects.filter(pk__in=pks).order_by("name", "patient_id").values(
        "pk", "patient_id", "issuer", "name", "sex", "birth_date")[:limit])
    stats = {r["patient_id"]: r for r in Study.objects.filter(patient_id__in=[r["pk"] for r in rows])
             .values("patient_id").annotate(n=Count("id"), last=Max("study_date"), first=Min("study_date"))}
    for r in rows:
        s = stats.get(r["pk"], {})
        r.update(study_count=s.get("n", 0), last_study=s.get("last"), first_study=s.get("first"))
    return rows


def patient_history(patient: Patient) -> dict:
    """The patient's studies in time order, totals per quantity type, alert badges."""
    # only the columns the history shows: PostgreSQL reads them from study_patient_history_idx alone
    studies = list(Study.objects.filter(patient=patient).only(*PATIENT_HISTORY_COLUMNS, "study_date", "study_datetime")
                   .select_related("equipment__room", "standard_exam").order_by("study_date", "study_datetime", "id"))
    totals = patient_totals(studies)
    alerts = alert_selectors.alert_badges([s.pk for s in studies])
    for s in studies:
        s.alert_badges = alerts.get(s.pk, [])
        s.shown_totals = study_shown_totals(s)
    return {"patient": patient, "studies": studies, "totals": totals}


def patient_totals(studies: list[Study]) -> dict:
    """A patient's totals per quantity over their studies (a patient has tens, not millions: summed here, where a
    value stored before the border checks cannot overflow the database's SUM and fail the page)."""
    totals: dict = {"n": len(studies)}
    for name in STUDY_TOTALS:
        values = [v for v in (getattr(s, name) for s in studies) if v is not None]
        if name == "max_ctdivol_mgy":
            totals[name] = max(values) if values else None
        else:
            totals[name] = sum(values) if values else None  # inf at worst, which the formatter shows as a dash
    return totals


def study_shown_totals(study: Study) -> list[tuple[str, float]]:
    """The totals that belong to the study's modality types, in display order (field, value), non-null only."""
    fields: list[str] = []
    for m in (study.modality_types or [study.modality_type]):
        for f in MODALITY_TOTALS.get(m, []):
            if f not in fields:
                fields.append(f)
    for f in STUDY_TOTALS:  # anything else the study carries (e.g. a KAP on a CT-only study) is shown too
        if f not in fields and f != "effective_dose_msv" and getattr(study, f) is not None:
            fields.append(f)
    return [(f, getattr(study, f)) for f in fields if getattr(study, f) is not None]


# --- one study -----------------------------------------------------------------------------------------------------
def study_detail(study: Study) -> dict:
    """Events (current first, by plane), reports with their accumulated doses, the source objects."""
    events = list(IrradiationEvent.objects.filter(study=study).order_by("-is_current", "report_id", "sequence", "id"))
    reports = list(DoseReport.objects.filter(study=study).select_related("received_object").order_by("recorded_at"))
    accumulated = defaultdict(list)
    for acc in AccumulatedDose.objects.filter(report__study=study).order_by("report_id", "plane"):
        accumulated[acc.report_id].append(acc)
    for r in reports:
        r.accumulated_rows = accumulated.get(r.pk, [])
    objects = list(ReceivedObject.objects.filter(study_instance_uid=study.study_instance_uid).order_by("received_at"))
    known = {o.pk for o in objects}
    objects += [r.received_object for r in reports if r.received_object_id not in known]
    by_kind: dict[str, list] = defaultdict(list)
    for e in events:
        by_kind[_event_kind(e, study)].append(e)
    planes = sorted({e.plane for e in by_kind.get("projection", []) if e.plane})
    return {"study": study, "events": events, "events_by_kind": dict(by_kind), "reports": reports,
            "objects": objects, "planes": planes, "alerts": alert_selectors.alert_badges([study.pk]).get(study.pk, [])}


def _event_kind(e: IrradiationEvent, study: Study) -> str:
    if e.ctdivol_mgy is not None or e.dlp_mgycm is not None or e.event_type in (
            "spiral_acquisition", "sequenced_acquisition", "constant_angle_acquisition", "free_acquisition",
            "cone_beam_acquisition", "stationary_acquisition_ct"):
        return "ct" if e.kap_gycm2 is None else "projection"
    if e.agd_mgy is not None or e.laterality and study.modality_type == "mammography":
        return "mammography"
    if e.activity_mbq is not None or e.attributes.get("radiopharmaceutical"):
        return "nuclear_medicine"
    return "projection"


# --- study lists ---------------------------------------------------------------------------------------------------
def modality_condition(modalities: list[str]) -> Q:
    """A study matches a modality type when its primary type or any of its types is it.

    The primary type is the first of the study's types in MODALITY_TYPES (ingestion's rule), so a study can hold
    ``m`` as a secondary type only when its primary type comes earlier in that order: the JSON test is confined to
    those studies and the rest is an indexed equality (for CT, the first type, nothing else is needed)."""
    cond = Q(modality_type__in=modalities)
    for m in modalities:
        earlier = MODALITY_TYPES[:MODALITY_TYPES.index(m)] if m in MODALITY_TYPES else MODALITY_TYPES
        if not earlier:
            continue
        if connection.vendor == "postgresql":
            contains = Q(modality_types__contains=[m])
        else:
            contains = Q(modality_types__icontains=f'"{m}"')
        cond |= Q(modality_type__in=earlier) & contains
    return cond


DOSE_FILTERS = {  # form field prefix -> study column
    "dlp": "dlp_total_mgycm", "ctdivol": "max_ctdivol_mgy", "kap": "kap_total_gycm2", "ka_r": "ka_r_total_mgy",
    "fluoro_time": "fluoro_time_total_s", "activity": "activity_mbq", "effective_dose": "effective_dose_msv",
}


def _filter_doses(qs: QuerySet, f: dict) -> QuerySet:
    for prefix, column in DOSE_FILTERS.items():
        if f.get(f"{prefix}_min") is not None:
            qs = qs.filter(**{f"{column}__gte": f[f"{prefix}_min"]})
        if f.get(f"{prefix}_max") is not None:
            qs = qs.filter(**{f"{column}__lte": f[f"{prefix}_max"]})
    if f.get("agd_min") is not None:
        qs = qs.filter(Q(agd_left_mgy__gte=f["agd_min"]) | Q(agd_right_mgy__gte=f["agd_min"]))
    if f.get("agd_max") is not None:
        qs = qs.filter(Q(agd_left_mgy__isnull=True) | Q(agd_left_mgy__lte=f["agd_max"]),
                       Q(agd_right_mgy__isnull=True) | Q(agd_right_mgy__lte=f["agd_max"]),
                       Q(agd_left_mgy__isnull=False) | Q(agd_right_mgy__isnull=False))
    return qs


def _filter_where(qs: QuerySet, f: dict) -> QuerySet:
    """Room, unit, examination and protocol."""
    if f.get("room"):  # resolved to unit ids first: the (equipment, study_date) index serves the rest
        qs = qs.filter(equipment_id__in=list(Equipment.objects.filter(room_id=f["room"]).values_list("pk", flat=True)))
    if f.get("unit"):
        qs = qs.filter(equipment_id=f["unit"])
    if f.get("exam"):
        exam_ids = list(StandardExam.objects.filter(code=f["exam"]).values_list("pk", flat=True))
        qs = qs.filter(standard_exam_id__in=exam_ids)
    if f.get("protocol"):
        p = f["protocol"]
        qs = qs.filter(Q(study_description__icontains=p) | Q(requested_procedure_description__icontains=p)
                       | Q(performed_procedure_description__icontains=p))
    return qs


def _ordered(qs: QuerySet, sort: str) -> QuerySet:
    desc = sort.startswith("-")
    col = sort.lstrip("-")
    order = [f"-{col}" if desc else col]
    if col != "study_date":
        order.append("-study_date")
    order.append("-id" if desc or col != "study_date" else "id")
    if col in DOSE_FILTERS.values() or col in ("agd_left_mgy", "agd_right_mgy"):
        order[0] = models_F(col).desc(nulls_last=True) if desc else models_F(col).asc(nulls_last=True)
    return qs.order_by(*order)


def study_queryset(filters: dict) -> QuerySet:
    """Studies filtered by a cleaned StudyFilterForm's data (dates, modality, room, unit, exam, protocol, doses)."""
    qs = Study.objects.all()
    f = filters
    if f.get("date_from"):
        qs = qs.filter(study_date__gte=f["date_from"])
    if f.get("date_to"):
        qs = qs.filter(study_date__lte=f["date_to"])
    if f.get("modality"):
        qs = qs.filter(modality_condition(list(f["modality"])))
    qs = _filter_doses(_filter_where(qs, f), f)
    if f.get("accession_number"):
        qs = qs.filter(accession_number=f["accession_number"])
    if f.get("patient"):
        qs = qs.filter(patient_id=f["patient"])
    demo = f.get("demo") or ""
    if demo == "exclude":
        qs = qs.filter(demo=False)
    elif demo == "only":
        qs = qs.filter(demo=True)
    return _ordered(qs, f.get("sort") or "-study_date")


def capped_count(qs: QuerySet, cap: int = LIST_CAP) -> tuple[int, bool]:
    """(count, capped): counts at most cap + 1 rows.

    The count keeps the list's order: PostgreSQL then walks the index that serves the page (date, dose) and stops
    after cap + 1 rows; without it, it chose bitmap scans over whole columns (bench/web.py at 1,000,000 studies:
    database time of the fluoroscopy KAP >= 50 list 43 ms before, 5 ms after)."""
    n = qs.values("pk")[: cap + 1].count()
    return (cap, True) if n > cap else (n, False)


STUDY_ROW_COLUMNS = (
    "study_date", "demo", "modality_type", "study_description", "dlp_total_mgycm", "max_ctdivol_mgy",
    "kap_total_gycm2", "ka_r_total_mgy", "agd_left_mgy", "agd_right_mgy", "activity_mbq",
    "standard_exam__name", "equipment__manufacturer", "equipment__model", "equipment__station_name",
    "equipment__room__name",
)


def study_rows(qs: QuerySet):
    """The list page's rows: one query with the unit, room and examination joined, only the columns it shows."""
    return qs.select_related("equipment__room", "standard_exam").only(*STUDY_ROW_COLUMNS)


# --- units and rooms -----------------------------------------------------------------------------------------------
def units_overview(*, recent_days: int = 90) -> list[Equipment]:
    """Every unit with its room, whether it sends dose reports, when the last object arrived, recent study count."""
    units = list(Equipment.objects.select_related("room").order_by("room__name", "manufacturer", "model",
                                                                  "station_name"))
    since = timezone.localdate() - dt.timedelta(days=recent_days)
    recent = dict(Study.objects.filter(study_date__gte=since, equipment__isnull=False).order_by()
                  .values("equipment_id").annotate(n=Count("*")).values_list("equipment_id", "n"))
    changes = dict(EquipmentChange.objects.filter(handled=False).values("equipment_id").annotate(n=Count("id"))
                   .values_list("equipment_id", "n"))
    now = timezone.now()
    for u in units:
        u.recent_studies = recent.get(u.pk, 0)
        u.open_changes = changes.get(u.pk, 0)
        u.silent_days = (now - u.last_object_at).days if u.last_object_at else None
    return units


def unit_detail(unit: Equipment) -> dict:
    changes = list(EquipmentChange.objects.filter(equipment=unit).order_by("-detected_at"))
    recent = list(Study.objects.filter(equipment=unit).select_related("standard_exam")
                  .order_by("-study_date", "-id")[:20])
    by_modality = list(Study.objects.filter(equipment=unit).values("modality_type")
                       .annotate(n=Count("id"), first=Min("study_date"), last=Max("study_date"))
                       .order_by("modality_type"))
    return {"unit": unit, "changes": changes, "recent_studies": recent, "by_modality": by_modality}


# --- dashboard -----------------------------------------------------------------------------------------------------
def dashboard(*, weeks: int = 12, user=None) -> dict:
    """Studies per modality type and week (the latest weeks with data), open alerts, refused objects."""
    last = Study.objects.filter(study_date__isnull=False).order_by("-study_date").values_list(
        "study_date", flat=True).first()
    per_week: list[dict] = []
    week_list: list[dt.date] = []
    if last is not None:
        end = last
        start = end - dt.timedelta(days=end.weekday()) - dt.timedelta(weeks=weeks - 1)
        week_list = [start + dt.timedelta(weeks=i) for i in range(weeks)]
        per_week = _weekly_counts(start, end)
    refused = list(ReceivedObject.objects.filter(state=ReceivedObject.STATE_REJECTED).order_by("-received_at")
                   .values("pk", "sop_instance_uid", "calling_ae", "source", "received_at", "reason")[:10])
    refused_count = ReceivedObject.objects.filter(state=ReceivedObject.STATE_REJECTED).count()
    totals_by_modality: dict[str, int] = defaultdict(int)
    for row in per_week:
        totals_by_modality[row["modality_type"] or ""] += row["n"]
    return {"per_week": per_week, "weeks": week_list, "last_date": last,
            "period_totals": sorted(totals_by_modality.items(), key=lambda kv: MODALITY_TYPES.index(kv[0])
                                    if kv[0] in MODALITY_TYPES else 99),
            "refused": refused, "refused_count": refused_count,
            "open_alerts": alert_selectors.open_alerts(limit=10, user=user)}


def _weekly_counts(start: dt.date, end: dt.date) -> list[dict]:
    """Studies per (week, modality type): counted per day in the database (a few hundred rows), folded into weeks
    here; cached for five minutes, keyed by the period and the newest study id."""
    newest = Study.objects.order_by("-pk").values_list("pk", flat=True).first()
    key = f"web:weekly:{start}:{end}:{newest}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    weeks: dict[tuple, int] = defaultdict(int)
    per_day = (Study.objects.filter(study_date__gte=start, study_date__lte=end).order_by()
               .values_list("study_date", "modality_type").annotate(n=Count("*")))  # COUNT(*): index-only scan
    for day, modality, n in per_day:
        weeks[(day - dt.timedelta(days=day.weekday()), modality)] += n
    rows = [{"week": w, "modality_type": m, "n": n} for (w, m), n in sorted(weeks.items())]
    cache.set(key, rows, 300)
    return rows


def is_empty_registry() -> bool:
    return not Study.objects.exists()


def first_run_info(request=None) -> dict:
    host = request.get_host().split(":")[0] if request is not None else socket.getfqdn()
    return {"ae_title": settings.DICOM_AE_TITLE, "host": host, "port": settings.DICOM_PORT,
            "allowlist": settings.ALLOWED_CALLING_AETS}


# --- patient sheet -------------------------------------------------------------------------------------------------
SHEET_ACCUMULATED = ["dlp_total_mgycm", "kap_total_gycm2", "ka_r_total_mgy", "fluoro_time_total_s", "agd_left_mgy",
                     "agd_right_mgy", "activity_mbq", "effective_dose_msv"]
SHEET_EVENT = ["ctdivol_mgy", "dlp_mgycm", "kap_gycm2", "agd_mgy", "activity_mbq"]


def _sheet_item(field: str, canonical, raw: dict, label_suffix: str = "", note: str = "") -> dict:
    """One line of the patient sheet: the value as the X-ray system reported it (``raw``: [value, unit code]) and
    the same value in DoseReg's standard unit, both through the one formatter."""
    reported = raw.get(field)
    as_reported = None
    if isinstance(reported, list | tuple) and len(reported) >= 2:
        as_reported = formatting.raw(reported[0], str(reported[1] or ""))
    q = QUANTITIES.get(field)
    return {"field": field, "label": f"{q.label if q else field}{label_suffix}", "reported": as_reported,
            "standard": formatting.quantity(field, canonical) if q else formatting.number(canonical), "note": note}


def _sheet_effective_dose(study: Study, items: list[dict]) -> None:
    """The study's effective dose estimate with its method label (CT derived, NM reported alike): an estimate for
    comparing examinations, shown where the registry has one."""
    if study.effective_dose_msv is None:
        return
    method = study.effective_dose_method or "method not recorded"
    for it in items:
        if it["field"] == "effective_dose_msv":
            it["note"] = it["note"] or method
            return
    items.append(_sheet_item("effective_dose_msv", study.effective_dose_msv, {}, note=method))


def _sheet_items(study: Study, accumulated: list, events: list) -> list[dict]:
    items = []
    for acc in accumulated:
        suffix = f" — {acc.get_plane_display()}" if acc.plane in ("A", "B") else ""
        for f in SHEET_ACCUMULATED:
            if getattr(acc, f) is not None:
                items.append(_sheet_item(f, getattr(acc, f), acc.raw or {}, suffix))
    if not items:
        for i, ev in enumerate(events, 1):
            for f in SHEET_EVENT:
                if getattr(ev, f) is not None:
                    what = ev.protocol or ev.view or f"#{i}"
                    items.append(_sheet_item(f, getattr(ev, f), ev.raw or {}, f" — {what}"))
    elif "CT" in (study.modality_types or [study.modality_type]):
        for ev in events:
            if ev.ctdivol_mgy is not None and not ev.is_localizer:
                items.append(_sheet_item("ctdivol_mgy", ev.ctdivol_mgy, ev.raw or {}, f" — {ev.protocol}"))
    _sheet_effective_dose(study, items)
    return items


def patient_sheet_rows(studies: list[Study]) -> list[dict]:
    """Per study, the dose values as the X-ray system reported them (value and unit code from ``raw``) with the
    standard value beside; the accumulated (total) values of the current reports, or, for a study without any,
    the values of its events.  CT studies also list CTDIvol per acquisition; every study its effective dose
    estimate with the method, where it has one."""
    ids = [s.pk for s in studies]
    acc_by_study: dict[int, list] = defaultdict(list)
    for acc in (AccumulatedDose.objects.filter(report__study_id__in=ids, report__state="current")
                .annotate(study_pk=models_F("report__study_id")).order_by("report_id", "plane")):
        acc_by_study[acc.study_pk].append(acc)
    ev_by_study: dict[int, list] = defaultdict(list)
    for ev in IrradiationEvent.objects.filter(study_id__in=ids, is_current=True).order_by("study_id", "sequence",
                                                                                          "id"):
        ev_by_study[ev.study_id].append(ev)
    return [{"study": s, "items": _sheet_items(s, acc_by_study.get(s.pk, []), ev_by_study.get(s.pk, []))}
            for s in studies]


def sheet_glossary(rows: list[dict]) -> list[str]:
    seen: list[str] = []
    for r in rows:
        for it in r["items"]:
            if it["field"] not in seen:
                seen.append(it["field"])
    return seen
