"""The pictures of the study pages: the fluoroscopy page opens with the skin dose (map, PSD, method) or the geometry
notice, then the procedure's cumulative chart with its tables, the event table folded; the CT page has CTDIvol and
DLP bars against the DRL; the patient history's timeline marks the studies with alerts."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.core.management import call_command

from dosereg.core import procedure_chart
from dosereg.core.procedure_chart import ChartEvent
from dosereg.registry.models import Study
from dosereg.web import charts
from tests.factories import AlertFactory, DoseReportFactory, IrradiationEventFactory, PatientFactory, StudyFactory

AXIOM = "rf/PySkinDose-siemens_axiom_artis.dcm"
CARDIAC_316 = "rf/RF-Pat-Orientation-Modifier-Missing.dcm"


def _import(corpus, name: str, on_commit) -> Study:
    with on_commit(execute=True):  # the post-commit steps (skin dose among them) run as after a real import
        call_command("import_dose", str(corpus / name), stdout=io.StringIO(), stderr=io.StringIO())
    return Study.objects.latest("id")


def _page(client, make_user, study: Study) -> str:
    client.force_login(make_user("physicist"))
    response = client.get(f"/studies/{study.pk}/")
    assert response.status_code == 200
    return response.content.decode()


# --- the procedure chart (pure) --------------------------------------------------------------------------------------
def test_cumulative_sums_per_plane_over_procedure_time():
    t0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
    events = [ChartEvent(t0 + dt.timedelta(minutes=m), plane, ka_r, kap, 30.0, -10.0)
              for m, plane, ka_r, kap in ((0, "A", 100.0, 5.0), (3, "B", 40.0, 2.0), (6, "A", 50.0, 1.0))]
    chart = procedure_chart.procedure_chart(events)
    assert chart.timed and [t.plane for t in chart.traces] == ["A", "B"]
    a, b = chart.traces
    assert a.x == [0.0, 6.0] and a.ka_r_mgy == [100.0, 150.0] and a.kap_gycm2 == [5.0, 6.0]
    assert b.x == [3.0] and b.ka_r_mgy == [40.0]
    marks = procedure_chart.time_marks(chart, rows=2)
    assert [m["x"] for m in marks] == ["3", "6"]
    assert marks[0]["planes"] == [("A", 100.0, 5.0), ("B", 40.0, 2.0)]  # at 3 min: A's first event only
    assert procedure_chart.angle_sectors(chart)[0] == {"plane": "A", "primary": "30 to 60", "secondary": "-30 to 0",
                                                       "events": 2, "ka_r_mgy": 150.0}
    svg = procedure_chart.render_svg(chart)
    assert svg.count('class="trace"') == 4  # Ka,r and KAP, two planes each
    assert svg.count("<circle") == 6  # one dot per event with angles in each of the two angle panels


def test_events_without_time_are_counted_in_order_and_without_dose_are_left_out():
    events = [ChartEvent(None, "", 10.0, 1.0, None, None), ChartEvent(None, "", None, None, 0.0, 0.0),
              ChartEvent(None, "", 5.0, None, None, None)]
    chart = procedure_chart.procedure_chart(events)
    assert not chart.timed and chart.x_label == "irradiation event (number)"
    assert chart.traces[0].x == [1.0, 2.0] and chart.traces[0].ka_r_mgy == [10.0, 15.0] and not chart.angles
    assert procedure_chart.procedure_chart([ChartEvent(None, "A", None, None, 1.0, 1.0)]) is None


def test_ct_bars_mark_the_drl_and_the_acquisitions_above_it():
    svg = charts.ct_bars_svg([("#1 Head", 60.0, 900.0), ("#2 Head", 30.0, 500.0)], dlp_total=1400.0,
                             drl={"ctdivol_mgy": 50.0, "dlp_mgycm": 1000.0})
    assert svg.count('class="drl"') == 2 and "DRL 50 mGy" in svg and "DRL 1,000 mGy·cm" in svg
    assert "Study total" in svg and svg.count('fill="#b45309"') == 2  # CTDIvol 60 > 50, total DLP 1,400 > 1,000
    assert charts.ct_bars_svg([("#1", None, None)], dlp_total=None, drl={}) == ""


# --- pages -----------------------------------------------------------------------------------------------------------
@pytest.mark.corpus
@pytest.mark.django_db
def test_fluoroscopy_page_with_geometry_opens_with_the_map_and_the_chart(client, make_user, corpus,
                                                                           django_capture_on_commit_callbacks):
    study = _import(corpus, AXIOM, django_capture_on_commit_callbacks)
    assert study.skin_dose["geometry_complete"]
    page = _page(client, make_user, study)
    skin = page.index('id="skin-dose"')
    assert skin < page.index('id="procedure-chart"') < page.index('id="event-table"')
    assert re.search(r'id="skin-map"><svg', page) and "isodose" not in page[:skin]
    assert "estimate, about" in page and "±50 %" in page
    assert re.search(r'id="psd-value"><strong>1\.3 mGy</strong>', page)  # the stored PSD, 1.296 mGy
    assert "<details class=\"method\">" in page and "Siemens AXIOM-Artis" in page
    assert 'id="geometry-notice"' not in page
    assert '<details id="event-table">' in page  # 21 events: folded
    assert 'id="cumulative-table"' in page and 'id="angle-table"' in page


@pytest.mark.corpus
@pytest.mark.django_db
def test_316_event_page_shows_the_chart_and_the_geometry_notice_never_a_map(client, make_user, corpus,
                                                                               django_capture_on_commit_callbacks):
    study = _import(corpus, CARDIAC_316, django_capture_on_commit_callbacks)
    page = _page(client, make_user, study)
    assert "Geometry incomplete: Ka,r shown as the surrogate for skin dose" in page
    assert "no table position convention known" in page  # the reason
    assert 'id="skin-map"' not in page and "skin-map.png" not in page
    assert page.index('id="geometry-notice"') < page.index('id="procedure-chart"') < page.index('id="event-table"')
    assert page.count('class="trace"') == 2  # single plane: Ka,r and KAP
    table = page[page.index('id="cumulative-table"'):page.index("</table>", page.index('id="cumulative-table"'))]
    assert "7.68 Gy" in table  # the events' Ka,r summed at the end (the device total is 7.69 Gy)
    assert len(re.findall(r"<strong>Single plane</strong>", page)) <= 1  # the plane summary once


@pytest.mark.django_db
def test_ct_page_has_bars_per_acquisition_and_a_table(client, make_user):
    study = StudyFactory(ct=True, dlp_total_mgycm=1400.0, max_ctdivol_mgy=60.0)
    report = DoseReportFactory(study=study)
    for i, (ctdi, dlp) in enumerate(((60.0, 900.0), (30.0, 500.0)), 1):
        IrradiationEventFactory(report=report, event_type="spiral_acquisition", sequence=i, ctdivol_mgy=ctdi,
                                dlp_mgycm=dlp, protocol=f"Head {i}", kap_gycm2=None)
    page = _page(client, make_user, study)
    assert 'id="ct-chart"' in page and 'class="chart ct-bars"' in page
    assert "#1 Head 1" in page and "Study total" in page
    assert "No DRL applies to this study" in page  # no mapped examination here
    assert 'id="ct-chart-table"' in page and 'id="procedure-chart"' not in page and 'id="skin-dose"' not in page


@pytest.mark.django_db
def test_patient_history_timeline_marks_studies_with_alerts(client, make_user):
    patient = PatientFactory()
    quiet = StudyFactory(patient=patient, fluoroscopy=True, ka_r_total_mgy=800.0, study_date=dt.date(2026, 1, 5))
    loud = StudyFactory(patient=patient, fluoroscopy=True, ka_r_total_mgy=5400.0, study_date=dt.date(2026, 2, 9))
    AlertFactory(study=loud, quantity="ka_r_total_mgy", value=5400.0, threshold=5000.0)
    client.force_login(make_user("physicist"))
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    timeline = page[page.index('id="timeline"'):]
    assert timeline.count('class="alert-mark"') == 1
    assert "2026-02-09 alert:" in timeline and "2026-01-05 alert:" not in timeline
    assert quiet.pk != loud.pk
