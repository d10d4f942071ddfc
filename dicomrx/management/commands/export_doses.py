"""manage.py export_doses --format json|csv [--since DATE] [--until DATE] [--modality ...] [--output PATH]"""

from __future__ import annotations

import json

from django.db.models import Q

from dosereg.registry.management.base import DoseRegCommand, modality_type, parse_date
from dosereg.registry.models import Study
from dosereg.registry.selectors import iter_export_dicts
from dosereg.registry.spreadsheet import write_csv

CSV_COLUMNS = ("study_instance_uid", "equipment_id", "standard_exam", "demo", "modality_type", "modality_types",
               "manufacturer", "model", "station_name", "study_date", "patient_id", "sex", "age_years", "weight_kg",
               "dlp_total_mgycm", "kap_total_gycm2", "ka_r_total_mgy", "fluoro_time_total_s", "agd_left_mgy",
               "agd_right_mgy", "activity_mbq", "effective_dose_msv", "effective_dose_method", "max_ctdivol_mgy",
               "event_count", "source_sop_instance_uids")


def studies_for_export(*, since=None, until=None, modalities=()):
    qs = Study.objects.all()
    if since:
        qs = qs.filter(study_date__gte=since)
    if until:
        qs = qs.filter(study_date__lte=until)
    if modalities:
        q = Q()
        for m in modalities:  # any of the study's modality types
            q |= Q(modality_type=m) | Q(modality_types__icontains=f'"{m}"')
        qs = qs.filter(q)
    return qs


def csv_row(d: dict) -> list:
    t, p = d["totals"], d["patient"]
    flat = {**{k: d.get(k) for k in CSV_COLUMNS}, "modality_types": "|".join(d["modality_types"]),
            "patient_id": p["id"], "sex": p["sex"], "age_years": p["age_years"], "weight_kg": p["weight_kg"],
            "agd_left_mgy": t["agd_total_mgy"]["left"], "agd_right_mgy": t["agd_total_mgy"]["right"],
            "source_sop_instance_uids": "|".join(d["source_sop_instance_uids"])}
    for k in ("dlp_total_mgycm", "kap_total_gycm2", "ka_r_total_mgy", "fluoro_time_total_s", "activity_mbq",
              "effective_dose_msv", "effective_dose_method", "max_ctdivol_mgy", "event_count"):
        flat[k] = t[k]
    return ["" if flat[k] is None else (repr(flat[k]) if isinstance(flat[k], float) else flat[k])
            for k in CSV_COLUMNS]


class Command(DoseRegCommand):
    help = "Export studies with their dose totals and events (JSON: one streamed list; CSV: one row per study)."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=("json", "csv"), default="json")
        parser.add_argument("--since", type=parse_date, metavar="YYYY-MM-DD")
        parser.add_argument("--until", type=parse_date, metavar="YYYY-MM-DD")
        parser.add_argument("--modality", type=modality_type, action="append", default=[])
        self.add_output_argument(parser)

    def handle(self, *args, **o):
        qs = studies_for_export(since=o["since"], until=o["until"], modalities=o["modality"])
        with self.open_output(o["output"]) as out:
            if o["format"] == "csv":
                write_csv(out, CSV_COLUMNS, (csv_row(d) for d in iter_export_dicts(qs, events=False)))
                return
            out.write("[")
            first = True
            for d in iter_export_dicts(qs):
                out.write("\n" if first else ",\n")
                out.write(json.dumps(d, ensure_ascii=False, allow_nan=False))
                first = False
            out.write("\n]\n")
