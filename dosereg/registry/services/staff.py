"""Staff dosimetry: import dosimeter readings, match electronic dosimeter (EPD) readings to interventional procedures,
set staff doses beside patient doses, and sum the legal record per person and year against the Art. 9 limits.

Readings come as CSV (``dosimeter_id,start,end,hp10_usv,hp007_usv,hp3_usv``; timestamps ISO 8601 with an offset; an
optional ``room`` column).  The unit of each quantity comes from its column name (``_usv`` µSv, ``_msv`` mSv), never
from the source; values are stored in µSv.  ``--mapping`` renames a vendor's columns onto these names.

Two kinds of readings, kept apart on purpose:
- ``epd``: an electronic dosimeter, usually worn over the apron, reading Hp(10) per procedure.  Over-apron Hp(10)
  overestimates effective dose for an aproned worker, so EPD readings are operational information: they are matched to
  procedures and compared with the patient's KAP, and NEVER count towards the legal yearly totals.
- ``approved_service``: the approved dosimetry service's reading per wearing period, the legal record.  Only these are
  summed per person and year.

A period is assigned to the calendar year (site time zone) in which it ends (``end`` minus one second, so a period
ending at midnight on 1 January belongs to the old year).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from dosereg.registry.models import Dosimeter, Room, StaffDoseReading, StaffMember, Study
from dosereg.registry.services.audit import audit_record
from dosereg.registry.staff_config import StaffConfig, staff_config

REQUIRED_COLUMNS = ("dosimeter_id", "start", "end")
QUANTITIES = ("hp10", "hp007", "hp3")
QUANTITY_LABELS = {"hp10": "Hp(10)", "hp007": "Hp(0.07)", "hp3": "Hp(3)"}
UNIT_FACTORS_TO_USV = {"usv": 1.0, "msv": 1000.0}
UNIT_LABELS = {"usv": "µSv", "msv": "mSv"}
SOURCES = ("epd", "approved_service")
_QUANTITY_COLUMN = re.compile(r"^(hp10|hp007|hp3)_([a-z0-9µ]+)$")
_VALUE = re.compile(r"^([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-zµμ]+)?$")
# Art. 9(2) derogation and Art. 9(3)(a): at most 50 mSv in a single year when the 5-year rule is used.
FIVE_YEAR_SINGLE_YEAR_CAP_MSV = 50.0
# an EPD reading can only match a procedure that started at most this long before the reading
_LOOKBACK = dt.timedelta(hours=12)


class StaffImportError(Exception):
    """The file as a whole cannot be read (missing columns, bad mapping, unknown unit in a header)."""


@dataclass
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ParsedRow:
    line: int
    dosimeter: Dosimeter
    start: dt.datetime
    end: dt.datetime
    room: Room | None
    hp10_usv: float | None
    hp007_usv: float | None
    hp3_usv: float | None
    raw: dict


@dataclass
class ParseResult:
    rows: list[ParsedRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)  # lines already stored with the same values
    columns: dict[str, str] = field(default_factory=dict)  # canonical quantity -> unit suffix


@dataclass
class ImportSummary:
    source: str
    rows_read: int
    stored: int
    unchanged: int
    errors: list[RowError]
    matched: int
    unmatched: int
    refused: bool

    def lines(self) -> list[str]:
        out = [f"rows read: {self.rows_read}", f"stored: {self.stored}", f"already stored (unchanged): {self.unchanged}",
               f"bad rows: {len(self.errors)}"]
        if self.source == "epd":
            out += [f"matched to a procedure: {self.matched}", f"unmatched (kept): {self.unmatched}"]
        if self.refused:
            out.append("nothing stored: the file failed validation (use --skip-bad-rows to store the good rows)")
        return out


# --- mapping and parsing -------------------------------------------------------------------------------------------
def staff_mapping_load(path: str | Path) -> dict[str, str]:
    """A column mapping from JSON (``{"their name": "our name"}``) or CSV (two columns: their name, our name)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise StaffImportError(f"cannot read mapping {path}: {exc.strerror}") from exc
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StaffImportError(f"mapping {path} is not valid JSON: {exc.msg} (line {exc.lineno})") from exc
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise StaffImportError(f"mapping {path} must be a JSON object of column name -> column name")
        return {k.strip(): v.strip() for k, v in data.items()}
    mapping = {}
    for n, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 2:
            raise StaffImportError(f"mapping {path} line {n}: expected two columns (their name, our name)")
        if n == 1 and [c.strip().lower() for c in row] in (["from", "to"], ["source", "target"]):
            continue
        mapping[row[0].strip()] = row[1].strip()
    return mapping


