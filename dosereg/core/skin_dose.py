"""Peak skin dose (PSD) and skin-dose maps from the irradiation-event geometry of an X-ray RDSR (TID 10003).

Pure and vectorised (numpy); no Django.  ``compute_skin_dose(events, unit=..., patient=..., setup=...)`` takes one
:class:`SkinEvent` per irradiation event and returns a :class:`SkinDoseResult`: the PSD overall and per plane, the
dose map over the unrolled phantom surface with its coordinates, the method text naming every correction and its
source, the stated uncertainty, and ``geometry_complete`` with the reasons when it is not.  When the geometry is
incomplete (a unit whose table convention is unknown, missing angles, table positions, distances or field size)
there is no PSD and no map: positions are never invented and the caller shows Ka,r with its label.

Model, per event and per skin cell hit by the beam on its entrance side:

    D_skin = Ka,r · (d_ref / d_cell)² · k_table · B(kVp, HVL, field side at the cell) · f(kVp, HVL)

Ka,r: air kerma at the reference point (d_ref from the source: the RDSR's source-to-RP distance, else the
isocentre distance less 15 cm, IEC 60601-2-43); d_cell: source-to-cell distance; k_table: table and pad transmission
where the ray from the source to the cell crosses the table; B: backscatter factor; f: (μen/ρ)water/air.  Sources of
the numbers: :mod:`dosereg.core.skin.corrections`; vendor table conventions: :mod:`dosereg.core.skin.vendors`.

Frame (all lengths in cm inside the engine): origin at the isocentre, x across the table, y vertical and positive
downwards, z along the table towards its head end; the table top is at y = 0 and its head end at z = 0 before the
event's table displacement.  The patient phantom lies centred on the pad, the top of the head at the table's head end
(feet-first: the feet there).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from dosereg.core.dose_report import DoseReport, IrradiationEventData
from dosereg.core.skin import corrections as K
from dosereg.core.skin.vendors import CONVENTIONS, Convention, find_convention

__all__ = [
    "SkinEvent", "Patient", "Unit", "Phantom", "Setup", "SkinDoseResult", "compute_skin_dose", "size_phantom",
    "standard_phantom", "skin_event_from_parts", "skin_events_from_report", "skin_dose_for_report",
    "STANDARD_ADULT",
]

ORIENTATIONS = ("HFS", "FFS", "HFP", "FFP")
_CHUNK = 64  # events per vectorised block: keeps the (cells x events) arrays near 8 MB at 1 cm cells
_MISS_SHARE = 0.5  # more than half of Ka,r outside the phantom: the table offsets are wrong, not the patient


@dataclass(frozen=True)
class SkinEvent:
    """One irradiation event's dose and geometry, in the RDSR's own units (mm, degrees, mGy, Gy·cm², m²)."""

    ka_r_mgy: float | None
    kap_gycm2: float | None = None
    kvp: float | None = None
    filter_cu_mm: float = 0.0
    filter_al_mm: float = 0.0
    primary_angle_deg: float | None = None
    secondary_angle_deg: float | None = None
    table_longitudinal_mm: float | None = None
    table_lateral_mm: float | None = None
    table_height_mm: float | None = None
    source_to_isocenter_mm: float | None = None
    source_to_detector_mm: float | None = None
    source_to_rp_mm: float | None = None
    field_height_mm: float | None = None  # collimated field at the image receptor
    field_width_mm: float | None = None
    field_area_m2: float | None = None
    plane: str = "single"  # 'A', 'B' or 'single'
    orientation: str | None = None  # 'HFS', 'FFS', 'HFP', 'FFP' as the RDSR states it; None when it does not
    event_uid: str = ""


@dataclass(frozen=True)
class Patient:
    height_m: float | None = None
    weight_kg: float | None = None


@dataclass(frozen=True)
class Unit:
    manufacturer: str = ""
    model: str = ""


@dataclass(frozen=True)
class Phantom:
    """Elliptical cylinder (``shape='cylinder'``) or flat plane on the pad (``shape='plane'``), sizes in cm."""

    shape: str = "cylinder"
    semi_axis_lateral_cm: float = 20.0
    semi_axis_vertical_cm: float = 10.0
    length_cm: float = 150.0
    plane_width_cm: float = 40.0
    sizing: str = "standard adult"


@dataclass(frozen=True)
class Setup:
    """Table, pad, corrections and options.  Defaults are the issue-16 reference run (PySkinDose settings)."""

    phantom: Phantom | None = None  # None: sized from the patient (standard adult when height/weight unknown)
    shape: str = "cylinder"  # used when phantom is None; 'plane' is the conservative fallback
    table_length_cm: float = 281.5
    table_width_cm: float = 45.0
    table_thickness_cm: float = 5.0
    pad_thickness_cm: float = 4.0
    table_transmission: float = 0.8
    table_transmission_measured: bool = False
    orientation_if_missing: str | None = "HFS"  # None: a missing orientation makes the geometry incomplete
    field_from_kap: bool = True  # derive the field at the RP as KAP/Ka,r when the RDSR gives no field size
    kvp_if_missing: float = 80.0
    resolution_cm: float = 1.0


# ICRP Publication 89 (2002) reference adult male: 176 cm, 73 kg; PySkinDose's default cylinder (semi-axes 20 x 10 cm,
# 150 cm long) is taken as his trunk.  Sizing keeps the 2:1 ellipse and scales its area with mass per unit height
# (constant density: area ∝ weight / height) and its length with height -- a geometric assumption, stated as such.
REFERENCE_HEIGHT_M = 1.76
REFERENCE_WEIGHT_KG = 73.0
STANDARD_ADULT = Phantom()
SIZING_SOURCE = "ICRP Publication 89 reference adult (176 cm, 73 kg) as the 20 x 10 cm, 150 cm cylinder"


def standard_phantom(shape: str = "cylinder") -> Phantom:
    return replace(STANDARD_ADULT, shape=shape, sizing=f"standard adult ({SIZING_SOURCE})")


def size_phantom(patient: Patient | None, shape: str = "cylinder") -> Phantom:
    """The phantom for a patient: scaled from height and weight when both are known, else the standard adult."""
    if patient is None or not patient.height_m or not patient.weight_kg:
        return standard_phantom(shape)
    h, w = float(patient.height_m), float(patient.weight_kg)
    if not (1.0 <= h <= 2.3 and 20.0 <= w <= 300.0):
        return standard_phantom(shape)
    area_scale = (w / h) / (REFERENCE_WEIGHT_KG / REFERENCE_HEIGHT_M)
    k = min(max(math.sqrt(area_scale), 0.6), 1.6)
    length_scale = h / REFERENCE_HEIGHT_M
    return Phantom(
        shape=shape,
        semi_axis_lateral_cm=round(20.0 * k, 1),
        semi_axis_vertical_cm=round(10.0 * k, 1),
        length_cm=round(150.0 * length_scale, 1),
        plane_width_cm=round(40.0 * k, 1),
        sizing=f"sized from height {h:.2f} m and weight {w:.0f} kg: cross-section area ∝ weight/height, "
        f"length ∝ height, relative to the {SIZING_SOURCE}",
    )


@dataclass
class SkinDoseResult:
    geometry_complete: bool
    reasons: tuple[str, ...]
    method: str
    uncertainty_pct: int
    uncertainty: str
    psd_mgy: float | None = None
    psd_mgy_by_plane: dict[str, float] = field(default_factory=dict)
    dose_map_mgy: np.ndarray | None = None  # rows: distance from the top of the head (v); columns: around (u)
    map_u_cm: np.ndarray | None = None  # column centres: arc length from the posterior midline, + patient's left
    map_v_cm: np.ndarray | None = None  # row centres: distance from the top of the head
    peak_u_cm: float | None = None
    peak_v_cm: float | None = None
    peak_region: str = ""
    landmarks: tuple[tuple[float, str], ...] = ()  # (u_cm, label) for the map's horizontal axis
    phantom: Phantom | None = None
    events_used: int = 0
    events_outside_phantom: int = 0
    ka_r_total_mgy: float = 0.0
    verify: tuple[str, ...] = K.VERIFY

    def as_dict(self, *, include_map: bool = False) -> dict[str, Any]:
        """JSON-able summary (``totals.psd_mgy`` / ``psd_method`` come from here); the map only on request."""
        out: dict[str, Any] = {
            "geometry_complete": self.geometry_complete,
            "reasons": list(self.reasons),
            "psd_mgy": self.psd_mgy,
            "psd_mgy_by_plane": dict(self.psd_mgy_by_plane),
            "psd_method": self.method,
            "uncertainty_pct": self.uncertainty_pct,
            "uncertainty": self.uncertainty,
            "peak": None if self.peak_u_cm is None else
            {"u_cm": self.peak_u_cm, "v_cm": self.peak_v_cm, "region": self.peak_region},
            "phantom": None if self.phantom is None else self.phantom.__dict__.copy(),
            "events_used": self.events_used,
            "events_outside_phantom": self.events_outside_phantom,
            "ka_r_total_mgy": self.ka_r_total_mgy,
            "verify": list(self.verify),
        }
        if include_map and self.dose_map_mgy is not None:
            out["map"] = {
                "mgy": np.round(self.dose_map_mgy, 3).tolist(),
                "u_cm": np.round(self.map_u_cm, 2).tolist(),
                "v_cm": np.round(self.map_v_cm, 2).tolist(),
                "landmarks": [list(x) for x in self.landmarks],
            }
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SkinDoseResult:
        """Rebuild a stored result (e.g. to render a cached map again)."""
        m = data.get("map") or {}
        peak = data.get("peak") or {}
        return cls(
            geometry_complete=bool(data["geometry_complete"]),
            reasons=tuple(data.get("reasons") or ()),
            method=data.get("psd_method", ""),
            uncertainty_pct=int(data.get("uncertainty_pct") or K.UNCERTAINTY_PCT),
            uncertainty=data.get("uncertainty", ""),
            psd_mgy=data.get("psd_mgy"),
            psd_mgy_by_plane=dict(data.get("psd_mgy_by_plane") or {}),
            dose_map_mgy=np.asarray(m["mgy"], dtype=float) if m else None,
            map_u_cm=np.asarray(m["u_cm"], dtype=float) if m else None,
            map_v_cm=np.asarray(m["v_cm"], dtype=float) if m else None,
            peak_u_cm=peak.get("u_cm"),
            peak_v_cm=peak.get("v_cm"),
            peak_region=peak.get("region", ""),
            landmarks=tuple((float(u), str(t)) for u, t in m.get("landmarks", ())),
            phantom=Phantom(**data["phantom"]) if data.get("phantom") else None,
            events_used=int(data.get("events_used") or 0),
            events_outside_phantom=int(data.get("events_outside_phantom") or 0),
            ka_r_total_mgy=float(data.get("ka_r_total_mgy") or 0.0),
            verify=tuple(data.get("verify") or K.VERIFY),
        )


# --- completeness ----------------------------------------------------------------------------------------------------
_NEEDED = (
    ("positioner angles", ("primary_angle_deg", "secondary_angle_deg")),
    ("source-to-isocentre distance", ("source_to_isocenter_mm",)),
)


def _field_known(ev: SkinEvent, setup: Setup) -> bool:
    if ev.source_to_detector_mm and (ev.field_height_mm and ev.field_width_mm or ev.field_area_m2):
        return True
    return bool(setup.field_from_kap and ev.kap_gycm2 and ev.ka_r_mgy)


def _completeness(events: Sequence[SkinEvent], unit: Unit, setup: Setup) -> tuple[list[str], Convention | None]:
    reasons: list[str] = []
    conv = find_convention(unit.manufacturer, unit.model)
    if conv is None:
        who = f"{unit.manufacturer or 'manufacturer not reported'} / {unit.model or 'model not reported'}"
        known = "; ".join(c.label for c in CONVENTIONS)
        reasons.append(f"no table position convention known for {who} (known: {known})")
    dosed = [e for e in events if e.ka_r_mgy is not None and e.ka_r_mgy > 0]
    if not events:
        reasons.append("no irradiation events")
    elif not dosed:
        reasons.append("no event reports Ka,r")
    missing: dict[str, int] = {}
    for ev in dosed:
        for label, names in _NEEDED:
            if any(getattr(ev, n) is None for n in names):
                missing[label] = missing.get(label, 0) + 1
        if conv is not None:
            for axis in (conv.x, conv.y, conv.z):
                if getattr(ev, axis.source) is None:
                    label = "table " + axis.source.removeprefix("table_").removesuffix("_mm") + " position"
                    missing[label] = missing.get(label, 0) + 1
        if not _field_known(ev, setup):
            missing["field size"] = missing.get("field size", 0) + 1
        if ev.orientation is None and setup.orientation_if_missing is None:
            missing["patient orientation"] = missing.get("patient orientation", 0) + 1
        elif (ev.orientation or setup.orientation_if_missing) not in ORIENTATIONS:
            missing["a supported patient orientation"] = missing.get("a supported patient orientation", 0) + 1
    for label, n in missing.items():
        reasons.append(f"{label} missing in {n} of {len(dosed)} events")
    return reasons, conv


# --- geometry --------------------------------------------------------------------------------------------------------
@dataclass
class _Surface:
    points: np.ndarray  # (N, 3) table frame, cm
    normals: np.ndarray  # (N, 3) outward
    shape: tuple[int, int]  # (n_v, n_u)
    u: np.ndarray
    v: np.ndarray
    phi: np.ndarray | None  # angle from the posterior midline per column (cylinder)


def _ellipse_columns(a: float, b: float, step: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Angles φ (from the posterior midline towards the patient's left) of equal arc-length columns."""
    fine = np.linspace(-math.pi, math.pi, 8193)
    ds = np.hypot(a * np.cos(fine), b * np.sin(fine))  # |d(a sinφ, b cosφ)/dφ|
    s = np.concatenate([[0.0], np.cumsum((ds[1:] + ds[:-1]) / 2 * np.diff(fine))])
    perimeter = float(s[-1])
    n = max(8, int(round(perimeter / step)))
    centres = (np.arange(n) + 0.5) * perimeter / n
    return np.interp(centres, s, fine), centres - perimeter / 2, perimeter


