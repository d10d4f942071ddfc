"""Effective dose estimates: CT acquisitions (DLP x k) and a study's composition of its parts, with coverage.

Pure computations (no Django); the factor tables are data (``dosereg/registry/data/k_factors*.json``, copied with
their sources from ``../shared/reference/reference-data.json``) handed in as a :class:`FactorSet`.

Effective dose is a protection quantity for reference persons (ICRP 103, ICRP 147): an estimate for comparing
procedures and for population figures (Euratom Art. 64), never a personal risk figure.  One figure is on one
weighting basis (ICRP 103 or ICRP 60): a part on another basis (e.g. an RRDSR value after ICRP Publication 128, which
uses ICRP 60 weighting) is shown beside the figure, not added to it.

Radiography/fluoroscopy (KAP x a coefficient of the examination) and NM without a reported value (administered activity
x a coefficient of the radiopharmaceutical) take cited coefficients handed in as a :class:`CoefficientTable`
(``dosereg/registry/data/kap_coefficients.json``, ``nm_coefficients.json``); without one the part says "no cited
coefficient" instead of a value.

Coverage: each part's share of its own quantity that the estimate covers (CT: DLP of the acquisitions with a factor
over the DLP of all acquisitions; projection: KAP covered over the study's KAP; NM: administrations with a value on the
basis); a study's coverage is the smallest of its parts' (1 = complete).  Below 1 the estimate is *partial* and
``left_out`` says what was left out and why.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

ICRP_103, ICRP_60 = "ICRP 103", "ICRP 60"
WEIGHTINGS = (ICRP_103, ICRP_60)
NOT_STATED = "weighting not stated"  # an RRDSR value whose reference authority names no known basis

# SNOMED CT concept id of the acquisition's Target Region (the parser maps SRT/SNM3 codes to SCT) -> k region.
REGION_BY_SCT = {
    "69536005": "head",  # Head
    "89546000": "head",  # Skull
    "12738006": "head",  # Brain
    "774007": "head_and_neck",  # Head and Neck
    "45048000": "neck",  # Neck
    "51185008": "chest",  # Chest
    "43799004": "chest",  # Thorax
    "113345001": "abdomen_pelvis",  # Abdomen (the tables give abdomen and pelvis together)
    "818981001": "abdomen_pelvis",  # Abdomen and Pelvis
    "818982008": "abdomen_pelvis",
    "12921003": "pelvis",  # Pelvis
    "816092008": "pelvis",  # Pelvis (structure)
    "416775004": "trunk",  # Chest, Abdomen and Pelvis
    "416550000": "trunk",  # Chest and Abdomen
    "22943007": "trunk",  # Trunk
}
# StandardExam.body_region (free text) -> k region
REGION_BY_NAME = {
    "head": "head", "brain": "head", "head_and_neck": "head_and_neck", "neck": "neck", "chest": "chest",
    "thorax": "chest", "abdomen": "abdomen_pelvis", "abdomen_pelvis": "abdomen_pelvis", "pelvis": "pelvis",
    "trunk": "trunk", "chest_abdomen_pelvis": "trunk", "chest_abdomen": "trunk",
}
# Reference authorities an RRDSR names for its effective dose, and their weighting.  ICRP Publications 53, 80, 106
# and 128 (radiopharmaceutical dose coefficients) use ICRP 60 tissue weighting (reference-data.md §4; issue 15).
AUTHORITY_WEIGHTING = {"53": ICRP_60, "80": ICRP_60, "106": ICRP_60, "128": ICRP_60}

# Reasons an acquisition or part has no estimate (``left_out[].reason``); texts for people in REASON_TEXT.
NO_DLP, REGION_UNKNOWN, NO_FACTOR = "no_dlp", "region_unknown", "no_factor_for_region_and_age"
PHANTOM_MISMATCH, PHANTOM_UNKNOWN = "phantom_mismatch", "phantom_unknown"
OTHER_BASIS, NO_NM_VALUE = "other_weighting_basis", "no_nm_value"
NO_KAP_COEFFICIENT, MAMMOGRAPHY = "no_kap_coefficient", "mammography"
NO_NM_COEFFICIENT, KAP_AGE = "no_nm_coefficient", "kap_coefficient_not_for_age"
KAP_OTHER_BASIS = "no_kap_coefficient_on_basis"
KAP_METHOD = "KAP x coefficient"  # in the method text of a figure with a projection part (found by it in SQL)
REASON_TEXT = {
    NO_DLP: "no DLP reported",
    REGION_UNKNOWN: "body region not reported or not covered by the factor set",
    NO_FACTOR: "the factor set has no factor for this body region and age",
    PHANTOM_MISMATCH: "CTDI phantom differs from the factor set's convention",
    PHANTOM_UNKNOWN: "CTDI phantom not reported",
    OTHER_BASIS: "reported on another weighting basis; shown beside the figure, not added",
    NO_NM_VALUE: "no effective dose reported and no cited coefficient for the radiopharmaceutical",
    NO_KAP_COEFFICIENT: "no cited KAP-to-effective-dose coefficient for this examination (only adult cardiac "
                        "interventional procedures have one; none could be read for radiography or other fluoroscopy "
                        "from HPA-CRCE-028, RP 180 or NCRP 160; see kap_coefficients.json)",
    KAP_AGE: "the cited KAP coefficient of this examination is not for the patient's age",
    KAP_OTHER_BASIS: "no cited KAP coefficient of this examination on this weighting basis (its coefficient is on "
                     "another basis, and one figure never mixes bases)",
    NO_NM_COEFFICIENT: "no effective dose reported and no cited coefficient for the radiopharmaceutical on this "
                       "weighting basis",
    MAMMOGRAPHY: "no effective dose for mammography: the average glandular dose (AGD) is the quantity",
}


@dataclass(frozen=True)
class KFactor:
    """One k (mSv per mGy·cm) with the set it comes from."""

    value: float
    set_name: str
    short: str
    source: str
    verify: bool


@dataclass(frozen=True)
class FactorSet:
    """DLP-to-E factors on one weighting basis: region -> age band -> k, tried set by set in order."""

    name: str
    weighting: str
    label: str
    ages: dict[str, float]  # band -> first age of the band (years); 'adult' from 18
    factors: dict[str, dict[str, KFactor]]  # region -> band -> factor (first set listing it)
    head_regions: frozenset[str] = frozenset()
    phantom_adult_head: str | None = "head"
    phantom_adult_body: str | None = "body"
    phantom_paediatric: str | None = None  # None: the convention is not stated; any reported phantom is taken
    verify: bool = False
    sources: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: dict) -> FactorSet:
        """From the JSON layout of ``dosereg/registry/data/k_factors*.json``."""
        factors: dict[str, dict[str, KFactor]] = {}
        for s in data["sets"]:
            for region, bands in s["values"].items():
                for band, k in bands.items():
                    factors.setdefault(region, {}).setdefault(band, KFactor(
                        float(k), s["set"], s.get("short", s["set"]), s["source"], bool(s.get("verify"))))
        conv = data.get("phantom", {})
        return cls(name=data["name"], weighting=data["weighting"], label=data["label"],
                   ages={b: float(a) for b, a in data["ages"].items()}, factors=factors,
                   head_regions=frozenset(conv.get("head_regions", ())),
                   phantom_adult_head=conv.get("adult_head"), phantom_adult_body=conv.get("adult_body"),
                   phantom_paediatric=conv.get("paediatric"),
                   verify=any(s.get("verify") for s in data["sets"]) or bool(conv.get("verify")),
                   sources=tuple(dict.fromkeys(s["source"] for s in data["sets"])))

    def band(self, age_years: float | None) -> str:
        """The nearest tabulated age at or below the patient's; unknown age takes the adult factor."""
        if age_years is None:
            return "adult"
        best = min(self.ages, key=self.ages.get)
        for band, start in sorted(self.ages.items(), key=lambda kv: kv[1]):
            if age_years >= start:
                best = band
        return best

    def expected_phantom(self, region: str, band: str) -> str | None:
        if band != "adult":
            return self.phantom_paediatric
        return self.phantom_adult_head if region in self.head_regions else self.phantom_adult_body


