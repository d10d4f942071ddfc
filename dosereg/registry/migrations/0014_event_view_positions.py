"""An Image View sent as a code (TID 10003, CID 4010/4014) was stored as the text of the code triple
("['SCT', '399162004', 'cranio-caudal']"), so no per-view DRL or filter could match it.  Ingest now stores the View
Position term an image header carries for the same view (dicomrx.codes.VIEW_POSITIONS) or else the code's meaning;
this rewrites the rows stored before.  The table is frozen here as it was when the migration was written (a
migration must not follow later edits of the live table)."""

import ast
import re

from django.db import migrations

VIEW_POSITIONS = {
    "399348003": "AP", "272479007": "PA", "399067008": "LAT", "399173006": "LL", "399198007": "RL",
    "399162004": "CC", "399368009": "MLO", "399260004": "ML", "399352003": "LM", "399099002": "LMO",
    "399192008": "XCCL", "399101009": "XCCM",
    "R-10242": "CC",  # the SNOMED RT form seen in stored reports (cranio-caudal)
}
_TRIPLE = re.compile(r"^\['([^']*)', '([^']*)', '(.*)'\]$")


def _term(text: str) -> str | None:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        match = _TRIPLE.match(text)
        value = list(match.groups()) if match else None
    if not (isinstance(value, list) and len(value) == 3):
        return None
    return VIEW_POSITIONS.get(str(value[1]).strip()) or str(value[2]).strip()[:64] or None


def forwards(apps, schema_editor):
    event_model = apps.get_model("registry", "IrradiationEvent")
    batch = []
    for event_id, view in event_model.objects.filter(view__startswith="[").values_list("id", "view").iterator(2000):
        term = _term(view)
        if term is not None:
            batch.append(event_model(id=event_id, view=term))
        if len(batch) >= 2000:
            event_model.objects.bulk_update(batch, ["view"])
            batch = []
    if batch:
        event_model.objects.bulk_update(batch, ["view"])


class Migration(migrations.Migration):

    dependencies = [
        ("registry", "0013_patient_history_covering_index"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True),
    ]