def _surface(ph: Phantom, orientation: str, setup: Setup) -> _Surface:
    step = setup.resolution_cm
    n_v = max(2, int(round(ph.length_cm / step)))
    v = (np.arange(n_v) + 0.5) * ph.length_cm / n_v  # distance from the top of the head
    sx = 1.0 if orientation in ("HFS", "FFP") else -1.0  # patient's left -> +x
    sy = 1.0 if orientation in ("HFS", "FFS") else -1.0  # posterior -> down
    head_first = orientation.startswith("HF")
    z_row = -v if head_first else -(ph.length_cm - v)
    if ph.shape == "plane":
        n_u = max(2, int(round(ph.plane_width_cm / step)))
        u = (np.arange(n_u) + 0.5) * ph.plane_width_cm / n_u - ph.plane_width_cm / 2
        uu, zz = np.meshgrid(u, z_row)
        pts = np.stack([sx * uu, np.full_like(uu, -setup.pad_thickness_cm), zz], axis=-1).reshape(-1, 3)
        nrm = np.tile([0.0, 1.0, 0.0], (pts.shape[0], 1))
        return _Surface(pts, nrm, (n_v, n_u), u, v, None)
    a, b = ph.semi_axis_lateral_cm, ph.semi_axis_vertical_cm
    phi, u, _ = _ellipse_columns(a, b, step)
    lat, ap = a * np.sin(phi), b * np.cos(phi)
    n_lat, n_ap = np.sin(phi) / a, np.cos(phi) / b
    norm = np.hypot(n_lat, n_ap)
    n_u = len(u)
    x = np.tile(sx * lat, n_v)
    y = np.tile(-setup.pad_thickness_cm - b + sy * ap, n_v)
    z = np.repeat(z_row, n_u)
    pts = np.stack([x, y, z], axis=1)
    nrm = np.stack([np.tile(sx * n_lat / norm, n_v), np.tile(sy * n_ap / norm, n_v), np.zeros(n_v * n_u)], axis=1)
    return _Surface(pts, nrm, (n_v, n_u), u, v, phi)


