"""Derived quantities of the registry: effective dose estimates (ICRP 103 by default) and SSDE per CT acquisition.

The computations are pure (``dosereg.core.effective_dose``, ``dosereg.core.ssde``); this module loads their data
(``dosereg/registry/data/``: ``k_factors_icrp103.json``, ``k_factors.json`` (ICRP 60, AAPM Report 96),
``ssde_aapm204.json``, ``nm_coefficients.json`` (mSv/MBq by radiopharmaceutical) and ``kap_coefficients.json``
(mSv/(Gy·cm²) by examination; adult cardiac interventional procedures only so far), each with its sources and
``verify`` flags) and applies them to registry rows.  The weighting basis is the site's choice
(``SiteSettings.effective_dose_weighting``, ICRP 103 unless changed for continuity with older reports); one figure
never mixes bases.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache
from pathlib import Path

from django.db.models import QuerySet

from dosereg.core import effective_dose as ed
from dosereg.core import quantities as Q
from dosereg.core import ssde as ss
from dosereg.registry.fixed_queries import fixed_rows
from dosereg.registry.models import IrradiationEvent, SiteSettings, StandardExam

DATA = Path(__file__).resolve().parent.parent / "data"
FACTOR_FILES = {ed.ICRP_103: DATA / "k_factors_icrp103.json", ed.ICRP_60: DATA / "k_factors.json"}
SSDE_FILE = DATA / "ssde_aapm204.json"
NM_FILE, KAP_FILE = DATA / "nm_coefficients.json", DATA / "kap_coefficients.json"
_WEIGHTING_TTL_S = 30.0  # the site setting is re-read at most this often by a long-running process
_weighting_cache: dict[str, tuple[float, str]] = {}


@lru_cache(maxsize=4)
def factor_set(weighting: str = ed.ICRP_103) -> ed.FactorSet:
    with open(FACTOR_FILES[weighting], encoding="utf-8") as fh:
        return ed.FactorSet.from_dict(json.load(fh))


@lru_cache(maxsize=1)
def ssde_tables() -> ss.SsdeTables:
    with open(SSDE_FILE, encoding="utf-8") as fh:
        return ss.SsdeTables.from_dict(json.load(fh))


@lru_cache(maxsize=1)
def nm_coefficients() -> ed.CoefficientTable:
    with open(NM_FILE, encoding="utf-8") as fh:
        return ed.CoefficientTable.from_dict(json.load(fh))


@lru_cache(maxsize=1)
def kap_coefficients() -> ed.CoefficientTable:
    with open(KAP_FILE, encoding="utf-8") as fh:
        return ed.CoefficientTable.from_dict(json.load(fh))


def nm_administration(ev: dict, *, from_header: bool) -> ed.NmAdministration:
    """An NM event's values (``effective_dose_msv``, ``activity_mbq``, ``attributes``, ``protocol``) as an
    administration: the RRDSR's agent code (``SCT:35321007``) or the image header's Radiopharmaceutical text."""
    attrs = ev.get("attributes") or {}
    agent = attrs.get("radiopharmaceutical") or []
    codes = agent_codes(agent)
    text = attrs.get("Radiopharmaceutical") or (agent[2] if isinstance(agent, list) and len(agent) > 2 else "")
    return ed.NmAdministration(ev.get("effective_dose_msv"), attrs.get("effective_dose_reference_authority", ""),
                               ev.get("protocol") or str(text or ""), activity_mbq=ev.get("activity_mbq"),
                               agent_codes=codes, agent_text=str(text or ""), from_header=from_header)


def agent_codes(agent: list | None) -> tuple[str, ...]:
    """An RRDSR agent ``[scheme, value, meaning]`` as ``SCHEME:value`` keys of the coefficient table.  The parser keeps
    an SRT code that has no SNOMED CT equivalent under ``SCT`` (``dicomrx.codes.normalise``); SNOMED CT identifiers are
    digits only, so such a value is offered in its SRT form too, the form the table lists it in (18F L-dopa C-B1034)."""
    if not isinstance(agent, list) or len(agent) < 2:
        return ()
    scheme, value = str(agent[0]), str(agent[1])
    if scheme == "SCT" and value and not value.isdigit():
        return f"SCT:{value}", f"SRT:{value}"
    return (f"{scheme}:{value}",)


def study_exam(study) -> tuple[str, tuple[str, ...]]:
    """The study's mapped standard examination for a KAP coefficient: (name and body region, (code,)).  Read only
    for a study with KAP (batch callers load ``standard_exam`` with the study)."""
    if not kap_coefficients().entries or not study.standard_exam_id or study.kap_total_gycm2 is None:
        return "", ()
    exam = study.standard_exam
    return f"{exam.name} {exam.body_region}".strip(), (exam.code,)


def exams_with_kap_coefficient() -> list[int]:
    """Ids of the standard examinations that have a KAP coefficient on any weighting basis (one query, on the
    small examination table): their studies' effective dose depends on the mapping, so it is recomputed after it."""
    table = kap_coefficients()
    if not table.entries:
        return []
    return list(_with_kap_coefficient(fixed_rows(_exam_rows)))


