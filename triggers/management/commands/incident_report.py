"""python manage.py incident_report --id N --format pdf|html [--output PATH]
python manage.py incident_report --period YYYY[-Qn] --format pdf|html [--output PATH]

One incident report, or the periodic summary for the QA committee (counts by category and room, significant events,
open actions; it renders, empty, when there were no incidents).  The document goes to stdout or --output; messages
to stderr.  Exit 0 on success, 1 when the incident does not exist, 2 on a usage error.
"""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db import DatabaseError
from django.template.loader import render_to_string

from dosereg.registry.management.base import DoseRegCommand, InputFailed, UsageError
from triggers.incidents import services
from triggers.incidents.document import document_context
from triggers.incidents.models import IncidentReport
from triggers.incidents.pdf import incident_pdf_bytes, summary_pdf_bytes


class Command(DoseRegCommand):
    help = "Write an incident report (--id) or the periodic summary (--period YYYY or YYYY-Qn) as PDF or HTML."
    requires_system_checks: list = []  # stdout carries the document only

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--id", type=int, help="the incident report's number")
        which.add_argument("--period", help="a year (2026) or a quarter (2026-Q3)")
        parser.add_argument("--format", choices=["pdf", "html"], default="pdf")
        self.add_output_argument(parser)

    def handle(self, *args, **opts):
        try:
            self._handle(opts)
        except DatabaseError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CommandError(f"database error: {first} (has 'manage.py migrate' been run?)") from exc

    def _handle(self, opts):
        fmt = opts["format"]
        if opts["id"] is not None:
            incident = IncidentReport.objects.filter(pk=opts["id"]).first()
            if incident is None:
                raise InputFailed(f"no incident report {opts['id']}")
            if fmt == "pdf":
                payload = incident_pdf_bytes(incident)
            else:
                payload = render_to_string("triggers/incidents/print.html", document_context(incident))
            services.audit_record(user=None, action="incident_export", object_type=services.OBJECT_TYPE,
                                  object_id=incident.pk, detail={"format": fmt, "via": "incident_report command"})
        else:
            try:
                summary = services.period_summary(opts["period"])
            except services.IncidentError as exc:
                raise UsageError(str(exc)) from exc
            if fmt == "pdf":
                payload = summary_pdf_bytes(summary)
            else:
                payload = render_to_string("triggers/incidents/summary_print.html", {"summary": summary})
        binary = isinstance(payload, bytes)
        if not opts.get("output") and not binary:
            self.stdout.write(payload, ending="" if payload.endswith("\n") else "\n")
            return
        with self.open_output(opts.get("output"), binary=binary) as out:
            out.write(payload)
        if opts.get("output"):
            self.stderr.write(f"wrote {opts['output']}")