def _landmarks(ph: Phantom) -> tuple[tuple[float, str], ...]:
    if ph.shape == "plane":
        return ((-ph.plane_width_cm / 2, "right"), (0.0, "midline"), (ph.plane_width_cm / 2, "left"))
    a, b = ph.semi_axis_lateral_cm, ph.semi_axis_vertical_cm
    phi, u, perimeter = _ellipse_columns(a, b, 0.25)
    quarter = float(np.interp(math.pi / 2, phi, u))
    return ((-perimeter / 2, "anterior"), (-quarter, "right"), (0.0, "posterior"), (quarter, "left"),
            (perimeter / 2, "anterior"))


def _region(ph: Phantom, phi: float | None, orientation: str) -> str:
    if ph.shape == "plane" or phi is None:
        return "skin on the table pad"
    d = math.degrees(phi)
    if abs(d) <= 45:
        return "posterior (back)"
    if abs(d) >= 135:
        return "anterior"
    return "left side" if d > 0 else "right side"


def _rotation(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """(E, 3, 3) rotations Rz(primary) · Rx(secondary), angles in radians."""
    c1, s1, c2, s2 = np.cos(primary), np.sin(primary), np.cos(secondary), np.sin(secondary)
    zero, one = np.zeros_like(c1), np.ones_like(c1)
    rz = np.stack([np.stack([c1, -s1, zero], -1), np.stack([s1, c1, zero], -1), np.stack([zero, zero, one], -1)], -2)
    rx = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, c2, -s2], -1), np.stack([zero, s2, c2], -1)], -2)
    return rz @ rx


