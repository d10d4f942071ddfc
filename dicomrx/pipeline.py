"""The post-ingest steps, run after the recording transaction commits (design §2, step 3).

Order: ``drl.services.map_study`` (sets the standard examination), the CT effective-dose estimates that fall back on
the examination's body region, ``triggers.services.check_study`` (alerts), then ``drl.services.note_equipment_change``
for each equipment change.  The other apps' functions are imported lazily; where one does not exist (yet) the step
is skipped with a debug log.
"""

from __future__ import annotations

import importlib
import logging

log = logging.getLogger(__name__)


def _function(module: str, name: str):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        log.debug("post-ingest step %s.%s is not available: skipped", module, name)
        return None


def after_study_recorded(study_id: int, equipment_change_ids: list[int] | tuple[int, ...] = ()) -> None:
    from dosereg.registry.services.recording import study_update_effective_dose

    map_study = _function("drl.services", "map_study")
    if map_study is not None:
        map_study(study_id)
    study_update_effective_dose(study_id)
    check_study = _function("triggers.services", "check_study")
    if check_study is not None:
        check_study(study_id)
    note_change = _function("drl.services", "note_equipment_change")
    if note_change is not None:
        for change_id in equipment_change_ids:
            note_change(change_id)
