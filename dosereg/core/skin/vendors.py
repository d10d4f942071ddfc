"""Table and angle conventions of the angiography units whose RDSR geometry DoseReg can place on a phantom.

The engine's frame (:mod:`dosereg.core.skin_dose`): origin at the isocentre; x across the table (towards the
patient's left for a head-first supine patient), y vertical and positive DOWNWARDS, z along the table, positive
towards its head end.  With the table at its zero position the table top lies at y = 0 and its head end at z = 0.
Each event moves the table (and the patient on it) by (x, y, z) = offset + sign * (RDSR value) for the RDSR item
named in ``axes``; the C-arm angles are turned into a rotation with the signs given here.

The evidence for every entry is the per-model setting of PySkinDose 25.1.1 (``normalization_settings.json``,
validated there against measurements on the named models) and the values seen in the sample objects in
``../shared/rdsr/rf/``: both vendors put the long travel of the table (hundreds of mm to 2 m) in "Table Lateral
Position" (DCM 113752) and the short one in "Table Longitudinal Position" (DCM 113751); Philips sends no DCM Table
Height Position (113753) but a private "Table Height Position" (99PHI-IXR-XPER 021) measured from the floor.
A unit that is not listed gets no map: its positions could not be placed without guessing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Axis:
    source: str  # SkinEvent field carrying the RDSR value (mm)
    sign: float
    offset_mm: float


@dataclass(frozen=True)
class Convention:
    manufacturer: str  # lower-case prefix of (0008,0070)
    models: tuple[str, ...]  # lower-case (0008,1090) values
    x: Axis
    y: Axis
    z: Axis
    primary_sign: float  # positioner primary angle -> rotation about z (LAO positive for both known vendors)
    secondary_sign: float  # positioner secondary angle -> rotation about x
    evidence: str
    label: str = ""  # how the unit is named in the method text


CONVENTIONS: tuple[Convention, ...] = (
    Convention(
        manufacturer="siemens",
        models=("axiom-artis",),
        x=Axis("table_longitudinal_mm", +1.0, 0.0),
        y=Axis("table_height_mm", +1.0, 0.0),
        z=Axis("table_lateral_mm", +1.0, 0.0),
        primary_sign=+1.0,
        secondary_sign=+1.0,
        label="Siemens AXIOM-Artis",
        evidence="PySkinDose 25.1.1 normalization_settings.json (Siemens AXIOM-Artis: no offsets, all directions +); "
        "sample PySkinDose-siemens_axiom_artis.dcm: table height 161-294 mm, lateral 7-41 mm",
    ),
    Convention(
        manufacturer="philips",
        models=("allura clarity",),
        x=Axis("table_longitudinal_mm", +1.0, -3.0),
        y=Axis("table_height_mm", -1.0, 1055.0),
        z=Axis("table_lateral_mm", +1.0, -1733.5),
        primary_sign=+1.0,
        secondary_sign=-1.0,
        label="Philips Allura Clarity",
        evidence="PySkinDose 25.1.1 normalization_settings.json (Philips Allura Clarity: offsets x -0.3 cm, "
        "y 105.5 cm, z -173.35 cm; height direction -, secondary angle -); samples PySkinDose-P1.dcm and "
        "PySkinDose-philips_allura_clarity_u104.dcm: private table height 791-1024 mm, lateral 1519-2096 mm. "
        "With these offsets the u104 example's beams miss the phantom (as in PySkinDose): offsets to verify",
    ),
)


def find_convention(manufacturer: str, model: str) -> Convention | None:
    """The convention for a unit, or None when DoseReg has no evidence for it."""
    maker = (manufacturer or "").strip().lower()
    name = (model or "").strip().lower()
    if not maker or not name:
        return None
    for conv in CONVENTIONS:
        if maker.startswith(conv.manufacturer) and name in conv.models:
            return conv
    return None