def _arr(events: Sequence[SkinEvent], name: str, default: float = np.nan) -> np.ndarray:
    return np.array([default if getattr(e, name) is None else float(getattr(e, name)) for e in events], dtype=float)


@dataclass
class _Beams:
    ka: np.ndarray
    d_ref: np.ndarray
    source: np.ndarray  # (E, 3) in the table frame of the event
    axis: np.ndarray  # (E, 3) central ray, source -> detector
    e1: np.ndarray  # (E, 3) field width direction
    e2: np.ndarray  # (E, 3) field height direction
    tan1: np.ndarray
    tan2: np.ndarray
    bsf_sides: np.ndarray  # (E, 5)
    f: np.ndarray
    field_from_kap: int
    weights: np.ndarray | None = None  # (E, 5): Ka,r · d_ref² · f · B at the tabulated field sides


def _group_geometry(b: _Beams, labels: np.ndarray) -> tuple[_Beams, np.ndarray]:
    """Merge events with the same beam geometry (and plane/orientation ``labels``): the dose on a cell is linear in
    Ka,r · d_ref² · f · B(side), and B is interpolated linearly between tabulated sides, so one pass per geometry
    with the summed weights gives the same map.  Returns the merged beams and each event's group."""
    key = np.concatenate([np.round(b.source, 3), np.round(np.concatenate([b.axis, b.e1, b.e2], 1), 6),
                          np.round(np.stack([b.tan1, b.tan2], 1), 3), labels[:, None]], axis=1)
    _, first, group = np.unique(key, axis=0, return_index=True, return_inverse=True)
    group = group.ravel()
    w = (b.ka * b.d_ref**2 * b.f)[:, None] * b.bsf_sides
    weights = np.zeros((len(first), w.shape[1]))
    np.add.at(weights, group, w)
    merged = _Beams(ka=np.bincount(group, weights=b.ka), d_ref=b.d_ref[first], source=b.source[first],
                    axis=b.axis[first], e1=b.e1[first], e2=b.e2[first], tan1=b.tan1[first], tan2=b.tan2[first],
                    bsf_sides=b.bsf_sides[first], f=b.f[first], field_from_kap=b.field_from_kap, weights=weights)
    return merged, group


