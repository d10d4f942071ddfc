"""drl_report --year YYYY --format json|csv|pdf [--include-demo] [--new] [--output PATH]

Prints the DRL comparison of a calendar year.  The latest snapshot issued for that year is reused (a report stays as
issued); when there is none, or with --new, a new snapshot is made first.  JSON is one list of rows.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

from dosereg.registry.management.base import DoseRegCommand, UsageError
from drl.comparison import DrlValidationError
from drl.pdf import drl_comparison_pdf
from drl.selectors import drl_latest_for_year, drl_report_rows
from drl.services import drl_comparison_run, drl_report_csv


class Command(DoseRegCommand):
    help = "The DRL comparison (ICRP 135) of a calendar year as JSON, CSV or PDF."

    def add_arguments(self, parser):
        parser.add_argument("--year", type=int, required=True, help="calendar year, e.g. 2024")
        parser.add_argument("--format", choices=["json", "csv", "pdf"], default="json")
        parser.add_argument("--include-demo", action="store_true", help="count demo studies too")
        parser.add_argument("--new", action="store_true", help="make a new snapshot even if one exists")
        self.add_output_argument(parser)

    def handle(self, *args, **opts):
        year = opts["year"]
        if not 1900 <= year <= 9999:
            raise UsageError(f"--year {year} is not a calendar year")
        run = None if opts["new"] else drl_latest_for_year(year, include_demo=opts["include_demo"])
        if run is None:
            try:
                run = drl_comparison_run(period_start=dt.date(year, 1, 1), period_end=dt.date(year, 12, 31),
                                         trigger="on_demand", include_demo=opts["include_demo"])
            except DrlValidationError as exc:
                raise UsageError(str(exc)) from exc
            sys.stderr.write(f"DRL comparison {run.pk}: new snapshot, {run.rows.count()} rows\n")
        else:
            sys.stderr.write(f"DRL comparison {run.pk}: snapshot of {run.created_at:%Y-%m-%d %H:%M} (use --new to "
                             f"re-run)\n")
        fmt = opts["format"]
        if fmt == "pdf":
            with self.open_output(opts["output"], binary=True) as fh:
                fh.write(drl_comparison_pdf(run))
            return
        rows = drl_report_rows(run)
        text = json.dumps(rows, indent=1, ensure_ascii=False) + "\n" if fmt == "json" else drl_report_csv(rows)
        if not opts["output"]:
            self.stdout.write(text, ending="")  # self.stdout: call_command(stdout=...) captures it
            return
        with self.open_output(opts["output"]) as fh:
            fh.write(text)
