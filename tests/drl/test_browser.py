"""Browser: a physicist maps an unmapped name, runs the comparison, opens the report and downloads the PDF."""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest

from tests.conftest import require_program
from tests.drl.factories import study, unit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_physicist_maps_runs_and_downloads_pdf(chromium_browser, live_server, make_user, tmp_path):
    pdftotext = require_program("pdftotext")

    make_user("physicist", username="phys")
    a = unit("Browser CT")
    year = dt.date.today().year - 1
    for k in range(22):
        study(a, exam=None, description="Thx Spezial Lokal", dlp=250.0 + k, date=dt.date(year, 5, 1))
    if True:  # one browser for the session (tests/conftest.py)
        page = chromium_browser.new_page(accept_downloads=True)
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", "phys")
        page.fill("input[name=password]", "correct horse battery")
        page.click("button[type=submit], input[type=submit]")
        page.goto(f"{live_server.url}/mapping/")
        row = page.locator("#unmapped tr", has_text="Thx Spezial Lokal")
        row.locator("select[name=exam]").select_option(label="CT chest (lung cancer) [CT]")
        row.locator("button", has_text="Map").click()
        # nothing is saved before the preview: 22 studies move, the chest median appears
        page.wait_for_selector("#mapping-preview")
        assert page.inner_text("#moved") == "22" and "260 mGy·cm" in page.inner_text("#shifts")
        page.click("#confirm-mapping")
        page.wait_for_selector("text=now maps to CT chest (lung cancer)")
        page.goto(f"{live_server.url}/drl/")
        page.click("#run-comparison")
        page.wait_for_selector("#drl-table")
        table = page.inner_text("#drl-table")
        assert "CT chest (lung cancer)" in table and "Browser CT" in table
        # median 260.5 mGy·cm through the one formatter (three significant digits), the DRL with its unit
        assert "DLP total per examination" in table and "260 mGy·cm" in table and "290 mGy·cm" in table
        assert page.locator("svg.boxplot .drl-line").count() >= 1
        with page.expect_download() as info:
            page.click("#download-pdf")
        pdf_path = tmp_path / "report.pdf"
        info.value.save_as(pdf_path)
        page.close()
    text = subprocess.run([pdftotext, "-layout", str(pdf_path), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "DRL comparison" in text and "CT chest (lung cancer)" in text and "Distributions" in text
    row = next(line for line in text.splitlines() if "Browser CT" in line and "DLP" in line)
    assert "DLP total (mGy.cm)" in row and row.split().count("260") == 2 and "290" in row  # median, mean; DRL
    assert "ICRP Publication 135" in text and "UKHSA" in text
