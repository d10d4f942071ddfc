"""Streamed exports of filtered study lists: CSV row by row; XLSX through openpyxl's write-only workbook (rows go to
a temporary file as they come, so memory stays flat), split into sheets past Excel's row limit."""

from __future__ import annotations

import csv
import datetime as dt
import tempfile

from django.db.models import QuerySet
from django.http import FileResponse, StreamingHttpResponse

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
HEADER = [h for _, h in EXPORT_COLUMNS]
XLSX_MAX_ROWS = 1_048_575  # data rows per sheet: Excel's 1,048,576 rows minus the header
CHUNK = 2000


def _rows(qs: QuerySet):
    for row in qs.values_list(*[c for c, _ in EXPORT_COLUMNS]).iterator(chunk_size=CHUNK):
        out = list(row)
        out[4] = ",".join(out[4] or [])
        if isinstance(out[2], dt.date):
            out[2] = out[2].isoformat()
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
    from openpyxl import Workbook

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
