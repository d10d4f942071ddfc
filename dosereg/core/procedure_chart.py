"""The cumulative chart of a fluoroscopy procedure: Ka,r and KAP summed over procedure time per plane, and each
event's Ka,r against its beam angles (primary: LAO +/RAO -, secondary: cranial +/caudal -, DICOM C.8.7.5).

Pure (no Django), so the study page (``dosereg.web.charts``) and the incident PDF draw the same picture:
``procedure_chart(events)`` builds the data, ``render_svg(chart)`` hand-written SVG (fpdf2 embeds it in the PDF),
``time_marks`` and ``angle_sectors`` the chart's text alternatives (tables).  Numbers go through
:mod:`dosereg.core.display`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from dosereg.core.display import PLAIN, Separators, format_number, format_quantity

PLANE_COLOURS = {"A": "#0b6bcb", "B": "#c2410c", "single": "#0b6bcb"}
OTHER_COLOURS = ("#9333ea", "#15803d", "#ca8a04")
SECTOR_DEG = 30  # angle bins of the table alternative: wide enough to group the usual views (LAO 30, RAO 30 ...)


@dataclass(frozen=True)
class ChartEvent:
    when: dt.datetime | None
    plane: str
    ka_r_mgy: float | None
    kap_gycm2: float | None
    primary_deg: float | None
    secondary_deg: float | None

    @classmethod
    def of(cls, event) -> ChartEvent:
        """From a stored irradiation event (any object with the registry's event field names)."""
        return cls(when=event.datetime, plane=event.plane or "", ka_r_mgy=event.ka_r_mgy, kap_gycm2=event.kap_gycm2,
                   primary_deg=event.positioner_primary_angle_deg,
                   secondary_deg=event.positioner_secondary_angle_deg)


@dataclass
class PlaneTrace:
    plane: str
    x: list[float] = field(default_factory=list)  # minutes since the first event, or the event number
    ka_r_mgy: list[float] = field(default_factory=list)  # cumulative
    kap_gycm2: list[float] = field(default_factory=list)  # cumulative


@dataclass
class ProcedureChart:
    timed: bool  # x is procedure time (minutes); else the event number (events without date and time)
    traces: list[PlaneTrace]
    angles: list[tuple[str, float, float, float]]  # (plane, primary, secondary, Ka,r) of events with both angles

    @property
    def x_label(self) -> str:
        return "procedure time (min)" if self.timed else "irradiation event (number)"

    @property
    def x_max(self) -> float:
        return max((t.x[-1] for t in self.traces if t.x), default=0.0)


def _finite(v) -> float | None:
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


def procedure_chart(events: Iterable[ChartEvent]) -> ProcedureChart | None:
    """The chart of these events (in recording order), or None when none carries Ka,r or KAP."""
    events = [e for e in events if _finite(e.ka_r_mgy) is not None or _finite(e.kap_gycm2) is not None]
    if not events:
        return None
    timed = all(e.when is not None for e in events)
    if timed:
        events.sort(key=lambda e: e.when)
        start = events[0].when
    traces: dict[str, PlaneTrace] = {}
    angles = []
    for n, e in enumerate(events, 1):
        plane = e.plane or "single"
        t = traces.setdefault(plane, PlaneTrace(plane))
        ka_r, kap = _finite(e.ka_r_mgy) or 0.0, _finite(e.kap_gycm2) or 0.0
        t.x.append((e.when - start).total_seconds() / 60.0 if timed else float(n))
        t.ka_r_mgy.append((t.ka_r_mgy[-1] if t.ka_r_mgy else 0.0) + ka_r)
        t.kap_gycm2.append((t.kap_gycm2[-1] if t.kap_gycm2 else 0.0) + kap)
        p, s = _finite(e.primary_deg), _finite(e.secondary_deg)
        if p is not None and s is not None and _finite(e.ka_r_mgy) is not None:
            angles.append((plane, p, s, float(e.ka_r_mgy)))
    return ProcedureChart(timed=timed, traces=[traces[k] for k in sorted(traces)], angles=angles)


def _value_at(trace: PlaneTrace, values: Sequence[float], x: float) -> float:
    """The cumulative value reached at ``x`` (a step: the last event at or before ``x``)."""
    out = 0.0
    for xi, v in zip(trace.x, values, strict=True):
        if xi > x:
            break
        out = v
    return out


def time_marks(chart: ProcedureChart, *, rows: int = 8) -> list[dict]:
    """The cumulative chart as a table: Ka,r and KAP per plane at evenly spaced points, the end included."""
    end = chart.x_max
    xs = sorted({round(end * i / rows, 1) for i in range(1, rows + 1)}) if end > 0 else [0.0]
    if not chart.timed:
        xs = sorted({max(1.0, float(round(x))) for x in xs})
    return [{"x": format_number(x) if chart.timed else str(int(x)),
             "planes": [(t.plane, _value_at(t, t.ka_r_mgy, x), _value_at(t, t.kap_gycm2, x)) for t in chart.traces]}
            for x in xs]


def _sector(angle: float) -> str:
    lo = math.floor(angle / SECTOR_DEG) * SECTOR_DEG
    return f"{lo} to {lo + SECTOR_DEG}"


def angle_sectors(chart: ProcedureChart) -> list[dict]:
    """Each event's Ka,r against its beam angles as a table: Ka,r summed per 30° sector of the primary and secondary
    angles, per plane, the largest first."""
    sums: dict[tuple[str, str, str], list[float]] = {}
    for plane, p, s, ka_r in chart.angles:
        acc = sums.setdefault((plane, _sector(p), _sector(s)), [0, 0.0])
        acc[0] += 1
        acc[1] += ka_r
    return [{"plane": k[0], "primary": k[1], "secondary": k[2], "events": v[0], "ka_r_mgy": v[1]}
            for k, v in sorted(sums.items(), key=lambda kv: -kv[1][1])]


# --- SVG -------------------------------------------------------------------------------------------------------------
def _nice_max(v: float) -> float:
    if not v > 0 or not math.isfinite(v):
        return 1.0
    exp = 10.0 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        top = m * exp
        if math.isfinite(top) and v <= top * (1 + 1e-9):
            return top
    return v  # off the float grid (a sub-normal value, or one near the largest float): the value is the axis top


def _colour(plane: str, i: int) -> str:
    return PLANE_COLOURS.get(plane) or OTHER_COLOURS[i % len(OTHER_COLOURS)]


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 11, fill: str = "#1d2733",
          bold: bool = False) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{fill}"{weight}>'
            f"{escape(text)}</text>")


