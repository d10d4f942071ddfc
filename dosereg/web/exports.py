"""Streamed exports of filtered study lists: CSV row by row; XLSX through openpyxl's write-only workbook (rows go to
a temporary file as they come, so memory stays flat), split into sheets past Excel's row limit."""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
import tempfile

from django.db.models import QuerySet
from django.http import FileResponse, StreamingHttpResponse
from openpyxl import Workbook

from dosereg.core.display import column_label
from dosereg.core.quantities import QUANTITIES

EXPORT_COLUMNS = [
    ("study_instance_uid", "study_instance_uid"), ("accession_number", "accession_number"),
    ("study_date", "study_date"), ("modality_type", "modality_type"), ("modality_types", "modality_types"),
    ("patient__patient_id", "patient_id"), ("sex", "sex"), ("age_years", "age_years"), ("weight_kg", "weight_kg"),
    ("equipment_id", "equipment_id"), ("equipment__manufacturer", "manufacturer"), ("equipment__model", "model"),
    ("equipment__station_name", "station_name"), ("equipment__room__name", "room"),
    ("standard_exam__code", "standard_exam"), ("study_description", "study_description"),
    ("dlp_total_mgycm", "dlp_total_mgycm"), ("max_ctdivol_mgy", "max_ctdivol_mgy"),
    ("kap_total_gycm2", "kap_total_gycm2"), ("ka_r_total_mgy", "ka_r_total_mgy"),
    ("fluoro_time_total_s", "fluoro_time_total_s"), ("agd_left_mgy", "agd_left_mgy"),
    ("agd_right_mgy", "agd_right_mgy"), ("activity_mbq", "activity_mbq"),
    ("effective_dose_msv", "effective_dose_msv"), ("effective_dose_method", "effective_dose_method"),
    ("event_count", "event_count"), ("demo", "demo"),
]
# quantity columns carry the catalogue's label and unit ("DLP total (mGy·cm)"); the others their field name
HEADER = [column_label(h) if h in QUANTITIES else h for _, h in EXPORT_COLUMNS]
XLSX_MAX_ROWS = 1_048_575  # data rows per sheet: Excel's 1,048,576 rows minus the header
CHUNK = 2000


# XML 1.0 forbids these characters: openpyxl refuses a cell holding one (a NUL in a description, say)
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _cell(value):
    """A stored value as a spreadsheet cell: dates in ISO form, no inf or NaN (empty: not a number anyone reported),
    text without the characters XML and UTF-8 cannot carry."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return _NOT_XML.sub("", value)
    return value


def _rows(qs: QuerySet):
    for row in qs.values_list(*[c for c, _ in EXPORT_COLUMNS]).iterator(chunk_size=CHUNK):
        out = [_cell(v) for v in row]
        types = row[4] if isinstance(row[4], list) else []
        out[4] = ",".join(_cell(str(m)) for m in types)
        yield out


class _Echo:
    def write(self, value):
        return value


def csv_response(qs: QuerySet, filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def stream():
        yield writer.writerow(HEADER)
        for row in _rows(qs):
            yield writer.writerow(["" if v is None else v for v in row])

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


def write_xlsx(qs: QuerySet, fh, *, max_rows: int | None = None) -> int:
    """Write the rows to ``fh`` as XLSX; returns the number of sheets."""
    limit = max_rows or XLSX_MAX_ROWS
    wb = Workbook(write_only=True)
    sheets, ws, n = 0, None, limit
    for row in _rows(qs):
        if n >= limit:
            sheets += 1
            ws = wb.create_sheet(title="studies" if sheets == 1 else f"studies {sheets}")
            ws.append(HEADER)
            n = 0
        ws.append(row)
        n += 1
    if ws is None:
        ws = wb.create_sheet(title="studies")
        ws.append(HEADER)
        sheets = 1
    wb.save(fh)
    return sheets


def xlsx_response(qs: QuerySet, filename: str, *, max_rows: int | None = None) -> FileResponse:
    tmp = tempfile.TemporaryFile(suffix=".xlsx")  # deleted when the response closes it
    write_xlsx(qs, tmp, max_rows=max_rows)
    tmp.seek(0)
    return FileResponse(tmp, as_attachment=True, filename=f"{filename}.xlsx",
                        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
