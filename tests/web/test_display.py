"""Numbers on the pages through the one formatter: patient sheet values as reported, the referrer's dose text in
lines, findings about values (corrections, device totals, implausible values awaiting confirmation), export headers
from the catalogue, and the locale's separators."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.utils import translation
from openpyxl import load_workbook

from dosereg.registry.models import AccumulatedDose, AuditLog, SiteSettings, Study
from dosereg.web import formatting
from dosereg.web.dose_text import study_dose_text
from tests.web import factories


@pytest.mark.django_db
def test_patient_sheet_shows_values_as_reported_rounded_for_reading_and_the_ct_effective_dose(client, login):
    pat = factories.patient()
    fluoro = factories.fluoro_study(pat)
    acc = AccumulatedDose.objects.filter(report__study=fluoro).order_by("pk").first()
    acc.raw = {"kap_total_gycm2": ["0.04688100000000", "Gy.m2"], "ka_r_total_mgy": [7.68897349461299, "Gy"]}
    acc.kap_total_gycm2, acc.ka_r_total_mgy = 468.81, 7688.97349461299
    acc.save()
    ct = factories.ct_study(pat)
    login("practitioner")
    page = client.get(f"/patients/{pat.pk}/sheet/").content.decode()
    assert "0.04688 Gy·m²" in page and "7.689 Gy" in page  # as the X-ray system reported them, 4 digits
    assert "0.046881" not in page and "7.68897" not in page
    assert "469 Gy·cm²" in page and "7.69 Gy" in page  # the standard unit, the catalogue's display
    # the CT study's effective dose estimate, with its method, as for nuclear medicine
    sheet = client.get(f"/patients/{pat.pk}/sheet/", {"study": ct.pk}).content.decode()
    assert "Effective dose (estimate)" in sheet and "14.5 mSv" in sheet and "AAPM Report 96" in sheet
    assert '<col class="q"><col class="v"><col class="v">' in sheet  # fixed columns whose headers wrap


@pytest.mark.django_db
def test_dose_text_one_quantity_per_line_in_readable_units():
    pat = factories.patient()
    fluoro = factories.fluoro_study(pat)
    Study.objects.filter(pk=fluoro.pk).update(kap_total_gycm2=123.4, ka_r_total_mgy=7689.0, fluoro_time_total_s=2827.0)
    fluoro.refresh_from_db()
    text = study_dose_text(fluoro)
    assert "KAP total: 123 Gy·cm²\nKa,r total: 7.69 Gy\nFluoroscopy time: 47:07 min" in text
    ct = factories.ct_study(pat)
    Study.objects.filter(pk=ct.pk).update(dlp_total_mgycm=2463.7, max_ctdivol_mgy=12.34)
    ct.refresh_from_db()
    text = study_dose_text(ct)
    assert "DLP total: 2,460 mGy·cm\nHighest CTDIvol: 12.3 mGy" in text
    for wrong in ("e+", "7689.0", "2827 s", "mGy·cm CTDIvol"):
        assert wrong not in study_dose_text(fluoro) + study_dose_text(ct)
    site = SiteSettings.load()
    site.dose_text_template = "{quantities_inline}"
    site.save()
    assert study_dose_text(ct) == "DLP total: 2,460 mGy·cm; Highest CTDIvol: 12.3 mGy"


def test_locale_separators_when_the_site_groups_thousands(settings):
    settings.USE_THOUSAND_SEPARATOR = True
    with translation.override("de"):
        assert formatting.quantity("dlp_total_mgycm", 2463.7) == "2.460 mGy·cm"
        assert formatting.quantity("max_ctdivol_mgy", 12.34) == "12,3 mGy"
    with translation.override("en"):
        assert formatting.quantity("dlp_total_mgycm", 2463.7) == "2,460 mGy·cm"
    settings.USE_THOUSAND_SEPARATOR = False
    with translation.override("de"):  # Django does not group: DoseReg's defaults, never a mix
        assert formatting.quantity("dlp_total_mgycm", 2463.7) == "2,460 mGy·cm"


@pytest.fixture
def flagged_study(db):
    study = factories.ct_study(factories.patient())
    study.flags = ["corrected", "device_total_mismatch", "implausible_value", "partial_overlap"]
    study.flag_details = [
        {"flag": "corrected", "quantity": "dlp_total_mgycm", "old": 236.1, "new": 177.3, "date": "2025-01-02T10:00:00"},
        {"flag": "device_total_mismatch", "quantity": "kap_total_gycm2", "reason": "differs", "reported": 46.88,
         "events_sum": 38.02, "unit": "Gy·cm²", "plane": "A"},
        {"flag": "implausible_value", "quantity": "max_ctdivol_mgy", "reason": "above", "value": 12345.0,
         "unit": "mGy", "plausible_max": 10000.0},
    ]
    study.values_unconfirmed = True
    study.save()
    return study


@pytest.mark.django_db
def test_study_page_names_each_finding_with_its_numbers(client, login, flagged_study):
    login("radiographer")
    page = client.get(f"/studies/{flagged_study.pk}/").content.decode()
    assert "corrected on 2025-01-02: DLP 236.1 → 177.3 mGy·cm" in page
    assert "the unit reported 46.9 Gy·cm², its events add up to 38 Gy·cm²" in page and "plane A" in page
    assert "12,300 mGy" in page and "10,000 mGy" in page  # the implausible value and the maximum
    assert "Reports overlap partly" in page  # an older flag without details is still named
    assert 'id="unconfirmed"' in page and 'id="confirm-values"' not in page  # only physicists confirm
    assert client.post(f"/studies/{flagged_study.pk}/confirm-values/").status_code == 403


@pytest.mark.django_db
def test_physicist_confirms_implausible_values(client, login, flagged_study):
    user = login("physicist")
    page = client.get(f"/studies/{flagged_study.pk}/").content.decode()
    assert 'id="confirm-values"' in page
    response = client.post(f"/studies/{flagged_study.pk}/confirm-values/")
    assert response.status_code == 302
    flagged_study.refresh_from_db()
    assert not flagged_study.values_unconfirmed and flagged_study.values_confirmed_by == user.username
    assert AuditLog.objects.filter(action="confirm_values", object_id=str(flagged_study.pk)).exists()
    page = client.get(f"/studies/{flagged_study.pk}/").content.decode()
    assert 'id="confirm-values"' not in page and f"confirmed by {user.username}" in page
    assert client.get(f"/studies/{flagged_study.pk}/confirm-values/").status_code == 405


@pytest.mark.django_db
def test_api_study_detail_and_list_carry_flags_and_their_details(api_for, flagged_study):
    api = api_for("practitioner")
    body = api.get(f"/api/v1/studies/{flagged_study.study_instance_uid}/").json()
    assert body["flags"] == flagged_study.flags
    assert body["flag_details"][0] == {"flag": "corrected", "quantity": "dlp_total_mgycm", "old": 236.1,
                                       "new": 177.3, "date": "2025-01-02T10:00:00"}
    assert body["values_unconfirmed"] is True
    listed = api_for("api_client").get("/api/v1/studies/").json()["results"][0]
    assert listed["flags"] == flagged_study.flags and len(listed["flag_details"]) == 3


@pytest.mark.django_db
def test_export_headers_come_from_the_catalogue_and_a_nul_byte_does_not_break_xlsx(client, login):
    study = factories.ct_study(factories.patient())
    nul = "\x00" if connection.vendor == "sqlite" else ""  # PostgreSQL cannot hold NUL at all (the border strips it)
    Study.objects.filter(pk=study.pk).update(study_description=f"CT{nul} abdomen\x07 bell")
    login("physicist")
    response = client.get("/studies/", {"format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert "DLP total (mGy·cm)" in rows[0] and "Highest CTDIvol (mGy)" in rows[0] and "Ka,r total (mGy)" in rows[0]
    assert "study_instance_uid" in rows[0]
    assert rows[1][rows[0].index("study_description")] == "CT abdomen bell"
    response = client.get("/studies/", {"format": "xlsx"})
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True)["studies"]
    header, first = list(sheet.iter_rows(values_only=True))[:2]
    assert "Fluoroscopy time (s)" in header
    assert first[header.index("study_description")] == "CT abdomen bell"


@pytest.mark.django_db
def test_study_list_headers_from_the_catalogue_and_cells_in_the_header_unit(client, login):
    Study.objects.filter(pk=factories.fluoro_study(factories.patient()).pk).update(ka_r_total_mgy=7689.0)
    login("radiographer")
    page = client.get("/studies/").content.decode()
    assert "Ka,r total (mGy)" in page and "KAP total (Gy·cm²)" in page
    assert '<td class="num">7,690</td>' in page  # in mGy, as the header says: not switched to Gy
