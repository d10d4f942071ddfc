"""Delete studies older than a date, as the site's retention policy allows (Euratom and national record keeping).

    python manage.py purge --before YYYY-MM-DD [--dry-run]

Deletes the studies dated before the date with their dose reports, irradiation events, accumulated doses and alerts,
the received DICOM objects of those studies (rows and files), and patients left without studies.  Studies under a
legal hold are kept and listed: those linked to an incident report that is not closed (directly or through an alert).
Incident dose snapshots are stored on the report and stay; issued DRL comparisons hold aggregates and stay.  Refuses
(exit 2) a date that would delete studies younger than the configured retention (DOSEREG_RETENTION_STUDIES_YEARS or
SiteSettings.retention["studies"]).  Writes one entry to the audit trail; --dry-run changes nothing but that entry.

The command lives in the web app because the legal holds come from the incident reports of ``triggers``, which the
registry may not import.
"""

from __future__ import annotations

from dosereg.registry.management.base import DoseRegCommand, UsageError, parse_date
from dosereg.registry.services.euratom import RetentionViolation, purge_studies
from dosereg.web.retention import incident_legal_holds


class Command(DoseRegCommand):
    help = "Delete studies dated before --before, keeping those under a legal hold (open incidents)."

    def add_arguments(self, parser):
        parser.add_argument("--before", type=parse_date, required=True, metavar="YYYY-MM-DD",
                            help="delete studies whose study date is before this date")
        parser.add_argument("--dry-run", action="store_true", help="report what would be deleted; change nothing")

    def handle(self, *args, **options):
        try:
            result = purge_studies(before=options["before"], dry_run=options["dry_run"],
                                   legal_holds=incident_legal_holds)
        except RetentionViolation as exc:
            raise UsageError(str(exc)) from exc
        for line in result.lines():
            self.stdout.write(line)
