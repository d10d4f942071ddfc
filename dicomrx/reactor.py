"""Association threads that wait for something to happen instead of polling every millisecond.

pynetdicom (3.0) runs two threads per association, each waking every millisecond to look for work: the DUL thread
(incoming PDUs, PDUs to send, timers) and the acceptor's reactor (a complete DIMSE message, release, abort).  Four
open associations sending nothing cost the listener 30 % of a core (``bench/listener.py --idle 4``; 2.7 % with
this module), and under load every wake-up takes the GIL from the thread receiving or storing an object (pynetdicom
notes the loop as a TODO in ``DULServiceProvider.__init__``).

Here the DUL thread waits in ``select`` on its socket and on a wake-up socket that the association pokes whenever it
queues a PDU to send or stops the DUL; the acceptor's reactor waits on an event the DUL sets after each state change.
Both still look around every ``WAIT_S`` seconds, so timers (ARTIM, the network idle timeout) keep their meaning.  The
state machine, the PDU handling and the DIMSE and ACSE services are pynetdicom's own; only the waiting differs.
Used by the listener's server (``serve``); requesting associations (pull, tests' senders) keep pynetdicom's loops.
"""

from __future__ import annotations

import logging
import queue
import select
import socket
import threading
import time
from datetime import datetime
from typing import Any

from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.transport import RequestHandler, ThreadedAssociationServer

log = logging.getLogger(__name__)

# The longest wait between looks when nothing happens: bounds how late a timer is noticed (timeouts here are
# seconds) and costs 2 x 20 wake-ups a second per open association instead of 2 x 1 000.
WAIT_S = 0.05


