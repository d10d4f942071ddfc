"""No stored value can break a page, the API or an export: any float (inf, -inf, NaN, negative, 1e308, tiny)
written straight into any dose column, and any text (NUL, control characters, 100 KB) in any text field, bypassing
the border checks of the recording service.  Every view answers 200 and renders without an exception."""

from __future__ import annotations

import math

import pytest
from django.db import DataError, connection, models, transaction
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from dosereg.registry.models import AccumulatedDose, Equipment, IrradiationEvent, Patient, SiteSettings, Study
from dosereg.web.dose_text import study_dose_text
from tests.web import factories

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _float_columns(model) -> list[str]:
    return [f.name for f in model._meta.get_fields() if isinstance(f, models.FloatField)]


DOSE_COLUMNS = [(m, c) for m in (IrradiationEvent, AccumulatedDose, Study) for c in _float_columns(m)]
TEXT_COLUMNS = [(Study, "study_description"), (Study, "requested_procedure_description"),
                (Study, "performed_procedure_description"), (Study, "effective_dose_method"),
                (Study, "accession_number"), (IrradiationEvent, "protocol"), (IrradiationEvent, "event_type"),
                (IrradiationEvent, "target_region"), (IrradiationEvent, "ctdi_phantom"), (IrradiationEvent, "view"),
                (Equipment, "manufacturer"), (Equipment, "model"), (Equipment, "station_name"),
                (Patient, "name")]

ODD_FLOATS = st.one_of(
    st.sampled_from([math.inf, -math.inf, math.nan, -1.0, -0.0, 1e308, -1e308, 5e-324, 1e-300, 123456789.123]),
    st.floats(allow_nan=True, allow_infinity=True))
ODD_TEXT = st.one_of(
    st.sampled_from(["\x00", "CT\x00 head", "\x07\x1b[31m", "x" * 100_000, "<script>alert(1)</script>", "{}{",
                     "\ud800", "a\udfffb", "\u202e\ufeff"]),
    st.text(max_size=300))


@pytest.fixture
def superuser_client(client, history, make_user):
    client.force_login(make_user(None, is_superuser=True))
    return client


def _json_value(value: float):
    """As the border writes a finding's number into JSON (dosereg.core.sanity): non-finite values in words."""
    return value if math.isfinite(value) else str(value)


def _every_view_renders(client, patient: Patient) -> None:
    studies = list(Study.objects.select_related("equipment").order_by("pk"))
    urls = ["/", "/studies/", "/studies/?sort=-dlp_total_mgycm", f"/patients/{patient.pk}/",
            f"/patients/{patient.pk}/sheet/", "/api/v1/studies/", f"/api/v1/patients/{patient.patient_id}/history/"]
    urls += [f"/studies/{s.pk}/" for s in studies]
    urls += [f"/api/v1/studies/{s.study_instance_uid}/" for s in studies]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        if url.startswith("/api/"):
            response.json()
    for export in ("csv", "xlsx"):
        response = client.get("/studies/", {"format": export})
        assert response.status_code == 200
        assert b"".join(response.streaming_content)
    site = SiteSettings.load()
    for summary in ("physical", "effective_dose", "drl"):
        site.referrer_summary = summary
        for s in studies:
            assert study_dose_text(s, site=site)


@pytest.mark.django_db
@SETTINGS
@given(column=st.sampled_from(DOSE_COLUMNS), value=ODD_FLOATS)
def test_any_float_in_any_dose_column_never_breaks_a_view(superuser_client, history, column, value):
    model, name = column
    model.objects.update(**{name: value})
    AccumulatedDose.objects.update(raw={"kap_total_gycm2": [_json_value(value), "Gy.m2"],
                                        "dlp_total_mgycm": [_json_value(value), "mGy.cm"]})
    Study.objects.update(flags=["corrected", "device_total_mismatch", "implausible_value"], flag_details=[
        {"flag": "corrected", "quantity": "dlp_total_mgycm", "old": _json_value(value), "new": 1.0, "date": "?"},
        {"flag": "device_total_mismatch", "quantity": "kap_total_gycm2", "reported": _json_value(value),
         "events_sum": _json_value(value), "unit": "Gy·cm²", "plane": ""},
        {"flag": "implausible_value", "quantity": "nonsense", "value": _json_value(value)},
        {"flag": "invalid_value", "quantity": "ka_r_total_mgy", "value": _json_value(value)}],
        values_unconfirmed=True)
    _every_view_renders(superuser_client, history)


@pytest.mark.django_db
@SETTINGS
@given(column=st.sampled_from(TEXT_COLUMNS), text=ODD_TEXT)
def test_any_text_in_any_text_field_never_breaks_a_view(superuser_client, history, column, text):
    model, name = column
    # text no database can hold (a lone surrogate anywhere; NUL in PostgreSQL) never gets past the border: what
    # matters here is what a database can hold
    try:
        with transaction.atomic():
            model.objects.update(**{name: text})
            Study.objects.update(flag_details=[{"flag": "text_truncated", "quantity": name, "reason": text}],
                                 flags=["text_truncated", text[:50]])
    except (UnicodeEncodeError, ValueError, DataError):
        reject()
    _every_view_renders(superuser_client, history)


@pytest.mark.django_db
def test_nul_in_a_description_exports_as_xlsx(superuser_client, history):
    # PostgreSQL cannot hold NUL at all (the border removes it); SQLite can, and the export must still work
    Study.objects.update(study_description="CT\x00 head" if connection.vendor == "sqlite" else "CT\x1b head\x07")
    response = superuser_client.get("/studies/", {"format": "xlsx"})
    assert response.status_code == 200 and b"".join(response.streaming_content)[:2] == b"PK"


def test_dose_columns_cover_the_three_tables():
    assert {m for m, _ in DOSE_COLUMNS} == {IrradiationEvent, AccumulatedDose, Study}
    assert (Study, "ka_r_total_mgy") in DOSE_COLUMNS and (IrradiationEvent, "ctdivol_mgy") in DOSE_COLUMNS
    assert factories  # the fixture's studies come from tests.web.factories (one of every modality type)
