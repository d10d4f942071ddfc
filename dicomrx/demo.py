"""Synthetic demo studies for every modality, on a stable set of units, over one year.

A :class:`DemoStudy` is drawn from a seeded random generator with realistic values (orders of magnitude from
published dose surveys: UK NDRL / EUCLID for CT, European interventional cardiology DRLs for KAP, NHSBSP for
mammography AGD; see /docs and drl data).  Each study is rendered either as a real DICOM dose object
(:func:`demo_dataset`: an X-Ray Radiation Dose SR with TID 10011 or TID 10001, or a Radiopharmaceutical Radiation Dose
SR with TID 10021), which the normal import path parses, or directly as the parser's dataclasses (:func:`demo_report`)
for benchmark scale.  Demo objects are marked with a private-free convention: their UIDs live under
:data:`DEMO_UID_ROOT` and the registry records them with ``demo=True``.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

from dicomrx import codes as C
from dicomrx.units import to_canonical
from dosereg.core.dose_report import (
    SOURCE_RDSR,
    SOURCE_RRDSR,
    AccumulatedDoseData,
    Code,
    DoseReport,
    EquipmentInfo,
    IrradiationEventData,
    PatientInfo,
    Quantity,
    StudyInfo,
)

# 2.25 + a fixed 128-bit integer (PS3.5 B.2 UUID-derived root), so demo UIDs are recognisable and stable.
DEMO_UID_ROOT = "2.25.231180112907473209181235366911458"
XRAY_RDSR_SOP = "1.2.840.10008.5.1.4.1.1.88.67"
RRDSR_SOP = "1.2.840.10008.5.1.4.1.1.88.68"


@dataclass(frozen=True)
class DemoUnit:
    key: str
    kind: str  # ct, ir, fluoro, dx, mg, nm
    manufacturer: str
    model: str
    station: str
    serial: str
    software: str
    institution: str = "DoseReg Demo Hospital"
    department: str = "Radiology"


UNITS = (
    DemoUnit("ct1", "ct", "SIEMENS", "SOMATOM Force", "DEMO-CT1", "CT1001", "VB20A"),
    DemoUnit("ct2", "ct", "GE MEDICAL SYSTEMS", "Revolution CT", "DEMO-CT2", "CT2002", "rev.21"),
    DemoUnit("ir1", "ir", "Philips", "Azurion 7 B20/15", "DEMO-CATH1", "IR3003", "R2.2", department="Cardiology"),
    DemoUnit("ir2", "ir", "Siemens", "Artis Q", "DEMO-IR2", "IR4004", "VD11", department="Interventional"),
    DemoUnit("rf1", "fluoro", "SIEMENS", "Luminos dRF Max", "DEMO-RF1", "RF5005", "VF10"),
    DemoUnit("dx1", "dx", "CARESTREAM", "DRX-Evolution", "DEMO-DX1", "DX6006", "5.7"),
    DemoUnit("dx2", "dx", "Canon Inc.", "CXDI-710C", "DEMO-DX2", "DX7007", "2.1"),
    DemoUnit("mg1", "mg", "HOLOGIC, Inc.", "Selenia Dimensions", "DEMO-MG1", "MG8008", "1.11"),
    DemoUnit("nm1", "nm", "SIEMENS", "Biograph Vision 600", "DEMO-PET1", "NM9009", "VG80"),
)

# (study description, weight, body region for CT/target code, typical (median) value, spread as geometric sd)
# CT medians sit near UK NDRL / EUCLID values (reference-data.md §3) so the DRL comparison has both sides.
CT_EXAMS = (
    ("CT HEAD", 30, "head", 55.0, 900.0),
    ("CT CHEST", 20, "chest", 7.0, 280.0),
    ("CT ABDOMEN PELVIS", 18, "abdomen", 9.0, 480.0),
    ("CT CHEST ABDOMEN PELVIS", 12, "trunk", 9.5, 650.0),
    ("CT PULMONARY ANGIOGRAM", 8, "chest", 8.5, 300.0),
    ("CT KUB", 6, "abdomen", 5.5, 260.0),
    ("CT CERVICAL SPINE", 4, "neck", 16.0, 390.0),
    ("CT SINUSES", 2, "head", 10.0, 150.0),
)
IR_EXAMS = (  # (description, weight, median KAP Gy.cm2) ~ European IC DRLs (Siiskonen 2018)
    ("CORONARY ANGIOGRAPHY", 50, 30.0),
    ("PCI", 30, 70.0),
    ("TAVI", 5, 110.0),
    ("PACEMAKER IMPLANTATION", 10, 3.0),
    ("ELECTROPHYSIOLOGY STUDY", 5, 10.0),
)
# Descriptions are ones the default examination mapping (drl/data/default_mapping.json) recognises.
FLUORO_EXAMS = (("PACEMAKER IMPLANTATION", 50, 2.5), ("PACEMAKER DUAL CHAMBER", 30, 3.5), ("CRT DEVICE IMPLANTATION", 20, 15.0))
DX_EXAMS = (  # (description, weight, median KAP Gy.cm2 per view, views, region)
    ("CHEST PA", 60, 0.10, 1, "chest"),
    ("XR CHEST", 25, 0.10, 1, "chest"),
    ("CHEST PA AND LATERAL", 15, 0.15, 2, "chest"),
)
MG_EXAMS = (("MAMMOGRAPHY SCREENING", 80), ("MAMMOGRAPHY DIAGNOSTIC", 20))
NM_EXAMS = (("PET-CT FDG WHOLE BODY", 100),)
KIND_WEIGHTS = {"ct": 40, "dx": 30, "mg": 10, "ir": 10, "fluoro": 5, "nm": 5}

REGION_CODES = {  # Target Region (CID 4031), SNOMED CT codes
    "head": ("69536005", "Head"), "chest": ("51185008", "Chest"), "abdomen": ("818983003", "Abdomen"),
    "trunk": ("416775004", "Chest, Abdomen and Pelvis"), "neck": ("45048000", "Neck"),
    "pelvis": ("12921003", "Pelvis"), "heart": ("80891009", "Heart"), "lumbar spine": ("122496007", "Lumbar spine"),
    "knee": ("72696002", "Knee"), "breast": ("76752008", "Breast"), "entire body": ("38266002", "Entire body"),
}
FIRST_NAMES = ("Anna", "Ben", "Clara", "David", "Eva", "Finn", "Greta", "Hugo", "Ines", "Jan", "Karin", "Lars",
               "Maria", "Noah", "Olga", "Paul", "Rosa", "Sven", "Tina", "Ugo", "Vera", "Willem", "Yara", "Zeno")
LAST_NAMES = ("Demo", "Muster", "Example", "Sample", "Testa", "Proef", "Essai", "Prova")


@dataclass
class DemoEvent:
    uid: str
    when: dt.datetime
    event_type: str  # spiral_acquisition, constant_angle_acquisition, fluoroscopy, stationary_acquisition, nm
    protocol: str
    region: str
    values: dict = field(default_factory=dict)  # name -> (value, unit code) in the unit it is sent
    attributes: dict = field(default_factory=dict)


@dataclass
class DemoStudy:
    unit: DemoUnit
    description: str
    study_uid: str
    sop_uid: str
    accession: str
    when: dt.datetime
    patient_id: str
    patient_name: str
    sex: str
    birth_date: dt.date
    weight_kg: float
    height_m: float
    events: list[DemoEvent] = field(default_factory=list)
    totals: dict = field(default_factory=dict)  # per plane key ('single', 'A', 'B' or '') -> {name: (value, unit)}
    position: int = 0  # in the seeded sequence (0 first), whichever part made it


def _uid(rng: random.Random) -> str:
    return f"{DEMO_UID_ROOT}.{rng.getrandbits(60)}"


def _lognormal(rng: random.Random, median: float, sigma: float = 0.45) -> float:
    return median * rng.lognormvariate(0.0, sigma)


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def demo_studies(count: int, *, year: int, seed: int = 1, part: tuple[int, int] = (0, 1)) -> Iterator[DemoStudy]:
    """``count`` studies spread over ``year``; about a third of patients come back (dose history).  ``part`` (k, n):
    only the studies of every n-th patient from the k-th on, drawn from the same seeded sequence (the n parts of a
    seed are its studies, each patient's in one part, in their order)."""
    k, n = part
    rng = random.Random(seed)
    kinds = list(KIND_WEIGHTS)
    kind_weights = [KIND_WEIGHTS[k] for k in kinds]
    units_by_kind: dict[str, list[DemoUnit]] = {}
    for unit in UNITS:
        units_by_kind.setdefault(unit.kind, []).append(unit)
    start = dt.datetime(year, 1, 1, 7, 0)
    days = (dt.date(year + 1, 1, 1) - dt.date(year, 1, 1)).days
    n_patients = max(1, int(count * 0.7))
    for i in range(count):
        kind = rng.choices(kinds, kind_weights)[0]
        unit = rng.choice(units_by_kind[kind])
        p = rng.randrange(n_patients)
        prng = random.Random(seed * 1_000_003 + p)  # a patient's identity is stable across their studies
        sex = "F" if kind == "mg" else prng.choice("MF")
        age = prng.choice([prng.randint(1, 17)] + [prng.randint(18, 92)] * 9) if kind != "mg" else prng.randint(47, 73)
        birth = dt.date(year - age, prng.randint(1, 12), prng.randint(1, 28))
        height = round(prng.gauss(1.76 if sex == "M" else 1.63, 0.07), 2) if age >= 16 else round(0.6 + age * 0.07, 2)
        weight = round(max(8.0, prng.gauss(82 if sex == "M" else 68, 14)) if age >= 16 else 4 + age * 3.2, 1)
        when = start + dt.timedelta(days=rng.randrange(days), minutes=rng.randrange(11 * 60))
        study = DemoStudy(
            unit=unit, description="", study_uid=_uid(rng), sop_uid=_uid(rng), accession=f"DEMO{year}{i:07d}",
            when=when, patient_id=f"DEMO-{p:07d}",
            patient_name=f"{prng.choice(LAST_NAMES)}^{prng.choice(FIRST_NAMES)}", sex=sex, birth_date=birth,
            weight_kg=weight, height_m=height, position=i)
        {"ct": _ct, "ir": _ir, "fluoro": _fluoro, "dx": _dx, "mg": _mg, "nm": _nm}[kind](rng, study, age)
        if p % n == k:
            yield study


def _ct(rng, study: DemoStudy, age: int) -> None:
    desc, _, region, ctdi_median, dlp_median = rng.choices(CT_EXAMS, [e[1] for e in CT_EXAMS])[0]
    study.description = desc
    scale = 0.5 if age < 18 else 1.0
    phantom = "head" if region == "head" else "body"
    t = study.when
    study.events.append(DemoEvent(_uid(rng), t, "constant_angle_acquisition", "Topogram", region, {
        "ctdivol_mgy": (_sig(rng.uniform(0.05, 0.2), 3), "mGy"), "dlp_mgycm": (_sig(rng.uniform(1, 6), 3), "mGy.cm"),
        "kvp": (120, "kV"), "tube_current_ma": (35, "mA"), "max_tube_current_ma": (35, "mA"),
        "number_of_xray_sources": (1, "{X-Ray sources}"), "scanning_length_mm": (rng.choice([256, 512]), "mm"),
        "exposure_time_s": (_sig(rng.uniform(1.5, 4), 3), "s")}, {"ctdi_phantom": phantom}))
    phases = 2 if rng.random() < 0.25 else 1
    dlp_total = sum(float(e.values["dlp_mgycm"][0]) for e in study.events)
    for k in range(phases):
        ctdi = _sig(_lognormal(rng, ctdi_median * scale, 0.35), 4)
        dlp = _sig(dlp_median * scale / phases * ctdi / (ctdi_median * scale) * rng.uniform(0.85, 1.15), 5)
        t = t + dt.timedelta(seconds=rng.randint(40, 200))
        study.events.append(DemoEvent(_uid(rng), t, "spiral_acquisition", f"{desc.title()}{' phase ' + str(k + 1) if phases > 1 else ''}", region, {
            "ctdivol_mgy": (ctdi, "mGy"), "dlp_mgycm": (dlp, "mGy.cm"), "kvp": (120 if region == "head" else 100, "kV"),
            "tube_current_ma": (rng.randint(120, 420), "mA"), "max_tube_current_ma": (rng.randint(420, 500), "mA"),
            "number_of_xray_sources": (1, "{X-Ray sources}"), "pitch_factor": (rng.choice([0.8, 1.0, 1.2]), "{ratio}"),
            "scanning_length_mm": (round(dlp / max(ctdi, 0.01) * 10, 1), "mm"),
            "exposure_time_s": (_sig(rng.uniform(2, 9), 3), "s"), "nominal_single_collimation_mm": (0.6, "mm"),
            "nominal_total_collimation_mm": (38.4, "mm")}, {"ctdi_phantom": phantom}))
        dlp_total += dlp
    study.totals[""] = {"dlp_total_mgycm": (_sig(dlp_total, 6), "mGy.cm"), "ct_event_count": (len(study.events), "{events}")}


def _projection_events(rng, study: DemoStudy, region: str, kap_total: float, n_fluoro: int, n_acq: int,
                       planes: tuple[str, ...], fluoro_rate: float) -> None:
    t = study.when
    per_plane: dict[str, dict] = {p: {"kap": 0.0, "kar": 0.0, "fkap": 0.0, "fkar": 0.0, "akap": 0.0, "akar": 0.0,
                                      "ftime": 0.0, "atime": 0.0, "frames": 0} for p in planes}
    weights = [rng.uniform(0.5, 1.5) for _ in range(n_fluoro + n_acq)]
    total_w = sum(weights)
    for j in range(n_fluoro + n_acq):
        plane = planes[j % len(planes)]
        fluoro = j < n_fluoro
        kap = _sig(kap_total * weights[j] / total_w, 4)  # Gy.cm2
        kar = _sig(kap * rng.uniform(6, 12), 4)  # mGy: Ka,r/KAP ~ 6-12 mGy per Gy.cm2 for cardiac fields
        duration = _sig(rng.uniform(5, 90) if fluoro else rng.uniform(2, 8), 3)
        pulses = int(duration * fluoro_rate) if fluoro else int(duration * 15)
        t = t + dt.timedelta(seconds=rng.randint(20, 180))
        values = {"kap_gycm2": (_sig(kap / 1e4, 5), "Gy.m2"), "ka_r_mgy": (_sig(kar / 1000, 5), "Gy"),
                  "kvp": (rng.randint(74, 80), "kV"), "tube_current_ma": (rng.randint(8, 600), "mA"),
                  "pulse_width_ms": (_sig(rng.uniform(4, 8), 2), "ms"), "irradiation_duration_s": (duration, "s"),
                  "number_of_pulses": (pulses, "1"), "pulse_rate_per_s": (fluoro_rate if fluoro else 15, "{pulse}/s"),
                  "positioner_primary_angle_deg": (rng.randint(-45, 45), "deg"),
                  "positioner_secondary_angle_deg": (rng.randint(-30, 30), "deg")}
        study.events.append(DemoEvent(_uid(rng), t, "fluoroscopy" if fluoro else "stationary_acquisition",
                                      "Fluoro" if fluoro else "Acquisition", region, values, {"plane": plane}))
        acc = per_plane[plane]
        acc["kap"] += kap
        acc["kar"] += kar
        acc["fkap" if fluoro else "akap"] += kap
        acc["fkar" if fluoro else "akar"] += kar
        acc["ftime" if fluoro else "atime"] += duration
        acc["frames"] += 0 if fluoro else pulses
    for plane, acc in per_plane.items():
        study.totals[plane] = {
            "kap_total_gycm2": (_sig(acc["kap"] / 1e4, 6), "Gy.m2"), "ka_r_total_mgy": (_sig(acc["kar"] / 1000, 6), "Gy"),
            "fluoro_kap_total_gycm2": (_sig(acc["fkap"] / 1e4, 6), "Gy.m2"),
            "fluoro_ka_r_total_mgy": (_sig(acc["fkar"] / 1000, 6), "Gy"),
            "acquisition_kap_total_gycm2": (_sig(acc["akap"] / 1e4, 6), "Gy.m2"),
            "acquisition_ka_r_total_mgy": (_sig(acc["akar"] / 1000, 6), "Gy"),
            "fluoro_time_total_s": (_sig(acc["ftime"], 6), "s"), "acquisition_time_total_s": (_sig(acc["atime"], 6), "s"),
            "total_number_of_radiographic_frames": (acc["frames"], "1")}


def _ir(rng, study: DemoStudy, age: int) -> None:
    desc, _, kap_median = rng.choices(IR_EXAMS, [e[1] for e in IR_EXAMS])[0]
    study.description = desc
    # a long tail: about 1 in 150 procedures goes high enough to reach skin-dose trigger levels
    kap = _lognormal(rng, kap_median, 0.6) * (rng.uniform(4, 7) if rng.random() < 0.007 else 1.0)
    planes = ("A", "B") if "Azurion" in study.unit.model else ("single",)
    _projection_events(rng, study, "heart", kap, rng.randint(4, 12), rng.randint(2, 8), planes, 15.0)


def _fluoro(rng, study: DemoStudy, age: int) -> None:
    desc, _, kap_median = rng.choices(FLUORO_EXAMS, [e[1] for e in FLUORO_EXAMS])[0]
    study.description = desc
    _projection_events(rng, study, "heart", _lognormal(rng, kap_median, 0.5), rng.randint(2, 6), rng.randint(1, 4),
                       ("single",), 7.5)


def _dx(rng, study: DemoStudy, age: int) -> None:
    desc, _, kap_median, views, region = rng.choices(DX_EXAMS, [e[1] for e in DX_EXAMS])[0]
    study.description = desc
    scale = 0.4 if age < 18 else 1.0
    t = study.when
    total = 0.0
    for v in range(views):
        kap = _sig(_lognormal(rng, kap_median * scale, 0.4), 4)
        total += kap
        t = t + dt.timedelta(seconds=rng.randint(30, 120))
        study.events.append(DemoEvent(_uid(rng), t, "stationary_acquisition", f"{desc.title()} view {v + 1}", region, {
            "kap_gycm2": (_sig(kap / 1e4, 5), "Gy.m2"), "ka_r_mgy": (_sig(kap * 1.3 / 1000, 5), "Gy"),
            "kvp": (125 if v == 0 else 110, "kV"), "exposure_mas": (_sig(rng.uniform(1, 40) * 1000, 4), "uA.s"),
            "distance_source_to_detector_mm": (rng.choice([1000, 1150, 1800]), "mm")}, {"plane": "single"}))
    study.totals["single"] = {"kap_total_gycm2": (_sig(total / 1e4, 6), "Gy.m2"),
                              "ka_r_total_mgy": (_sig(total * 1.3 / 1000, 6), "Gy"),
                              "acquisition_kap_total_gycm2": (_sig(total / 1e4, 6), "Gy.m2"),
                              "total_number_of_radiographic_frames": (views, "1")}


def _mg(rng, study: DemoStudy, age: int) -> None:
    desc = rng.choices(MG_EXAMS, [e[1] for e in MG_EXAMS])[0][0]
    study.description = desc
    t = study.when
    sums = {"left": 0.0, "right": 0.0}
    for side in ("right", "left"):
        for view, position in (("cranio-caudal", "CC"), ("medio-lateral oblique", "MLO")):
            thickness = round(rng.gauss(58, 10), 1)
            agd = _sig(max(0.4, 1.2 + (thickness - 50) * 0.02 + rng.gauss(0, 0.2)), 3)
            sums[side] += agd
            t = t + dt.timedelta(seconds=rng.randint(30, 90))
            study.events.append(DemoEvent(_uid(rng), t, "stationary_acquisition", f"{view} {side}", "breast", {
                "agd_mgy": (agd, "mGy"), "esak_mgy": (_sig(agd * rng.uniform(3.5, 4.5), 3), "mGy"),
                "compression_thickness_mm": (thickness, "mm"), "kvp": (29 if thickness < 55 else 31, "kV"),
                "hvl_mmal": (_sig(rng.uniform(0.5, 0.6), 3), "mm"), "exposure_mas": (rng.randint(60, 180) * 1000, "uA.s")},
                {"laterality": side, "view": position, "plane": "single"}))
    study.totals["single"] = {"agd_left_mgy": (_sig(sums["left"], 4), "mGy"),
                              "agd_right_mgy": (_sig(sums["right"], 4), "mGy")}


def _nm(rng, study: DemoStudy, age: int) -> None:
    study.description = NM_EXAMS[0][0]
    activity = round(max(120.0, study.weight_kg * rng.uniform(3.0, 4.0)), 1)
    effective = _sig(activity * 0.019, 4)  # ICRP 128 adult FDG: 0.019 mSv/MBq
    study.events.append(DemoEvent(_uid(rng), study.when, "radiopharmaceutical_administration", "FDG", "entire body",
                                  {"activity_mbq": (activity, "MBq"), "effective_dose_msv": (effective, "mSv")},
                                  {"radiopharmaceutical": "Fluorodeoxyglucose F^18^", "radionuclide": "^18^Fluorine"}))
    study.totals[""] = {"activity_mbq": (activity, "MBq"), "effective_dose_msv": (effective, "mSv")}


# --- rendering as DICOM ----------------------------------------------------------------------------------------------
def _code(value: str, scheme: str, meaning: str) -> Dataset:
    ds = Dataset()
    ds.CodeValue, ds.CodingSchemeDesignator, ds.CodeMeaning = value, scheme, meaning
    return ds


def _item(rel: str, vt: str, concept: tuple[str, str, str]) -> Dataset:
    ds = Dataset()
    ds.RelationshipType, ds.ValueType = rel, vt
    ds.ConceptNameCodeSequence = [_code(concept[1], concept[0], concept[2])]
    return ds


def _num(concept, value, unit: str, rel: str = "CONTAINS") -> Dataset:
    ds = _item(rel, "NUM", concept)
    mv = Dataset()
    mv.NumericValue = str(value)
    mv.MeasurementUnitsCodeSequence = [_code(unit, "UCUM", unit)]
    ds.MeasuredValueSequence = [mv]
    return ds


def _codeitem(concept, value: tuple[str, str, str], rel: str = "CONTAINS") -> Dataset:
    ds = _item(rel, "CODE", concept)
    ds.ConceptCodeSequence = [_code(value[1], value[0], value[2])]
    return ds


def _text(concept, value: str, rel: str = "CONTAINS", vt: str = "TEXT") -> Dataset:
    ds = _item(rel, vt, concept)
    if vt == "UIDREF":
        ds.UID = value
    elif vt == "DATETIME":
        ds.DateTime = value
    else:
        ds.TextValue = value
    return ds


def _container(concept, children: list[Dataset], rel: str = "CONTAINS") -> Dataset:
    ds = _item(rel, "CONTAINER", concept)
    ds.ContinuityOfContent = "SEPARATE"
    ds.ContentSequence = children
    return ds


def D(value: str, meaning: str) -> tuple[str, str, str]:
    return ("DCM", value, meaning)


def S(value: str, meaning: str) -> tuple[str, str, str]:
    return ("SCT", value, meaning)


# SR concepts for each quantity name: (concept, ) -- CT values sit in sub-containers; see _ct_event_item.
EVENT_CONCEPTS = {
    "kap_gycm2": D("122130", "Dose Area Product"), "ka_r_mgy": D("113738", "Dose (RP)"),
    "kvp": D("113733", "KVP"), "tube_current_ma": D("113734", "X-Ray Tube Current"),
    "pulse_width_ms": D("113793", "Pulse Width"), "irradiation_duration_s": D("113742", "Irradiation Duration"),
    "number_of_pulses": D("113768", "Number of Pulses"), "pulse_rate_per_s": D("113791", "Pulse Rate"),
    "positioner_primary_angle_deg": D("112011", "Positioner Primary Angle"),
    "positioner_secondary_angle_deg": D("112012", "Positioner Secondary Angle"),
    "exposure_mas": D("113736", "Exposure"), "distance_source_to_detector_mm": D("113750", "Distance Source to Detector"),
    "agd_mgy": D("111631", "Average Glandular Dose"), "esak_mgy": D("111636", "Entrance Exposure at RP"),
    "compression_thickness_mm": D("111633", "Compression Thickness"), "hvl_mmal": D("111634", "Half Value Layer"),
}
TOTAL_CONCEPTS = {
    "kap_total_gycm2": D("113722", "Dose Area Product Total"), "ka_r_total_mgy": D("113725", "Dose (RP) Total"),
    "fluoro_kap_total_gycm2": D("113726", "Fluoro Dose Area Product Total"),
    "fluoro_ka_r_total_mgy": D("113728", "Fluoro Dose (RP) Total"),
    "acquisition_kap_total_gycm2": D("113727", "Acquisition Dose Area Product Total"),
    "acquisition_ka_r_total_mgy": D("113729", "Acquisition Dose (RP) Total"),
    "fluoro_time_total_s": D("113730", "Total Fluoro Time"), "acquisition_time_total_s": D("113855", "Total Acquisition Time"),
    "total_number_of_radiographic_frames": D("113731", "Total Number of Radiographic Frames"),
}
EVENT_TYPE_CODES = {
    "spiral_acquisition": S("116152004", "Spiral Acquisition"),
    "constant_angle_acquisition": D("113805", "Constant Angle Acquisition"),
    "fluoroscopy": S("44491008", "Fluoroscopy"),
    "stationary_acquisition": D("113611", "Stationary Acquisition"),
}
PLANE_VALUES = {"single": D("113622", "Single Plane"), "A": D("113620", "Plane A"), "B": D("113621", "Plane B")}
SIDE_CODES = {"right": S("73056007", "Right breast"), "left": S("80248007", "Left breast")}
# the demo's views (View Position terms, as ingest stores them: dicomrx.codes.VIEW_POSITIONS) -> CID 4014 codes
VIEW_CODES = {"CC": S("399162004", "cranio-caudal"), "MLO": S("399368009", "medio-lateral oblique")}


def _dt(value: dt.datetime) -> str:
    return value.strftime("%Y%m%d%H%M%S")


def _region(name: str) -> tuple[str, str, str]:
    code, meaning = REGION_CODES.get(name, REGION_CODES["entire body"])
    return S(code, meaning)


def _observer(unit: DemoUnit) -> list[Dataset]:
    return [
        _codeitem(D("121005", "Observer Type"), D("121007", "Device"), rel="HAS OBS CONTEXT"),
        _text(D("121012", "Device Observer UID"), device_observer_uid(unit), rel="HAS OBS CONTEXT", vt="UIDREF"),
        _text(D("121013", "Device Observer Name"), unit.station, rel="HAS OBS CONTEXT"),
        _text(D("121014", "Device Observer Manufacturer"), unit.manufacturer, rel="HAS OBS CONTEXT"),
        _text(D("121015", "Device Observer Model Name"), unit.model, rel="HAS OBS CONTEXT"),
        _text(D("121016", "Device Observer Serial Number"), unit.serial, rel="HAS OBS CONTEXT"),
    ]


def device_observer_uid(unit: DemoUnit) -> str:
    return f"{DEMO_UID_ROOT}.9.{UNITS.index(unit) + 1}"


def demo_dataset(study: DemoStudy) -> Dataset:
    """The study as a real DICOM dose SR (TID 10011, TID 10001 or TID 10021), ready to encode."""
    unit = study.unit
    is_nm = unit.kind == "nm"
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = RRDSR_SOP if is_nm else XRAY_RDSR_SOP
    ds.file_meta.MediaStorageSOPInstanceUID = study.sop_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = study.sop_uid
    ds.StudyDate = ds.ContentDate = study.when.strftime("%Y%m%d")
    ds.StudyTime = ds.ContentTime = study.when.strftime("%H%M%S")
    ds.AccessionNumber = study.accession
    ds.Modality = "SR"
    ds.Manufacturer, ds.ManufacturerModelName = unit.manufacturer, unit.model
    ds.StationName, ds.DeviceSerialNumber, ds.SoftwareVersions = unit.station, unit.serial, unit.software
    ds.InstitutionName, ds.InstitutionalDepartmentName = unit.institution, unit.department
    ds.ReferringPhysicianName = "Referrer^Demo"
    ds.StudyDescription = study.description
    ds.PatientName, ds.PatientID = study.patient_name, study.patient_id
    ds.IssuerOfPatientID = "DEMO"
    ds.PatientBirthDate = study.birth_date.strftime("%Y%m%d")
    ds.PatientSex = study.sex
    ds.PatientWeight, ds.PatientSize = str(study.weight_kg), str(study.height_m)
    ds.StudyInstanceUID = study.study_uid
    ds.SeriesInstanceUID = f"{study.study_uid}.1"
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", "999", "1"
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
    template = Dataset()
    template.MappingResource = "DCMR"
    if is_nm:
        ds.ConceptNameCodeSequence = [_code("113500", "DCM", "Radiopharmaceutical Radiation Dose Report")]
        template.TemplateIdentifier = "10021"
        ds.ContentSequence = _nm_content(study)
    else:
        ds.ConceptNameCodeSequence = [_code("113701", "DCM", "X-Ray Radiation Dose Report")]
        template.TemplateIdentifier = "10011" if unit.kind == "ct" else "10001"
        ds.ContentSequence = _ct_content(study) if unit.kind == "ct" else _projection_content(study)
    ds.ContentTemplateSequence = [template]
    return ds


def _procedure(unit: DemoUnit) -> list[Dataset]:
    proc = {"ct": S("77477000", "Computed Tomography X-Ray"), "mg": S("71651007", "Mammography")}.get(
        unit.kind, D("113704", "Projection X-Ray"))
    item = _codeitem(D("121058", "Procedure Reported"), proc, rel="HAS CONCEPT MOD")
    item.ContentSequence = [_codeitem(S("363703001", "Has Intent"), S("261004008", "Diagnostic Intent"),
                                      rel="HAS CONCEPT MOD")]
    return [item]


def _scope(study: DemoStudy) -> Dataset:
    scope = _codeitem(D("113705", "Scope of Accumulation"), D("113014", "Study"), rel="HAS OBS CONTEXT")
    scope.ContentSequence = [_text(D("110180", "Study Instance UID"), study.study_uid, rel="HAS PROPERTIES", vt="UIDREF")]
    return scope


def _ct_content(study: DemoStudy) -> list[Dataset]:
    totals = study.totals[""]
    acc = _container(D("113811", "CT Accumulated Dose Data"), [
        _num(D("113812", "Total Number of Irradiation Events"), totals["ct_event_count"][0], "{events}"),
        _num(D("113813", "CT Dose Length Product Total"), totals["dlp_total_mgycm"][0], "mGy.cm"),
    ])
    items = _procedure(study.unit) + _observer(study.unit) + [_scope(study), acc]
    for ev in study.events:
        v = ev.values
        params = [_num(D("113824", "Exposure Time"), v["exposure_time_s"][0], "s"),
                  _num(D("113825", "Scanning Length"), v["scanning_length_mm"][0], "mm")]
        if "nominal_single_collimation_mm" in v:
            params += [_num(D("113826", "Nominal Single Collimation Width"), v["nominal_single_collimation_mm"][0], "mm"),
                       _num(D("113827", "Nominal Total Collimation Width"), v["nominal_total_collimation_mm"][0], "mm")]
        if "pitch_factor" in v:
            params.append(_num(D("113828", "Pitch Factor"), v["pitch_factor"][0], "{ratio}"))
        params += [_num(D("113823", "Number of X-Ray Sources"), v["number_of_xray_sources"][0], "{X-Ray sources}"),
                   _container(D("113831", "CT X-Ray Source Parameters"), [
                       _text(D("113832", "Identification of the X-Ray Source"), "A"),
                       _num(D("113733", "KVP"), v["kvp"][0], "kV"),
                       _num(D("113833", "Maximum X-Ray Tube Current"), v["max_tube_current_ma"][0], "mA"),
                       _num(D("113734", "X-Ray Tube Current"), v["tube_current_ma"][0], "mA")])]
        phantom = D("113690", "IEC Head Dosimetry Phantom") if ev.attributes["ctdi_phantom"] == "head" else D(
            "113691", "IEC Body Dosimetry Phantom")
        dose = _container(D("113829", "CT Dose"), [
            _num(D("113830", "Mean CTDIvol"), v["ctdivol_mgy"][0], "mGy"),
            _codeitem(D("113835", "CTDIw Phantom Type"), phantom),
            _num(D("113838", "DLP"), v["dlp_mgycm"][0], "mGy.cm")])
        items.append(_container(D("113819", "CT Acquisition"), [
            _text(D("125203", "Acquisition Protocol"), ev.protocol),
            _codeitem(D("123014", "Target Region"), _region(ev.region)),
            _codeitem(D("113820", "CT Acquisition Type"), EVENT_TYPE_CODES[ev.event_type]),
            _text(D("113769", "Irradiation Event UID"), ev.uid, vt="UIDREF"),
            _container(D("113822", "CT Acquisition Parameters"), params),
            dose]))
    return items


def _projection_content(study: DemoStudy) -> list[Dataset]:
    items = _procedure(study.unit) + _observer(study.unit) + [_scope(study)]
    is_mg = study.unit.kind == "mg"
    for plane, totals in study.totals.items():
        children = [_codeitem(D("113764", "Acquisition Plane"), PLANE_VALUES[plane or "single"])]
        if is_mg:
            for side in ("left", "right"):
                agd = _num(D("111637", "Accumulated Average Glandular Dose"), totals[f"agd_{side}_mgy"][0], "mGy")
                agd.ContentSequence = [_codeitem(S("272741003", "Laterality"), SIDE_CODES[side], rel="HAS CONCEPT MOD")]
                children.append(agd)
        else:
            for name, (value, unit) in totals.items():
                children.append(_num(TOTAL_CONCEPTS[name], value, unit))
            children.append(_text(D("113780", "Reference Point Definition"), "15cm from Isocenter toward Source"))
        items.append(_container(D("113702", "Accumulated X-Ray Dose Data"), children))
    for ev in study.events:
        children = [_codeitem(D("113764", "Acquisition Plane"), PLANE_VALUES[ev.attributes.get("plane", "single")]),
                    _text(D("113769", "Irradiation Event UID"), ev.uid, vt="UIDREF"),
                    _text(D("111526", "DateTime Started"), _dt(ev.when), vt="DATETIME"),
                    _codeitem(D("113721", "Irradiation Event Type"), EVENT_TYPE_CODES[ev.event_type]),
                    _text(D("125203", "Acquisition Protocol"), ev.protocol),
                    _codeitem(D("123014", "Target Region"), _region(ev.region))]
        if is_mg:
            children.append(_codeitem(S("272741003", "Laterality"), SIDE_CODES[ev.attributes["laterality"]],
                                      rel="HAS CONCEPT MOD"))
            children.append(_codeitem(D("111031", "Image View"), VIEW_CODES[ev.attributes["view"]]))
        for name, (value, unit) in ev.values.items():
            children.append(_num(EVENT_CONCEPTS[name], value, unit))
        items.append(_container(D("113706", "Irradiation Event X-Ray Data"), children))
    return items


def _nm_content(study: DemoStudy) -> list[Dataset]:
    ev = study.events[0]
    agent = _codeitem(S("349358000", "Radiopharmaceutical agent"), S("35321007", "Fluorodeoxyglucose F^18^"))
    agent.ContentSequence = [_codeitem(S("89457008", "Radionuclide"), S("77004003", "^18^Fluorine"),
                                       rel="HAS PROPERTIES")]
    admin = _container(D("113502", "Radiopharmaceutical Administration"), [
        agent,
        _text(D("113503", "Radiopharmaceutical Administration Event UID"), ev.uid, vt="UIDREF"),
        _text(D("123003", "Radiopharmaceutical Start DateTime"), _dt(ev.when), vt="DATETIME"),
        _num(D("113507", "Administered activity"), ev.values["activity_mbq"][0], "MBq"),
        _num(D("113839", "Effective Dose"), ev.values["effective_dose_msv"][0], "mSv"),
        _codeitem(S("410675002", "Route of administration"), S("47625008", "Intravenous route")),
    ])
    patient = _container(D("121118", "Patient Characteristics"), [
        _num(D("121033", "Subject Age"), study.when.year - study.birth_date.year, "a"),
        _codeitem(D("121032", "Subject Sex"), ("DCM", study.sex, {"M": "Male", "F": "Female"}.get(study.sex, "Other"))),
        _num(("LN", "8302-2", "Patient Height"), study.height_m, "m"),
        _num(("LN", "29463-7", "Patient Weight"), study.weight_kg, "kg"),
    ])
    assoc = _codeitem(S("364699006", "Associated Procedure"), S("440162005", "PET study for localization of tumor"),
                      rel="HAS CONCEPT MOD")
    return [assoc, admin, patient]


# --- rendering as the parser's dataclasses (benchmark scale) ---------------------------------------------------------
@functools.cache
def _factor(name: str, unit: str) -> float:
    """The parser's conversion factor for a quantity sent in this unit (``dicomrx.units``), looked up once."""
    return to_canonical(name, "1", unit).value


def _quantities(values: dict) -> dict:
    # what to_canonical gives for the number's text, without parsing it again (a float's str() reads back exactly)
    return {name: Quantity(value=float(value) * _factor(name, unit), raw_value=str(value), raw_unit=unit)
            for name, (value, unit) in values.items()}


# the parts of a report that depend on the unit or on a code alone: made once (frozen, so shared by the reports)
@functools.cache
def _equipment_info(unit: DemoUnit) -> EquipmentInfo:
    return EquipmentInfo(manufacturer=unit.manufacturer, model=unit.model, serial_number=unit.serial,
                         station_name=unit.station, institution=unit.institution, department=unit.department,
                         software_versions=unit.software, device_observer_uid=device_observer_uid(unit),
                         device_observer_name=unit.station)


@functools.cache
def _event_type_code(event_type: str) -> Code | None:
    type_code = EVENT_TYPE_CODES.get(event_type)
    return Code(*C.normalise(type_code[0], type_code[1]), type_code[2]) if type_code else None


@functools.cache
def _region_code(region: str) -> Code:
    code, meaning = REGION_CODES.get(region, REGION_CODES["entire body"])
    return Code("SCT", code, meaning)


def demo_report(study: DemoStudy) -> DoseReport:
    """The same study as :func:`demo_dataset` would parse to, built without encoding (``generate_demo_data --bulk``)."""
    unit = study.unit
    events = []
    for ev in study.events:
        attrs = dict(ev.attributes)
        plane = attrs.pop("plane", None) if unit.kind != "ct" else None
        events.append(IrradiationEventData(
            irradiation_event_uid=ev.uid, event_type=ev.event_type, event_type_code=_event_type_code(ev.event_type),
            datetime=ev.when, protocol=ev.protocol, plane=plane,
            target_region=None if unit.kind == "nm" else _region_code(ev.region),
            quantities=_quantities(ev.values), attributes=attrs,
            is_localizer=ev.event_type == "constant_angle_acquisition"))
    accumulated = tuple(AccumulatedDoseData(plane=(plane or None) if unit.kind not in ("ct", "nm") else None,
                                            quantities=_quantities(values))
                        for plane, values in study.totals.items())
    modality = {"ct": ("CT",), "mg": ("mammography",), "dx": ("radiography",), "nm": ("nuclear_medicine",)}.get(
        unit.kind, ("fluoroscopy",))
    return DoseReport(
        source_kind=SOURCE_RRDSR if unit.kind == "nm" else SOURCE_RDSR,
        sop_class_uid=RRDSR_SOP if unit.kind == "nm" else XRAY_RDSR_SOP,
        sop_instance_uid=study.sop_uid,
        study=StudyInfo(study_instance_uid=study.study_uid, accession_number=study.accession,
                        study_date=study.when.date(), study_time=study.when.time(),
                        study_description=study.description, referring_physician="Referrer^Demo", header_modality="SR"),
        patient=PatientInfo(patient_id=study.patient_id, issuer_of_patient_id="DEMO", name=study.patient_name,
                            sex=study.sex, birth_date=study.birth_date, weight_kg=study.weight_kg,
                            height_m=study.height_m),
        equipment=_equipment_info(unit),
        template="TID 10021" if unit.kind == "nm" else ("TID 10011" if unit.kind == "ct" else "TID 10001"),
        modality_types=modality, scope_of_accumulation="study", scope_uid=study.study_uid,
        accumulated=accumulated, events=tuple(events))