def _beams(events: Sequence[SkinEvent], conv: Convention, setup: Setup) -> _Beams:
    ka = _arr(events, "ka_r_mgy")
    dsi = _arr(events, "source_to_isocenter_mm") / 10
    d_rp = _arr(events, "source_to_rp_mm") / 10
    d_ref = np.where(np.isfinite(d_rp), d_rp, dsi - 15.0)
    rot = _rotation(np.radians(conv.primary_sign * _arr(events, "primary_angle_deg")),
                    np.radians(conv.secondary_sign * _arr(events, "secondary_angle_deg")))
    source_room = rot @ np.array([0.0, 1.0, 0.0]) * dsi[:, None]  # below the table at zero angles
    table = np.stack([(ax.offset_mm + ax.sign * _arr(events, ax.source)) / 10 for ax in (conv.x, conv.y, conv.z)], 1)
    # field half-angles: collimated field at the receptor when given, else the RP field KAP/Ka,r (square)
    dsd = _arr(events, "source_to_detector_mm") / 10
    width, height = _arr(events, "field_width_mm") / 10, _arr(events, "field_height_mm") / 10
    side_area = np.sqrt(_arr(events, "field_area_m2")) * 100
    width = np.where(np.isfinite(width) & np.isfinite(height), width, side_area)
    height = np.where(np.isfinite(height) & np.isfinite(_arr(events, "field_width_mm")), height, side_area)
    tan1, tan2 = width / 2 / dsd, height / 2 / dsd
    kap_side = np.sqrt(_arr(events, "kap_gycm2") / (ka / 1000.0))  # cm at the reference point
    use_kap = ~(np.isfinite(tan1) & np.isfinite(tan2))
    tan1 = np.where(use_kap, kap_side / 2 / d_ref, tan1)
    tan2 = np.where(use_kap, kap_side / 2 / d_ref, tan2)
    kvp = _arr(events, "kvp", setup.kvp_if_missing)
    cu = _arr(events, "filter_cu_mm", 0.0)
    hvl = K.hvl_mm_al(kvp, cu)
    return _Beams(
        ka=ka, d_ref=d_ref, source=source_room - table, axis=-rot[:, :, 1],
        e1=rot[:, :, 0], e2=rot[:, :, 2], tan1=tan1, tan2=tan2,
        bsf_sides=K.backscatter_at_sides(kvp, hvl), f=K.f_factor(kvp, cu), field_from_kap=int(use_kap.sum()),
    )


