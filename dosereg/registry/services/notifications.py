"""The notification service: alerts are rows before they are messages.

``notification_send`` writes one NotificationDelivery per subscribed recipient (unique ``dedupe_key``, so the same
message is never queued twice) and schedules delivery after commit; ``notification_deliver`` sends one row and
records the outcome.  Transient SMTP failures are retried by the Celery task; a sent row is never sent again.
"""

from __future__ import annotations

import logging

from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from dosereg.registry.models import NotificationDelivery, NotificationSubscription

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
SEVERITY_ORDER = {"notification": 0, "alert": 1, "significant_event": 2}


class TransientDeliveryError(Exception):
    """Sending failed in a way worth retrying (mail server down, timeout)."""


def notification_send(*, topic: str, subject: str, body: str, object_type: str = "", object_id: str = "",
                      room_id: int | None = None, modality_type: str = "", severity: str = "",
                      version: str = "") -> list[NotificationDelivery]:
    subs = (NotificationSubscription.objects.filter(topic=topic, active=True, user__is_active=True)
            .exclude(user__email="").select_related("user"))
    subs = subs.filter(Q(room__isnull=True) | Q(room_id=room_id)) if room_id else subs.filter(room__isnull=True)
    subs = subs.filter(Q(modality_type="") | Q(modality_type=modality_type))
    created = []
    seen_users = set()
    for sub in subs:
        if sub.min_severity and SEVERITY_ORDER.get(severity, 0) < SEVERITY_ORDER.get(sub.min_severity, 0):
            continue
        if sub.user_id in seen_users:
            continue
        seen_users.add(sub.user_id)
        key = f"{topic}:{object_type}:{object_id}:{version}:{sub.user_id}"[:200]
        try:
            with transaction.atomic():
                delivery = NotificationDelivery.objects.create(
                    dedupe_key=key, topic=topic, user=sub.user, address=sub.user.email, subject=subject[:255],
                    body=body, object_type=object_type, object_id=str(object_id))
        except IntegrityError:
            continue  # already queued: never send the same message twice
        created.append(delivery)
        transaction.on_commit(lambda pk=delivery.pk: _schedule(pk))
    return created


def _schedule(delivery_id: int) -> None:
    # registry.tasks imports this module (its task wraps notification_deliver): a top-level import is a cycle
    from dosereg.registry.tasks import deliver_notification  # noqa: PLC0415 - circular import, see above

    try:
        deliver_notification.delay(delivery_id)
    except TransientDeliveryError:
        log.warning("notification %s: first delivery attempt failed; retry with 'send_notifications'", delivery_id)


def notification_deliver(delivery_id: int) -> NotificationDelivery:
    """Send one pending delivery.  Raises TransientDeliveryError when worth retrying.

    The row is locked while sending, so two workers never send it twice; a failed attempt is recorded in its own
    transaction (raising inside the locking one would roll the record back)."""
    error = ""
    with transaction.atomic():
        delivery = NotificationDelivery.objects.select_for_update().get(pk=delivery_id)
        if delivery.state != "pending":
            return delivery
        delivery.attempts += 1
        try:
            send_mail(delivery.subject, delivery.body, None, [delivery.address], fail_silently=False)
        except (OSError, ConnectionError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
            delivery.last_error = error
            delivery.state = "failed" if delivery.attempts >= MAX_ATTEMPTS else "pending"
            log.warning("notification %s: attempt %s failed: %s", delivery.pk, delivery.attempts, error)
        else:
            delivery.state = "sent"
            delivery.sent_at = timezone.now()
            delivery.last_error = ""
        delivery.save(update_fields=["attempts", "last_error", "state", "sent_at"])
    if error and delivery.state == "pending":
        raise TransientDeliveryError(error)
    return delivery


def notification_retry_pending() -> int:
    """Retry every pending delivery (scheduled by beat; also `manage.py send_notifications`)."""
    sent = 0
    for pk in NotificationDelivery.objects.filter(state="pending").values_list("pk", flat=True):
        try:
            if notification_deliver(pk).state == "sent":
                sent += 1
        except TransientDeliveryError:
            continue
    return sent
