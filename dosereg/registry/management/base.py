"""Conventions every DoseReg management command follows (README, "Command conventions").

stdout carries results only (or ``--output PATH``); logs, warnings and progress go to stderr; JSON output is one
list; dates are YYYY-MM-DD; exit 0 on success, 1 when any input failed validation, 2 on a usage error; expected
failures print one line, never a traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from contextlib import contextmanager

from django.core.checks import Tags
from django.core.management.base import BaseCommand, CommandError

from dosereg.core.quantities import MODALITY_TYPES
from dosereg.registry.checks import DOSEREG_CHECKS


class UsageError(CommandError):
    """A usage error: exit status 2."""

    def __init__(self, message: str):
        super().__init__(message, returncode=2)


class InputFailed(CommandError):
    """Some input failed validation: exit status 1."""

    def __init__(self, message: str):
        super().__init__(message, returncode=1)


def parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (use YYYY-MM-DD)") from None


def modality_type(value: str) -> str:
    if value not in MODALITY_TYPES:
        raise argparse.ArgumentTypeError(f"{value!r} is not a modality type (one of {', '.join(MODALITY_TYPES)})")
    return value


class DoseRegCommand(BaseCommand):
    """Base class: usage errors exit 2 with one line; ``open_output`` honours --output."""

    # The system checks a command's work depends on: DoseReg's own (DICOM configuration, private files; tag
    # "dosereg"), database, caches, security.  Not the URL, template, admin and static-file checks (they import the
    # URLconf with every view, the API schema, the PDF library and every template tag library: about a second), nor
    # the model validation and DRF's compatibility check (it imports the pagination class, hence requests and
    # markdown: a quarter of a command's start-up).  `manage.py check`, migrate and the web server run them all.
    requires_system_checks = [DOSEREG_CHECKS, Tags.security, Tags.database, Tags.caches, Tags.signals, Tags.files]

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def _error(message):  # argparse's own error exits 2 with usage; keep it to one clear line
            parser.print_usage(sys.stderr)
            sys.stderr.write(f"{prog_name} {subcommand}: error: {message}\n")
            sys.exit(2)

        parser.error = _error
        return parser

    def add_output_argument(self, parser) -> None:
        parser.add_argument("--output", metavar="PATH", help="write to this file instead of stdout")

    @contextmanager
    def open_output(self, path: str | None, binary: bool = False):
        if not path:
            # the command's own stdout stream (call_command(stdout=...) captures it), unwrapped: OutputWrapper
            # would add a newline to every partial write of a streamed export
            stream = getattr(self.stdout, "_out", sys.stdout)
            yield getattr(stream, "buffer", stream) if binary else stream
            return
        try:
            fh = open(path, "wb" if binary else "w", **({} if binary else {"newline": "", "encoding": "utf-8"}))
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror}") from exc
        with fh:
            yield fh

    def progress(self, iterable, total: int | None = None, label: str = "", *, clock=time.monotonic):
        """A progress bar on stderr when it is a terminal, with the rate (items/s) and, with a total, the time
        left; silent otherwise."""
        if not sys.stderr.isatty():
            yield from iterable
            return
        width = 30
        started = last = clock()
        i = 0
        for i, item in enumerate(iterable, 1):
            now = clock()
            if now - last >= 0.2 or i == total:  # a few updates a second: a terminal write per item costs time
                last = now
                sys.stderr.write("\r" + progress_line(label, i, total, now - started, width))
                sys.stderr.flush()
            yield item
        if i:
            sys.stderr.write("\n")


def progress_line(label: str, done: int, total: int | None, elapsed: float, width: int = 30) -> str:
    """'import [#####.....] 120/600 40/s 0:12 left' (pure)."""
    rate = done / elapsed if elapsed > 0 else 0.0
    if not total:
        return f"{label} {done} {rate:.0f}/s"
    filled = int(width * done / total)
    left = (total - done) / rate if rate > 0 else 0.0
    return (f"{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {rate:.0f}/s "
            f"{int(left // 60)}:{int(left % 60):02d} left")
