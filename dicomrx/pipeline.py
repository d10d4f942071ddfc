"""The post-ingest steps, run after the recording transaction commits (design §2, step 3).

Order: ``drl.services.map_study`` (sets the standard examination), the CT effective-dose estimates that fall back on
the examination's body region, ``triggers.services.check_study`` (alerts), then ``drl.services.note_equipment_change``
for each equipment change.  The other apps are imported inside the function (they
import the registry, which dicomrx also loads at start-up).
"""

from __future__ import annotations


def after_study_recorded(study_id: int, equipment_change_ids: list[int] | tuple[int, ...] = ()) -> None:
    from dosereg.registry.services.recording import study_update_effective_dose
    from drl.services import map_study, note_equipment_change
    from triggers.services import check_study

    map_study(study_id)
    study_update_effective_dose(study_id)
    check_study(study_id)
    for change_id in equipment_change_ids:
        note_equipment_change(change_id)
