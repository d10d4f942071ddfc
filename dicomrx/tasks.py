"""Thin Celery tasks around the ingest functions (embedded mode: they run eagerly in the caller)."""

from __future__ import annotations

from celery import shared_task

from dicomrx import ingest, pipeline
from dicomrx.errors import IngestError


@shared_task(bind=True, autoretry_for=(IngestError,), retry_backoff=True, max_retries=5, acks_late=True)
def ingest_object(self, received_object_id: int) -> str:
    return ingest.ingest_received_object(received_object_id).status


@shared_task(acks_late=True)
def after_record(study_ids: list[int], change_ids: list[int]) -> None:
    if isinstance(study_ids, int):  # a message queued by a version that sent one study id
        study_ids = [study_ids]
    pipeline.after_studies_recorded(study_ids, change_ids)


# the scheduled PACS pull lives beside the pull code; import it so the worker registers it
from dicomrx import tasks_pull  # noqa: E402, F401
