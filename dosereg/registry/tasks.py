"""Thin Celery tasks of the registry: load by id, call a service, own the retry policy."""

from dosereg.celery import shared_task
from dosereg.registry.services.notifications import (
    TransientDeliveryError,
    notification_deliver,
    notification_retry_pending,
)


@shared_task(bind=True, max_retries=4, default_retry_delay=30)
def deliver_notification(self, delivery_id: int) -> None:
    try:
        notification_deliver(delivery_id)
    except TransientDeliveryError as exc:
        if self.request.is_eager:
            raise
        raise self.retry(exc=exc) from exc


@shared_task
def retry_pending_notifications() -> int:
    return notification_retry_pending()
