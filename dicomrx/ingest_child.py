"""The embedded mode's ingest in a child process of the listener (design §7).

In one process the association threads and the ingest shared one interpreter lock, so acknowledging and ingesting
took turns: ingest fell behind the wire.  Here the listener (:class:`IngestProcess`) starts a child with the 'spawn'
context; the child sets Django up, opens its own database connection and runs the dispatcher's ingest loop
(``dicomrx.dispatch.IngestDispatcher``: batches, retry policy, restart recovery).  The hand-off:

- the listener commits the ReceivedObject row before it answers Success (unchanged); then it writes one byte to a
  pipe (non-blocking: a full pipe or a dead child never holds an association back, and the child finds every
  'received' row in the database whatever bytes it missed);
- the time of the last stored object and the number of open connections are shared (two words of shared memory), so
  the child gathers a batch while objects arrive, as the ingest thread did;
- a child that dies (a crash, the OOM killer) is started again; on start it takes every 'received' row, so nothing
  acknowledged waits for a listener restart.  Rows it had claimed wait for the claim's lease
  (INGEST_RETRY_DELAY_S), then the retry policy takes them: ingested once, never twice;
- the child stops after its current batch on SIGTERM, or when the listener is gone (the pipe's end of file); it
  ignores SIGINT, which a terminal sends to the whole process group: the listener stops it in order.

SQLite from two processes: WAL, IMMEDIATE transactions and a busy timeout (``dosereg.env.sqlite_database``).

This module imports no Django model at module level: the child imports it before Django is set up.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import select
import signal
import threading
import time

import django
from django.apps import apps

log = logging.getLogger("dicomrx.ingest_dispatch")

RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 15.0, 30.0)  # a child that keeps dying is restarted ever more slowly
STABLE_S = 60.0  # a child that lived this long before it died starts the back-off again from its first step


class IngestProcess:
    """In the listener: starts the ingest child, wakes it after each stored object, starts it again if it dies."""

    def __init__(self, *, receiving_window: float):
        self._ctx = mp.get_context("spawn")
        self.receiving_window = receiving_window
        # time.monotonic() (system-wide on Linux) of the last stored object, and the open connections
        self._last_store = self._ctx.RawValue("d", float("-inf"))
        self._connections = self._ctx.RawValue("i", 0)
        self._count_lock = threading.Lock()
        self._reader, self._writer = self._ctx.Pipe(duplex=False)
        os.set_blocking(self._writer.fileno(), False)
        self._write_lock = threading.Lock()  # the write end is closed at stop; no write after that
        self._proc = None
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.restarts = 0

    # -- called from association threads
    def notify(self, received_object_id: int) -> None:
        self._last_store.value = time.monotonic()
        with self._write_lock:
            if self._writer.closed:
                return
            try:
                os.write(self._writer.fileno(), b"\x01")
            except BlockingIOError:
                pass  # 64 KiB of wake-ups not yet read: the child is busy and will find this row anyway

    def connection_opened(self) -> None:
        with self._count_lock:
            self._connections.value += 1

    def connection_closed(self) -> None:
        with self._count_lock:
            self._connections.value = max(0, self._connections.value - 1)

    def backlog(self) -> int:
        model = apps.get_model("registry", "ReceivedObject")
        return model.objects.filter(state=model.STATE_RECEIVED).count()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # -- life cycle
    def start(self) -> None:
        self._spawn()
        self._supervisor = threading.Thread(target=self._supervise, name="dicom-ingest-supervisor", daemon=True)
        self._supervisor.start()

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM: the child ends its current batch (one transaction) and exits; killed after ``timeout``."""
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(5.0)
        proc = self._proc
        if proc is not None and proc.is_alive():
            proc.terminate()
            proc.join(timeout)
            if proc.is_alive():
                log.warning("the ingest process did not stop within %.0f s: killed (its batch is rolled back and "
                            "ingested at the next start)", timeout)
                proc.kill()
                proc.join(5.0)
        with self._write_lock:
            self._writer.close()
        self._reader.close()

    def _spawn(self) -> None:
        settings_module = os.environ.get("DJANGO_SETTINGS_MODULE", "dosereg.settings")
        self._proc = self._ctx.Process(
            target=child_main, name="dicom-ingest", daemon=True,  # the listener's exit stops it too
            args=(settings_module, self._reader, self._last_store, self._connections, self.receiving_window))
        self._proc.start()
        self._started_at = time.monotonic()
        log.info("ingest process %s started", self._proc.pid)

    def _supervise(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._proc.join(1.0)
            if self._proc.is_alive() or self._stop.is_set():
                continue
            lived = time.monotonic() - self._started_at
            if lived >= STABLE_S:
                failures = 0
            delay = RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S) - 1)]
            failures += 1
            log.error("the ingest process %s exited (code %s) after %.0f s; starting it again in %.0f s",
                      self._proc.pid, self._proc.exitcode, lived, delay)
            if self._stop.wait(delay):
                return
            self.restarts += 1
            self._spawn()


def child_main(settings_module: str, reader, last_store, open_connections, receiving_window: float) -> None:
    """The ingest child: Django set up here, its own database connection, the dispatcher's loop in a thread; this
    thread turns the listener's wake-up bytes into arrivals."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    django.setup()
    from dicomrx import dispatch  # noqa: PLC0415 - models need the set-up above

    def receiving() -> bool:
        return open_connections.value > 0 and time.monotonic() - last_store.value < receiving_window

    dispatcher = dispatch.IngestDispatcher(use_celery=False, receiving=receiving)
    dispatcher.start()
    fd = reader.fileno()
    parent = os.getppid()
    try:
        while not stopping.is_set() and os.getppid() == parent:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                continue
            woken = os.read(fd, 65536)
            if not woken:  # the listener is gone: finish the batch and exit (a new listener starts its own)
                break
            dispatcher.arrived(len(woken))
    finally:
        dispatcher.stop(timeout=3600)  # the current batch commits or rolls back; never cut by this process
