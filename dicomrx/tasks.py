"""Thin Celery tasks around the ingest functions (embedded mode: they run eagerly in the caller)."""

from __future__ import annotations

from celery import shared_task

from dicomrx.ingest import IngestError


@shared_task(bind=True, autoretry_for=(IngestError,), retry_backoff=True, max_retries=5, acks_late=True)
def ingest_object(self, received_object_id: int) -> str:
    from dicomrx.ingest import ingest_received_object

    return ingest_received_object(received_object_id).status


@shared_task(acks_late=True)
def after_record(study_id: int, change_ids: list[int]) -> None:
    from dicomrx.pipeline import after_study_recorded

    after_study_recorded(study_id, change_ids)


# the scheduled PACS pull lives beside the pull code; import it so the worker registers it
from dicomrx.tasks_pull import pacs_pull_recent_task  # noqa: E402, F401
