"""What an incident report shows, on the page and in the PDF: numbers from the catalogue's formatter (unit always
shown, no exponent), event types in words, alerts with their values."""

from __future__ import annotations

import re
import subprocess

import pytest
from django.core.management import call_command

from tests.conftest import require_program
from triggers.incidents import services
from triggers.incidents.document import document_context

pytestmark = pytest.mark.django_db
EXPONENT = re.compile(r"\d[eE][+-]?\d")


def _incident(registry_rows, rule_and_alert, make_user):
    study = registry_rows("fluoro")
    study.events.filter(sequence=2).update(event_type="stationary_acquisition", kap_gycm2=0.0000321)
    return services.incident_from_alert(rule_and_alert(study).pk, user=make_user("physicist"))


def test_document_tables_use_catalogue_labels_and_units(registry_rows, rule_and_alert, make_user):
    ctx = document_context(_incident(registry_rows, rule_and_alert, make_user))
    [study] = ctx["snapshot_studies"]
    assert study["total_rows"] == [("KAP total", "121", "Gy·cm²"), ("Ka,r total", "5.1", "Gy"),
                                   ("Fluoroscopy time", "35:00 min", "")]
    assert study["plane_cols"] == ["Ka,r total (mGy)", "KAP total (Gy·cm²)", "Fluoroscopy time (s)"]
    assert [p["values"] for p in study["plane_rows"]] == [["3,200", "80.5", "1,500"], ["1,900", "40.2", "600"]]
    assert study["event_cols"] == ["KAP (Gy·cm²)", "Ka,r (mGy)", "Irradiation time (s)"]
    assert [(e["type"], e["values"][0]) for e in study["event_rows"]] == [("Fluoroscopy", "80.5"),
                                                                        ("Stationary acquisition", "0.0000321")]
    [trigger] = ctx["triggers"]
    assert (trigger["value_text"], trigger["threshold_text"]) == ("5.1 Gy", "5 Gy")


def test_pdf_shows_event_types_in_words_and_no_exponents(registry_rows, rule_and_alert, make_user, tmp_path):
    pdftotext = require_program("pdftotext")
    incident = _incident(registry_rows, rule_and_alert, make_user)
    out = tmp_path / "incident.pdf"
    call_command("incident_report", "--id", str(incident.pk), "--format", "pdf", "--output", str(out))
    text = " ".join(subprocess.run([pdftotext, str(out), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())
    assert "Stationary acquisition" in text and "stationary_acquisition" not in text
    assert "0.0000321" in text and not EXPONENT.search(text)
    assert "Ka,r total 5.1 Gy" in text and "Test rule" in text


def test_drl_position_in_words_with_units():
    position = {"exam_name": "CT head", "patient_group": "adult", "quantity": "dlp_total_mgycm", "value": 1149.6,
                "drl": 1000.0, "ratio": 1.1496, "status": "above", "drl_set": "BfS 2022", "verify": True}
    assert services._position_text(position) == ("CT head (adult): DLP total 1,150 mGy·cm against the DRL "
                                                  "1,000 mGy·cm (ratio 1.15, above), BfS 2022 "
                                                  "[verify against the primary publication]")
