"""The notification service: rows first, sent once, failures recorded and retried."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import override_settings

from dosereg.registry.models import NotificationDelivery, NotificationSubscription
from dosereg.registry.services.notifications import (
    TransientDeliveryError,
    notification_deliver,
    notification_retry_pending,
    notification_send,
)


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("mail server down")


@pytest.mark.django_db
def test_failed_attempt_is_recorded_and_retry_sends_once(make_user, tasks_in_process,
                                                         django_capture_on_commit_callbacks):
    user = make_user("physicist", email="phys@example.org")
    NotificationSubscription.objects.create(user=user, topic="drl_due")
    with override_settings(EMAIL_BACKEND="tests.foundation.test_notifications.BrokenBackend"):
        with django_capture_on_commit_callbacks(execute=True):
            created = notification_send(topic="drl_due", subject="DRL due", body="unit 1", object_type="unit",
                                        object_id="1")
        assert len(created) == 1
        delivery = NotificationDelivery.objects.get()
        assert delivery.state == "pending"
        assert delivery.attempts == 1
        assert "mail server down" in delivery.last_error
        with pytest.raises(TransientDeliveryError):
            notification_deliver(delivery.pk)
        assert NotificationDelivery.objects.get().attempts == 2
    assert notification_retry_pending() == 1
    assert notification_retry_pending() == 0
    assert len(mail.outbox) == 1
    assert NotificationDelivery.objects.get().state == "sent"
    # the same message again is not queued twice
    assert notification_send(topic="drl_due", subject="DRL due", body="unit 1", object_type="unit",
                             object_id="1") == []
