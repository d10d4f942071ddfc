"""MLLP (HL7 v2 Minimal Lower Layer Protocol, HL7 v2.5.1 Appendix C.4): a threaded listener and a client.

A message travels as <VT> message <FS><CR> (0x0B ... 0x1C 0x0D).  The listener keeps a connection open for as many
messages as the peer sends (an MPI usually keeps one), answers each with what ``handle(text) -> text`` returns, and
drops a connection that sends something that is not a block or exceeds ``MAX_MESSAGE`` bytes.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
from collections.abc import Callable

START, END = b"\x0b", b"\x1c\x0d"
MAX_MESSAGE = 1 << 20  # an ADT is a few kB; more is not HL7 we expect

log = logging.getLogger("dosereg.interop.mllp")


class MLLPError(Exception):
    """No (framed) answer: the connection failed, timed out or the peer sent something that is not MLLP."""


def frame(text: str) -> bytes:
    return START + text.encode("utf-8") + END


def read_block(sock: socket.socket, buffer: bytearray) -> bytes | None:
    """The next framed block from ``sock`` (``buffer`` keeps what came after it); None when the peer closed."""
    while True:
        end = buffer.find(END)
        if end >= 0:
            start = buffer.find(START)
            if start < 0 or start > end:
                raise MLLPError("a block without its start byte (0x0B)")
            block = bytes(buffer[start + 1:end])
            del buffer[:end + len(END)]
            return block
        if len(buffer) > MAX_MESSAGE:
            raise MLLPError(f"no end of block within {MAX_MESSAGE} bytes")
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buffer.extend(chunk)


CONNECT_TIMEOUT = 5.0  # an unreachable peer must not hold the caller (the ingest thread in the embedded mode) long


def send_message(host: str, port: int, text: str, *, timeout: float = 30.0) -> str:
    """Send one message and return the answer's text within ``timeout`` s; MLLPError when none comes."""
    try:
        with socket.create_connection((host, port), timeout=min(CONNECT_TIMEOUT, timeout)) as sock:
            sock.settimeout(timeout)
            sock.sendall(frame(text))
            answer = read_block(sock, bytearray())
    except OSError as exc:
        raise MLLPError(f"{host}:{port}: {type(exc).__name__}: {exc}") from exc
    if answer is None:
        raise MLLPError(f"{host}:{port} closed the connection without an acknowledgement")
    return answer.decode("utf-8", errors="replace")


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(self.server.idle_timeout)
        buffer = bytearray()
        while True:
            try:
                block = read_block(sock, buffer)
            except (OSError, MLLPError) as exc:
                log.info("MLLP connection from %s closed: %s", self.client_address[0], exc)
                return
            if block is None:
                return
            answer = self.server.handle_text(block.decode("utf-8", errors="replace"))
            try:
                sock.sendall(frame(answer))
            except OSError:
                return

    def finish(self) -> None:  # in this connection's thread, however handle() ended
        if self.server.on_connection_end is not None:
            self.server.on_connection_end()


class MLLPListener(socketserver.ThreadingTCPServer):
    """``handle(text) -> answer text`` for every message on ``(bind, port)``; port 0 picks a free one.  Each
    connection has a thread of its own; ``on_connection_end`` is called in that thread when the connection ends, to
    release what ``handle`` holds per thread (database connections: each thread's would stay open otherwise)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, bind: str, port: int, handle: Callable[[str], str], *, idle_timeout: float = 300.0,
                 on_connection_end: Callable[[], None] | None = None):
        self.handle_text = handle
        self.idle_timeout = idle_timeout
        self.on_connection_end = on_connection_end
        super().__init__((bind, port), _Handler)
        self.port = self.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> MLLPListener:
        self._thread = threading.Thread(target=self.serve_forever, name="hl7-mllp", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
