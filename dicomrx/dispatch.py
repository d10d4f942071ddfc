"""Ingest after receive, so an association never waits for parsing.

With a broker (CELERY_BROKER_URL) each new object goes to the Celery task ``dicomrx.tasks.ingest_object``; ids that
cannot be queued (broker down) are kept and retried.  Without one (the embedded mode) a single in-process ingest
thread reads the unprocessed ReceivedObject rows (state 'received') in id order, woken by the handler after each
stored object.  At start-up every 'received' row is queued again (restart recovery): an object acknowledged just
before a crash is ingested after the restart.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connections

# module imports: dispatch, ingest, tasks and the pull import each other's modules (names resolved at call time)
from dicomrx import ingest, tasks
from dosereg.registry.models import ReceivedObject

log = logging.getLogger("dicomrx.ingest_dispatch")

MAX_ATTEMPTS = 5  # an object whose ingest keeps failing (not a refusal: an error) waits for `reprocess`
# While objects arrive, the in-process ingest waits (parsing takes the CPU and the GIL the associations need) for at
# most this many seconds per object: a flood is acknowledged at full speed and ingested meanwhile at one object per
# MAX_DEFER seconds, then caught up at full speed (bench/listener.py).
MAX_DEFER = 10.0
RETRY_INTERVAL = 300.0  # seconds before objects whose ingest raised are tried again


def _pending_ids(after_id: int = 0, limit: int = 200) -> list[int]:
    return list(ReceivedObject.objects.filter(state=ReceivedObject.STATE_RECEIVED, id__gt=after_id,
                                              attempts__lt=MAX_ATTEMPTS)
                .order_by("id").values_list("id", flat=True)[:limit])


class IngestDispatcher:
    def __init__(self, *, use_celery: bool | None = None, receiving=None, clock=time.monotonic, sleep=None):
        # receiving(): True while associations are open; the in-process ingest then gives way (see _give_way)
        self.receiving = receiving
        self.use_celery = bool(settings.CELERY_BROKER_URL) if use_celery is None else use_celery
        self._wake = threading.Event()
        self._stop = threading.Event()
        # clock() in seconds and sleep(seconds) time the giving way and the retries; a test passes a fake pair to
        # drive time.  The default sleep waits on the stop event, so stop() ends it at once.
        self._clock = clock
        self._sleep = sleep if sleep is not None else self._stop.wait
        self._thread: threading.Thread | None = None
        self._unsent: set[int] = set()
        self._lock = threading.Lock()
        self._cursor = 0
        self.ingested = 0
        self.failed = 0

    # -- called from association threads
    def notify(self, received_object_id: int) -> None:
        if self.use_celery:
            if not self._send(received_object_id):
                with self._lock:
                    self._unsent.add(received_object_id)
                self._wake.set()
        else:
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
    def _send(self, received_object_id: int) -> bool:
        try:
            tasks.ingest_object.delay(received_object_id)
            return True
        except Exception as exc:  # noqa: BLE001 - broker down: keep the id, the row stays 'received'
            log.warning("cannot queue ingest of received object %s (%s); will retry", received_object_id,
                        type(exc).__name__)
            return False

    def _run(self) -> None:
        last_retry = self._clock()
        while not self._stop.is_set():
            self._wake.wait(timeout=5.0 if self._unsent else 30.0)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                if self.use_celery:
                    self._send_unsent()
                else:
                    if self._clock() - last_retry > RETRY_INTERVAL:
                        self._cursor, last_retry = 0, self._clock()  # give failed objects another chance
                    self._ingest_pending()
            except Exception:  # noqa: BLE001 - the thread must survive a database outage
                log.exception("ingest dispatch failed; retrying")
                connections.close_all()
                self._stop.wait(5.0)
                self._wake.set()
        connections.close_all()

    def _send_unsent(self) -> None:
        with self._lock:
            ids = sorted(self._unsent)
        for received_object_id in ids:
            if self._stop.is_set() or not self._send(received_object_id):
                return
            with self._lock:
                self._unsent.discard(received_object_id)

    def _give_way(self) -> None:
        """Let arriving objects go first (CPU, GIL and the SQLite write lock), for at most MAX_DEFER seconds per
        object: a flood is acknowledged at full speed and ingested at a reduced pace meanwhile, then caught up."""
        if self.receiving is None:
            return
        deadline = self._clock() + MAX_DEFER
        while self._clock() < deadline and not self._stop.is_set():
            try:
                if not self.receiving():
                    return
            except Exception:  # noqa: BLE001 - a racing server shutdown: just go on
                return
            self._sleep(0.05)

    def _ingest_pending(self) -> None:
        while not self._stop.is_set():
            close_old_connections()
            ids = _pending_ids(self._cursor)
            if not ids:
                return
            for received_object_id in ids:
                if self._stop.is_set():
                    return
                self._cursor = received_object_id
                self._give_way()
                try:
                    outcome = ingest.ingest_received_object(received_object_id)
                    self.ingested += 1
                    log.debug("ingested %s: %s", received_object_id, outcome.status)
                except Exception as exc:  # noqa: BLE001 - one bad object never stops the others
                    self.failed += 1
                    log.error("ingest of received object %s failed: %s: %s", received_object_id,
                              type(exc).__name__, str(exc)[:200])
                    connections.close_all()