@dataclass(frozen=True)
class AcquisitionEstimate:
    """E of one CT acquisition, or ``value_msv`` None with ``reason``."""

    value_msv: float | None
    dlp_mgycm: float | None
    region: str | None = None
    band: str = ""
    k: KFactor | None = None
    reason: str = ""

    @property
    def method(self) -> str:
        """Short method text for the event (max 200 characters)."""
        if self.k is None:
            return f"not estimated: {REASON_TEXT.get(self.reason, self.reason)}"[:200]
        verify = " (verify)" if self.k.verify else ""
        return f"DLP x k, {self.k.short}{verify}: {self.region}, {self.band}, k={self.k.value:g} mSv/(mGy·cm)"[:200]


def region_for(target_region_code: str = "", exam_body_region: str = "") -> str | None:
    """The k region of an acquisition: its Target Region code, else the mapped examination's body region."""
    if target_region_code and target_region_code in REGION_BY_SCT:
        return REGION_BY_SCT[target_region_code]
    key = (exam_body_region or "").strip().lower().replace(" ", "_").replace("-", "_").replace("/", "_")
    return REGION_BY_NAME.get(key)


def ct_acquisition(*, dlp_mgycm: float | None, region: str | None, age_years: float | None, phantom: str,
                   factors: FactorSet) -> AcquisitionEstimate:
    """DLP x k for one CT acquisition; None with the reason when no factor applies."""
    if dlp_mgycm is None or not math.isfinite(dlp_mgycm):
        return AcquisitionEstimate(None, None, region, reason=NO_DLP)
    if region is None:
        return AcquisitionEstimate(None, dlp_mgycm, reason=REGION_UNKNOWN)
    band = factors.band(age_years)
    k = factors.factors.get(region, {}).get(band)
    if k is None:
        return AcquisitionEstimate(None, dlp_mgycm, region, band, reason=NO_FACTOR)
    expected = factors.expected_phantom(region, band)
    if not phantom:
        return AcquisitionEstimate(None, dlp_mgycm, region, band, reason=PHANTOM_UNKNOWN)
    if expected is not None and phantom != expected:
        return AcquisitionEstimate(None, dlp_mgycm, region, band, reason=PHANTOM_MISMATCH)
    return AcquisitionEstimate(dlp_mgycm * k.value, dlp_mgycm, region, band, k)


