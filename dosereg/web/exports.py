"""Streamed exports of filtered study lists: CSV row by row; XLSX split into sheets past Excel's row limit.  Both
through the shared spreadsheet writer (dosereg.registry.spreadsheet: no formula cells, no control characters)."""

from __future__ import annotations

import tempfile

from django.db.models import QuerySet
from django.http import FileResponse, StreamingHttpResponse

from dosereg.core.display import column_label
from dosereg.core.quantities import QUANTITIES
from dosereg.registry import spreadsheet

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
CHUNK = 2000


def _rows(qs: QuerySet):
    for row in qs.values_list(*[c for c, _ in EXPORT_COLUMNS]).iterator(chunk_size=CHUNK):
        out = list(row)
        types = row[4] if isinstance(row[4], list) else []
        out[4] = ",".join(str(m) for m in types)
        yield out


def csv_response(qs: QuerySet, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(spreadsheet.csv_lines(HEADER, _rows(qs)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


def write_xlsx(qs: QuerySet, fh, *, max_rows: int | None = None) -> int:
    """Write the rows to ``fh`` as XLSX; returns the number of sheets."""
    return spreadsheet.write_xlsx(fh, HEADER, _rows(qs), sheet="studies", max_rows=max_rows)


def xlsx_response(qs: QuerySet, filename: str, *, max_rows: int | None = None) -> FileResponse:
    tmp = tempfile.TemporaryFile(suffix=".xlsx")  # deleted when the response closes it
    write_xlsx(qs, tmp, max_rows=max_rows)
    tmp.seek(0)
    return FileResponse(tmp, as_attachment=True, filename=f"{filename}.xlsx",
                        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
