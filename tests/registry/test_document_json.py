"""The content trees kept as documents (``DocumentJSONField``): PostgreSQL ``json`` compressed with lz4 where the
server has it, SQLite text; what is recorded reads back equal, through a multi-row INSERT and through COPY."""

from __future__ import annotations

import pytest
from django.db import connection

from dosereg.registry.models import DoseReport, IrradiationEvent
from dosereg.registry.services.recording import record_reports_bulk
from tests.factories import CtEventDataFactory, DoseReportDataFactory

pytestmark = pytest.mark.django_db

# what COPY's text format and JSON escaping must carry through: tab, quote, backslash, non-ASCII, small floats
ODD = {"text": 'tab\there "quoted" back\\slash \u00e9 \u7dda\u91cf', "small": 1.5e-07,
       "nested": [[1, 2.25], {"k": None}], "flag": True}


@pytest.mark.parametrize("n_events", [3, 250])  # a multi-row INSERT; on PostgreSQL COPY from 200 rows
def test_event_and_report_content_read_back_as_written(n_events):
    events = tuple(CtEventDataFactory(attributes={"ctdi_phantom": "body", "odd": ODD},
                                      content=[{"concept": ["DCM", "121106", "Comment"], "value": ODD}])
                   for _ in range(n_events))
    report = DoseReportDataFactory(events=events, content=[{"concept": ["DCM", "113705", "Scope"], "odd": ODD}])
    [outcome] = record_reports_bulk([report], source="test")
    assert outcome.status == "imported"
    rows = list(IrradiationEvent.objects.filter(study_id=outcome.study_id).order_by("sequence"))
    assert len(rows) == n_events
    for row, event in zip(rows, events, strict=True):
        assert row.attributes["odd"] == ODD and row.attributes["ctdi_phantom"] == "body"
        assert {"concept": ["DCM", "121106", "Comment"], "value": ODD} in row.content
        assert row.raw["dlp_mgycm"] == [event.quantities["dlp_mgycm"].raw_value, "mGy.cm"]
    assert IrradiationEvent.objects.filter(study_id=outcome.study_id).values_list("attributes", flat=True)[0][
        "odd"] == ODD
    assert {"concept": ["DCM", "113705", "Scope"], "odd": ODD} in DoseReport.objects.get(
        study_id=outcome.study_id).content


@pytest.mark.skipif(connection.vendor != "postgresql", reason="column types of PostgreSQL")
def test_document_columns_are_json_compressed_with_lz4_where_the_server_has_it():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        has_lz4 = bool(cursor.fetchone()[0])
        cursor.execute("SELECT attrelid::regclass::text, attname, format_type(atttypid, atttypmod), attcompression "
                       "FROM pg_attribute WHERE attrelid IN ('registry_irradiationevent'::regclass, "
                       "'registry_dosereport'::regclass) AND attname IN ('raw', 'attributes', 'content')")
        columns = {(table, name): (kind, method) for table, name, kind, method in cursor.fetchall()}
    assert set(columns) == {("registry_dosereport", "content"), ("registry_irradiationevent", "raw"),
                            ("registry_irradiationevent", "attributes"), ("registry_irradiationevent", "content")}
    assert {kind for kind, _ in columns.values()} == {"json"}
    assert {method for _, method in columns.values()} == ({"l"} if has_lz4 else {""})
