"""DRL comparisons that run themselves: a software change on a unit, then enough new studies, gives a new snapshot
without anyone running it (clock injected); "not for DRL" examinations stay out of the medians."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model

from dosereg.registry.models import (
    EquipmentChange,
    NotificationDelivery,
    NotificationSubscription,
    SiteSettings,
    StandardExam,
)
from drl.models import DrlComparison, DueComparison
from drl.selectors import drl_report_rows
from drl.services import drl_comparison_run, drl_due_comparisons_run, drl_report_csv, note_equipment_change
from tests.drl.factories import study, unit

pytestmark = pytest.mark.django_db


def test_software_change_then_enough_studies_runs_the_comparison_itself():
    site = SiteSettings.load()
    site.drl_min_patients = 3
    site.save()
    physicist = get_user_model().objects.create_user("phys", email="phys@example.org")
    NotificationSubscription.objects.create(user=physicist, topic="drl_due")
    a = unit("Scanner A")
    change = EquipmentChange.objects.create(equipment=a, kind="software", old_value="VA1", new_value="VA2",
                                            effective_date=dt.date(2024, 6, 1))
    note_equipment_change(change.pk)
    due = DueComparison.objects.get(equipment=a)
    study(a, date=dt.date(2024, 5, 20), dlp=300)  # before the change: not counted
    for day in (2, 3):
        study(a, date=dt.date(2024, 6, day), dlp=250)
    assert drl_due_comparisons_run(today=dt.date(2024, 6, 10)) == []  # two patients since the change: not yet
    assert not DrlComparison.objects.exists()
    study(a, date=dt.date(2024, 6, 12), dlp=270)
    study(a, date=dt.date(2024, 6, 20), dlp=260)  # after "today": not counted until the clock gets there
    runs = drl_due_comparisons_run(today=dt.date(2024, 6, 15))
    assert len(runs) == 1
    run = runs[0]
    assert (run.trigger, run.equipment_id, run.period_start, run.period_end) == (
        "due", a.pk, dt.date(2024, 6, 1), dt.date(2024, 6, 15))
    row = run.rows.get(exam_code="ct-chest", quantity="dlp_total_mgycm")
    assert (row.n, row.median) == (3, 250.0)  # 250, 250, 270
    due.refresh_from_db()
    assert due.resolved_by_id == run.pk
    assert NotificationDelivery.objects.filter(topic="drl_due", subject__startswith="DRL re-comparison done").count() == 1
    assert drl_due_comparisons_run(today=dt.date(2024, 6, 16)) == []  # resolved: nothing runs twice


def test_not_for_drl_examination_leaves_the_medians():
    a = unit("Scanner B")
    rt = StandardExam.objects.get(code="ct-rt-planning")  # shipped "not for DRL" (drl/data/not_for_drl.json)
    assert rt.not_for_drl
    for dlp in (200, 220, 240):
        study(a, date=dt.date(2024, 3, 1), dlp=dlp)
    for dlp in (900, 950):
        study(a, exam=rt.code, date=dt.date(2024, 3, 1), dlp=dlp)
    run = drl_comparison_run(period_start=dt.date(2024, 1, 1), period_end=dt.date(2024, 12, 31))
    assert set(run.rows.values_list("exam_code", flat=True)) == {"ct-chest"}
    assert run.rows.get(exam_code="ct-chest", quantity="dlp_total_mgycm").median == 220.0


# the corpus names, "not for DRL" ones among them, are mapped in tests/drl/test_mapping_indication.py


def test_report_rows_name_the_drl_set_and_source():
    a = unit("Scanner R")
    for dlp in (200, 220, 240):
        study(a, date=dt.date(2024, 3, 1), dlp=dlp)
    run = drl_comparison_run(period_start=dt.date(2024, 1, 1), period_end=dt.date(2024, 12, 31))
    row = next(r for r in drl_report_rows(run) if r["standard_exam"] == "ct-chest" and r["per"] == "examination")
    assert row["drl"] == 290.0 and row["drl_set"].startswith("UK national DRLs") and "UKHSA" in row["drl_source"]
    header = drl_report_csv(drl_report_rows(run)).splitlines()[0]
    assert "drl_set" in header and "drl_source" in header
