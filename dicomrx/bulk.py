"""The post-commit steps for a batch of recorded studies (``generate_demo_data --bulk``).

The same steps as :func:`dicomrx.pipeline.after_study_recorded`, in the same order, with each app's batch entry point:

1. examination mapping: ``drl.services.map_studies(queryset)`` (rules applied per distinct name combination), then,
   as ``map_study`` does per study, the unmapped names noted and the units' acquisition protocols tracked
   (``ProtocolSeen``: a new protocol on a unit with history, or a kVp shift, makes the unit's comparisons due) — the
   per-study ``_note_protocols`` runs only for a study that brings a protocol new to its unit, a protocol whose kVp
   baseline is still forming, or a kVp shift; for the others it would only count the study, which is done here with
   one UPDATE per (unit, protocol);
2. the CT effective-dose estimates that fall back on the examination's body region
   (``studies_update_effective_dose``);
3. trigger checks (``triggers.bulk.check_studies``: ``check_study`` for every study that could raise an alert);
4. ``drl.services.note_equipment_change`` for each equipment change.
"""

from __future__ import annotations

import logging

from dosereg.registry.models import Study

log = logging.getLogger(__name__)


def after_studies_recorded(study_ids: list[int], equipment_change_ids: list[int] | tuple[int, ...] = ()) -> None:
    from dosereg.registry.services.recording import studies_update_effective_dose
    from drl.services import map_studies, note_equipment_change, note_protocols_of, note_unmapped_names_of
    from triggers.bulk import check_studies

    ids = list(dict.fromkeys(i for i in study_ids if i))
    if not ids:
        return
    map_studies(Study.objects.filter(pk__in=ids))
    note_unmapped_names_of(ids)
    note_protocols_of([i for i in study_ids if i])  # once per recorded object, as map_study counts
    studies_update_effective_dose(ids)
    check_studies(ids)
    for change_id in equipment_change_ids:
        note_equipment_change(change_id)
