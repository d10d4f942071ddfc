"""Whole-number query parameters, checked before they reach the database: a number no row id can have (SQLite and
PostgreSQL BIGINT hold at most 2^63 - 1) is the client's error, 400, never an OverflowError and a 500."""

from __future__ import annotations

from django.core.exceptions import BadRequest

MAX_ID = 2**63 - 1  # the largest BIGINT / SQLite INTEGER
MAX_PAGE = 10**6  # 50 million rows at 50 a page: past any registry's size


def id_param(query, name: str) -> int | None:
    """An id from the query (``request.GET``): None when absent or blank; 400 when not a whole number in range."""
    raw = (query.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ID:
        raise BadRequest(f"{name} must be a whole number from 1 to {MAX_ID}")
    return int(raw)


def page_param(query, name: str = "page") -> int:
    """A page number: 1 when absent or not a number (the first page, as Django's paginator does); 400 when beyond
    MAX_PAGE."""
    raw = (query.get(name) or "").strip()
    if not raw.isdigit():
        return 1
    if int(raw) > MAX_PAGE:
        raise BadRequest(f"{name} must be at most {MAX_PAGE}")
    return max(1, int(raw))
