"""The registry pages: content from real rows, permissions per role, audit rows, few queries per page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dosereg.registry.models import AuditLog, Equipment, SiteSettings, Study
from tests.web import factories


@pytest.mark.django_db
def test_first_run_home_shows_connection_details_and_demo_button(client, login):
    login("admin")
    page = client.get("/").content.decode()
    assert 'id="first-run"' in page
    assert "DOSEREG" in page and "11112" in page
    assert 'id="load-demo"' in page


@pytest.mark.django_db
def test_first_run_home_hides_demo_button_from_radiographers(client, login):
    login("radiographer")
    page = client.get("/").content.decode()
    assert 'id="first-run"' in page and 'id="load-demo"' not in page


@pytest.mark.django_db
def test_load_demo_data_reports_missing_command_politely(client, login, monkeypatch):
    from django.core.management import CommandError

    def fake(name, **kw):
        raise CommandError("Unknown command: 'generate_demo_data'")

    monkeypatch.setattr("dosereg.web.views.call_command", fake)
    login("admin")
    response = client.post("/demo-data/", follow=True)
    assert b"Demo data could not be loaded" in response.content


@pytest.mark.django_db
def test_load_demo_data_needs_permission(client, login):
    login("radiographer")
    assert client.post("/demo-data/").status_code == 403


@pytest.mark.django_db
def test_dashboard_lists_refused_objects_and_weekly_chart(client, login, history):
    login("physicist")
    page = client.get("/").content.decode()
    assert "Dashboard" in page
    assert "unknown unit &#x27;mGy.mm&#x27; on CTDIvol" in page
    assert '<svg class="chart weekly"' in page


@pytest.mark.django_db
def test_patient_search_by_id_name_accession_and_date(client, login, history):
    login("radiographer")
    acc = Study.objects.filter(patient=history).first().accession_number
    for params in ({"q": "PAT001"}, {"q": "doe"}, {"q": acc}, {"date": "2024-03-04"}):
        page = client.get("/patients/", params).content.decode()
        assert f"/patients/{history.pk}/" in page, params
        assert "Doe, Jane" in page
    assert b"No patient matches" in client.get("/patients/", {"q": "nobody-here"}).content


@pytest.mark.django_db
def test_patient_history_shows_studies_in_order_totals_and_chart(client, login, history):
    login("radiographer")
    response = client.get(f"/patients/{history.pk}/")
    page = response.content.decode()
    assert response.status_code == 200
    # time order: CT (March) before fluoroscopy (May) before NM (August)
    assert page.index("2024-03-04") < page.index("2024-05-06") < page.index("2024-08-09")
    # totals per quantity type, never summed across quantities
    assert "DLP total" in page and "968" in page  # 8.1 + 498.3 + 462.0 = 968.4 mGy·cm
    assert "KAP total" in page and "33.7" in page  # 33.4 (fluoro) + 0.303 (radiography) Gy·cm²
    assert "AGD left breast" in page and "2.57" in page
    assert "650" in page and "MBq" in page
    assert '<svg class="chart timeline"' in page
    assert 'data-quantity="dlp_total_mgycm"' in page and 'data-quantity="kap_total_gycm2"' in page
    assert AuditLog.objects.filter(action="view_patient_history", object_id=str(history.pk)).exists()


@pytest.mark.django_db
def test_patient_history_query_count_does_not_grow_with_studies(client, login, history):
    login("radiographer")
    with CaptureQueriesContext(connection) as small:
        client.get(f"/patients/{history.pk}/")
    for month in range(1, 10):
        factories.ct_study(history, date=dt.date(2023, month, 3))
    with CaptureQueriesContext(connection) as big:
        client.get(f"/patients/{history.pk}/")
    assert len(big) == len(small)
    assert len(big) <= 15


@pytest.mark.django_db
def test_study_detail_ct(client, login, history):
    login("practitioner")
    study = Study.objects.get(patient=history, modality_type="CT")
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert 'id="ct-events"' in page
    assert "11.5" in page and "498" in page and "BODY32" in page and "localizer" in page
    assert "11.52" not in page  # three significant digits, the catalogue's display rule
    assert 'id="dose-text"' in page and "DLP total: 968 mGy·cm" in page
    assert "/download/" in page  # practitioners may download the original object
    assert 'id="report-exposure"' in page
    assert AuditLog.objects.filter(action="view_study", object_id=str(study.pk)).exists()


@pytest.mark.django_db
def test_study_detail_fluoro_planes_angles_and_warnings(client, login, history):
    login("practitioner")
    study = Study.objects.get(patient=history, modality_type="fluoroscopy")
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert 'id="projection-events"' in page
    assert "Plane A" in page and "Plane B" in page
    assert "-30" in page and "180 × 180" in page and "2.11" in page
    assert "Ka,r total of plane B missing" in page
    assert "6:12 min" in page


@pytest.mark.django_db
def test_study_detail_mammo_radiography_nm(client, login, history):
    login("practitioner")
    mg = client.get(f"/studies/{Study.objects.get(patient=history, modality_type='mammography').pk}/")
    assert b"medio-lateral oblique" in mg.content and b"1.43" in mg.content
    dx = client.get(f"/studies/{Study.objects.get(patient=history, modality_type='radiography').pk}/")
    assert b"Chest LAT" in dx.content and b"0.221" in dx.content
    nm = client.get(f"/studies/{Study.objects.get(patient=history, modality_type='nuclear_medicine').pk}/")
    assert b"Tc-99m oxidronate (HDP)" in nm.content and b"Technetium-99m" in nm.content and b"650" in nm.content


@pytest.mark.django_db
def test_radiographer_sees_study_but_cannot_download(client, login, history):
    login("radiographer")
    study = Study.objects.get(patient=history, modality_type="CT")
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert "/download/" not in page
    obj = study.reports.first().received_object
    assert client.get(f"/objects/{obj.pk}/download/").status_code == 403


@pytest.mark.django_db
def test_download_original_object(client, login, history, settings, tmp_path):
    login("practitioner")
    study = Study.objects.get(patient=history, modality_type="CT")
    obj = study.reports.first().received_object
    path = tmp_path / "x.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM")
    obj.file_path = str(path)
    obj.save()
    response = client.get(f"/objects/{obj.pk}/download/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content).endswith(b"DICM")
    assert AuditLog.objects.filter(action="download_dicom", object_id=str(obj.pk)).exists()


@pytest.mark.django_db
def test_patient_sheet_shows_values_as_reported_with_canonical_beside(client, login, history):
    login("radiographer")
    page = client.get(f"/patients/{history.pk}/sheet/").content.decode()
    assert "0.00251 Gy·m²" in page  # as the X-ray system reported it
    assert "25.1 Gy·cm²" in page  # canonical
    assert "0.402 Gy" in page and "402 mGy" in page
    assert "Kerma-area product" in page and "Average glandular dose" in page
    assert "not a measure of your personal risk" in page
    assert AuditLog.objects.filter(action="print_patient_sheet", object_id=str(history.pk)).exists()


@pytest.mark.django_db
def test_patient_sheet_for_one_study(client, login, history):
    login("radiographer")
    study = Study.objects.get(patient=history, modality_type="radiography")
    page = client.get(f"/patients/{history.pk}/sheet/?study={study.pk}").content.decode()
    assert "0.82 dGy·cm²" in page and "Chest PA" in page
    assert "Coronary angiography" not in page


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/patients/", "/patients/{p}/", "/patients/{p}/sheet/"])
def test_qa_committee_cannot_see_patient_pages(client, login, history, path):
    login("qa_committee")
    assert client.get(path.format(p=history.pk)).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/patients/", "/studies/", "/units/", "/audit/"])
def test_user_without_role_is_refused(client, login, path):
    login(None)
    assert client.get(path).status_code == 403


@pytest.mark.django_db
def test_anonymous_pages_redirect_to_login(client, history):
    for path in ["/patients/", f"/patients/{history.pk}/", "/studies/", "/units/"]:
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_study_list_filters_sort_and_bad_input(client, login, history):
    login("physicist")
    page = client.get("/studies/").content.decode()
    assert "<strong>5</strong>" in page
    page = client.get("/studies/", {"modality": "CT"}).content.decode()
    assert "<strong>1</strong>" in page and "CT Abdomen" in page
    page = client.get("/studies/", {"kap_min": "1"}).content.decode()
    assert "<strong>1</strong>" in page and "Coronary angiography" in page
    page = client.get("/studies/", {"date_from": "2024-05-01", "date_to": "2024-07-31"}).content.decode()
    assert "<strong>3</strong>" in page
    page = client.get("/studies/", {"sort": "-kap_total_gycm2"}).content.decode()
    assert page.index("Coronary angiography") < page.index("Chest PA")
    unit = Equipment.objects.get(station_name="MG1")
    page = client.get("/studies/", {"room": unit.room_id}).content.decode()
    assert "<strong>1</strong>" in page and "Screening mammography" in page
    bad = client.get("/studies/", {"date_from": "yesterday"})
    assert bad.status_code == 400 and b"Enter a valid date" in bad.content


@pytest.mark.django_db
def test_study_list_rows_and_filter_form_render_values_escaped_and_selected(client, login, history):
    """The rows and the filter form are rendered in Python (dosereg.web.widgets, study_list_rows): same cells,
    values escaped, the chosen filters shown as chosen."""
    login("physicist")
    ct = Study.objects.get(patient=history, modality_type="CT")
    Study.objects.filter(pk=ct.pk).update(study_description="<b>CT</b> & more")
    unit = Equipment.objects.get(station_name="MG1")
    page = client.get("/studies/", {"modality": ["CT", "mammography"], "room": unit.room_id, "kap_min": "0.5",
                                    "date_from": "2020-01-02"}).content.decode()
    assert '<option value="CT" selected>' in page and '<option value="mammography" selected>' in page
    assert '<option value="fluoroscopy">' in page
    assert f'<option value="{unit.room_id}" selected>' in page
    assert '<input type="number" name="kap_min" class="dose" id="id_kap_min" min="0" step="any" value="0.5">' in page
    assert '<input type="date" name="date_from" id="id_date_from" value="2020-01-02">' in page
    page = client.get("/studies/", {"modality": "CT"}).content.decode()
    assert "&lt;b&gt;CT&lt;/b&gt; &amp; more" in page and "<b>CT</b>" not in page
    assert f'<a href="/studies/{ct.pk}/">{ct.study_date.isoformat()}</a>' in page
    assert '<td class="num">11.5</td>' in page  # CTDIvol 11.52 mGy, three significant digits
    page = client.get("/studies/", {"modality": "mammography"}).content.decode()
    assert "Screening mammography" in page and " / " in page  # AGD left / right


@pytest.mark.django_db
def test_study_list_query_count_is_flat(client, login, history):
    login("physicist")
    with CaptureQueriesContext(connection) as small:
        client.get("/studies/")
    pat = factories.patient("PAT002", "Roe^Richard", "M")
    for month in range(1, 13):
        factories.ct_study(pat, date=dt.date(2023, month, 3))
        factories.fluoro_study(pat, date=dt.date(2023, month, 4))
    with CaptureQueriesContext(connection) as big:
        client.get("/studies/")
    assert len(big) == len(small) <= 15


@pytest.mark.django_db
def test_units_page_and_room_mapping_is_audited(client, login, history):
    user = login("physicist")
    unit = Equipment.objects.get(station_name="CATH1")
    page = client.get("/units/").content.decode()
    assert "Azurion" in page and "Cath lab 1" in page
    detail = client.get(f"/units/{unit.pk}/").content.decode()
    assert "New unit" in detail  # change history
    response = client.post(f"/units/{unit.pk}/", {"new_room": "Cath lab 2"})
    assert response.status_code == 302
    unit.refresh_from_db()
    assert unit.room.name == "Cath lab 2"
    assert AuditLog.objects.filter(action="map_unit_room", username=user.username).exists()


@pytest.mark.django_db
def test_radiographer_cannot_map_rooms(client, login, history):
    login("radiographer")
    unit = Equipment.objects.get(station_name="CATH1")
    assert client.post(f"/units/{unit.pk}/", {"new_room": "X"}).status_code == 403


@pytest.mark.django_db
def test_audit_trail_page_for_admins(client, login, history):
    login("radiographer")
    client.get(f"/patients/{history.pk}/")
    login("admin")
    page = client.get("/audit/").content.decode()
    assert "view_patient_history" in page


@pytest.mark.django_db
def test_referrer_summary_follows_site_setting(client, login, history):
    login("practitioner")
    study = Study.objects.get(patient=history, modality_type="CT")
    site = SiteSettings.load()
    site.referrer_summary = "effective_dose"
    site.save()
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert "Effective dose estimate: 14.5 mSv" in page and "AAPM Report 96" in page
    assert "not a personal risk figure" in page
    site.referrer_summary = "drl"
    site.save()
    page = client.get(f"/studies/{study.pk}/").content.decode()
    assert "968 mGy·cm" in page and "diagnostic reference level" in page


@pytest.mark.django_db
def test_pseudonym_mode_search_by_real_id(client, login, settings):
    from dosereg.registry.services.pseudonyms import patient_pseudonym

    settings.PSEUDONYM_KEY = "test-key"
    pseudo = patient_pseudonym("REAL-42")
    pat = factories.patient(pseudo, name="", birth_date=None, pseudonymised=True)
    factories.ct_study(pat)
    login("radiographer")
    page = client.get("/patients/", {"q": "REAL-42"}).content.decode()
    assert f"/patients/{pat.pk}/" in page and "REAL-42" not in page.split('id="patient-results"')[1]
    history = client.get(f"/patients/{pat.pk}/").content.decode()
    assert "pseudonym" in history and pseudo in history


@pytest.mark.django_db
def test_alert_badges_on_history_and_dashboard(client, login, history):
    triggers_models = pytest.importorskip("triggers.models")
    study = Study.objects.get(patient=history, modality_type="fluoroscopy")
    rule = triggers_models.TriggerRule.objects.create(
        name="Ka,r 500 mGy", modality_type="fluoroscopy", quantity="ka_r_total_mgy", threshold=500, unit="mGy",
        scope="study", severity="alert", source="test rule")
    triggers_models.Alert.objects.create(
        study=study, rule=rule, patient=history, severity="alert", scope="study", quantity="ka_r_total_mgy",
        quantity_label="Ka,r", value=512, unit="mGy", threshold=500, summary="Ka,r 512 mGy ≥ 500 mGy")
    login("physicist")
    page = client.get(f"/patients/{history.pk}/").content.decode()
    assert '<span class="badge alert" title="Ka,r 512 mGy ≥ 500 mGy">alert · Ka,r total</span>' in page
    home = client.get("/").content.decode()
    row = home.split('id="dashboard-alerts"', 1)[1].split("</tr>", 2)[1]
    assert "512 mGy" in row and "≥ 500 mGy" in row and history.patient_id in row
