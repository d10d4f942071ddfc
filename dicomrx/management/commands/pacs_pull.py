"""Pull dose objects from the PACS (C-FIND study/series/image, then C-MOVE to our listener or C-GET)."""

from __future__ import annotations

import json

from dosereg.registry.management.base import DoseRegCommand, InputFailed, UsageError, modality_type, parse_date


class Command(DoseRegCommand):
    help = ("Query the PACS (DOSEREG_PACS_HOST/PORT/AE_TITLE) for dose objects of studies in a date range and "
            "retrieve those not yet held (DOSEREG_PACS_RETRIEVE: move or get); prints a JSON summary.")

    def add_arguments(self, parser):
        parser.add_argument("--since", type=parse_date, required=True, help="first study date, YYYY-MM-DD")
        parser.add_argument("--until", type=parse_date, help="last study date, YYYY-MM-DD (default: open)")
        parser.add_argument("--modality", type=modality_type, action="append",
                            help="CT|fluoroscopy|radiography|mammography|nuclear_medicine (repeatable)")
        parser.add_argument("--retrieve", choices=["move", "get"], help="override DOSEREG_PACS_RETRIEVE")
        parser.add_argument("--host")
        parser.add_argument("--port", type=int)
        parser.add_argument("--aet", help="the PACS AE title (override DOSEREG_PACS_AE_TITLE)")
        parser.add_argument("--arrival-timeout", type=float, default=120.0,
                            help="seconds to wait for C-MOVE arrivals (default 120)")
        self.add_output_argument(parser)

    def handle(self, *args, **options):
        from dicomrx.pull import PacsPull, PullError

        if options["until"] and options["until"] < options["since"]:
            raise UsageError("--until is before --since")
        try:
            pull = PacsPull(host=options["host"], port=options["port"], called_ae=options["aet"],
                            retrieve=options["retrieve"], arrival_timeout=options["arrival_timeout"])
            summary = pull.run(options["since"], options["until"], options["modality"], progress=self.progress)
        except PullError as exc:
            raise InputFailed(str(exc)) from exc
        with self.open_output(options.get("output")) as out:
            out.write(json.dumps([summary.as_dict()], indent=1) + "\n")
        self.stderr.write(
            f"{summary.studies} studies, {summary.candidates} candidate objects, {summary.already_held} already "
            f"held, {summary.requested} retrieved, {summary.arrived} arrived; states "
            f"{dict(summary.states) or '-'}" + (f"; {len(summary.missing)} missing" if summary.missing else ""))
        if summary.failures or summary.missing:
            raise InputFailed(f"{len(summary.failures)} retrieve failures, {len(summary.missing)} objects missing")