def _exam_rows() -> QuerySet:
    return StandardExam.objects.order_by("pk").values_list("pk", "code", "name", "body_region")


@lru_cache(maxsize=1)
def _with_kap_coefficient(rows: tuple) -> tuple[int, ...]:
    """The ids of these examination rows that the KAP table covers (asked at every batch; the rows rarely change)."""
    table = kap_coefficients()
    return tuple(pk for pk, code, name, region in rows
                 if any(table.lookup(w, codes=(code,), text=f"{name} {region}") for w in ed.WEIGHTINGS))


def site_weighting() -> str:
    """The site's weighting basis (cached for a few seconds: it is read once per recorded acquisition)."""
    hit = _weighting_cache.get("w")
    if hit and time.monotonic() - hit[0] < _WEIGHTING_TTL_S:
        return hit[1]
    value = SiteSettings.load().effective_dose_weighting or ed.ICRP_103
    _weighting_cache["w"] = (time.monotonic(), value)
    return value


def site_weighting_changed() -> None:
    """Forget the cached basis (after the site setting is saved; then re-estimate the studies)."""
    _weighting_cache.clear()


def site_factor_set() -> ed.FactorSet:
    return factor_set(site_weighting())


def method_label() -> str:
    return site_factor_set().label


def region_for(target_region_code: str = "", exam_body_region: str = "") -> str | None:
    return ed.region_for(target_region_code, exam_body_region)


def ct_effective_dose(*, dlp_mgycm: float | None, region: str | None, age_years: float | None,
                      phantom: str = "", weighting: str | None = None) -> ed.AcquisitionEstimate:
    """DLP x k for one CT acquisition on the site's basis (or ``weighting``)."""
    return ed.ct_acquisition(dlp_mgycm=dlp_mgycm, region=region, age_years=age_years, phantom=phantom,
                             factors=factor_set(weighting or site_weighting()))


def event_dimensions_cm(row: IrradiationEvent) -> tuple[float | None, float | None]:
    """(lateral, AP) patient dimensions in cm as the RDSR's SSDE item states them (TID 10013 DCM 113931 / 113932,
    parsed in mm into ``attributes["quantities"]``), None where not sent."""
    sizes = (row.attributes or {}).get("quantities") or {}
    lateral_cm, ap_cm = (Q.from_canonical_value(name, mm, "cm") if isinstance(mm := sizes.get(name), (int, float))
                         else None for name in ("measured_lateral_dimension_mm", "measured_ap_dimension_mm"))
    return lateral_cm, ap_cm  # the catalogue converts: the AAPM 204 dimension tables are in cm


def event_ssde(row: IrradiationEvent, *, age: float | None, exam_region: str = "") -> ss.Ssde:
    """SSDE of a CT acquisition row: Dw when the RDSR carries it, else the patient dimensions its SSDE item states
    (AAPM 204 Tables 1A-1C / 2A-2C), else the study's age (AAPM 204 age table, children up to 18 years).  Head
    acquisitions are refused (AAPM 293 constants not shipped)."""
    head = region_for(row.target_region_code, exam_region) in ("head", "head_and_neck") or (
        row.ctdi_phantom == "head" and region_for(row.target_region_code, exam_region) is None)
    lateral_cm, ap_cm = event_dimensions_cm(row)
    return ss.ssde(ctdivol_mgy=row.ctdivol_mgy, phantom=row.ctdi_phantom, tables=ssde_tables(), head=head,
                   dw_mm=row.water_equivalent_diameter_mm, lateral_cm=lateral_cm, ap_cm=ap_cm, age_years=age)


def set_event_ssde(row: IrradiationEvent, *, age: float | None, exam_region: str = "") -> None:
    """Our SSDE in ``ssde_mgy`` with its CID 10023 method in ``ssde_method``; the scanner's own (which the parser
    delivers in ``ssde_mgy``) is kept in ``ssde_reported_mgy``."""
    if row.ssde_reported_mgy is None and row.ssde_mgy is not None and not row.ssde_method:
        row.ssde_reported_mgy = row.ssde_mgy  # first time: what the scanner sent
    if row.ctdivol_mgy is None or row.is_localizer:
        row.ssde_mgy, row.ssde_method = None, ""
        return
    result = event_ssde(row, age=age, exam_region=exam_region)
    row.ssde_mgy, row.ssde_method = result.value_mgy, result.method if result.value_mgy is not None else ""
