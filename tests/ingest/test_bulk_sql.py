"""bulk_sql.insert_rows: what a multi-row write stores reads back as written (PostgreSQL: COPY's text format)."""

from __future__ import annotations

import json

import pytest

from dosereg.registry.models import ReceivedObject
from dosereg.registry.services.recording.bulk_sql import JSON_TEXTS, _CopySource, insert_rows
from dosereg.registry.services.recording.rows import ReceivedRow

pytestmark = pytest.mark.django_db

AWKWARD = ["tab\there", "line\nbreak\r\n", "back\\slash \\N", "form\x0cfeed", "ünïcode ✓", "", "\\"]


def test_copy_writes_awkward_text_json_and_cached_json_texts_as_they_are():
    rows = []
    for i in range(210):
        text = AWKWARD[i % len(AWKWARD)]
        warnings = [text, {"n": i, "x": 0.1 * i}] if i % 3 else []
        row = ReceivedRow(sop_instance_uid=f"1.2.3.{i}", sha256=f"{i:064d}", source="demo", reason=text,
                          size=i * 1000, warnings=warnings)
        if i % 5 == 0:  # a builder's text for the value the column still holds: written as it is
            row.__dict__[JSON_TEXTS] = {"warnings": (warnings, json.dumps(warnings))}
        if i % 7 == 0:  # a text made for an earlier value: not used
            row.__dict__[JSON_TEXTS] = {"warnings": (["stale"], '["stale"]')}
        rows.append(row)
    insert_rows(ReceivedObject, rows, returning=True)
    assert len({r.pk for r in rows}) == len(rows) and all(r.pk for r in rows)
    stored = {o.pk: o for o in ReceivedObject.objects.all()}
    for i, row in enumerate(rows):
        obj = stored[row.pk]
        assert obj.sop_instance_uid == f"1.2.3.{i}"
        assert obj.reason == AWKWARD[i % len(AWKWARD)]
        assert obj.warnings == row.warnings
        assert obj.size == i * 1000 and obj.processed_at is None and obj.received_at is not None


def test_copy_data_made_as_it_is_read_crosses_its_chunks_intact():
    """COPY's data goes in chunks made as the server reads them: rows, escapes and characters cut at a chunk's edge
    read back whole."""
    rows = []
    for i in range(210):  # 300,000 characters: five chunks on PostgreSQL
        text = (AWKWARD[i % len(AWKWARD)] + "ü✓\t\\") * (50 + i % 13)
        rows.append(ReceivedRow(sop_instance_uid=f"1.2.4.{i}", sha256=f"{i:064d}", source="demo", reason=text,
                                warnings=[text]))
    insert_rows(ReceivedObject, rows, returning=True)
    stored = {o.pk: o for o in ReceivedObject.objects.all()}
    assert len(stored) == len(rows)
    for row in rows:
        assert (stored[row.pk].reason, stored[row.pk].warnings) == (row.reason, row.warnings)


def test_copy_source_gives_each_read_at_most_its_size_and_makes_only_what_is_read():
    made = []

    def lines():
        for i in range(100):
            made.append(i)
            yield f"row {i}\n"

    source = _CopySource(lines())
    first = source.read(20)
    assert first == "row 0\nrow 1\nrow 2\nro" and len(made) == 4
    rest = []
    while chunk := source.read(9):
        assert len(chunk) <= 9
        rest.append(chunk)
    assert first + "".join(rest) == "".join(f"row {i}\n" for i in range(100))
    assert source.read(9) == ""