def _header(fieldnames: list[str], mapping: dict[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
    """(their column -> our column, quantity -> unit suffix); raises StaffImportError for a file-level problem."""
    mapping = {k.lower(): v for k, v in (mapping or {}).items()}
    renamed: dict[str, str] = {}
    for name in fieldnames:
        key = (name or "").strip()
        target = mapping.get(key.lower(), key).strip().lower()
        if target in renamed.values():
            raise StaffImportError(f"column {target!r} appears twice (after mapping)")
        renamed[name] = target
    ours = set(renamed.values())
    missing = [c for c in REQUIRED_COLUMNS if c not in ours]
    if missing:
        raise StaffImportError(f"missing column(s) {', '.join(missing)}; the header is {', '.join(fieldnames)} "
                               f"(expected dosimeter_id,start,end,hp10_usv,hp007_usv,hp3_usv or a --mapping)")
    units: dict[str, str] = {}
    for col in ours:
        m = _QUANTITY_COLUMN.match(col)
        if not m:
            if col.startswith(QUANTITIES) and col.split("_", 1)[0] in QUANTITIES:
                raise StaffImportError(f"column {col!r}: no unit in the name (use _usv or _msv)")
            continue
        quantity, unit = m.groups()
        if unit not in UNIT_FACTORS_TO_USV:
            raise StaffImportError(f"column {col!r}: unknown unit {unit!r} (use _usv for µSv or _msv for mSv)")
        if quantity in units:
            raise StaffImportError(f"quantity {QUANTITY_LABELS[quantity]} appears in two columns")
        units[quantity] = unit
    if not units:
        raise StaffImportError("no dose column (hp10_usv, hp007_usv, hp3_usv or the _msv forms)")
    return renamed, units


def _parse_time(text: str, column: str) -> tuple[dt.datetime | None, str | None]:
    text = (text or "").strip()
    if not text:
        return None, f"{column} is empty"
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None, f"{column} {text!r} is not an ISO 8601 date-time"
    if value.tzinfo is None or value.utcoffset() is None:
        return None, f"{column} {text!r} has no UTC offset (write e.g. 2025-03-04T09:15:00+01:00)"
    return value, None


def _parse_value(text: str, column: str, unit: str) -> tuple[float | None, str | None]:
    text = (text or "").strip()
    if text == "":
        return None, None
    m = _VALUE.match(text.replace(",", ".") if text.count(",") == 1 and "." not in text else text)
    if not m:
        return None, f"{column} {text!r} is not a number"
    number, written_unit = m.groups()
    if written_unit:
        normal = written_unit.lower().replace("μ", "u").replace("µ", "u")
        if normal != unit:
            return None, f"{column} {text!r}: unit {written_unit!r} does not match the column's unit {UNIT_LABELS[unit]}"
    value = float(number)
    if value < 0:
        return None, f"{column} {text!r} is negative"
    if value != value or value in (float("inf"), float("-inf")):
        return None, f"{column} {text!r} is not a finite number"
    return value * UNIT_FACTORS_TO_USV[unit], None


def staff_readings_parse(text: str, *, source: str, mapping: dict[str, str] | None = None) -> ParseResult:
    """Parse and validate a readings file; nothing is written.  Errors are per row (a file-level problem raises)."""
    if source not in SOURCES:
        raise StaffImportError(f"unknown source {source!r} (epd or approved_service)")
    records, units = _read_records(text, mapping)
    result = ParseResult(columns=units)
    ids = {r["dosimeter_id"].strip() for _, r, _ in records}
    dosimeters = {d.dosimeter_id: d for d in Dosimeter.objects.filter(dosimeter_id__in=ids).select_related("room")}
    room_names = {r.get("room", "").strip() for _, r, _ in records} - {""}
    rooms = {room.name: room for room in Room.objects.filter(name__in=room_names)}
    candidates: list[ParsedRow] = []
    for line, rec, original in records:
        parsed = _parse_row(line, rec, original, source=source, units=units, dosimeters=dosimeters, rooms=rooms)
        if isinstance(parsed, RowError):
            result.errors.append(parsed)
        else:
            candidates.append(parsed)
    _check_overlaps(candidates, result)
    result.errors.sort(key=lambda e: e.line)
    return result


def _read_records(text: str, mapping: dict[str, str] | None) -> tuple[list[tuple[int, dict, dict]], dict[str, str]]:
    """([(line, row under our column names, row as read)] without blank rows, quantity -> unit suffix)."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise StaffImportError("the file is empty")
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    renamed, units = _header(reader.fieldnames or [], mapping)
    records = []
    for row in reader:
        line = reader.line_num
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        records.append((line, {renamed.get(k, k): (v if isinstance(v, str) else "") for k, v in row.items()
                               if k is not None}, row))
    return records, units


def _parse_row(line: int, rec: dict, original: dict, *, source: str, units: dict[str, str],
               dosimeters: dict[str, Dosimeter], rooms: dict[str, Room]) -> ParsedRow | RowError:
    """One row checked against the registered dosimeters and rooms: the reading, or every problem of the row."""
    problems: list[str] = []
    did = rec["dosimeter_id"].strip()
    dosimeter = dosimeters.get(did)
    if not did:
        problems.append("dosimeter_id is empty")
    elif dosimeter is None:
        problems.append(f"unknown dosimeter {did!r}")
    elif dosimeter.source != source:
        problems.append(f"dosimeter {did!r} is registered as {dosimeter.source}, not {source}")
    start, end = _parse_interval(rec, problems)
    values = {}
    for quantity, unit in units.items():
        column = f"{quantity}_{unit}"
        values[quantity], err = _parse_value(rec.get(column, ""), column, unit)
        if err:
            problems.append(err)
    if not problems and all(v is None for v in values.values()):
        problems.append("no dose value in the row")
    room = _row_room(rec, dosimeter, rooms, problems)
    if problems:
        return RowError(line, "; ".join(problems))
    return ParsedRow(line, dosimeter, start, end, room, values.get("hp10"), values.get("hp007"), values.get("hp3"),
                     {k: v for k, v in original.items() if k is not None})


def _parse_interval(rec: dict, problems: list[str]) -> tuple[dt.datetime | None, dt.datetime | None]:
    start, err = _parse_time(rec["start"], "start")
    if err:
        problems.append(err)
    end, err = _parse_time(rec["end"], "end")
    if err:
        problems.append(err)
    if start and end and end <= start:
        problems.append("end is not after start")
    return start, end


def _row_room(rec: dict, dosimeter: Dosimeter | None, rooms: dict[str, Room], problems: list[str]) -> Room | None:
    """The row's room column, else the dosimeter's room."""
    room_name = rec.get("room", "").strip()
    if not room_name:
        return dosimeter.room if dosimeter is not None else None
    room = rooms.get(room_name)
    if room is None:
        problems.append(f"unknown room {room_name!r}")
    return room


def _check_overlaps(candidates: list[ParsedRow], result: ParseResult) -> None:
    """Readings of one dosimeter must not overlap, within the file or with stored readings ([start, end))."""
    by_dosimeter: dict[int, list[ParsedRow]] = defaultdict(list)
    for row in candidates:
        by_dosimeter[row.dosimeter.pk].append(row)
    stored: dict[int, list[StaffDoseReading]] = defaultdict(list)
    if candidates:
        lo = min(r.start for r in candidates)
        hi = max(r.end for r in candidates)
        for reading in StaffDoseReading.objects.filter(dosimeter_id__in=by_dosimeter, start__lt=hi, end__gt=lo):
            stored[reading.dosimeter_id].append(reading)
    for dosimeter_id, rows in by_dosimeter.items():
        rows.sort(key=lambda r: (r.start, r.end, r.line))
        previous: ParsedRow | None = None
        for row in rows:
            if previous is not None and row.start < previous.end:
                result.errors.append(RowError(row.line, f"overlapping interval: dosimeter {row.dosimeter.dosimeter_id}"
                                                        f" already has line {previous.line} "
                                                        f"({previous.start.isoformat()} to {previous.end.isoformat()})"))
                continue
            clash = None
            for reading in stored.get(dosimeter_id, ()):
                if reading.start == row.start and reading.end == row.end:
                    same = all(_close(getattr(reading, f"{q}_usv"), getattr(row, f"{q}_usv")) for q in QUANTITIES)
                    if same:
                        clash = "unchanged"
                    else:
                        clash = (f"differs from the stored reading of dosimeter {row.dosimeter.dosimeter_id} for the "
                                 f"same interval (delete that reading first to correct it)")
                    break
                if reading.start < row.end and row.start < reading.end:
                    clash = (f"overlapping interval: dosimeter {row.dosimeter.dosimeter_id} has a stored reading "
                             f"{timezone.localtime(reading.start).isoformat()} to "
                             f"{timezone.localtime(reading.end).isoformat()}")
                    break
            if clash == "unchanged":
                result.unchanged.append(row.line)
            elif clash:
                result.errors.append(RowError(row.line, clash))
                continue
            else:
                result.rows.append(row)
            previous = row


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


# --- storing and matching ------------------------------------------------------------------------------------------
def staff_import(text: str, *, source: str, mapping: dict[str, str] | None = None, skip_bad_rows: bool = False,
                 user=None) -> ImportSummary:
    """Validate a readings file and store it in one transaction (nothing when a row is bad, unless skip_bad_rows)."""
    parsed = staff_readings_parse(text, source=source, mapping=mapping)
    rows_read = len(parsed.rows) + len(parsed.errors) + len(parsed.unchanged)
    refused = bool(parsed.errors) and not skip_bad_rows
    matched = 0
    created: list[StaffDoseReading] = []
    if not refused and parsed.rows:
        with transaction.atomic():
            created = StaffDoseReading.objects.bulk_create([
                StaffDoseReading(dosimeter=r.dosimeter, start=r.start, end=r.end, source=source, room=r.room,
                                 hp10_usv=r.hp10_usv, hp007_usv=r.hp007_usv, hp3_usv=r.hp3_usv, raw=r.raw)
                for r in parsed.rows])
            if source == "epd":
                # bulk_create returns pks on PostgreSQL and SQLite >= 3.35
                matched = staff_readings_match(created)
            audit_record(user=user, action="import_staff_doses", object_type="staff_dose_reading",
                         detail={"source": source, "stored": len(created), "bad_rows": len(parsed.errors),
                                 "unchanged": len(parsed.unchanged), "matched": matched})
    return ImportSummary(source=source, rows_read=rows_read, stored=len(created), unchanged=len(parsed.unchanged),
                         errors=parsed.errors, matched=matched,
                         unmatched=len(created) - matched if source == "epd" else 0, refused=refused)


@dataclass(frozen=True)
class ProcedureWindow:
    study_id: int
    start: dt.datetime
    end: dt.datetime


def procedure_windows(*, room_ids: set[int], lo: dt.datetime, hi: dt.datetime,
                      cfg: StaffConfig | None = None) -> dict[int, list[ProcedureWindow]]:
    """Time windows of the interventional (fluoroscopy) studies per room that may overlap [lo, hi].

    A window runs from the study time (or its first timed irradiation event, if earlier) to its last timed event;
    a study without timed events is assumed to last DOSEREG_STAFF_MATCH_DEFAULT_MIN minutes.  A margin of
    DOSEREG_STAFF_MATCH_MARGIN_MIN minutes is added on both sides (the dosimeter clock and the unit's clock differ,
    and staff are in the room before the first and after the last exposure)."""
    cfg = cfg or staff_config()
    margin = dt.timedelta(minutes=cfg.match_margin_minutes)
    default = dt.timedelta(minutes=cfg.match_default_minutes)
    current = Q(events__is_current=True)
    studies = (Study.objects.filter(modality_type="fluoroscopy", equipment__room_id__in=room_ids,
                                    study_datetime__gte=lo - _LOOKBACK - margin, study_datetime__lt=hi + margin)
               .annotate(first_event=Min("events__datetime", filter=current),
                         last_event=Max("events__datetime", filter=current))
               .values_list("pk", "equipment__room_id", "study_datetime", "first_event", "last_event"))
    windows: dict[int, list[ProcedureWindow]] = defaultdict(list)
    for pk, room_id, started, first_event, last_event in studies:
        start = min(t for t in (started, first_event) if t is not None)
        end = last_event if last_event is not None and last_event > start else start + default
        windows[room_id].append(ProcedureWindow(pk, start - margin, end + margin))
    return windows


def staff_readings_match(readings: list[StaffDoseReading], *, cfg: StaffConfig | None = None) -> int:
    """Match EPD readings to the interventional procedure in their room whose window overlaps them most.

    Readings that overlap no procedure keep ``study = None`` and are listed as unmatched.  Returns the number matched."""
    readings = [r for r in readings if r.source == "epd" and r.room_id is not None]
    if not readings:
        return 0
    windows = procedure_windows(room_ids={r.room_id for r in readings}, lo=min(r.start for r in readings),
                                hi=max(r.end for r in readings), cfg=cfg)
    changed = []
    for reading in readings:
        best, best_key = None, None
        for w in windows.get(reading.room_id, ()):
            overlap = (min(w.end, reading.end) - max(w.start, reading.start)).total_seconds()
            if overlap <= 0:
                continue
            key = (overlap, -abs((w.start - reading.start).total_seconds()))
            if best_key is None or key > best_key:
                best, best_key = w.study_id, key
        if best != reading.study_id:
            reading.study_id = best
            changed.append(reading)
    if changed:
        StaffDoseReading.objects.bulk_update(changed, ["study"])
    return sum(1 for r in readings if r.study_id is not None)


def staff_readings_rematch(*, since: dt.datetime | None = None) -> int:
    """Match again the unmatched EPD readings (a procedure's dose report may arrive after the dosimeter file)."""
    qs = StaffDoseReading.objects.filter(source="epd", study__isnull=True, room__isnull=False)
    if since is not None:
        qs = qs.filter(end__gte=since)
    return staff_readings_match(list(qs))


# --- access --------------------------------------------------------------------------------------------------------
def staff_can_view(user, staff_member: StaffMember) -> bool:
    """Staff doses are personal data: their owner, and holders of registry.view_all_staff_doses (physicists,
    administrators)."""
    if not getattr(user, "is_authenticated", False):
        return False
    return user.has_perm("registry.view_all_staff_doses") or (
        staff_member.user_id is not None and staff_member.user_id == user.pk)


def staff_member_for_user(user) -> StaffMember | None:
    return StaffMember.objects.filter(user_id=getattr(user, "pk", None)).first()


# --- staff beside patient: per procedure ---------------------------------------------------------------------------
@dataclass
class ProcedureStaffRow:
    reading_id: int
    staff_member_id: int
    staff_name: str
    dosimeter_id: str
    position: str
    hp10_usv: float | None
    ratio_usv_per_gycm2: float | None
    usual_ratio: float | None
    flag: str  # "" | "high" | "low"


@dataclass
class ProcedureRow:
    study: Study
    kap_total_gycm2: float | None
    ka_r_total_mgy: float | None
    staff: list[ProcedureStaffRow]


def _ratio(hp10_usv: float | None, kap: float | None) -> float | None:
    if hp10_usv is None or not kap or kap <= 0:
        return None
    return hp10_usv / kap


def room_usual_ratios(*, room_ids: set[int]) -> dict[tuple[int, str], float]:
    """The median staff-to-patient ratio (µSv per Gy·cm²) per (room, dosimeter position) over all matched EPD
    readings of the room.  Positions are kept apart: a collar and a chest dosimeter see different fields."""
    values: dict[tuple[int, str], list[float]] = defaultdict(list)
    rows = (StaffDoseReading.objects.filter(source="epd", study__isnull=False, room_id__in=room_ids,
                                            hp10_usv__isnull=False, study__kap_total_gycm2__gt=0)
            .values_list("room_id", "dosimeter__position", "hp10_usv", "study__kap_total_gycm2"))
    for room_id, position, hp10, kap in rows:
        values[(room_id, position)].append(hp10 / kap)
    cfg = staff_config()
    return {key: statistics.median(v) for key, v in values.items() if len(v) >= cfg.outlier_min_n}


def outlier_flag(ratio: float | None, usual: float | None, factor: float) -> str:
    """"high" above usual × factor (missing shielding, a badge in the beam), "low" below usual / factor (a badge
    under the apron or shielded by mistake), else ""."""
    if ratio is None or usual is None or usual <= 0:
        return ""
    if ratio > usual * factor:
        return "high"
    if ratio < usual / factor:
        return "low"
    return ""


def staff_procedures(*, date_from: dt.date | None = None, date_to: dt.date | None = None,
                     room_id: int | None = None, staff_member_id: int | None = None,
                     limit: int = 500) -> list[ProcedureRow]:
    """Interventional procedures with matched EPD readings: the patient's KAP and Ka,r beside each staff member's
    Hp(10) and the staff-to-patient ratio, flagged against the room's usual ratio."""
    cfg = staff_config()
    readings = StaffDoseReading.objects.filter(source="epd", study__isnull=False)
    if date_from:
        readings = readings.filter(study__study_date__gte=date_from)
    if date_to:
        readings = readings.filter(study__study_date__lte=date_to)
    if room_id:
        readings = readings.filter(room_id=room_id)
    if staff_member_id:
        readings = readings.filter(dosimeter__staff_member_id=staff_member_id)
    study_ids = list(readings.order_by("-study__study_datetime").values_list("study_id", flat=True).distinct()[:limit])
    readings = (readings.filter(study_id__in=study_ids)
                .select_related("dosimeter__staff_member", "study__equipment__room")
                .order_by("-study__study_datetime", "study_id", "dosimeter__staff_member__name"))
    readings = list(readings)
    usual = room_usual_ratios(room_ids={r.room_id for r in readings if r.room_id})
    out: dict[int, ProcedureRow] = {}
    for r in readings:
        study = r.study
        row = out.get(study.pk)
        if row is None:
            row = out[study.pk] = ProcedureRow(study, study.kap_total_gycm2, study.ka_r_total_mgy, [])
        ratio = _ratio(r.hp10_usv, study.kap_total_gycm2)
        u = usual.get((r.room_id, r.dosimeter.position))
        row.staff.append(ProcedureStaffRow(r.pk, r.dosimeter.staff_member_id, r.dosimeter.staff_member.name,
                                           r.dosimeter.dosimeter_id, r.dosimeter.get_position_display(), r.hp10_usv,
                                           ratio, u, outlier_flag(ratio, u, cfg.outlier_factor)))
    return list(out.values())


def staff_unmatched_readings(*, staff_member_id: int | None = None, limit: int = 500):
    """EPD readings that overlap no interventional procedure (kept, shown for review)."""
    qs = (StaffDoseReading.objects.filter(source="epd", study__isnull=True)
          .select_related("dosimeter__staff_member", "room").order_by("-start"))
    if staff_member_id:
        qs = qs.filter(dosimeter__staff_member_id=staff_member_id)
    return list(qs[:limit])


# --- the legal record: per person and year -------------------------------------------------------------------------
def reading_year(end: dt.datetime) -> int:
    """The calendar year (site time zone) a wearing period belongs to: the year in which it ends."""
    return timezone.localtime(end - dt.timedelta(seconds=1)).year


def _year_bounds(first_year: int, last_year: int) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    lo = dt.datetime(first_year, 1, 1, tzinfo=tz)
    hi = dt.datetime(last_year + 1, 1, 1, tzinfo=tz) + dt.timedelta(seconds=1)
    return lo, hi


@dataclass
class QuantityResult:
    quantity: str
    label: str
    value_msv: float | None
    method: str
    limit_msv: float
    investigation_msv: float | None
    status: str  # no_data | ok | investigation | limit
    five_year_msv: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def fraction_of_limit(self) -> float | None:
        return None if self.value_msv is None or not self.limit_msv else self.value_msv / self.limit_msv


@dataclass
class YearSummary:
    staff_member: StaffMember
    year: int
    quantities: dict[str, QuantityResult]
    pregnancy: QuantityResult | None
    epd_hp10_msv: float | None  # operational only, never a legal total
    readings: int

    @property
    def worst_status(self) -> str:
        order = ["no_data", "ok", "investigation", "limit"]
        statuses = [q.status for q in self.quantities.values()] + ([self.pregnancy.status] if self.pregnancy else [])
        return max(statuses, key=order.index) if statuses else "no_data"


def _sum(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) if values else None


def _legal_values(per_dosimeter: dict[tuple[str, str], float | None], cfg: StaffConfig) -> dict[str, tuple]:
    """{quantity: (value mSv or None, method)} from one year's sums per (position, quantity) in mSv.

    ``per_dosimeter`` maps (position, quantity) -> the largest sum over the person's dosimeters at that position."""
    def get(position, quantity):
        return per_dosimeter.get((position, quantity))

    hu, ho = get("under_apron", "hp10"), get("over_apron_collar", "hp10")
    if cfg.double_dosimetry and hu is not None and ho is not None:
        a, b = cfg.double_dosimetry
        effective = (a * hu + b * ho, cfg.effective_method)
    elif hu is not None:
        effective = (hu, "E = Hp(10) under apron (approved dosimetry service)")
    elif ho is not None:
        effective = (ho, "over-apron Hp(10) only: a conservative value, it overestimates E for an aproned worker")
    else:
        effective = (None, "no under- or over-apron reading")

    if get("eye", "hp3") is not None:
        eye = (get("eye", "hp3"), "Hp(3), eye dosimeter")
    elif get("over_apron_collar", "hp3") is not None:
        eye = (get("over_apron_collar", "hp3"), "Hp(3), collar dosimeter")
    elif get("over_apron_collar", cfg.eye_surrogate) is not None:
        eye = (get("over_apron_collar", cfg.eye_surrogate),
               f"collar {QUANTITY_LABELS[cfg.eye_surrogate]} as a surrogate for Hp(3)")
    else:
        eye = (None, "no eye or collar reading")

    skin_values = [get(p, "hp007") for p in ("over_apron_collar", "under_apron") if get(p, "hp007") is not None]
    skin = (max(skin_values), "Hp(0.07), body dosimeters (highest)") if skin_values else (None, "no Hp(0.07) reading")
    ext_values = [get(p, "hp007") for p in ("ring", "wrist") if get(p, "hp007") is not None]
    extremities = ((max(ext_values), "Hp(0.07), ring/wrist dosimeters (highest)") if ext_values
                   else (None, "no ring or wrist reading"))
    return {"effective": effective, "eye_lens": eye, "skin": skin, "extremities": extremities}


def _status(value: float | None, limit, five_year: float | None) -> tuple[str, list[str]]:
    notes = []
    if value is None:
        return "no_data", notes
    over = False
    if limit.mode == "5year":
        if value > FIVE_YEAR_SINGLE_YEAR_CAP_MSV:
            over = True
            notes.append(f"above {FIVE_YEAR_SINGLE_YEAR_CAP_MSV:g} mSv in a single year")
        if five_year is not None and five_year > 5 * limit.limit_msv:
            over = True
            notes.append(f"{five_year:.3f} mSv over 5 consecutive years exceeds {5 * limit.limit_msv:g} mSv")
    elif value > limit.limit_msv:
        over = True
    if over:
        return "limit", notes
    if limit.investigation_msv is not None and value > limit.investigation_msv:
        return "investigation", notes
    return "ok", notes


def staff_year_summaries(*, year: int, staff_member_ids: list[int] | None = None,
                         cfg: StaffConfig | None = None) -> list[YearSummary]:
    """The legal yearly record per person (approved-service readings only) against the Art. 9 limits."""
    cfg = cfg or staff_config()
    members = StaffMember.objects.all()
    if staff_member_ids is not None:
        members = members.filter(pk__in=staff_member_ids)
    members = list(members)
    per_position, counts = _legal_sums(members, year)
    epd = _epd_hp10_msv(members, year)
    out = []
    for member in members:
        years = {y: _legal_values(per_position.get((member.pk, y), {}), cfg) for y in range(year - 4, year + 1)}
        quantities = {}
        for key, limit in cfg.limits.items():
            value, method = years[year][key]
            five = _sum(years[y][key][0] for y in years) if limit.mode == "5year" else None
            status, notes = _status(value, limit, five)
            quantities[key] = QuantityResult(key, limit.label, value, method, limit.limit_msv,
                                             limit.investigation_msv, status, five, notes)
        pregnancy = _pregnancy(member, years[year], cfg)
        out.append(YearSummary(member, year, quantities, pregnancy, epd.get(member.pk), counts.get(member.pk, 0)))
    return out


def _legal_sums(members: list[StaffMember], year: int) -> tuple[dict[tuple[int, int], dict], dict[int, int]]:
    """The legal readings (reading AND dosimeter from the approved service) of ``year`` and the four before it:
    ({(person, year): {(position, quantity): mSv}}, {person: readings in ``year``}).  Readings are summed per
    dosimeter; two dosimeters at one position count the higher sum."""
    lo, hi = _year_bounds(year - 4, year)
    sums: dict[tuple[int, int, int], dict[str, float | None]] = {}  # (person, year, dosimeter) -> mSv per quantity
    positions: dict[int, str] = {}
    counts: dict[int, int] = defaultdict(int)
    legal = (StaffDoseReading.objects.filter(source="approved_service", dosimeter__source="approved_service",
                                             dosimeter__staff_member__in=members, end__gt=lo, end__lte=hi)
             .values_list("dosimeter_id", "dosimeter__staff_member_id", "dosimeter__position", "end",
                          "hp10_usv", "hp007_usv", "hp3_usv"))
    for dosimeter_id, member_id, position, end, hp10, hp007, hp3 in legal:
        y = reading_year(end)
        if not (year - 4 <= y <= year):
            continue
        positions[dosimeter_id] = position
        if y == year:
            counts[member_id] += 1
        slot = sums.setdefault((member_id, y, dosimeter_id), {"hp10": None, "hp007": None, "hp3": None})
        for q, v in (("hp10", hp10), ("hp007", hp007), ("hp3", hp3)):
            if v is not None:
                slot[q] = (slot[q] or 0.0) + v / 1000.0
    per_position: dict[tuple[int, int], dict[tuple[str, str], float]] = defaultdict(dict)
    for (member_id, y, dosimeter_id), values in sums.items():
        per = per_position[(member_id, y)]
        for q, v in values.items():
            if v is not None:
                key = (positions[dosimeter_id], q)
                per[key] = max(per.get(key, v), v)
    return per_position, counts


def _epd_hp10_msv(members: list[StaffMember], year: int) -> dict[int, float]:
    """Each person's EPD Hp(10) of the year in mSv: operational information, never part of the legal record."""
    epd: dict[int, float] = defaultdict(float)
    lo, hi = _year_bounds(year, year)
    for member_id, end, hp10 in (StaffDoseReading.objects.filter(source="epd", dosimeter__staff_member__in=members,
                                                                   end__gt=lo, end__lte=hi, hp10_usv__isnull=False)
                                 .values_list("dosimeter__staff_member_id", "end", "hp10_usv")):
        if reading_year(end) == year:
            epd[member_id] += hp10 / 1000.0
    return epd


def _pregnancy(member: StaffMember, current: dict[str, tuple], cfg: StaffConfig) -> QuantityResult | None:
    """A declared pregnancy: the year's effective dose against the level for the unborn child (Art. 10)."""
    if not member.pregnancy_declared or cfg.pregnancy_level_msv is None:
        return None
    value, method = current["effective"]
    status = "no_data" if value is None else ("investigation" if value > cfg.pregnancy_level_msv else "ok")
    return QuantityResult("pregnancy", "Declared pregnancy (unborn child)", value, method,
                          cfg.pregnancy_level_msv, cfg.pregnancy_level_msv, status, None,
                          ["whole-year value: the declaration date is not recorded, so this is "
                           "conservative; see Art. 10"])


def staff_year_summary(*, staff_member: StaffMember, year: int) -> YearSummary:
    return staff_year_summaries(year=year, staff_member_ids=[staff_member.pk])[0]


# --- the roster: staff members and their dosimeters ----------------------------------------------------------------
# One row per dosimeter: a person with three dosimeters has three rows with the same name and staff number.
ROSTER_COLUMNS = ("name", "staff_number", "dosimeter_id", "position", "source")
ROSTER_OPTIONAL = ("role", "username", "room")


def _choice_lookup(choices: list[tuple[str, str]], extra: dict[str, str]) -> dict[str, str]:
    """Codes and labels (any case, spaces or hyphens for underscores) -> code."""
    out = {**{k.lower(): k for k, _ in choices}, **{v.lower(): k for k, v in choices}, **extra}
    return {k.replace("-", "_").replace(" ", "_"): v for k, v in out.items()}


_POSITIONS = _choice_lookup(Dosimeter.POSITIONS, {"collar": "over_apron_collar", "over_apron": "over_apron_collar",
                                                  "under": "under_apron", "lens": "eye", "finger": "ring"})
_SOURCES = _choice_lookup(Dosimeter.SOURCES, {"approved": "approved_service", "tld": "approved_service",
                                              "service": "approved_service"})


def _code(text: str, lookup: dict[str, str]) -> str | None:
    return lookup.get(text.strip().lower().replace("-", "_").replace(" ", "_"))


@dataclass
class RosterRow:
    line: int
    name: str
    staff_number: str
    role: str
    username: str
    dosimeter_id: str
    position: str
    source: str
    room: str


@dataclass
class RosterSummary:
    rows_read: int = 0
    members_created: list[str] = field(default_factory=list)
    members_updated: list[str] = field(default_factory=list)
    dosimeters_created: list[str] = field(default_factory=list)
    dosimeters_updated: list[str] = field(default_factory=list)
    dosimeters_unchanged: int = 0
    users_linked: list[str] = field(default_factory=list)
    rooms_created: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return bool(self.errors)

    def lines(self) -> list[str]:
        out = [f"rows read: {self.rows_read}", f"staff members created: {len(self.members_created)}",
               f"staff members updated: {len(self.members_updated)}",
               f"dosimeters created: {len(self.dosimeters_created)}",
               f"dosimeters updated: {len(self.dosimeters_updated)}",
               f"dosimeters unchanged: {self.dosimeters_unchanged}",
               f"user accounts linked: {len(self.users_linked)}", f"bad rows: {len(self.errors)}"]
        if self.rooms_created:
            out.append(f"rooms created: {', '.join(self.rooms_created)} (map their units on /units/)")
        if self.refused:
            out.append("nothing stored: the roster failed validation")
        return out


def staff_roster_parse(text: str) -> tuple[list[RosterRow], list[RowError]]:
    """Read a roster CSV (comma, semicolon or tab separated; header ``name,staff_number,dosimeter_id,position,source``
    and optionally ``role,username,room``); rows with a problem come back as errors, the file as a whole raises
    StaffImportError.  Positions and sources are accepted as codes or as their labels."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise StaffImportError("the roster is empty")
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = {(h or "").strip().lower(): h for h in reader.fieldnames or []}
    missing = [c for c in ROSTER_COLUMNS if c not in header]
    if missing:
        raise StaffImportError(f"missing column(s) {', '.join(missing)}; expected "
                               f"{','.join(ROSTER_COLUMNS + ROSTER_OPTIONAL)}")
    rows, errors = [], []
    for raw in reader:
        rec = {c: (raw.get(header[c]) or "").strip() if c in header else ""
               for c in ROSTER_COLUMNS + ROSTER_OPTIONAL}
        if not any(rec.values()):
            continue
        problems = [f"{c} is empty" for c in ("name", "dosimeter_id", "position", "source") if not rec[c]]
        position = _code(rec["position"], _POSITIONS) if rec["position"] else None
        source = _code(rec["source"], _SOURCES) if rec["source"] else None
        if rec["position"] and position is None:
            problems.append(f"unknown position {rec['position']!r} (use {', '.join(k for k, _ in Dosimeter.POSITIONS)})")
        if rec["source"] and source is None:
            problems.append(f"unknown source {rec['source']!r} (use epd or approved_service)")
        if problems:
            errors.append(RowError(reader.line_num, "; ".join(problems)))
            continue
        rows.append(RosterRow(line=reader.line_num, name=rec["name"], staff_number=rec["staff_number"],
                              role=rec["role"], username=rec["username"], dosimeter_id=rec["dosimeter_id"],
                              position=position, source=source, room=rec["room"]))
    return rows, errors


def _roster_consistency(rows: list[RosterRow], user_model) -> list[RowError]:
    """A dosimeter listed twice, a staff number under two names, a name under two numbers, an unknown user account,
    or a dosimeter already worn by someone else: errors (the roster never moves a dosimeter silently)."""
    errors: list[RowError] = []
    seen_dosimeter: dict[str, int] = {}
    name_of_number: dict[str, str] = {}
    number_of_name: dict[str, str] = {}
    known_users = set(user_model.objects.filter(username__in={r.username for r in rows if r.username})
                      .values_list("username", flat=True))
    owners = dict(Dosimeter.objects.filter(dosimeter_id__in=[r.dosimeter_id for r in rows])
                  .values_list("dosimeter_id", "staff_member__name"))
    for r in rows:
        if r.dosimeter_id in seen_dosimeter:
            errors.append(RowError(r.line, f"dosimeter {r.dosimeter_id} is already on line {seen_dosimeter[r.dosimeter_id]}"))
        seen_dosimeter.setdefault(r.dosimeter_id, r.line)
        if r.staff_number and name_of_number.setdefault(r.staff_number, r.name) != r.name:
            errors.append(RowError(r.line, f"staff number {r.staff_number} is also {name_of_number[r.staff_number]!r}"))
        if number_of_name.setdefault(r.name.lower(), r.staff_number) != r.staff_number:
            errors.append(RowError(r.line, f"{r.name!r} has two staff numbers in the roster"))
        if r.username and r.username not in known_users:
            errors.append(RowError(r.line, f"no user account {r.username!r} (create it first, or leave it empty)"))
        owner = owners.get(r.dosimeter_id)
        if owner is not None and owner.lower() != r.name.lower():
            errors.append(RowError(r.line, f"dosimeter {r.dosimeter_id} is worn by {owner!r}; end it there first"))
    return errors


def _roster_member(r: RosterRow, users: dict, summary: RosterSummary) -> StaffMember:
    member = StaffMember.objects.filter(name__iexact=r.name).first()
    if member is None:
        member = StaffMember.objects.create(name=r.name, role=r.role)
        summary.members_created.append(r.name)
    elif r.role and member.role != r.role:
        member.role = r.role
        member.save(update_fields=["role"])
        summary.members_updated.append(r.name)
    user = users.get(r.username)
    if user is not None and member.user_id != user.pk:
        StaffMember.objects.filter(user=user).exclude(pk=member.pk).update(user=None)  # one account, one person
        member.user = user
        member.save(update_fields=["user"])
        summary.users_linked.append(f"{r.username} → {r.name}")
    return member


def staff_roster_import(text: str, *, user=None) -> RosterSummary:
    """Create or update staff members and their dosimeters from a roster, in one transaction: nothing is stored
    when a row is bad.  People are matched by name (the registry keeps no staff number: the column is checked for
    consistency within the file); a dosimeter already worn by another person is refused.  Rooms named in the
    roster are created when missing (readings name them too).  Re-importing the same roster changes nothing."""
    user_model = get_user_model()
    rows, errors = staff_roster_parse(text)
    summary = RosterSummary(rows_read=len(rows) + len(errors), errors=errors)
    summary.errors += _roster_consistency(rows, user_model)
    if summary.errors:
        summary.errors.sort(key=lambda e: e.line)
        return summary
    users = {u.username: u for u in user_model.objects.filter(username__in={r.username for r in rows if r.username})}
    with transaction.atomic():
        for r in rows:
            member = _roster_member(r, users, summary)
            room = None
            if r.room:
                room, created = Room.objects.get_or_create(name=r.room)
                if created:
                    summary.rooms_created.append(r.room)
            wanted = {"staff_member": member, "position": r.position, "source": r.source, "room": room}
            dosimeter = Dosimeter.objects.filter(dosimeter_id=r.dosimeter_id).first()
            if dosimeter is None:
                Dosimeter.objects.create(dosimeter_id=r.dosimeter_id, **wanted)
                summary.dosimeters_created.append(r.dosimeter_id)
            elif any(getattr(dosimeter, k) != v for k, v in wanted.items()):
                for k, v in wanted.items():
                    setattr(dosimeter, k, v)
                dosimeter.save()
                summary.dosimeters_updated.append(r.dosimeter_id)
            else:
                summary.dosimeters_unchanged += 1
        audit_record(user=user, action="import_staff_roster", object_type="staff_member",
                     detail={"rows": summary.rows_read, "members_created": len(summary.members_created),
                             "dosimeters_created": len(summary.dosimeters_created),
                             "dosimeters_updated": len(summary.dosimeters_updated),
                             "users_linked": len(summary.users_linked)})
    return summary