def weighting_of_authority(authority: str) -> str | None:
    """The weighting basis of an RRDSR's Reference Authority text (``ICRP Publication 128`` -> ICRP 60)."""
    text = (authority or "").upper()
    if "ICRP" not in text:
        return None
    digits = "".join(ch if ch.isdigit() else " " for ch in text).split()
    for number in digits:
        if number in AUTHORITY_WEIGHTING:
            return AUTHORITY_WEIGHTING[number]
    return None


# --- coefficients per examination (KAP) or radiopharmaceutical (activity) -----------------------------------------
@dataclass(frozen=True)
class Coefficient:
    """One cited coefficient: E per unit KAP (mSv/(Gy·cm²)) or per unit activity (mSv/MBq)."""

    value: float
    name: str  # the examination or radiopharmaceutical as the table names it
    weighting: str
    short: str
    source: str
    verify: bool
    min_age_years: float | None = None

    def text(self, unit: str) -> str:
        verify = " (verify)" if self.verify else ""
        return f"{self.short}{verify}: {self.name} {self.value:g} {unit}"


def _words(text: str) -> set[str]:
    return set("".join(ch if ch.isalnum() else " " for ch in (text or "").lower()).split())


@dataclass(frozen=True)
class CoefficientTable:
    """Cited coefficients by weighting basis, matched by code (``SCHEME:value`` or an examination code), else by a
    listed name among the words of a free text (image headers, examination names)."""

    kind: str  # 'KAP' | 'NM'
    unit: str
    entries: tuple[tuple[Coefficient, frozenset[str], tuple[str, ...]], ...] = ()  # (coefficient, codes, names)
    note: str = ""

    @classmethod
    def from_dict(cls, data: dict) -> CoefficientTable:
        entries = []
        for s in data.get("sets", []):
            for v in s["values"]:
                codes = frozenset(":".join(c) if isinstance(c, list) else c
                                  for c in (*v.get("codes", ()), *v.get("exam_codes", ())))
                coef = Coefficient(float(v["value"]), v["name"], s["weighting"], s.get("short", s["set"]), s["source"],
                                   bool(s.get("verify")), s.get("min_age_years"))
                entries.append((coef, codes, tuple(n.lower() for n in v.get("names", ()))))
        note = data.get("not_retrieved") or data.get("not_shipped") or ""
        return cls(data.get("kind", ""), data.get("unit", ""), tuple(entries), note)

    def lookup(self, weighting: str, *, codes: Iterable[str] = (), text: str = "") -> Coefficient | None:
        """The first coefficient on ``weighting`` whose code is among ``codes``, else whose name is in ``text``."""
        wanted = set(codes)
        on_basis = [e for e in self.entries if e[0].weighting == weighting]
        for coef, entry_codes, _names in on_basis:
            if entry_codes & wanted:
                return coef
        words, low = _words(text), (text or "").lower()
        for coef, _codes, names in on_basis:
            if any((n in words) if n.isalnum() else (n in low) for n in names if n):
                return coef
        return None


