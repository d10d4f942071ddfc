"""Study services used by other apps (drl sets the standard examination through here)."""

from __future__ import annotations

from collections.abc import Iterable

from dosereg.registry.models import StandardExam, Study


def study_set_standard_exam(*, study_ids: Iterable[int], exam: StandardExam | None) -> int:
    """Set (or clear) the standard examination of these studies; returns how many rows changed."""
    return Study.objects.filter(pk__in=list(study_ids)).update(standard_exam=exam)
