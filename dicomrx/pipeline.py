"""The one post-commit orchestrator (design §2, step 3): what happens after studies were recorded, for the listener,
``import_dose``, ``pacs_pull``, ``reprocess`` and ``generate_demo_data --bulk`` alike (one study is a batch of one).

Order, each app's batch entry point:

1. examination mapping (``drl.services.map_studies_of``), the unmapped names noted, the units' acquisition protocols
   tracked (a new protocol on a unit with history, or a kVp shift, makes the unit's comparisons due);
2. the CT effective-dose estimates that fall back on the examination's body region
   (``studies_update_effective_dose``; the peak skin dose of fluoroscopy studies is not a step here: it depends on
   the recorded events alone and is kept with the study's totals when it is recorded, see
   ``dosereg.registry.services.skin_dose``);
3. trigger checks (``triggers.bulk.check_studies``: all rules against all studies of the batch from a few queries;
   new alerts created in bulk; ``check_study`` only for a study with an alert to update or a patient window to
   re-check — a corrected study's alerts are re-evaluated here);
4. ``drl.services.note_equipment_change`` for each equipment change;
5. the FHIR Bundle and the HL7 ORU of each new or corrected study, when configured
   (``dosereg.interop.push.interop_after_studies_recorded``: recorded deliveries, retried on failure).
"""

from __future__ import annotations

from dosereg.interop.push import interop_after_studies_recorded
from dosereg.registry.services.recording import studies_update_effective_dose
from drl.services import map_studies_of, note_equipment_change, note_protocols_of, note_unmapped_names_of
from triggers.bulk import check_studies


def after_studies_recorded(study_ids: list[int], equipment_change_ids: list[int] | tuple[int, ...] = (), *,
                           exam_settled: set[int] | frozenset[int] = frozenset()) -> None:
    """Run the post-commit steps for these studies (in recording order; a study may appear once per object).
    ``exam_settled``: studies written with their standard exam and the effective dose that follows from it
    (``record_reports_bulk(exam_of=...)``): steps 1 and 2 have nothing left to change on them."""
    ids = list(dict.fromkeys(i for i in study_ids if i))
    if ids:
        unsettled = [i for i in ids if i not in exam_settled]
        if unsettled:
            map_studies_of(unsettled)
        note_unmapped_names_of(ids)
        note_protocols_of([i for i in study_ids if i])  # once per recorded object, as a unit's protocol counts go
        if unsettled:
            studies_update_effective_dose(unsettled)
        check_studies(ids)
    for change_id in equipment_change_ids:
        note_equipment_change(change_id)
    if ids:
        interop_after_studies_recorded(ids)