# --- a study's composition --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CtAcquisition:
    """What the composition needs of one current CT acquisition."""

    dlp_mgycm: float | None
    estimate_msv: float | None
    label: str = ""  # protocol or target region, to say what was left out
    reason: str = ""
    method: str = ""


@dataclass(frozen=True)
class NmAdministration:
    """One administration: the RRDSR's effective dose (or None) and its reference authority; without a reported value,
    the administered activity and the agent (code ``SCT:35321007``, header text) for a cited coefficient.
    ``from_header``: an image header's copy (left out when the study has a radiopharmaceutical report: the report is
    the source of the study's administrations, as for its totals)."""

    effective_dose_msv: float | None
    authority: str = ""
    label: str = ""
    activity_mbq: float | None = None
    agent_codes: tuple[str, ...] = ()
    agent_text: str = ""
    from_header: bool = False


@dataclass(frozen=True)
class Part:
    kind: str  # 'CT', 'NM', 'projection', 'mammography'
    value_msv: float | None
    coverage: float | None  # share of the part's quantity covered; None for a part with nothing to cover
    weighting: str | None
    method: str
    covered: float | None = None  # CT: DLP covered (mGy·cm)
    total: float | None = None  # CT: DLP of all acquisitions (mGy·cm)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "value_msv": self.value_msv, "coverage": self.coverage,
                "weighting": self.weighting, "method": self.method, "covered": self.covered, "total": self.total}


@dataclass(frozen=True)
class StudyEstimate:
    """The study's effective dose on one basis, its coverage, the method text, its parts and what was left out."""

    value_msv: float | None
    coverage: float | None
    weighting: str
    method: str
    parts: tuple[Part, ...] = ()
    left_out: tuple[dict, ...] = ()

    @property
    def partial(self) -> bool:
        return self.coverage is not None and self.coverage < 1.0

    def detail(self) -> dict:
        """JSON for ``Study.effective_dose_detail``: what the pages, the dose text and exports show."""
        return {"weighting": self.weighting, "coverage": self.coverage, "partial": self.partial,
                "parts": [p.as_dict() for p in self.parts], "left_out": list(self.left_out)}


def _ct_part(acqs: Sequence[CtAcquisition], factors: FactorSet) -> tuple[Part | None, list[dict]]:
    with_dlp = [a for a in acqs if a.dlp_mgycm is not None and a.dlp_mgycm > 0]
    if not with_dlp:
        return None, []
    total = sum(a.dlp_mgycm for a in with_dlp)
    done = [a for a in with_dlp if a.estimate_msv is not None]
    covered = sum(a.dlp_mgycm for a in done)
    left = [{"part": "CT", "what": a.label or "acquisition", "dlp_mgycm": a.dlp_mgycm, "reason": a.reason,
             "why": REASON_TEXT.get(a.reason, a.reason)} for a in with_dlp if a.estimate_msv is None]
    value = sum(a.estimate_msv for a in done) if done else None
    sets = sorted({a.method.split(":")[0] for a in done if a.method})
    method = f"CT: {'; '.join(sets) or factors.label}"
    return Part("CT", value, covered / total, factors.weighting, method, covered, total), left


