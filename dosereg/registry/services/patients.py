"""Patient merge: one patient's history under two IDs joined under the surviving one (HL7 ADT^A40, an admin).

A merge moves the merged patient's studies to the surviving patient and fills in demographics the surviving row
lacks; the merged row stays (flagged ``merged``, without studies) so the merge can be undone.  What moved is kept in
the audit entry (``patient_merge``: the study ids and the fields filled in) and :func:`patient_merge_undo` puts it
back.  Callers above the registry re-evaluate what depends on a patient's history (cumulative trigger windows).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from dosereg.registry.models import AuditLog, Patient, Study
from dosereg.registry.services.audit import audit_record

MERGED_FLAG = "merged"
_DEMOGRAPHICS = ("name", "sex", "birth_date")


class PatientMergeError(ValueError):
    """The merge (or its undo) cannot be done: the reason is for the sender or the administrator."""


@dataclass(frozen=True)
class PatientMerge:
    surviving_id: int
    merged_id: int
    study_ids: tuple[int, ...]
    audit_id: int


def patient_merge(*, surviving_id: int, merged_id: int, user=None, source: str = "admin",
                  request=None) -> PatientMerge:
    """Move every study of patient ``merged_id`` to patient ``surviving_id`` (primary keys); audited, reversible."""
    if surviving_id == merged_id:
        raise PatientMergeError("a patient cannot be merged into itself")
    with transaction.atomic():
        rows = {p.pk: p for p in Patient.objects.select_for_update().filter(pk__in=[surviving_id, merged_id])}
        if surviving_id not in rows or merged_id not in rows:
            raise PatientMergeError("unknown patient")
        surviving, merged = rows[surviving_id], rows[merged_id]
        study_ids = tuple(Study.objects.filter(patient=merged).order_by("pk").values_list("pk", flat=True))
        Study.objects.filter(pk__in=study_ids).update(patient=surviving)
        filled = [f for f in _DEMOGRAPHICS if not getattr(surviving, f) and getattr(merged, f)]
        for name in filled:
            setattr(surviving, name, getattr(merged, name))
        if filled:
            surviving.save(update_fields=filled)
        merged.flags = sorted(set(merged.flags or []) | {MERGED_FLAG})
        merged.save(update_fields=["flags"])
        entry = audit_record(user=user, request=request, action="patient_merge", object_type="patient",
                             object_id=surviving.pk,
                             detail={"surviving_patient": surviving.pk, "merged_patient": merged.pk,
                                     "studies": list(study_ids), "filled_in": filled, "source": source})
    return PatientMerge(surviving_id=surviving.pk, merged_id=merged.pk, study_ids=study_ids, audit_id=entry.pk)


def patient_merge_undo(*, audit_id: int, user=None, request=None) -> PatientMerge:
    """Undo the merge recorded by audit entry ``audit_id``: its studies go back to the merged patient."""
    with transaction.atomic():
        entry = AuditLog.objects.select_for_update().filter(pk=audit_id, action="patient_merge").first()
        if entry is None:
            raise PatientMergeError("no such patient merge")
        if AuditLog.objects.filter(action="patient_merge_undo", object_id=str(audit_id)).exists():
            raise PatientMergeError("this merge has already been undone")
        detail = entry.detail
        surviving = Patient.objects.select_for_update().get(pk=detail["surviving_patient"])
        merged = Patient.objects.select_for_update().get(pk=detail["merged_patient"])
        study_ids = tuple(detail.get("studies", []))
        Study.objects.filter(pk__in=study_ids, patient=surviving).update(patient=merged)
        filled = [f for f in detail.get("filled_in", []) if f in _DEMOGRAPHICS]
        for name in filled:  # filled in from the merged row: the surviving row did not have them before
            setattr(surviving, name, None if name == "birth_date" else "")
        if filled:
            surviving.save(update_fields=filled)
        merged.flags = [f for f in merged.flags or [] if f != MERGED_FLAG]
        merged.save(update_fields=["flags"])
        undo = audit_record(user=user, request=request, action="patient_merge_undo", object_type="patient_merge",
                            object_id=audit_id, detail={"surviving_patient": surviving.pk,
                                                        "merged_patient": merged.pk, "studies": list(study_ids)})
    return PatientMerge(surviving_id=surviving.pk, merged_id=merged.pk, study_ids=study_ids, audit_id=undo.pk)


def patient_update_demographics(*, patient_id: int, name: str = "", birth_date=None, sex: str = "",
                                user=None, source: str = "admin", request=None) -> list[str]:
    """Name, birth date and sex of a patient as the master patient index now has them (empty: unchanged).  A
    pseudonymised patient keeps no name or birth date.  Returns the changed field names (audited, names only)."""
    with transaction.atomic():
        patient = Patient.objects.select_for_update().get(pk=patient_id)
        wanted = {"sex": sex} if patient.pseudonymised else {"name": name, "birth_date": birth_date, "sex": sex}
        changed = [f for f, value in wanted.items() if value and getattr(patient, f) != value]
        for name_ in changed:
            setattr(patient, name_, wanted[name_])
        if changed:
            patient.save(update_fields=changed)
            audit_record(user=user, request=request, action="patient_update", object_type="patient",
                         object_id=patient.pk, detail={"fields": changed, "source": source})
    return changed
