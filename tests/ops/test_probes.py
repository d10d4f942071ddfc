"""/healthz, /readyz and /metrics: open without login, no patient data, metrics only for the allowed."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from dicomrx.models import ListenerStatus, RefusedObject
from dosereg.ops import metrics
from dosereg.ops.views import address_allowed
from dosereg.registry.models import NotificationDelivery, ReceivedObject

pytestmark = pytest.mark.django_db

SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def parse(text: str) -> dict[tuple[str, str], float]:
    """{(name, 'k="v",...'): value} of a Prometheus text exposition; fails on any malformed line."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) dosereg_[a-z_]+ ", line), line
            continue
        m = SAMPLE.match(line)
        assert m, f"malformed sample line {line!r}"
        out[(m["name"], m["labels"] or "")] = float(m["value"])
    return out


def test_healthz_answers_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_check_and_no_data(client, settings):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    checks = {"database": "ok", "inbox": "ok"} | ({"broker": "ok"} if settings.CELERY_BROKER_URL else {})
    assert response.json() == {"status": "ok", "checks": checks}  # the broker only where one is configured


def test_readyz_checks_the_broker_when_one_is_configured(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("failed: ")
    assert response.json()["checks"]["database"] == "ok"


def test_readyz_unavailable_when_the_inbox_cannot_take_a_file(client, settings, tmp_path):
    settings.INBOX_DIR = tmp_path / "not-there"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["inbox"].startswith("failed: ")
    assert str(tmp_path) not in response.content.decode()  # no paths in an open endpoint


def test_readyz_listener_heartbeat_only_when_asked(client):
    assert client.get("/readyz").status_code == 200
    assert client.get("/readyz?listener=1").status_code == 503
    now = timezone.now()
    row = ListenerStatus.objects.create(name="DOSEREG@h:11112", hostname="h", pid=1, ae_title="DOSEREG", bind="x",
                                        port=11112, started_at=now, heartbeat_at=now)
    assert client.get("/readyz?listener=1").json()["checks"]["listener"] == "ok"
    ListenerStatus.objects.filter(pk=row.pk).update(heartbeat_at=now - dt.timedelta(minutes=2))
    assert client.get("/readyz?listener=1").status_code == 503


def test_metrics_open_to_loopback_and_permitted_tokens_only(client, make_user):
    assert client.get("/metrics").status_code == 200  # the test client comes from 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    physicist = Token.objects.create(user=make_user("physicist"))
    radiographer = Token.objects.create(user=make_user("radiographer"))
    ok = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION=f"Token {physicist.key}")
    assert ok.status_code == 200 and ok["Content-Type"].startswith("text/plain; version=0.0.4")
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3",
                      HTTP_AUTHORIZATION=f"Token {radiographer.key}").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Token nonsense").status_code == 403


def test_metrics_allow_list_takes_networks(client, settings):
    settings.METRICS_ALLOW = ["10.1.0.0/16"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics").status_code == 403  # loopback is no longer listed
    assert address_allowed("::ffff:10.1.2.3", ["10.1.0.0/16"])
    assert not address_allowed("not-an-address", ["0.0.0.0/0"])


def _object(uid: str, *, state: str, source: str = "c-store", age_s: float = 0, latency_s: float | None = None):
    row = ReceivedObject.objects.create(sop_instance_uid=uid, sha256=uid.ljust(64, "0")[:64], source=source,
                                        state=state)
    received = timezone.now() - dt.timedelta(seconds=age_s)
    processed = received + dt.timedelta(seconds=latency_s) if latency_s is not None else None
    ReceivedObject.objects.filter(pk=row.pk).update(received_at=received, processed_at=processed)


def test_metrics_count_the_rows(client):
    _object("1.1", state="ingested", latency_s=0.2)
    _object("1.2", state="ingested", latency_s=7)
    _object("1.3", state="rejected", latency_s=1.5, source="import")
    _object("1.4", state="received", age_s=300)
    _object("1.5", state="received", age_s=20)
    RefusedObject.objects.create(kind="c-store", status=0xA700, reason="disk full")
    RefusedObject.objects.create(kind="c-store", status=0xA700, reason="disk full")
    RefusedObject.objects.create(kind="association", reason="calling AE title not recognised")
    NotificationDelivery.objects.create(dedupe_key="k1", topic="alert", address="a@b", subject="s", body="b",
                                        state="failed")
    values = parse(client.get("/metrics").content.decode())
    assert values[("dosereg_objects_received_total", 'source="c-store"')] == 4
    assert values[("dosereg_objects_received_total", 'source="import"')] == 1
    assert values[("dosereg_objects_acknowledged_total", 'source="c-store"')] == 4
    assert values[("dosereg_objects_ingested_total", "")] == 2
    assert values[("dosereg_objects_refused_total", 'stage="listener",reason="out_of_resources"')] == 2
    assert values[("dosereg_objects_refused_total", 'stage="listener",reason="association_rejected"')] == 1
    assert values[("dosereg_objects_refused_total", 'stage="ingest",reason="rejected"')] == 1
    assert values[("dosereg_objects_waiting", "")] == 2
    assert 299 <= values[("dosereg_objects_waiting_oldest_age_seconds", "")] < 330
    assert values[("dosereg_ingest_latency_seconds_bucket", 'le="0.25"')] == 1
    assert values[("dosereg_ingest_latency_seconds_bucket", 'le="2"')] == 2
    assert values[("dosereg_ingest_latency_seconds_bucket", 'le="10"')] == 3
    assert values[("dosereg_ingest_latency_seconds_bucket", 'le="+Inf"')] == 3
    assert values[("dosereg_ingest_latency_seconds_count", "")] == 3
    assert values[("dosereg_ingest_latency_seconds_sum", "")] == pytest.approx(8.7, abs=0.01)
    assert values[("dosereg_email_failures_total", "")] == 1


def test_render_escapes_labels_and_spells_infinity():
    text = metrics.render([metrics.Family("dosereg_x", "gauge", "a\nb", [metrics.Sample(float("inf"),
                                                                                         (("l", 'a"b\\'),))])])
    assert text == '# HELP dosereg_x a\\nb\n# TYPE dosereg_x gauge\ndosereg_x{l="a\\"b\\\\"} +Inf\n'


@pytest.mark.django_db
def test_the_dicom_status_page_shows_free_space_reserve_and_the_oldest_wait(client, make_user, settings):
    from dosereg.registry.models import ReceivedObject

    settings.INBOX_DIR.mkdir(parents=True, exist_ok=True)
    ReceivedObject.objects.create(sop_instance_uid="1.2.3", sha256="0" * 64, source="import")
    client.force_login(make_user("physicist"))
    page = client.get("/dicom/").content.decode()
    assert 'id="inbox-space"' in page and " MB</strong>, reserve " in page and "0xA700" in page
    assert 'id="oldest-waiting"' in page