def _from_activity(a: NmAdministration, weighting: str, table: CoefficientTable | None) -> tuple[float | None,
                                                                                              Coefficient | None]:
    """Administered activity x the radiopharmaceutical's cited coefficient on ``weighting`` (None when none)."""
    if a.activity_mbq is None or a.activity_mbq <= 0 or table is None:
        return None, None
    coef = table.lookup(weighting, codes=a.agent_codes, text=a.agent_text)
    return (a.activity_mbq * coef.value, coef) if coef else (None, None)


def _nm_left(a: NmAdministration, reason: str) -> dict:
    return {"part": "NM", "what": a.label or "administration", "activity_mbq": a.activity_mbq, "reason": reason,
            "why": REASON_TEXT[reason]}


def _nm_part(admins: Sequence[NmAdministration], weighting: str, activity_mbq: float | None,
             table: CoefficientTable | None = None) -> tuple[Part | None, list[dict]]:
    if any(not a.from_header for a in admins):
        admins = [a for a in admins if not a.from_header]
    if not admins:
        if activity_mbq is None:
            return None, []
        left = [{"part": "NM", "what": "administered activity", "reason": NO_NM_VALUE,
                 "why": REASON_TEXT[NO_NM_VALUE]}]
        return Part("NM", None, 0.0, None, "NM: no estimate"), left
    on_basis, left, other, computed = [], [], [], []
    for a in admins:
        basis = weighting_of_authority(a.authority) or NOT_STATED
        if a.effective_dose_msv is None:
            value, coef = _from_activity(a, weighting, table)
            if coef is not None:
                computed.append((value, coef))
            else:
                left.append(_nm_left(a, NO_NM_COEFFICIENT if a.activity_mbq else NO_NM_VALUE))
        elif basis == weighting:
            on_basis.append(a)
        else:
            other.append(a)
            left.append({"part": "NM", "what": a.label or "administration", "value_msv": a.effective_dose_msv,
                         "authority": a.authority or "(not stated)", "weighting": basis or "not stated",
                         "reason": OTHER_BASIS, "why": REASON_TEXT[OTHER_BASIS]})
    methods = []
    if on_basis or (other and not computed):
        authorities = sorted({a.authority or "authority not stated" for a in (on_basis or other)})
        methods.append(f"as reported in the RRDSR ({', '.join(authorities)})")
    if computed:
        texts = sorted({coef.text(table.unit) for _v, coef in computed})
        methods.append(f"activity x coefficient, {'; '.join(texts)}")
    values = [a.effective_dose_msv for a in on_basis] + [v for v, _c in computed]
    method = "NM: " + " + ".join(methods)
    if values:
        return Part("NM", sum(values), len(values) / len(admins), weighting, method), left
    if other:  # the value is kept beside the figure, on its own basis
        return Part("NM", sum(a.effective_dose_msv for a in other), 0.0, weighting_of_authority(other[0].authority),
                    method + ", not added"), left
    return Part("NM", None, 0.0, None, "NM: no estimate"), left


def _projection_part(kap_gycm2: float, exam: str, exam_codes: Sequence[str], age_years: float | None,
                     weighting: str, table: CoefficientTable | None) -> tuple[Part, list[dict]]:
    """KAP x the examination's cited coefficient; the coverage is the share of the study's KAP covered (all or
    nothing for a study mapped to one examination)."""
    coef = table.lookup(weighting, codes=exam_codes, text=exam) if table is not None and (exam or exam_codes) else None
    reason = NO_KAP_COEFFICIENT if coef is None else ""
    if coef is None and table is not None and any(
            table.lookup(other, codes=exam_codes, text=exam) for other in WEIGHTINGS if other != weighting):
        reason = KAP_OTHER_BASIS  # e.g. an ICRP 103 coefficient while the site reports on ICRP 60
    if coef is not None and coef.min_age_years is not None and age_years is not None and age_years < coef.min_age_years:
        coef, reason = None, KAP_AGE
    if coef is None:
        # "what" names the quantity left out, never the exam: the exam may be mapped after recording (the batch
        # path) or before (one object), and the same study must read the same either way
        left = [{"part": "projection", "what": "KAP", "kap_gycm2": kap_gycm2, "reason": reason,
                 "why": REASON_TEXT[reason]}]
        return Part("projection", None, 0.0, None, "KAP: no cited coefficient", 0.0, kap_gycm2), left
    unit = table.unit if table is not None else ""
    return Part("projection", kap_gycm2 * coef.value, 1.0, weighting, f"{KAP_METHOD}, {coef.text(unit)}",
                kap_gycm2, kap_gycm2), []


