"""Alert e-mails: sent once, to the right subscribers; a failing mail server is retried without duplicates."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend

from dosereg.registry.models import NotificationDelivery, NotificationSubscription, Room
from dosereg.registry.services.notifications import notification_retry_pending
from tests.triggers.conftest import eager
from tests.triggers.factories import fluoro_study
from triggers.models import Alert
from triggers.services import check_study

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _deliver_in_process():
    """Deliver in this process (locmem outbox) even when a broker is configured; the Celery transport of the
    registry's delivery task is not what these tests are about."""
    eager()


class FlakyBackend(LocmemBackend):
    """A mail server that refuses connections while ``down`` is set."""

    down = False

    def send_messages(self, messages):
        if FlakyBackend.down:
            raise ConnectionRefusedError("mail server down")
        return super().send_messages(messages)


def _subscribe(make_user, name, **kw):
    user = make_user("physicist", username=name, email=f"{name}@example.org")
    NotificationSubscription.objects.create(user=user, topic="alert", **kw)
    return user


def test_alert_email_sent_once_to_the_right_subscribers(make_user, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    angio = Room.objects.create(name="Angio 1")
    other = Room.objects.create(name="CT 2")
    _subscribe(make_user, "angio", room=angio)
    _subscribe(make_user, "everything")
    _subscribe(make_user, "ctroom", room=other)
    _subscribe(make_user, "ctonly", modality_type="CT")
    _subscribe(make_user, "sigonly", min_severity="significant_event")
    make_user("physicist", username="nosub", email="nosub@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        study = fluoro_study(ka_r_mgy=5200.0, room=angio)
        check_study(study.pk)
    alerts = Alert.objects.filter(study=study)
    assert sorted(alerts.values_list("rule__key", flat=True)) == ["mppg12a-kar-notification", "ncrp168-kar"]
    recipients = sorted(m.to[0] for m in mail.outbox)
    # two alerts (notification + alert), each to the room subscriber and the catch-all subscriber
    assert recipients == ["angio@example.org"] * 2 + ["everything@example.org"] * 2
    assert any("Ka,r is a surrogate for skin dose" in m.body for m in mail.outbox)
    assert NotificationDelivery.objects.filter(state="sent").count() == 4
    with django_capture_on_commit_callbacks(execute=True):
        check_study(study.pk)  # re-evaluation (re-import, supersede): no second e-mail
        notification_retry_pending()
    assert len(mail.outbox) == 4


def test_failing_mail_server_is_retried_without_duplicates(make_user, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "tests.triggers.test_notifications.FlakyBackend"
    _subscribe(make_user, "phys")
    FlakyBackend.down = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            study = fluoro_study(ka_r_mgy=5200.0)
            check_study(study.pk)
    finally:
        FlakyBackend.down = False
    assert mail.outbox == []
    pending = NotificationDelivery.objects.filter(state="pending")
    assert pending.count() == 2  # rows kept, waiting for a retry
    assert notification_retry_pending() == 2  # the periodic retry sends them
    assert notification_retry_pending() == 0  # and never again
    with django_capture_on_commit_callbacks(execute=True):
        check_study(study.pk)
    assert len(mail.outbox) == 2
    assert NotificationDelivery.objects.filter(state="sent").count() == 2
