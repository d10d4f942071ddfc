"""Run DoseReg in the foreground: the web application and the DICOM listener (with its ingest thread).

SIGINT or SIGTERM to this process (or its process group) stops every child it started.  A port already taken
(another DoseReg, say) stops start-up with one line before anything starts; "DoseReg web on ..." is printed only
once both ports answer.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import get_commands

from dosereg.registry.management.base import DoseRegCommand, InputFailed

START_TIMEOUT = 60.0  # seconds for gunicorn and the listener to answer on their ports


def port_taken(host: str, port: int) -> bool:
    """Whether a listening socket already holds host:port (SO_REUSEADDR: a port in TIME_WAIT is free)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def answers(host: str, port: int) -> bool:
    connect_to = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host in ("::", "[::]") else host.strip("[]"))
    try:
        with socket.create_connection((connect_to, port), timeout=0.5):
            return True
    except OSError:
        return False


class Command(DoseRegCommand):
    help = "Start the web application (gunicorn) and the DICOM listener; stop both on SIGINT/SIGTERM."

    def add_arguments(self, parser):
        parser.add_argument("--no-listener", action="store_true", help="do not start the DICOM listener")
        parser.add_argument("--bind", default="127.0.0.1", help="web address to bind (default 127.0.0.1)")

    def handle(self, *args, **options):
        listen = not options["no_listener"] and "dicom_listen" in get_commands()
        ports = [(options["bind"], settings.HTTP_PORT)] + ([(settings.DICOM_BIND, settings.DICOM_PORT)] if listen
                                                            else [])
        for host, port in ports:
            if port_taken(host, port):
                raise InputFailed(f"port {port} is already in use (is DoseReg already running?)")
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        children: list[subprocess.Popen] = []
        web = [sys.executable, "-m", "gunicorn", "dosereg.wsgi:application", "--bind",
               f"{options['bind']}:{settings.HTTP_PORT}", "--workers", "2", "--threads", "4",
               "--graceful-timeout", "5",  # no gunicorn access log: DoseReg's own (dosereg.access) has no patient data
               "--control-socket", str(settings.DATA_DIR / "gunicorn.ctl")]  # not ~/.gunicorn: the data dir
        children.append(subprocess.Popen(web, cwd=settings.BASE_DIR))
        if listen:  # this process ran the system checks already
            children.append(subprocess.Popen(manage + ["dicom_listen", "--skip-checks"], cwd=settings.BASE_DIR))
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        announced = False
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while not stopping and all(c.poll() is None for c in children):
                if not announced and all(answers(h, p) for h, p in ports):
                    announced = True
                    self.stderr.write(f"DoseReg web on http://{options['bind']}:{settings.HTTP_PORT}/"
                                      + (f" ; DICOM {settings.DICOM_AE_TITLE}@{settings.DICOM_BIND}:"
                                         f"{settings.DICOM_PORT}" if listen else ""))
                elif not announced and time.monotonic() > deadline:
                    self.stderr.write(f"DoseReg did not come up within {START_TIMEOUT:.0f} s")
                    break
                time.sleep(0.3)
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.time() + 10
            for child in children:
                try:
                    child.wait(timeout=max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    child.kill()
        codes = [c.returncode for c in children]
        if not stopping:
            self.stderr.write("DoseReg did not start" if not announced else
                              f"a DoseReg process stopped unexpectedly (exit codes {codes})")
            os._exit(1)
