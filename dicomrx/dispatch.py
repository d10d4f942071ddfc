"""Ingest after receive, so an association never waits for parsing, in batches (design §7).

Without a broker (the embedded mode) a single ingest thread, in the listener's child process
(``dicomrx.ingest_child``; in the listener itself when DOSEREG_INGEST_PROCESS is off), reads the unprocessed
ReceivedObject rows (state 'received') in id order, woken after each stored object, and ingests them in batches
(``dicomrx.ingest.ingest_batch``: one transaction and one run of the post-commit steps per batch).  With a broker
(CELERY_BROKER_URL) the thread sends the new ids in batches to the Celery task ``dicomrx.tasks.ingest_objects``; ids
that cannot be queued (broker down) are kept and sent again.  A batch is up to INGEST_BATCH_SIZE objects, or what
arrived within INGEST_BATCH_WAIT_MS while associations are open; with nothing arriving it goes at once.  The
embedded ingest waits so only when it was caught up: objects that arrived while it ingested a batch (a backlog) are
taken at once.

Both modes follow the task's retry policy (``dicomrx.tasks.RetryPolicy``): objects whose ingest raised are taken again
when due.  At start-up every 'received' row is queued again (restart recovery): an object acknowledged just before a
crash is ingested after the restart.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connections

# module imports: dispatch, ingest, tasks and the pull import each other's modules (names resolved at call time)
from dicomrx import ingest, tasks
from dicomrx.ingest_child import IngestProcess
from dosereg.registry.models import ReceivedObject

log = logging.getLogger("dicomrx.ingest_dispatch")

POLL_S = 0.05  # how often a gathering batch asks whether associations are still open
RETRY_CHECK_S = 30.0  # how often objects due for another try (tasks.RetryPolicy) are looked for


def _pending_ids(after_id: int = 0, limit: int = 200) -> list[int]:
    return list(ReceivedObject.objects.filter(state=ReceivedObject.STATE_RECEIVED, id__gt=after_id,
                                              attempts__lt=tasks.retry_policy().max_attempts)
                .order_by("id").values_list("id", flat=True)[:limit])


def make_dispatcher(*, receiving, receiving_window: float):
    """The listener's ingest: the Celery dispatch thread with a broker; else the ingest child process
    (``dicomrx.ingest_child``), or the in-process thread when DOSEREG_INGEST_PROCESS is off or the database is an
    in-memory SQLite one (the test database: another process cannot open it)."""
    if settings.CELERY_BROKER_URL:
        return IngestDispatcher(use_celery=True, receiving=receiving)
    in_memory = getattr(connections["default"], "is_in_memory_db", lambda: False)()
    if settings.INGEST_PROCESS and not in_memory:
        return IngestProcess(receiving_window=receiving_window)
    return IngestDispatcher(use_celery=False, receiving=receiving)


class IngestDispatcher:
    def __init__(self, *, use_celery: bool | None = None, receiving=None, clock=time.monotonic, sleep=None):
        # receiving(): True while associations are open; a batch then waits for more objects (see _gather)
        self.receiving = receiving
        self.use_celery = bool(settings.CELERY_BROKER_URL) if use_celery is None else use_celery
        self._wake = threading.Event()
        self._stop = threading.Event()
        # clock() in seconds and sleep(seconds) time the gathering and the retries; a test passes a fake pair to
        # drive time.  The default sleep waits on the stop event, so stop() ends it at once.
        self._clock = clock
        self._sleep = sleep if sleep is not None else self._stop.wait
        self._thread: threading.Thread | None = None
        self._unsent: set[int] = set()
        self._lock = threading.Lock()
        self._arrivals = 0  # objects notified so far (a gathering batch counts the new ones)
        self._cursor = 0
        self.ingested = 0
        self.failed = 0
        self.batches = 0

    @property
    def batch_size(self) -> int:
        return settings.INGEST_BATCH_SIZE

    # -- called from association threads
    def notify(self, received_object_id: int) -> None:
        with self._lock:
            self._arrivals += 1
            if self.use_celery:
                self._unsent.add(received_object_id)
        self._wake.set()

    def arrived(self, count: int) -> None:
        """``count`` objects stored by the listener in another process (this is the ingest child): wake up."""
        with self._lock:
            self._arrivals += count
        self._wake.set()

    def backlog(self) -> int:
        if self.use_celery:
            return len(self._unsent)
        return ReceivedObject.objects.filter(state=ReceivedObject.STATE_RECEIVED).count()

    # -- life cycle
    def start(self) -> None:
        pending = _pending_ids(limit=10**9)
        if pending:
            log.info("restart recovery: %d received objects not yet ingested are queued again", len(pending))
        if self.use_celery:
            with self._lock:
                self._unsent.update(pending)
        name = "dicom-ingest-dispatch" if self.use_celery else "dicom-ingest"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- internals
    def _run(self) -> None:
        last_retry = self._clock()
        while not self._stop.is_set():
            self._wake.wait(timeout=5.0 if self._unsent else RETRY_CHECK_S)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                retry = self._clock() - last_retry >= RETRY_CHECK_S
                if retry:
                    last_retry = self._clock()
                if self.use_celery:
                    self._send_unsent(retry)
                else:
                    self._ingest_pending(retry)
            except Exception:  # noqa: BLE001 - the thread must survive a database outage
                log.exception("ingest dispatch failed; retrying")
                connections.close_all()
                self._stop.wait(5.0)
                self._wake.set()
        connections.close_all()

    def _gather(self, have: int, start: int) -> None:
        """While objects arrive, wait (at most INGEST_BATCH_WAIT_MS) until a full batch is there: one transaction
        for many objects, and the CPU and the GIL left to the associations meanwhile.  ``have``: the objects
        waiting when ``_arrivals`` was ``start``."""
        if self.receiving is None or have >= self.batch_size:
            return
        deadline = self._clock() + settings.INGEST_BATCH_WAIT_MS / 1000
        while self._clock() < deadline and not self._stop.is_set():
            if have + self._arrivals - start >= self.batch_size:
                return
            try:
                if not self.receiving():
                    return
            except Exception:  # noqa: BLE001 - a racing server shutdown: just go on
                return
            self._sleep(POLL_S)

    # -- Celery mode: batches of ids to the workers
    def _send_unsent(self, retry: bool) -> None:
        if retry:
            due = tasks.due_for_retry(10 * self.batch_size)
            with self._lock:
                self._unsent.update(due)
        while not self._stop.is_set():
            with self._lock:
                have, mark = len(self._unsent), self._arrivals
            if not have:
                return
            self._gather(have, mark)
            with self._lock:
                ids = sorted(self._unsent)[:self.batch_size]
            if not self._send(ids):
                return
            with self._lock:
                self._unsent.difference_update(ids)

    def _send(self, ids: list[int]) -> bool:
        try:
            tasks.ingest_objects.delay(ids)
            return True
        except Exception as exc:  # noqa: BLE001 - broker down: keep the ids, the rows stay 'received'
            log.warning("cannot queue ingest of %d received objects (%s); will retry", len(ids), type(exc).__name__)
            return False

    # -- embedded mode: batches ingested here
    def _ingest_pending(self, retry: bool) -> None:
        if retry:
            close_old_connections()
            due = tasks.due_for_retry(self.batch_size)
            if due:
                self._ingest(due)
        caught_up = True  # nothing was waiting when this thread was woken
        while not self._stop.is_set():
            close_old_connections()
            mark = self._arrivals  # before the query: an arrival racing it is counted (a batch goes sooner)
            ids = _pending_ids(self._cursor, self.batch_size)
            if not ids:
                return
            # gather only when the ingest was caught up; what arrived while a batch was ingested is a backlog and
            # goes at once (batches then grow by themselves while the ingest is behind the wire)
            if caught_up and len(ids) < self.batch_size and self.receiving is not None:
                self._gather(len(ids), mark)
                ids = _pending_ids(self._cursor, self.batch_size)
            self._ingest(ids)
            self._cursor = ids[-1]
            caught_up = False

    def _ingest(self, ids: list[int]) -> None:
        """Ingest one batch; the database away (IngestError) propagates: _run waits and the batch is taken again."""
        outcomes = ingest.ingest_batch(ids)
        self.batches += 1
        self.ingested += sum(not o.retry for o in outcomes)
        self.failed += sum(o.retry for o in outcomes)
