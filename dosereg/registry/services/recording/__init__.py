"""Recording parsed dose objects in the registry, split by concern:

- ``service``: ``record_report`` (one object) and the findings a study carries;
- ``bulk``: ``record_batch`` (received objects, a batch in one transaction) and ``record_reports_bulk`` (a batch
  that comes without files), the same builders and rules;
- ``versions``: the stored facts for the pure version plan (``dosereg.core.versions``) and carrying it out;
- ``identity``: patient, unit, study and DICOM time zones;
- ``rows``: event, accumulated-dose and dose-check rows with the border checks (``dosereg.core.sanity``);
- ``totals``: the one implementation of a study's totals and effective dose;
- ``bulk_sql``: multi-row INSERT / COPY / UPDATE;  ``fields``: text fitted to the columns.
"""

from dosereg.registry.services.recording.bulk import RECORD_ERRORS, record_batch, record_reports_bulk
from dosereg.registry.services.recording.service import RecordOutcome, bulk_sha256, record_report
from dosereg.registry.services.recording.totals import (
    studies_update_effective_dose,
    studies_update_totals,
    study_update_effective_dose,
    study_update_totals,
)

__all__ = ["RECORD_ERRORS", "RecordOutcome", "bulk_sha256", "record_batch", "record_report", "record_reports_bulk",
           "studies_update_effective_dose", "studies_update_totals", "study_update_effective_dose", "study_update_totals"]
