"""Study services used by other apps (drl sets the standard examination through here)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from dosereg.core.sanity import IMPLAUSIBLE_VALUE
from dosereg.registry.models import StandardExam, Study
from dosereg.registry.services.audit import audit_record


def study_set_standard_exam(*, study_ids: Iterable[int], exam: StandardExam | None) -> int:
    """Set (or clear) the standard examination of these studies; returns how many rows changed."""
    return Study.objects.filter(pk__in=list(study_ids)).update(standard_exam=exam)


class NothingToConfirm(Exception):
    """The study has no implausible value awaiting confirmation."""


@transaction.atomic
def study_confirm_values(*, study_id: int, user) -> Study:
    """A physicist confirms the study's implausible values (checked against the modality's display or log): they
    count in DRL medians from now on.  The findings stay, marked confirmed, and the confirmation is audited."""
    study = Study.objects.select_for_update().get(pk=study_id)
    if not study.values_unconfirmed:
        raise NothingToConfirm(f"study {study.pk} has no implausible value awaiting confirmation")
    now = timezone.now()
    who = getattr(user, "username", "") or ""
    study.flag_details = [
        {**d, "confirmed": True, "confirmed_by": who, "confirmed_at": now.isoformat()}
        if d.get("flag") == IMPLAUSIBLE_VALUE and not d.get("confirmed") else d
        for d in study.flag_details or []]
    study.values_unconfirmed = False
    study.values_confirmed_by, study.values_confirmed_at = who, now
    study.save(update_fields=["flag_details", "values_unconfirmed", "values_confirmed_by", "values_confirmed_at",
                              "updated_at"])
    audit_record(user=user, action="confirm_values", object_type="study", object_id=study.pk,
                 detail={"quantities": sorted({d.get("quantity", "") for d in study.flag_details
                                               if d.get("flag") == IMPLAUSIBLE_VALUE})})
    return study