@dataclass(frozen=True)
class _Box:
    left: float
    top: float
    width: float
    height: float

    def frame(self) -> str:
        return (f'<rect x="{self.left}" y="{self.top}" width="{self.width}" height="{self.height}" fill="#f8fafc" '
                f'stroke="#b8c4d0"/>')


def _cumulative_panel(chart: ProcedureChart, box: _Box, name: str, title: str, seps: Separators) -> list[str]:
    values = [v for t in chart.traces for v in (t.ka_r_mgy if name == "ka_r_total_mgy" else t.kap_gycm2)]
    vmax, xmax = _nice_max(max(values, default=0.0)), _nice_max(chart.x_max)
    out = [f'<g class="panel" data-quantity="{name}">', box.frame(),
           _text(box.left, box.top - 8, title, bold=True, size=12)]
    for frac in (0, 0.5, 1):
        y = box.top + box.height * (1 - frac)
        out.append(_text(box.left - 6, y + 4, format_quantity(name, vmax * frac, seps=seps), anchor="end", size=10,
                         fill="#3d4b5a"))
        x = box.left + box.width * frac
        out.append(_text(x, box.top + box.height + 14, format_number(xmax * frac, seps=seps), anchor="middle",
                         size=10, fill="#3d4b5a"))
    out.append(_text(box.left + box.width / 2, box.top + box.height + 28, chart.x_label, anchor="middle", size=10,
                     fill="#3d4b5a"))
    for i, t in enumerate(chart.traces):
        ys = t.ka_r_mgy if name == "ka_r_total_mgy" else t.kap_gycm2
        pts, prev = [f"{box.left:.1f},{box.top + box.height:.1f}"], 0.0
        for x, v in zip(t.x, ys, strict=True):  # a step line: the dose rises at each event
            px = box.left + box.width * x / xmax
            pts.append(f"{px:.1f},{box.top + box.height * (1 - prev / vmax):.1f}")
            pts.append(f"{px:.1f},{box.top + box.height * (1 - v / vmax):.1f}")
            prev = v
        dash = ' stroke-dasharray="6 3"' if i % 2 else ""
        out.append(f'<polyline class="trace" data-plane="{escape(t.plane)}" points="{" ".join(pts)}" fill="none" '
                   f'stroke="{_colour(t.plane, i)}" stroke-width="2"{dash}><title>{escape(_plane_name(t.plane))}: '
                   f'{escape(format_quantity(name, ys[-1], seps=seps))}</title></polyline>')
    out.append("</g>")
    return out