def study_estimate(*, factors: FactorSet, ct: Sequence[CtAcquisition] = (), nm: Sequence[NmAdministration] = (),
                   activity_mbq: float | None = None, kap_gycm2: float | None = None,
                   mammography: bool = False, nm_table: CoefficientTable | None = None,
                   kap_table: CoefficientTable | None = None, exam: str = "", exam_codes: Sequence[str] = (),
                   age_years: float | None = None) -> StudyEstimate:
    """Compose a study's effective dose on the basis of ``factors``: CT part + NM part (reported, or activity x a
    cited coefficient) + projection part (KAP x the examination's cited coefficient); only values on the same
    weighting basis are added; mammography has none, said so.  ``exam``/``exam_codes``: the study's mapped standard
    examination (name or body region; its code)."""
    parts: list[Part] = []
    left: list[dict] = []
    ct_part, ct_left = _ct_part(ct, factors)
    weighting = factors.weighting
    nm_bases = {weighting_of_authority(a.authority) for a in nm if a.effective_dose_msv is not None}
    if (ct_part is None or ct_part.value_msv is None) and len(nm_bases) == 1 and weighting not in nm_bases:
        # nothing on the site's basis: the NM value makes the figure on its own basis, named in the method
        weighting = next(iter(nm_bases)) or NOT_STATED
    nm_part, nm_left = _nm_part(nm, weighting, activity_mbq, nm_table)
    for part, more in ((ct_part, ct_left), (nm_part, nm_left)):
        if part is not None:
            parts.append(part)
            left.extend(more)
    if kap_gycm2 is not None and kap_gycm2 > 0:
        part, more = _projection_part(kap_gycm2, exam, exam_codes, age_years, weighting, kap_table)
        parts.append(part)
        left.extend(more)
    if mammography:
        left.append({"part": "mammography", "what": "AGD", "reason": MAMMOGRAPHY, "why": REASON_TEXT[MAMMOGRAPHY]})
    added = [p.value_msv for p in parts if p.value_msv is not None and p.weighting == weighting
             and (p.coverage or 0) > 0]
    value = sum(added) if added else None
    coverages = [p.coverage for p in parts if p.coverage is not None]
    coverage = min(coverages) if coverages else None
    return StudyEstimate(value, coverage, weighting, _method_text(weighting, parts, coverage, value),
                         tuple(parts), tuple(left))


def _method_text(weighting: str, parts: Iterable[Part], coverage: float | None, value: float | None) -> str:
    """``ICRP 103: CT: DLP x k, NCI/Lee 2012 + NM: as reported (...); partial (2 % covered)``."""
    used = [p.method for p in parts if p.value_msv is not None and p.weighting == weighting
            and (p.coverage or 0) > 0]
    if value is None:
        return f"{weighting}: no estimate"
    text = f"{weighting}: {' + '.join(used)}"
    if coverage is not None and coverage < 1.0:
        text += f"; partial ({coverage * 100:.0f} % covered)"
    return text[:200]


@dataclass
class Tally:
    """Art. 64 totals helper: complete estimates only unless the site counts partial ones; counts what it left."""

    include_partial: bool = False
    total_msv: float = 0.0
    complete: int = 0
    partial: int = 0
    partial_counted: int = 0
    skipped: list[int] = field(default_factory=list)

    def add(self, value_msv: float | None, coverage: float | None, study_id: int = 0) -> None:
        if value_msv is None:
            return
        is_partial = coverage is not None and coverage < 1.0
        if is_partial:
            self.partial += 1
            if not self.include_partial:
                self.skipped.append(study_id)
                return
            self.partial_counted += 1
        else:
            self.complete += 1
        self.total_msv += value_msv
