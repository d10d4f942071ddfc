"""Real files from ../shared/rdsr through import_dose and the default rule packs."""

from __future__ import annotations

import pytest

from dosereg.registry.models import Study
from triggers.models import Alert

pytestmark = [pytest.mark.corpus, pytest.mark.django_db]


def test_316_event_report_raises_its_two_kar_alerts(corpus, import_dose):
    print(import_dose(corpus / "rf" / "RF-Pat-Orientation-Modifier-Missing.dcm"))
    study = Study.objects.get()
    alerts = {a.rule.key: a for a in Alert.objects.filter(study=study).select_related("rule")}
    assert set(alerts) == {"mppg12a-kar-notification", "ncrp168-kar"}
    note = alerts["mppg12a-kar-notification"]
    assert note.severity == "notification"
    assert note.unit == "mGy" and note.threshold == 3000
    assert note.value == pytest.approx(study.ka_r_total_mgy)
    assert 7000 <= note.value < 8000  # 7.69 Gy (../shared/rdsr/README.md)
    assert note.details["steps_reached"] == [4000, 5000, 6000, 7000]
    assert "4000, 5000, 6000, 7000 mGy" in note.summary
    ncrp = alerts["ncrp168-kar"]
    assert ncrp.severity == "alert" and ncrp.threshold == 5000 and ncrp.state == "new"
    # KAP 468.8 Gy·cm² and 47.1 min stay below 500 Gy·cm² and 60 min
    assert study.kap_total_gycm2 < 500 and study.fluoro_time_total_s < 3600
