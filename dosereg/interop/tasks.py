"""Thin Celery tasks of the interop app: load by id, call a service."""

from dosereg.celery import shared_task
from dosereg.interop.push import deliveries_retry_due, delivery_send


@shared_task
def send_delivery_task(delivery_id: int) -> str:
    """The first attempt, right after the study was recorded; retries are deliveries_retry_due's (beat)."""
    return delivery_send(delivery_id).state


@shared_task
def retry_due_deliveries() -> int:
    return deliveries_retry_due()
