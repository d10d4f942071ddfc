"""Run the HL7 v2 MLLP listener (ADT^A40 merge, ADT^A08 update) in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import signal
import threading

from django.conf import settings

from dosereg.interop.inbound import mllp_listener
from dosereg.registry.management.base import DoseRegCommand, InputFailed, UsageError


class Command(DoseRegCommand):
    help = ("Receive HL7 v2 messages from the master patient index over MLLP on DOSEREG_HL7_LISTEN_BIND:"
            "DOSEREG_HL7_LISTEN_PORT (ADT^A40 patient merge, ADT^A08 demographics) and answer each with an ACK.")

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, help="override DOSEREG_HL7_LISTEN_PORT")
        parser.add_argument("--bind", help="override DOSEREG_HL7_LISTEN_BIND")

    def handle(self, *args, **options):
        port = settings.HL7_LISTEN_PORT if options["port"] is None else options["port"]
        bind = options["bind"] or settings.HL7_LISTEN_BIND
        if not port:
            raise UsageError("no port: set DOSEREG_HL7_LISTEN_PORT or pass --port")
        stopping = threading.Event()
        signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
        signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
        try:
            listener = mllp_listener(bind, port).start()
        except OSError as exc:
            raise InputFailed(f"cannot listen on {bind}:{port}: {exc.strerror or exc}") from exc
        self.stderr.write(f"HL7 MLLP listener on {bind}:{listener.port} (ADT^A40, ADT^A08)")
        self.stderr.flush()
        while not stopping.wait(1.0):
            pass
        listener.stop()
