"""Peak skin dose after ingest: the post-commit step keeps it on the study, the export carries it, the API serves
the map, a PSD rule can fire, and a study whose geometry is incomplete says why instead of inventing a map."""

from __future__ import annotations

import struct

import pytest

from dicomrx import ingest
from dosereg.registry.models import Study
from triggers.models import Alert, TriggerRule

pytestmark = [pytest.mark.django_db, pytest.mark.corpus]


def _import(path, capture):
    with capture(execute=True):
        outcome = ingest.import_file(path)
    assert outcome.status == ingest.IMPORTED, outcome.reason
    return Study.objects.get(pk=outcome.study_id)


def test_siemens_axiom_artis_gets_a_psd_map_and_rule(corpus, make_user, client, tasks_in_process,
                                                    django_capture_on_commit_callbacks):
    TriggerRule.objects.create(key="psd-test", name="PSD 1 mGy", quantity="psd_mgy", threshold=1, unit="mGy",
                               scope="study", severity="notification", modality_type="fluoroscopy", source="test")
    study = _import(corpus / "rf" / "PySkinDose-siemens_axiom_artis.dcm", django_capture_on_commit_callbacks)
    assert study.psd_mgy == pytest.approx(1.296, rel=0.1)  # PySkinDose 25.1.1 gives 1.302 mGy on this file
    assert study.skin_dose["geometry_complete"] and study.skin_dose["psd_method"]
    assert Alert.objects.filter(study=study, rule__key="psd-test").exists()
    client.force_login(make_user("physicist"))
    png = client.get(f"/api/v1/studies/{study.study_instance_uid}/skin-map.png")
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png.content[16:24])[0] > 0
    svg = client.get(f"/api/v1/studies/{study.study_instance_uid}/skin-map.svg")
    assert svg.status_code == 200 and b"<svg" in svg.content
    export = client.get(f"/api/v1/studies/{study.study_instance_uid}/").json()
    assert export["totals"]["psd_mgy"] == pytest.approx(study.psd_mgy) and export["totals"]["psd_method"]


def test_incomplete_geometry_has_no_map_and_says_why(corpus, make_user, client, tasks_in_process,
                                                     django_capture_on_commit_callbacks):
    study = _import(corpus / "rf" / "RF-Pat-Orientation-Modifier-Missing.dcm", django_capture_on_commit_callbacks)
    assert study.psd_mgy is None and study.skin_dose["geometry_complete"] is False
    assert study.skin_dose["reasons"]
    client.force_login(make_user("physicist"))
    response = client.get(f"/api/v1/studies/{study.study_instance_uid}/skin-map.png")
    assert response.status_code == 404 and response.json()["reasons"]