def _dose_block(s: _Surface, b: _Beams, idx: np.ndarray, setup: Setup) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Skin dose of the events ``idx`` on the cells their beams hit: (event index, cell index, mGy)."""
    src = b.source[idx]
    # projections of (cell - source) on the beam axes and on the cell normal, as matrix products (cells x events);
    # float32 is ample for the hit test (cells are 1 cm) and halves the memory traffic
    p32, n32 = s.points.astype(np.float32), s.normals.astype(np.float32)
    t1, t2 = b.tan1[idx], b.tan2[idx]

    def project(axes: np.ndarray) -> np.ndarray:
        return p32 @ axes.T.astype(np.float32) - np.einsum("ek,ek->e", src, axes).astype(np.float32)

    along = project(b.axis[idx])
    hit = np.abs(project(b.e1[idx])) <= along * t1.astype(np.float32)
    hit &= np.abs(project(b.e2[idx])) <= along * t2.astype(np.float32)
    hit &= along > 0
    hit &= np.einsum("nk,nk->n", n32, p32)[:, None] < n32 @ src.T.astype(np.float32)  # entrance side
    cell, ev = np.nonzero(hit)
    v = s.points[cell] - src[ev]
    dist2 = np.einsum("nk,nk->n", v, v)
    # table crossing: source below the table top (y > 0 is down) and the ray meets y = 0 inside the table outline
    sy = src[ev, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = -sy / v[:, 1]
    xc, zc = src[ev, 0] + lam * v[:, 0], src[ev, 2] + lam * v[:, 2]
    through = ((sy > 0) & (lam > 0) & (lam < 1) & (np.abs(xc) <= setup.table_width_cm / 2)
               & (zc <= 0) & (zc >= -setup.table_length_cm))
    k_table = np.where(through, setup.table_transmission, 1.0)
    side = 2.0 * np.sqrt(dist2 * t1[ev] * t2[ev])
    g = idx[ev]
    assert b.weights is not None
    dose = K.interpolate_sides(b.weights[g], side[:, None])[:, 0] / dist2 * k_table
    return g, cell, dose


def _orientation(ev: SkinEvent, setup: Setup) -> str:
    return ev.orientation or setup.orientation_if_missing or "HFS"


def compute_skin_dose(
    events: Sequence[SkinEvent], *, unit: Unit, patient: Patient | None = None, setup: Setup | None = None
) -> SkinDoseResult:
    """Peak skin dose and map for one procedure (all events of one report)."""
    setup = setup or Setup()
    ph = setup.phantom or size_phantom(patient, setup.shape)
    ka_total = float(sum(e.ka_r_mgy for e in events if e.ka_r_mgy))
    reasons, conv = _completeness(events, unit, setup)
    if reasons or conv is None:
        return _incomplete(reasons, ph, ka_total)
    used = [e for e in events if e.ka_r_mgy and e.ka_r_mgy > 0]
    beams = _beams(used, conv, setup)
    plane_of = np.array([e.plane or "single" for e in used])
    orient_of = np.array([_orientation(e, setup) for e in used])
    labels = np.unique(np.char.add(np.char.add(plane_of, "|"), orient_of), return_inverse=True)[1].ravel()
    merged, group = _group_geometry(beams, labels.astype(float))
    g_plane = np.empty(len(merged.ka), dtype=object)
    g_orient = np.empty(len(merged.ka), dtype=object)
    g_plane[group], g_orient[group] = plane_of, orient_of
    by_plane: dict[str, np.ndarray] = {}
    hit_group = np.zeros(len(merged.ka), dtype=bool)
    surface = None
    for orient in sorted(set(orient_of.tolist())):
        surface = _surface(ph, orient, setup)
        mine = np.flatnonzero(g_orient == orient)
        for start in range(0, len(mine), _CHUNK):
            idx = mine[start:start + _CHUNK]
            g, cell, dose = _dose_block(surface, merged, idx, setup)
            hit_group[g] = True
            for p in sorted(set(g_plane[idx].tolist())):
                sel = g_plane[g] == p
                add = np.bincount(cell[sel], weights=dose[sel], minlength=len(surface.points))
                by_plane[p] = by_plane.get(p, 0.0) + add
    assert surface is not None
    total = sum(by_plane.values()) if by_plane else np.zeros(len(surface.points))
    hit_any = hit_group[group]
    outside = int((~hit_any).sum())
    ka_outside = float(beams.ka[~hit_any].sum())
    if ka_outside > _MISS_SHARE * ka_total:
        reasons.append(
            f"the beams of {outside} of {len(used)} events ({ka_outside / ka_total:.0%} of Ka,r) miss the phantom: "
            f"the table offsets for {conv.label} do not place this patient (positions not comparable)"
        )
        return _incomplete(reasons, ph, ka_total)
    grid = np.asarray(total).reshape(surface.shape)
    iv, iu = np.unravel_index(int(np.argmax(grid)), grid.shape)
    orient_main = str(orient_of[int(np.argmax(beams.ka))])
    return SkinDoseResult(
        geometry_complete=True,
        reasons=(),
        method=_method_text(used, unit, conv, ph, setup, beams, orient_of, outside),
        uncertainty_pct=K.UNCERTAINTY_PCT,
        uncertainty=K.UNCERTAINTY_NOTE,
        psd_mgy=float(grid.max()),
        psd_mgy_by_plane={p: float(np.max(m)) for p, m in by_plane.items()},
        dose_map_mgy=grid,
        map_u_cm=surface.u,
        map_v_cm=surface.v,
        peak_u_cm=float(surface.u[iu]),
        peak_v_cm=float(surface.v[iv]),
        peak_region=_region(ph, None if surface.phi is None else float(surface.phi[iu]), orient_main),
        landmarks=_landmarks(ph),
        phantom=ph,
        events_used=len(used),
        events_outside_phantom=outside,
        ka_r_total_mgy=ka_total,
    )


def _incomplete(reasons: list[str], ph: Phantom, ka_total: float) -> SkinDoseResult:
    return SkinDoseResult(
        geometry_complete=False,
        reasons=tuple(reasons),
        method="Geometry incomplete: no skin-dose map. Ka,r (air kerma at the reference point, not skin dose) "
        "is the dose indicator for this procedure.",
        uncertainty_pct=K.UNCERTAINTY_PCT,
        uncertainty=K.UNCERTAINTY_NOTE,
        phantom=ph,
        ka_r_total_mgy=ka_total,
    )


def _method_text(used: Sequence[SkinEvent], unit: Unit, conv: Convention, ph: Phantom, setup: Setup, b: _Beams,
                 orient_of: np.ndarray, outside: int) -> str:
    if ph.shape == "plane":
        shape = f"flat plane {ph.plane_width_cm:g} x {ph.length_cm:g} cm on the pad (conservative fallback)"
    else:
        shape = (f"elliptical cylinder, semi-axes {ph.semi_axis_lateral_cm:g} x {ph.semi_axis_vertical_cm:g} cm, "
                 f"{ph.length_cm:g} cm long")
    stated = sum(1 for e in used if e.orientation)
    orient = ", ".join(sorted(set(orient_of.tolist())))
    if stated < len(used):
        orient += f" ({len(used) - stated} events without orientation in the RDSR: {setup.orientation_if_missing} "
        orient += "assumed)"
    kvp_missing = sum(1 for e in used if e.kvp is None)
    lines = [
        f"Skin dose estimated from {len(used)} irradiation events (RDSR TID 10003 geometry) on a {shape}; "
        f"{ph.sizing}. Patient {orient}, centred on a {setup.pad_thickness_cm:g} cm pad on a table "
        f"{setup.table_length_cm:g} x {setup.table_width_cm:g} x {setup.table_thickness_cm:g} cm.",
        f"Table positions and C-arm angles placed with the {conv.label} convention ({conv.evidence}).",
        "Field: collimated field at the image receptor"
        + (f"; for {b.field_from_kap} events the field at the reference point as KAP/Ka,r (square)"
           if b.field_from_kap else "") + ".",
        f"Inverse square from the reference point to each skin cell ({K.IEC_REFERENCE_POINT}, or the RDSR's "
        "source-to-RP distance).",
        f"Table and pad transmission {setup.table_transmission:.2f} where the ray crosses the table: "
        + ("measured for the unit." if setup.table_transmission_measured else f"{K.TABLE_TRANSMISSION_NOTE}."),
        f"Backscatter factor from kVp, HVL and the field side at the skin: {K.BENMAKHLOUF_2013}; HVL from kVp and "
        f"added Cu at {K.INHERENT_AL_MM} mm Al inherent filtration ({K.BENMAKHLOUF_2011}); added Al not counted.",
        f"Air kerma to skin (water) dose: f = (μen/ρ)water/air, {K.BENMAKHLOUF_2011}.",
        "Not modelled: table tilt and rotation, patient off-centre on the table, arms, heel effect, "
        "the phantom's end faces.",
        f"Uncertainty {K.UNCERTAINTY_NOTE}. To verify before clinical use: {'; '.join(K.VERIFY)}.",
    ]
    if kvp_missing:
        lines.append(f"kVp not reported for {kvp_missing} events: {setup.kvp_if_missing:g} kV assumed for "
                     "backscatter and f (a few per cent).")
    if outside:
        lines.append(f"{outside} events' beams do not reach the phantom surface (e.g. above the head).")
    return "\n".join(lines)


# --- adapters from the parser's output -------------------------------------------------------------------------------
_PHILIPS_TABLE_HEIGHT = ("99PHI-IXR-XPER", "021")  # private "Table Height Position", mm (seen in P1 and u104)
_ORIENT = {("headfirst", "supine"): "HFS", ("feetfirst", "supine"): "FFS", ("headfirst", "prone"): "HFP",
           ("feetfirst", "prone"): "FFP"}


def _meaning(item: Any) -> str:
    if isinstance(item, list | tuple) and item:
        return str(item[-1]).strip().lower().replace("-", "").replace(" ", "")
    return str(item or "").strip().lower().replace("-", "").replace(" ", "")


def _filters(attributes: Mapping[str, Any]) -> tuple[float, float]:
    cu = al = 0.0
    for f in attributes.get("filters") or ():
        lo, hi = f.get("thickness_min_mm"), f.get("thickness_max_mm")
        vals = [float(v) for v in (lo, hi) if v is not None]
        mm = sum(vals) / len(vals) if vals else 0.0
        material = str(f.get("material", "")).lower()
        if "copper" in material:
            cu += mm
        elif "alumin" in material:
            al += mm
    return cu, al


def _private_number(content: Iterable[Mapping[str, Any]], code: tuple[str, str]) -> float | None:
    for item in content or ():
        concept = item.get("concept") or ()
        if len(concept) >= 2 and (concept[0], concept[1]) == code and item.get("value") not in (None, ""):
            try:
                return float(item["value"])
            except (TypeError, ValueError):
                return None
    return None


def skin_event_from_parts(
    quantities: Mapping[str, float | None], attributes: Mapping[str, Any] | None = None,
    content: Sequence[Mapping[str, Any]] | None = None, *, plane: str | None = None, event_uid: str = "",
) -> SkinEvent:
    """A SkinEvent from the parser's per-event values (export names, canonical units), its attributes (filters,
    orientation) and its other content items (the Philips private table height) -- also what the registry keeps."""
    q = quantities
    attributes = attributes or {}
    cu, al = _filters(attributes)
    height = q.get("table_height_position_mm")
    if height is None:
        height = _private_number(content or (), _PHILIPS_TABLE_HEIGHT)
    key = (_meaning(attributes.get("patient_table_relationship")), _meaning(attributes.get("patient_orientation_modifier")))
    return SkinEvent(
        ka_r_mgy=q.get("ka_r_mgy"), kap_gycm2=q.get("kap_gycm2"), kvp=q.get("kvp"), filter_cu_mm=cu, filter_al_mm=al,
        primary_angle_deg=q.get("positioner_primary_angle_deg"),
        secondary_angle_deg=q.get("positioner_secondary_angle_deg"),
        table_longitudinal_mm=q.get("table_longitudinal_position_mm"),
        table_lateral_mm=q.get("table_lateral_position_mm"), table_height_mm=height,
        source_to_isocenter_mm=q.get("distance_source_to_isocenter_mm"),
        source_to_detector_mm=q.get("distance_source_to_detector_mm"),
        source_to_rp_mm=q.get("distance_source_to_rp_mm"),
        field_height_mm=q.get("collimated_field_height_mm"), field_width_mm=q.get("collimated_field_width_mm"),
        field_area_m2=q.get("collimated_field_area_m2"),
        plane=plane or "single", orientation=_ORIENT.get(key), event_uid=event_uid,
    )


def _from_event(ev: IrradiationEventData) -> SkinEvent:
    return skin_event_from_parts({k: v.value for k, v in ev.quantities.items()}, ev.attributes, ev.content,
                                 plane=ev.plane, event_uid=ev.irradiation_event_uid or "")


def skin_events_from_report(report: DoseReport) -> list[SkinEvent]:
    """The projection X-ray events of a parsed report (localizers and image-header events are left out)."""
    return [_from_event(e) for e in report.events if e.event_type != "image_header" and not e.is_localizer]


def skin_dose_for_report(report: DoseReport, setup: Setup | None = None) -> SkinDoseResult:
    """Convenience: the whole chain for one parsed report."""
    patient = Patient(height_m=report.patient.height_m, weight_kg=report.patient.weight_kg)
    unit = Unit(manufacturer=report.equipment.manufacturer, model=report.equipment.model)
    return compute_skin_dose(skin_events_from_report(report), unit=unit, patient=patient, setup=setup)
