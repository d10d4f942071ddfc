"""The one writer for every CSV and XLSX export: cells that a spreadsheet cannot turn into formulas.

Stored text comes from DICOM headers and uploads, so a StudyDescription of ``=HYPERLINK(...)`` or ``=cmd|' /C calc'!A0``
must reach the user as text.  OWASP's CSV-injection rule: a text cell starting with ``=``, ``+``, ``-``, ``@``, tab or
carriage return is prefixed with a single quote; numbers stay numbers (a negative number is not a formula).  In XLSX a
text cell is always written as a string (never a formula) and such a cell also carries Excel's quote-prefix style, so
editing it keeps it text.  Control characters are removed (XML 1.0 cannot carry them; openpyxl refuses a NUL).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import IO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XLSX_MAX_ROWS = 1_048_575  # data rows per sheet: Excel's 1,048,576 rows minus the header
XLSX_MAX_CELL = 32_767  # Excel's limit of characters in one cell

# C0 controls other than tab, line feed and carriage return, DEL, lone surrogates and the XML non-characters
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def clean_text(text: str) -> str:
    """Text without the control characters that XML and spreadsheets cannot carry."""
    return _CONTROL.sub("", text)


def is_formula_like(text: str) -> bool:
    """True when a spreadsheet could read this text as a formula (OWASP: =, +, -, @, tab, CR first).  A plain
    number written as text ('-1.5') is not."""
    return text.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text)


def plain_value(value):
    """A stored value as a spreadsheet value: None for missing and non-finite numbers (not a number anyone
    reported), dates in ISO form, numbers as they are, everything else as cleaned text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    return clean_text(str(value))


def csv_cell(value) -> str | int | float:
    """One CSV field: empty for missing, numbers as they are, formula-like text behind a single quote."""
    value = plain_value(value)
    if value is None:
        return ""
    if isinstance(value, str) and is_formula_like(value):
        return "'" + value
    return value


def csv_row(values: Iterable) -> list:
    return [csv_cell(v) for v in values]


class _Echo:
    """A file-like object whose write returns the line: lets csv.writer produce lines for a streamed response."""

    def write(self, value):
        return value


def csv_lines(header: Sequence[str], rows: Iterable[Iterable]) -> Iterator[str]:
    """The CSV text line by line (for a StreamingHttpResponse), header first."""
    writer = csv.writer(_Echo())
    yield writer.writerow(csv_row(header))
    for row in rows:
        yield writer.writerow(csv_row(row))


def write_csv(fh: IO[str], header: Sequence[str], rows: Iterable[Iterable], *, lineterminator: str = "\n") -> int:
    """Write header and rows to a text file; returns the number of data rows."""
    writer = csv.writer(fh, lineterminator=lineterminator)
    writer.writerow(csv_row(header))
    n = 0
    for row in rows:
        writer.writerow(csv_row(row))
        n += 1
    return n


def csv_text(header: Sequence[str], rows: Iterable[Iterable]) -> str:
    return "".join(csv_lines(header, rows))


def write_dict_csv(fh: IO[str], fields: Sequence[str], rows: Iterable[dict]) -> int:
    """Like csv.DictWriter: one row per dict, columns in ``fields`` order (a missing key is an empty field)."""
    return write_csv(fh, fields, ([row.get(f) for f in fields] for row in rows))


def _xlsx_cell(ws, value):
    value = plain_value(value)
    if not isinstance(value, str):
        return value
    cell = WriteOnlyCell(ws, value=value[:XLSX_MAX_CELL])
    # openpyxl types any text starting with '=' as a formula: a stored text is always a string cell
    cell.data_type = "s"
    if is_formula_like(value):
        cell.quotePrefix = True
    return cell


def write_xlsx(fh: IO[bytes], header: Sequence[str], rows: Iterable[Iterable], *, sheet: str = "data",
               max_rows: int | None = None) -> int:
    """Write header and rows as XLSX through openpyxl's write-only workbook (rows go to a temporary file as they
    come, so memory stays flat), starting a new sheet ("<sheet> 2", ...) past ``max_rows`` (default: Excel's row
    limit).  Returns the number of sheets."""
    limit = max_rows or XLSX_MAX_ROWS
    wb = Workbook(write_only=True)
    sheets, ws, n = 0, None, limit
    for row in rows:
        if n >= limit:
            sheets += 1
            ws = wb.create_sheet(title=sheet if sheets == 1 else f"{sheet} {sheets}")
            ws.append([_xlsx_cell(ws, h) for h in header])
            n = 0
        ws.append([_xlsx_cell(ws, v) for v in row])
        n += 1
    if ws is None:
        ws = wb.create_sheet(title=sheet)
        ws.append([_xlsx_cell(ws, h) for h in header])
        sheets = 1
    wb.save(fh)
    return sheets
