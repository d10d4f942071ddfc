"""The DRL page (due list under the run form, one line per unit) and the report's rows naming their DRL set,
value, source and verify flag on the page and in the PDF, whose box plots are drawn like the web page's."""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest
from PIL import Image

from dosereg.registry.models import SiteSettings
from drl.charts import box_scale, chart_groups
from drl.models import DueComparison
from drl.pdf import drl_comparison_pdf
from drl.services import drl_comparison_run
from tests.conftest import require_program
from tests.drl.factories import study, unit

pytestmark = pytest.mark.django_db
YEAR = (dt.date(2024, 1, 1), dt.date(2024, 12, 31))


def test_due_list_is_compact_and_under_the_run_form(client, make_user):
    client.force_login(make_user("physicist"))
    a, b = unit("CT Nord"), unit("CT Sued")
    for k, day in enumerate((dt.date(2024, 5, 2), dt.date(2024, 3, 1))):
        DueComparison.objects.create(equipment=a, kind="new_protocol", reason=f"New acquisition protocol 'P{k}'",
                                     since=day)
    DueComparison.objects.create(equipment=b, kind="equipment_change", reason="Software changed", since=YEAR[0])
    html = client.get("/drl/").content.decode()
    assert html.index('id="run-form"') < html.index('id="due"')
    assert html.count('<details class="due-unit">') == 2  # one line per unit, not per change
    nord = html[html.index(f"<summary>{a.display_name}"):]
    assert nord.startswith(f"<summary>{a.display_name} · 2 changes since 2024-03-01</summary>")
    earliest = DueComparison.objects.get(equipment=a, since=dt.date(2024, 3, 1))
    assert f'action="/drl/due/{earliest.pk}/run/"' in nord[:nord.index("</details>")]
    block = nord[:nord.index("</details>")]
    assert "P0" in block and "P1" in block and "Software changed" not in block


def _run():
    """Two CT units' chest CTs (UK DRL, verified) and one unit's abdominal-pain CTs (EUCLID, to verify); one
    chest unit above its DRL (a status from three patients: the site's minimum lowered)."""
    site = SiteSettings.load()
    site.drl_min_patients = 3
    site.save()
    low, high = unit("CT Low"), unit("CT High")
    for dlp in (200, 220, 240):
        study(low, dlp=dlp, date=dt.date(2024, 4, 1))
        study(high, dlp=dlp + 200, date=dt.date(2024, 4, 1))
        study(low, exam="ct-abdominal-pain", description="CT Acute Abdomen", dlp=dlp + 120, date=dt.date(2024, 4, 1))
    return drl_comparison_run(period_start=YEAR[0], period_end=YEAR[1])


def test_report_rows_name_their_drl_set_on_the_page(client, make_user):
    client.force_login(make_user("physicist"))
    run = _run()
    html = client.get(f"/drl/comparisons/{run.pk}/").content.decode()
    table = html[html.index('id="drl-table"'):html.index("</table>")]
    rows = table.split("<tr>")[2:]
    pain = next(r for r in rows if "CT Low" in r and "abdominal pain" in r and "DLP total" in r)
    assert "436 mGy·cm" in pain and "verify" in pain and "European clinical DRLs, CT (EUCLID, RP 195)" in pain
    assert "Radiation Protection No 195" in pain  # the source, on the row (title) and in the sources below
    chest = next(r for r in rows if "CT High" in r and "lung cancer" in r and "DLP total" in r)
    assert "290 mGy·cm" in chest and "UK national DRLs" in chest and ">verify<" not in chest


def test_pdf_rows_name_the_set_and_the_box_plots_are_drawn(tmp_path):
    pdftotext = require_program("pdftotext")
    pdftoppm = require_program("pdftoppm")
    run = _run()
    pdf = drl_comparison_pdf(run)
    text = subprocess.run([pdftotext, "-layout", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    chest = next(line for line in text.splitlines() if "CT High" in line and "DLP" in line)
    assert "[2] UK national" in chest and "ABOVE DRL" in chest and "290" in chest.split()
    pain = next(line for line in text.splitlines() if "CT Low" in line and "colic" in line and "DLP" in line)
    assert "436 *" in pain and "[1] European" in pain and "below DRL" in pain
    assert "[1] European clinical DRLs, CT (EUCLID, RP 195) (verify): " in text and "[2] UK national" in text
    # the plots: one per examination, quantity and group with a median, as on the web page
    rows = list(run.rows.all().order_by("exam_code", "quantity", "per", "patient_group", "equipment_name"))
    plotted = [g for g in chart_groups(rows) if box_scale(g.rows)]
    assert len(plotted) >= 2 and "Distributions" in text
    assert "DRL 290 mGy.cm" in text and "DRL 436 mGy.cm" in text and text.count("n=3") >= 3
    # drawn, not only labelled: the last page holds the red median of the unit above its DRL and the blue boxes
    subprocess.run([pdftoppm, "-png", "-r", "50", "-l", "9", "-", str(tmp_path / "p")], input=pdf, check=True)
    page = Image.open(sorted(tmp_path.glob("p*.png"))[-1]).convert("RGB")
    colours = page.getcolors(maxcolors=1 << 20)
    red = sum(n for n, (r, g, b) in colours if r > 150 and g < 80 and b < 80)
    blue = sum(n for n, (r, g, b) in colours if b > 150 and r < 60)
    assert red > 20 and blue > 20
