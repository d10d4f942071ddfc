"""Thin Celery tasks around the ingest functions (embedded mode: they run eagerly in the caller), and the one retry
policy of ingest, which the Celery worker and the embedded ingest thread both follow."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import reduce
from operator import or_

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from dicomrx import ingest, pipeline
from dosereg.celery import shared_task
from dosereg.registry.models import ReceivedObject


@dataclass(frozen=True)
class RetryPolicy:
    """An object whose ingest raised (an unreadable file, a parser error, the database away) stays 'received' with
    its ``attempts`` counted and the time of the last one in ``processed_at``; it is tried again after
    ``delay_s x 2^(attempts-1)`` seconds, at most ``max_attempts`` times, then waits for ``reprocess``."""

    max_attempts: int
    delay_s: float

    def delay_after(self, attempts: int) -> float | None:
        """Seconds before the next try after ``attempts`` tries; None when there is none."""
        if attempts >= self.max_attempts:
            return None
        return 0.0 if attempts == 0 else self.delay_s * 2 ** (attempts - 1)

    def due(self, now: dt.datetime) -> Q:
        """ReceivedObject rows to try again now: tried and failed, their delay over; or never tried although
        received a delay ago (a queued message lost with its broker)."""
        never = Q(attempts=0, received_at__lte=now - dt.timedelta(seconds=self.delay_s))
        again = [Q(attempts=n, processed_at__lte=now - dt.timedelta(seconds=self.delay_after(n)))
                 for n in range(1, self.max_attempts)]
        return Q(state=ReceivedObject.STATE_RECEIVED) & reduce(or_, [never, *again])


def retry_policy() -> RetryPolicy:
    return RetryPolicy(settings.INGEST_MAX_ATTEMPTS, float(settings.INGEST_RETRY_DELAY_S))


def due_for_retry(limit: int) -> list[int]:
    return list(ReceivedObject.objects.filter(retry_policy().due(timezone.now())).order_by("id")
                .values_list("id", flat=True)[:limit])


# ignore_result: the outcomes are the rows' states; storing each batch's list in the result backend only costs
@shared_task(acks_late=True, ignore_result=True)
def ingest_objects(received_object_ids: list[int]) -> list[str]:
    """Ingest a batch of received objects (one transaction; a bad object is refused alone).  An object whose ingest
    raised is retried by the policy above (the listener's dispatcher re-sends it when due), not by Celery."""
    return [o.status for o in ingest.ingest_batch(list(received_object_ids))]


@shared_task(acks_late=True, ignore_result=True)
def ingest_object(received_object_id: int) -> str:
    """One object: a batch of one (kept for messages queued by an earlier version and single sends)."""
    return ingest_objects([received_object_id])[0]


@shared_task(acks_late=True)
def after_record(study_ids: list[int], change_ids: list[int]) -> None:
    if isinstance(study_ids, int):  # a message queued by a version that sent one study id
        study_ids = [study_ids]
    pipeline.after_studies_recorded(study_ids, change_ids)


# the scheduled PACS pull lives beside the pull code; import it so the worker registers it
from dicomrx import tasks_pull  # noqa: E402, F401
