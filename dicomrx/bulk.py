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
from collections import Counter, defaultdict

from django.db.models import F

from dicomrx.pipeline import _function
from dosereg.registry.models import IrradiationEvent, Study

log = logging.getLogger(__name__)


def after_studies_recorded(study_ids: list[int], equipment_change_ids: list[int] | tuple[int, ...] = ()) -> None:
    from dosereg.registry.services.recording import studies_update_effective_dose

    ids = list(dict.fromkeys(i for i in study_ids if i))
    if not ids:
        return
    map_studies = _function("drl.services", "map_studies")
    if map_studies is not None:
        map_studies(Study.objects.filter(pk__in=ids))
        _note_unmapped_bulk(ids)
        _note_protocols_bulk([i for i in study_ids if i])  # once per recorded object, as map_study counts
    studies_update_effective_dose(ids)
    check_studies = _function("triggers.bulk", "check_studies")
    if check_studies is not None:
        check_studies(ids)
    note_change = _function("drl.services", "note_equipment_change")
    if note_change is not None:
        for change_id in equipment_change_ids:
            note_change(change_id)


def _note_unmapped_bulk(ids: list[int]) -> None:
    note = _function("drl.services", "_note_unmapped")
    if note is None:
        return
    from drl.services import NO_DESCRIPTION

    names = (Study.objects.filter(pk__in=ids, standard_exam__isnull=True)
             .values_list("modality_type", "study_description").distinct())
    for modality_type, description in sorted(set(names)):
        note(modality_type or "", description or NO_DESCRIPTION)


def _note_protocols_bulk(ids: list[int]) -> None:
    note = _function("drl.services", "_note_protocols")
    if note is None:
        return
    from drl.models import ProtocolSeen
    from drl.services import KVP_BASELINE_STUDIES, KVP_SHIFT_KV

    per_study: dict[int, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for sid, protocol, kvp in (IrradiationEvent.objects.filter(study_id__in=ids, is_current=True, is_localizer=False)
                               .exclude(protocol="").values_list("study_id", "protocol", "kvp")):
        per_study[sid][protocol[:255]].append(kvp)
    if not per_study:
        return
    studies = {s["id"]: s for s in Study.objects.filter(pk__in=list(per_study), equipment_id__isnull=False)
               .values("id", "study_date", "equipment_id")}
    units = {s["equipment_id"] for s in studies.values()}
    seen = {(p.equipment_id, p.protocol): p for p in ProtocolSeen.objects.filter(equipment_id__in=units)}
    counts: Counter = Counter()
    full = 0
    for sid in ids:  # a study recorded twice in the batch counts twice, as with map_study per object
        study = studies.get(sid)
        if study is None:
            continue
        eq = study["equipment_id"]
        needs_full = False
        for protocol, kvps in per_study[sid].items():
            row = seen.get((eq, protocol))
            known = [k for k in kvps if k is not None]
            kvp = sum(known) / len(known) if known else None
            if row is None:
                needs_full = True
            elif kvp is not None and (row.kvp_baseline is None or row.kvp_baseline_n < KVP_BASELINE_STUDIES
                                      or abs(kvp - row.kvp_baseline) >= KVP_SHIFT_KV):
                needs_full = True
        if needs_full:
            note(study)
            full += 1
            for p in ProtocolSeen.objects.filter(equipment_id=eq, protocol__in=list(per_study[sid])):
                seen[(eq, p.protocol)] = p
        else:
            for protocol in per_study[sid]:
                counts[(eq, protocol)] += 1
    for (eq, protocol), n in counts.items():
        ProtocolSeen.objects.filter(equipment_id=eq, protocol=protocol).update(studies=F("studies") + n)
    log.debug("protocols of %d studies noted (%d one by one)", len(studies), full)
