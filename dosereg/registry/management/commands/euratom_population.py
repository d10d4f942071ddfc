"""Art. 64 of 2013/59/Euratom: examination frequencies and dose distributions for the population dose estimate.

    python manage.py euratom_population --year YYYY [--include-demo] [--output PATH]

CSV on stdout (or --output): one row per examination (mapped standard examination, else modality type), age band and
sex; the number of examinations and, per dose quantity, n / median / mean / p75; the effective dose estimate where a
method exists, with the method's label.  Demo studies are left out unless --include-demo.  Studies without a study
date are not counted (their number goes to stderr).
"""

from __future__ import annotations

import io

from dosereg.core.display import Separators, format_number
from dosereg.registry.management.base import DoseRegCommand, UsageError
from dosereg.registry.models import Study
from dosereg.registry.services.euratom import population_columns, population_rows
from dosereg.registry.spreadsheet import write_csv

_CSV_NUMBER = Separators(thousands="", decimal=".")  # machine-readable: no grouping, never an exponent


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return format_number(value, 6, seps=_CSV_NUMBER)
    return value


class Command(DoseRegCommand):
    help = "Export Art. 64 examination frequencies and dose distributions (CSV) for one year."

    def add_arguments(self, parser):
        parser.add_argument("--year", type=int, required=True, metavar="YYYY")
        parser.add_argument("--include-demo", action="store_true", help="count demo studies too")
        self.add_output_argument(parser)

    def handle(self, *args, **options):
        year = options["year"]
        if not 1900 <= year <= 2999:
            raise UsageError(f"--year {year} is out of range")
        rows = population_rows(year=year, include_demo=options["include_demo"])
        columns = population_columns()
        buffer = io.StringIO()
        write_csv(buffer, columns, ([_cell(row[c]) for c in columns] for row in rows))
        if options["output"]:
            with self.open_output(options["output"]) as fh:
                fh.write(buffer.getvalue())
        else:
            self.stdout.write(buffer.getvalue(), ending="")
        total = sum(r["examinations"] for r in rows)
        undated = Study.objects.filter(study_date__isnull=True)
        if not options["include_demo"]:
            undated = undated.filter(demo=False)
        self.stderr.write(f"{year}: {total} examinations in {len(rows)} groups"
                          + (f"; {undated.count()} studies without a date not counted" if undated.exists() else ""))
