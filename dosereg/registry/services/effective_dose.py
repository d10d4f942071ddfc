"""Effective dose estimates for CT: DLP x k per acquisition (AAPM Report 96 factors by default).

An estimate for comparing procedures and for population statistics (Euratom Art. 64), not a personal risk figure.
The factors are data (``dosereg/registry/data/k_factors.json``, copied with their sources from the shared reference
data).  Rules (issue 3): body region from the acquisition's Target Region, else the mapped examination's
``body_region``; age band = the nearest tabulated age at or below the patient's (0, 1, 5, 10 years, adult from 18;
unknown age uses the adult factor); only where the acquisition's CTDI phantom matches the set's convention (adult head
and neck: 16 cm head phantom; adult body: 32 cm body phantom; paediatric: 16 cm), else null with ``phantom_mismatch``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

FACTORS_PATH = Path(__file__).resolve().parent.parent / "data" / "k_factors.json"

# SNOMED CT concept id of the Target Region (the parser maps SRT/SNM3 codes to SCT) -> k-factor region.
REGION_BY_SCT = {
    "69536005": "head",  # Head
    "89546000": "head",  # Skull
    "12738006": "head",  # Brain
    "774007": "head_and_neck",  # Head and Neck
    "45048000": "neck",  # Neck
    "51185008": "chest",  # Chest
    "43799004": "chest",  # Thorax
    "113345001": "abdomen_pelvis",  # Abdomen (AAPM 96 tabulates abdomen and pelvis together)
    "818981001": "abdomen_pelvis",  # Abdomen and Pelvis
    "818982008": "abdomen_pelvis",
    "12921003": "pelvis",  # Pelvis
    "816092008": "pelvis",  # Pelvis (structure)
    "416775004": "trunk",  # Chest, Abdomen and Pelvis
    "416550000": "trunk",  # Chest and Abdomen
    "22943007": "trunk",  # Trunk
}
# StandardExam.body_region free text -> k-factor region
REGION_BY_NAME = {
    "head": "head", "brain": "head", "head_and_neck": "head_and_neck", "neck": "neck", "chest": "chest",
    "thorax": "chest", "abdomen": "abdomen_pelvis", "abdomen_pelvis": "abdomen_pelvis", "pelvis": "pelvis",
    "trunk": "trunk", "chest_abdomen_pelvis": "trunk", "chest_abdomen": "trunk",
}


@dataclass(frozen=True)
class Estimate:
    value_msv: float | None
    method: str  # label with the factor used, or the reason there is none


@lru_cache(maxsize=1)
def factor_set() -> dict:
    with open(FACTORS_PATH, encoding="utf-8") as fh:
        return json.load(fh)


def method_label() -> str:
    return factor_set()["label"]


def region_for(target_region_code: str = "", exam_body_region: str = "") -> str | None:
    if target_region_code and target_region_code in REGION_BY_SCT:
        return REGION_BY_SCT[target_region_code]
    key = (exam_body_region or "").strip().lower().replace(" ", "_").replace("-", "_").replace("/", "_")
    return REGION_BY_NAME.get(key)


def _band(age_years: float | None) -> str:
    ages = factor_set()["ages"]
    if age_years is None:
        return "adult"
    best = "0y"
    for band, start in sorted(ages.items(), key=lambda kv: kv[1]):
        if age_years >= start:
            best = band
    return best


def ct_effective_dose(*, dlp_mgycm: float | None, region: str | None, age_years: float | None,
                      phantom: str = "") -> Estimate:
    """DLP x k for one CT acquisition; value None with a reason when no factor applies."""
    if dlp_mgycm is None:
        return Estimate(None, "no_dlp")
    if region is None:
        return Estimate(None, "region_unknown")
    data = factor_set()
    band = _band(age_years)
    k = None
    for s in data["sets"]:
        k = (s["values"].get(region) or {}).get(band)
        if k is not None:
            break
    if k is None:
        return Estimate(None, "no_factor_for_region_and_age")
    conv = data["phantom"]
    expected = conv["paediatric"] if band != "adult" else (
        conv["adult_head"] if region in conv["head_regions"] else conv["adult_body"])
    if phantom and phantom != expected:
        return Estimate(None, "phantom_mismatch")
    if not phantom:
        return Estimate(None, "phantom_unknown")
    return Estimate(dlp_mgycm * k, f"{data['label']}: {region}, {band}, k={k}")
