"""drl_import_set FILE.csv --name NAME --issuing-body BODY --year YYYY --source CITATION [--country CC] [--verify]

Imports a DRL set from CSV (columns: standard_exam, indication, patient_group, age_min_years, age_max_years,
weight_min_kg, weight_max_kg, quantity, value, unit, per, view, thickness_min_mm, thickness_max_mm, verify, note).
``view`` (PA, AP, AP/PA, LAT, CC, MLO) and the compressed breast thickness band in mm (lower limit inclusive, upper
exclusive) are for a DRL per radiograph (per acquisition) and may be left blank.  A bad row refuses the whole file,
naming the row (exit 1).
"""

from __future__ import annotations

import sys

from dosereg.registry.management.base import DoseRegCommand, InputFailed, UsageError
from drl.comparison import DrlValidationError
from drl.services import drl_set_import_csv


class Command(DoseRegCommand):
    help = "Import a DRL set from a CSV file (refused whole on a bad row)."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--name", required=True)
        parser.add_argument("--issuing-body", required=True)
        parser.add_argument("--year", type=int, required=True)
        parser.add_argument("--source", required=True, help="citation of the publication")
        parser.add_argument("--country", default="")
        parser.add_argument("--verify", action="store_true", help="values still to be verified against the source")
        parser.add_argument("--priority", type=int, default=10)

    def handle(self, *args, **opts):
        try:
            with open(opts["file"], encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {opts['file']}: {exc}") from exc
        try:
            drl_set = drl_set_import_csv(text=text, name=opts["name"], issuing_body=opts["issuing_body"],
                                         year=opts["year"], source=opts["source"], country=opts["country"],
                                         verify=opts["verify"], priority=opts["priority"])
        except DrlValidationError as exc:
            raise InputFailed(f"{opts['file']}: {exc}; nothing imported") from exc
        sys.stderr.write(f"imported DRL set {drl_set.pk} {drl_set.name!r}: {drl_set.entries.count()} entries\n")
