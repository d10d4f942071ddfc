"""manage.py export_alerts --format json|csv [--output PATH] - one object per alert."""

from __future__ import annotations

import json

from dosereg.registry.management.base import DoseRegCommand, parse_date
from dosereg.registry.spreadsheet import write_dict_csv
from triggers.selectors import EXPORT_FIELDS, alert_export_dict, alert_list


class Command(DoseRegCommand):
    help = ("Export alerts: study_instance_uid, patient_id (the pseudonym when enabled), rule, rule_source, scope, "
            "quantity, quantity_label, value, unit, threshold, severity, state, created_at. JSON is one list.")

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["json", "csv"], required=True)
        parser.add_argument("--since", type=parse_date, metavar="YYYY-MM-DD", help="alerts created on or after")
        parser.add_argument("--until", type=parse_date, metavar="YYYY-MM-DD", help="alerts created on or before")
        parser.add_argument("--exclude-demo", action="store_true", help="leave out alerts of demo studies")
        self.add_output_argument(parser)

    def handle(self, *args, format, since=None, until=None, exclude_demo=False, output=None, **options):
        qs = alert_list(since=since, until=until, include_demo=not exclude_demo).order_by("created_at", "id")
        with self.open_output(output) as fh:
            if format == "csv":
                write_dict_csv(fh, EXPORT_FIELDS, (alert_export_dict(a) for a in qs.iterator(chunk_size=1000)))
                return
            fh.write("[")
            for i, alert in enumerate(qs.iterator(chunk_size=1000)):
                fh.write(("," if i else "") + "\n" + json.dumps(alert_export_dict(alert), ensure_ascii=False))
            fh.write("\n]\n")