class WakeableDUL(DULServiceProvider):
    """pynetdicom's DUL service provider with a reactor that sleeps until the peer sends, the association queues a
    PDU (``send_pdu``) or stops it (``kill_dul``, ``stop_dul``), or ``WAIT_S`` passes."""

    def __init__(self, assoc: WakeableAcceptor) -> None:
        super().__init__(assoc)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    # -- what the association calls from its own thread
    def send_pdu(self, primitive) -> None:
        super().send_pdu(primitive)
        self._poke()

    def kill_dul(self) -> None:
        super().kill_dul()
        self._poke()

    def stop_dul(self) -> bool:
        """Stop the reactor if the state machine is idle (Sta1), as pynetdicom's does, without its polling join."""
        if self.state_machine.current_state != "Sta1":
            return False
        self._kill_thread = True
        self._poke()
        if self.is_alive() and threading.current_thread() is not self:
            self.join()
        return True

    def _poke(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # already poked and not yet read (buffer full), or the reactor has ended
            pass

    # -- the reactor
    def _wait(self) -> None:
        """Until the socket has data, a poke, or ``WAIT_S``."""
        watched: list[Any] = [self._wake_r]
        sock = self.socket
        if sock is not None and sock.ready:  # includes TLS data already decrypted and buffered (not seen by select)
            return
        raw = getattr(sock, "socket", None) if sock is not None else None
        if raw is not None and raw.fileno() >= 0:
            watched.append(raw)
        try:
            readable, _, _ = select.select(watched, [], [], WAIT_S)
        except (OSError, ValueError):  # the socket closed meanwhile: the next look reports it (Evt17)
            time.sleep(0.001)  # as pynetdicom would, rather than spin if select keeps refusing the socket
            return
        if self._wake_r in readable:
            try:
                while self._wake_r.recv(4096):
                    pass
            except OSError:  # drained
                pass

    def run_reactor(self) -> None:
        """pynetdicom's reactor loop (encode one queued primitive or decode one received PDU, then run one event of
        the state machine), waiting in ``_wait`` where pynetdicom sleeps a millisecond."""
        assoc = self.assoc
        self._idle_timer.start()
        idle = False
        try:
            while True:
                if not assoc._dul_ready.is_set():
                    assoc._dul_ready.set()
                if idle:
                    self._wait()
                if self._kill_thread:
                    break
                if self.artim_timer.expired:
                    self.event_queue.put("Evt18")
                try:
                    if not self._process_recv_primitive() and self._is_transport_event():
                        self._idle_timer.restart()
                except Exception:  # noqa: BLE001 - as pynetdicom: a broken PDU stream aborts the association
                    log.exception("association reactor failed; aborting the association")
                    self._abort_now()
                    return
                try:
                    event = self.event_queue.get(block=False)
                except queue.Empty:
                    idle = True
                    continue
                self.state_machine.do_action(event)
                idle = False
                assoc.wakeup.set()
        finally:
            assoc.wakeup.set()
            self._wake_r.close()
            self._wake_w.close()

    def _abort_now(self) -> None:
        """Send an A-ABORT (source: service provider) past the state machine, whose state can no longer be trusted,
        and stop both threads."""
        pdu = A_ABORT_RQ()
        pdu.source = 0x02
        pdu.reason_diagnostic = 0x00
        try:
            self.socket.send(pdu.encode())
        except Exception:  # noqa: BLE001 - the connection may be gone already
            pass
        assoc = self.assoc
        assoc.is_aborted = True
        assoc.is_established = False
        assoc._kill = True
        self._kill_thread = True


class WakeableAcceptor(Association):
    """An acceptor association whose reactor waits on ``wakeup`` (set by its DUL after every state change and when
    killed) instead of sleeping a millisecond between looks."""

    wakeup: threading.Event

    @classmethod
    def adopt(cls, assoc: Association) -> WakeableAcceptor:
        """Make the acceptor pynetdicom's request handler has just configured (contexts, AE titles, handlers, its
        socket) one of these, before its threads start: a new DUL on the same socket and event queue, and the
        timeouts set again (their setters pass them to the DUL's timers)."""
        if assoc.is_alive() or assoc.dul.is_alive():
            raise RuntimeError("an association is adopted before it starts")
        first = assoc.dul
        assoc.__class__ = cls
        assoc.wakeup = threading.Event()
        assoc.dul = WakeableDUL(assoc)
        assoc.dul.socket = first.socket
        assoc.dul.event_queue = first.event_queue  # holds Evt5, the connection the socket reported when made
        assoc.acse_timeout = assoc.acse_timeout
        assoc.network_timeout = assoc.network_timeout
        return assoc

    def kill(self) -> None:
        self._kill = True
        self.wakeup.set()
        super().kill()

    def _run_reactor(self) -> None:
        """The acceptor's loop of pynetdicom (serve a complete DIMSE message; answer a release; end on an abort, a
        stopped DUL or the network timeout), woken by ``wakeup``; after serving a message it looks again at once,
        as more may be queued."""
        self._is_paused = False
        served = False
        while not self._kill:
            # paused while waiting: another thread sending on this association (pynetdicom's send_* methods wait for
            # _is_paused after closing the checkpoint) goes ahead at once, not at the next look; the reactor then
            # stays at the checkpoint until that service is done with the DIMSE provider
            self._is_paused = True
            if not served:
                self.wakeup.wait(WAIT_S)
            self.wakeup.clear()
            self._reactor_checkpoint.wait()
            self._is_paused = False

            context_id, msg = self.dimse.get_msg(block=False)
            served = bool(msg)
            if msg:
                self._serve_request(msg, context_id)

            if self.is_established and self.acse.is_release_requested():
                self.acse.send_release(is_response=True)
                log.info("Association Released")
                self.is_released = True
                self.is_established = False
                evt.trigger(self, evt.EVT_RELEASED, {})
                self.kill()
                return
            if self.acse.is_aborted():
                log.info("Association Aborted%s", " (A-P-ABORT)" if self.acse.is_aborted("a-p-abort") else "")
                self.dul.receive_pdu(wait=False)  # EVT_ACSE_RECV for its subscribers
                self.is_aborted = True
                self.is_established = False
                evt.trigger(self, evt.EVT_ABORTED, {})
                self.kill()
                return
            if not self.dul.is_alive():
                self.kill()
                return
            if self.dul.idle_timer_expired():
                log.error("Network timeout reached")
                if self.network_timeout_response == "A-RELEASE":
                    self._is_paused = True
                    self._reactor_checkpoint.wait()
                    self.release()
                    self._is_paused = False
                else:
                    self.abort()
                self.kill()
                return


class WakeableRequestHandler(RequestHandler):
    """pynetdicom's request handler, creating a ``WakeableAcceptor`` for each connection."""

    def _create_association(self) -> Association:
        return WakeableAcceptor.adopt(super()._create_association())


def serve(ae, address: tuple[str, int], *, ssl_context=None, evt_handlers=None) -> ThreadedAssociationServer:
    """``ae.start_server(address, block=False, ...)`` with ``WakeableAcceptor`` associations: the server's accept
    loop in a daemon thread; ``server.shutdown()`` (or ``ae.shutdown()``) stops it."""
    server = ae.make_server(address, ssl_context=ssl_context, evt_handlers=evt_handlers,
                            server_class=ThreadedAssociationServer, request_handler=WakeableRequestHandler)
    stamp = datetime.now().strftime("%Y%m%d%H%M%S")
    threading.Thread(target=server.serve_forever, name=f"AcceptorServer@{stamp}", daemon=True).start()
    ae._servers.append(server)  # as start_server does: the server's shutdown() takes itself off this list
    return server
