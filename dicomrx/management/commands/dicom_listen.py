"""Run the DICOM listener (Storage + Verification SCP) in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import signal
import threading

from django.conf import settings

from dosereg.registry.management.base import DoseRegCommand, InputFailed


class Command(DoseRegCommand):
    help = ("Receive dose objects (C-STORE) and answer C-ECHO on DOSEREG_DICOM_BIND:DOSEREG_DICOM_PORT as "
            "DOSEREG_AE_TITLE; ingest them afterwards (Celery task or the in-process ingest thread).")

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, help="override DOSEREG_DICOM_PORT")
        parser.add_argument("--bind", help="override DOSEREG_DICOM_BIND")
        parser.add_argument("--no-ingest", action="store_true",
                            help="only receive and store; leave objects in state 'received' for later ingest")

    def handle(self, *args, **options):
        from dicomrx.listener import Listener

        listener = Listener(bind=options["bind"], port=options["port"], ingest=not options["no_ingest"])
        stopping = threading.Event()

        def stop(signum, frame):
            stopping.set()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            listener.start()
        except OSError as exc:
            raise InputFailed(f"cannot listen on {listener.bind}:{listener.port}: {exc.strerror or exc}") from exc
        except Exception as exc:  # noqa: BLE001 - TLS files unreadable, database unavailable: one line, exit 1
            raise InputFailed(f"the listener cannot start: {type(exc).__name__}: {exc}") from exc
        self.stderr.write(f"listening as {listener.ae_title} on {listener.bind}:{listener.port} "
                          f"(max {settings.DICOM_MAX_ASSOCIATIONS} associations)")
        self.stderr.flush()
        while not stopping.wait(1.0):
            pass
        listener.stop()
