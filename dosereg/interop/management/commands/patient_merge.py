"""Merge two registry patients, or undo a merge (an HL7 ADT^A40's or an administrator's) by its audit entry."""

from __future__ import annotations

from dosereg.interop.inbound import recheck_history
from dosereg.registry.management.base import DoseRegCommand, InputFailed, UsageError
from dosereg.registry.models import AuditLog
from dosereg.registry.services.patients import PatientMergeError, patient_merge, patient_merge_undo


class Command(DoseRegCommand):
    help = ("Merge patient MERGED into SURVIVING (registry patient ids), or --undo AUDIT_ID a recorded merge; "
            "--list shows the merges.  Cumulative trigger windows are evaluated again either way.")

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, help="SURVIVING MERGED")
        parser.add_argument("--undo", type=int, metavar="AUDIT_ID", help="undo the merge of this audit entry")
        parser.add_argument("--list", action="store_true", help="list the merges (audit id, when, patients, source)")

    def handle(self, *args, **options):
        if options["list"]:
            for entry in AuditLog.objects.filter(action="patient_merge").order_by("at"):
                d = entry.detail
                self.stdout.write(f"{entry.pk} {entry.at:%Y-%m-%d %H:%M} surviving={d.get('surviving_patient')} "
                                  f"merged={d.get('merged_patient')} studies={len(d.get('studies', []))} "
                                  f"source={d.get('source', '')}")
            return
        try:
            if options["undo"] is not None:
                result = patient_merge_undo(audit_id=options["undo"])
            elif len(options["ids"]) == 2:
                result = patient_merge(surviving_id=options["ids"][0], merged_id=options["ids"][1],
                                       source="manage.py patient_merge")
            else:
                raise UsageError("give SURVIVING MERGED, or --undo AUDIT_ID, or --list")
        except PatientMergeError as exc:
            raise InputFailed(str(exc)) from exc
        for patient_id in (result.surviving_id, result.merged_id):
            recheck_history(patient_id)
        self.stdout.write(f"audit={result.audit_id} studies={len(result.study_ids)}")