def _angle_panel(chart: ProcedureChart, box: _Box, which: int, title: str, seps: Separators) -> list[str]:
    """Each event's Ka,r (vertical) against one beam angle (horizontal), one dot per event."""
    vmax = _nice_max(max((a[3] for a in chart.angles), default=0.0))
    angles = [a[1 + which] for a in chart.angles]
    reach = max(30.0, _nice_max(max((abs(a) for a in angles), default=0.0)))
    out = [f'<g class="panel angles" data-angle="{"primary" if which == 0 else "secondary"}">', box.frame(),
           _text(box.left, box.top - 8, title, bold=True, size=12)]
    for frac in (0, 1):
        out.append(_text(box.left - 6, box.top + box.height * (1 - frac) + 4,
                         format_quantity("ka_r_mgy", vmax * frac, seps=seps), anchor="end", size=10, fill="#3d4b5a"))
    for frac in (-1, 0, 1):
        x = box.left + box.width * (0.5 + frac / 2)
        out.append(_text(x, box.top + box.height + 14, f"{format_number(reach * frac, seps=seps)}°",
                         anchor="middle", size=10, fill="#3d4b5a"))
    out.append(f'<line x1="{box.left + box.width / 2:.1f}" y1="{box.top}" x2="{box.left + box.width / 2:.1f}" '
               f'y2="{box.top + box.height}" stroke="#dde3ea"/>')
    planes = [t.plane for t in chart.traces]
    for plane, p, s, ka_r in chart.angles:
        a = (p, s)[which]
        cx = box.left + box.width * (0.5 + a / reach / 2)
        cy = box.top + box.height * (1 - ka_r / vmax)
        colour = _colour(plane, planes.index(plane) if plane in planes else 0)
        out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{colour}" fill-opacity="0.6"><title>'
                   f'{escape(_plane_name(plane))}: {format_number(p, seps=seps)}° / {format_number(s, seps=seps)}°, '
                   f'{escape(format_quantity("ka_r_mgy", ka_r, seps=seps))}</title></circle>')
    out.append("</g>")
    return out


def _plane_name(plane: str) -> str:
    return "single plane" if plane == "single" else f"plane {plane}"


def render_svg(chart: ProcedureChart, *, seps: Separators = PLAIN, width: int = 900) -> str:
    """The chart: cumulative Ka,r and KAP side by side, below them Ka,r per event against the primary and the
    secondary angle (when the events carry angles), a legend of the planes."""
    half = (width - 2 * 90 - 40) / 2
    top_box = (_Box(90, 30, half, 150), _Box(90 + half + 100, 30, half, 150))
    height = 230
    parts = [*_cumulative_panel(chart, top_box[0], "ka_r_total_mgy", "Ka,r, cumulative", seps),
             *_cumulative_panel(chart, top_box[1], "kap_total_gycm2", "KAP, cumulative", seps)]
    if chart.angles:
        low = (_Box(90, 270, half, 130), _Box(90 + half + 100, 270, half, 130))
        parts += _angle_panel(chart, low[0], 0, "Ka,r per event against the primary angle (RAO - / LAO +)", seps)
        parts += _angle_panel(chart, low[1], 1, "... against the secondary angle (caudal - / cranial +)", seps)
        height = 440
    lx = 90
    for i, t in enumerate(chart.traces):
        colour = _colour(t.plane, i)
        dash = ' stroke-dasharray="6 3"' if i % 2 else ""
        parts.append(f'<line x1="{lx}" y1="{height - 8}" x2="{lx + 22}" y2="{height - 8}" stroke="{colour}" '
                     f'stroke-width="2"{dash}/>')
        parts.append(_text(lx + 28, height - 4, _plane_name(t.plane), size=11))
        lx += 130
    label = "Cumulative Ka,r and KAP over the procedure, and Ka,r per event against the beam angles"
    return (f'<svg class="chart procedure" role="img" aria-label="{label}" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
            f"<title>{label}</title>{''.join(parts)}</svg>")
