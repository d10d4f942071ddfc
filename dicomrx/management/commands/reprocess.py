"""manage.py reprocess [--rejected] [--since DATE] - replay stored objects through the current parser.

Every received object keeps its original file, so an import can be replayed after a parser fix.  By default every
stored object is replayed (what it recorded is replaced by the new result); ``--rejected`` replays only objects that
were refused or never processed.  The last line is 'imported=N superseded=N skipped=N failed=N'.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import Counter

from django.conf import settings

from dicomrx import ingest
from dosereg.registry.management.base import DoseRegCommand, InputFailed, parse_date
from dosereg.registry.models import ReceivedObject


class Command(DoseRegCommand):
    help = "Replay stored dose objects through the current parser (all, or only the rejected/unprocessed ones)."

    def add_arguments(self, parser):
        parser.add_argument("--rejected", action="store_true",
                            help="only objects that were rejected, skipped or never processed")
        parser.add_argument("--since", type=parse_date, metavar="YYYY-MM-DD", help="received on or after this date")

    def handle(self, *args, rejected: bool, since: dt.date | None, **options):
        qs = ReceivedObject.objects.exclude(state=ReceivedObject.STATE_DUPLICATE)
        if rejected:
            qs = qs.filter(state__in=[ReceivedObject.STATE_REJECTED, ReceivedObject.STATE_SKIPPED,
                                      ReceivedObject.STATE_RECEIVED])
        if since:
            start = dt.datetime.combine(since, dt.time(0), tzinfo=zoneinfo.ZoneInfo(settings.TIME_ZONE))
            qs = qs.filter(received_at__gte=start)
        ids = list(qs.order_by("received_at", "id").values_list("id", flat=True))
        counts = Counter({k: 0 for k in ("imported", "superseded", "skipped", "failed")})
        failures = []
        for pk, outcome in self.progress(_replayed(ids, settings.INGEST_BATCH_SIZE), total=len(ids),
                                         label="reprocess"):
            status = "imported" if outcome.status == ingest.ALREADY_PRESENT else outcome.status
            counts[status] += 1
            if status == ingest.FAILED:
                failures.append((pk, outcome.reason))
        for pk, reason in failures:
            self.stdout.write(f"failed received object {pk}: {reason}")
        self.stdout.write(" ".join(f"{k}={v}" for k, v in counts.items()))
        if failures:
            raise InputFailed(f"{len(failures)} object(s) failed")


def _replayed(ids: list[int], batch_size: int):
    """(id, outcome) per object, replayed in batches (one transaction and one run of the post-commit steps each)."""
    for start in range(0, len(ids), batch_size):
        chunk = ids[start:start + batch_size]
        try:
            outcomes = ingest.ingest_batch(chunk, force=True)
        except ingest.IngestError as exc:
            outcomes = [ingest.IngestOutcome(ingest.FAILED, reason=str(exc), received_object_id=pk) for pk in chunk]
        yield from zip(chunk, outcomes, strict=True)
