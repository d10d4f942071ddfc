"""manage.py check_triggers [--since DATE] [--until DATE] - re-evaluate studies against the active trigger rules."""

from __future__ import annotations

import sys

from dosereg.registry.management.base import DoseRegCommand, UsageError, parse_date
from triggers.services import check_triggers_period


class Command(DoseRegCommand):
    help = ("Re-evaluate the studies dated from --since (all studies without it) against the active trigger rules, "
            "e.g. after a rule change. Existing alerts are updated, never duplicated or dropped. Prints "
            "'studies=N alerts_created=N'.")

    def add_arguments(self, parser):
        parser.add_argument("--since", type=parse_date, metavar="YYYY-MM-DD")
        parser.add_argument("--until", type=parse_date, metavar="YYYY-MM-DD")

    def handle(self, *args, since=None, until=None, **options):
        if since and until and until < since:
            raise UsageError("--until is before --since")
        sys.stderr.write(f"checking studies{' from ' + since.isoformat() if since else ''}...\n")
        result = check_triggers_period(since, until)
        self.stdout.write(f"studies={result['studies']} alerts_created={result['alerts_created']}")
