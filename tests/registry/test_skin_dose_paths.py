"""The skin dose fed two ways: from the event rows the batch path has just built for a study it opens (no query, no
JSON read back), and from the database (``studies_update_skin_dose``).  Both must give every fluoroscopy study the
same result, and it is there when recording ends (no post-commit step)."""

from __future__ import annotations

import pytest

from dicomrx import ingest
from dosereg.registry.models import Study
from dosereg.registry.services.skin_dose import studies_update_skin_dose

pytestmark = [pytest.mark.django_db, pytest.mark.corpus]

FIELDS = ("skin_dose", "skin_dose_map", "psd_mgy")


def _skin() -> dict:
    return {row[0]: row[1:] for row in Study.objects.values_list("study_instance_uid", *FIELDS)}


def test_skin_dose_from_the_rows_in_memory_equals_the_one_from_the_database(corpus):
    files = sorted((corpus / "rf").glob("*.dcm"))
    rows = [ingest.store_file(f) for f in files]
    outcomes = ingest.ingest_batch([r.pk for r in rows if not isinstance(r, ingest.IngestOutcome)])
    assert {o.status for o in outcomes} <= {"imported", "superseded", "corrected", "skipped"}
    written = _skin()
    fluoro = [s.pk for s in Study.objects.all() if "fluoroscopy" in (s.modality_types or [])]
    assert fluoro and sum(1 for v in written.values() if v[0]) >= 5  # computed at recording, before any commit hook
    assert studies_update_skin_dose(fluoro) >= 5
    assert _skin() == written
