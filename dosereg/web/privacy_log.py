"""Request paths as they may be logged: no query string (a patient search carries a name there) and no patient
identifier in the path (the API's patient history carries one; FHIR's Patient read uses the internal id).

Pure functions plus a logging filter; imports nothing of Django, so the logging configuration in settings can use it.
"""

from __future__ import annotations

import logging
import re

# (pattern, replacement): path segments that hold a patient ID as the sender wrote it (or its pseudonym)
_IDENTIFIER_PATHS = (
    (re.compile(r"^(/api/v1/patients/).+?(/history/?)$"), r"\1{patient}\2"),
)
PLACEHOLDER = "-"


def patient_id_in_path(path: str) -> str | None:
    """The patient identifier a path carries (URL-encoded as sent), or None."""
    for pattern, _ in _IDENTIFIER_PATHS:
        m = pattern.match(path)
        if m:
            return path[m.end(1):m.start(2)]
    return None


def redact_path(path: str, internal_id: int | str | None = None) -> str:
    """``path`` without its query string and with a patient identifier replaced by the internal id ('#12') or,
    when that is unknown, by '-'."""
    path = path.split("?", 1)[0]
    for pattern, replacement in _IDENTIFIER_PATHS:
        if pattern.match(path):
            shown = f"#{internal_id}" if internal_id is not None else PLACEHOLDER
            return pattern.sub(replacement.replace("{patient}", shown), path, count=1)
    return path


class RedactRequestPaths(logging.Filter):
    """Rewrites log records that carry a request path (django.request's "Not Found: /api/v1/patients/ID/history/",
    django.server's request line): every text argument that looks like a path or request line is redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "dosereg.access":
            return True  # redacted where written, with the internal id
        args = record.args
        if isinstance(args, tuple) and args:
            record.args = tuple(_redact_arg(a) for a in args)
        elif isinstance(record.msg, str) and record.msg.startswith(("Not Found: /", "Forbidden: /")):
            record.msg = _redact_arg(record.msg)
        return True


_REQUEST_LINE = re.compile(r"^([A-Z]+ )(\S+)( HTTP/[\d.]+)$")
_LABELLED_PATH = re.compile(r"^([A-Za-z ]+: )(/\S*)$")


def _redact_arg(value):
    if not isinstance(value, str):
        return value
    if value.startswith("/"):
        return redact_path(value)
    m = _REQUEST_LINE.match(value) or _LABELLED_PATH.match(value)
    if m:
        return m.group(1) + redact_path(m.group(2)) + (m.group(3) if m.re is _REQUEST_LINE else "")
    return value
