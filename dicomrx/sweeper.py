"""Nothing stuck: received objects whose ingest never happened or did not finish are queued again.

A message can be lost between the listener and the worker (a broker restart, a worker SIGKILLed with the message
unacknowledged until the visibility timeout).  The rows tell: an object still 'received' a delay after its receipt
or its last attempt is due again (``dicomrx.tasks.RetryPolicy``, the one retry policy).  In production Celery beat
runs ``sweep_received`` every DOSEREG_INGEST_SWEEP_SECONDS; in the embedded mode the listener's ingest thread
re-sends due objects itself (``dicomrx.dispatch``).  A doubly queued object is ingested once: ``ingest_batch``
claims each row before it works on it.
"""

from __future__ import annotations

import logging

from django.conf import settings

from dicomrx import tasks
from dosereg.celery import shared_task

log = logging.getLogger(__name__)

SWEEP_LIMIT = 5000  # objects queued per sweep; the next sweep takes the rest


def sweep(limit: int = SWEEP_LIMIT) -> int:
    """Queue every due received object in ingest batches; the number queued."""
    ids = tasks.due_for_retry(limit)
    size = settings.INGEST_BATCH_SIZE
    for start in range(0, len(ids), size):
        tasks.ingest_objects.delay(ids[start:start + size])
    if ids:
        log.warning("sweeper: %d received objects not ingested after their delay queued again", len(ids))
    return len(ids)


@shared_task(name="dicomrx.sweep_received")
def sweep_received() -> int:
    return sweep()
