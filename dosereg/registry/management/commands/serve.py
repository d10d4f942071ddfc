"""Run DoseReg in the foreground: the web application and the DICOM listener (with its ingest thread).

SIGINT or SIGTERM to this process (or its process group) stops every child it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import get_commands

from dosereg.registry.management.base import DoseRegCommand


class Command(DoseRegCommand):
    help = "Start the web application (gunicorn) and the DICOM listener; stop both on SIGINT/SIGTERM."

    def add_arguments(self, parser):
        parser.add_argument("--no-listener", action="store_true", help="do not start the DICOM listener")
        parser.add_argument("--bind", default="127.0.0.1", help="web address to bind (default 127.0.0.1)")

    def handle(self, *args, **options):
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        children: list[subprocess.Popen] = []
        web = [sys.executable, "-m", "gunicorn", "dosereg.wsgi:application", "--bind",
               f"{options['bind']}:{settings.HTTP_PORT}", "--workers", "2", "--threads", "4",
               "--access-logfile", "-", "--graceful-timeout", "5"]
        children.append(subprocess.Popen(web, cwd=settings.BASE_DIR))
        if not options["no_listener"] and "dicom_listen" in get_commands():
            children.append(subprocess.Popen(manage + ["dicom_listen"], cwd=settings.BASE_DIR))
        self.stderr.write(f"DoseReg web on http://{options['bind']}:{settings.HTTP_PORT}/ ; "
                          f"DICOM {settings.DICOM_AE_TITLE}@{settings.DICOM_BIND}:{settings.DICOM_PORT}")
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(c.poll() is None for c in children):
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
        if not stopping and any(codes):
            self.stderr.write(f"a DoseReg process stopped unexpectedly (exit codes {codes})")
            os._exit(1)
