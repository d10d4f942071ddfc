"""Charts rendered on the server as inline SVG: no JavaScript, no CDN (hospital networks are often offline)."""

from __future__ import annotations

import datetime as dt
import math
from html import escape

from dosereg.core import procedure_chart
from dosereg.core.display import column_label
from dosereg.core.quantities import MODALITY_LABELS, QUANTITIES
from dosereg.web.formatting import number, quantity, separators

MODALITY_COLOURS = {"CT": "#0b6bcb", "fluoroscopy": "#c2410c", "radiography": "#15803d", "mammography": "#9333ea",
                    "nuclear_medicine": "#ca8a04"}
SERIES_COLOURS = ["#0b6bcb", "#c2410c", "#9333ea", "#15803d", "#ca8a04", "#0e7490", "#be123c"]


def _nice_max(v: float) -> float:
    """The axis maximum: 1, 2, 2.5, 5 or 10 times a power of ten, at least ``v`` (``v`` itself near the float limit)."""
    if not v > 0 or not math.isfinite(v):
        return 1.0
    exp = 10.0 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp if math.isfinite(m * exp) else v
    return v


def timeline_svg(points: dict[str, list[tuple[dt.date, float]]], *, width: int = 900,
                 alerts: list[tuple[dt.date, str]] = ()) -> str:
    """One small panel per quantity (own scale, shared time axis): different quantities never share an axis.

    ``points`` maps a quantity field (``dlp_total_mgycm`` ...) to (date, value) pairs; ``alerts`` the dates of
    studies with alerts and their texts, marked by a red line across the panels and a triangle above them."""
    plottable = {f: [(d, v) for d, v in pts if isinstance(v, int | float) and math.isfinite(v) and v > 0]
                 for f, pts in points.items()}  # a stored inf, NaN or negative value has no place on the axis
    series = [(f, pts) for f, pts in plottable.items() if pts]
    if not series:
        return ""
    dates = [d for _, pts in series for d, _ in pts]
    dates += [d for d, _text in alerts]  # a study with an alert but no plotted value still gets its mark
    d0, d1 = min(dates), max(dates)
    if d0 == d1:
        d0, d1 = d0 - dt.timedelta(days=15), d1 + dt.timedelta(days=15)
    span = (d1 - d0).days or 1
    left, right, panel_h, gap, top = 200, 20, 64, 16, 10 + (14 if alerts else 0)
    plot_w = width - left - right
    height = top + len(series) * (panel_h + gap) + 24
    out = [f'<svg class="chart timeline" role="img" aria-label="Dose timeline" viewBox="0 0 {width} {height}" '
           f'xmlns="http://www.w3.org/2000/svg" width="100%">']

    def x(d: dt.date) -> float:
        return left + plot_w * (d - d0).days / span

    for i, (field, pts) in enumerate(series):
        label = column_label(field) if field in QUANTITIES else field
        y0 = top + i * (panel_h + gap)
        vmax = _nice_max(max(v for _, v in pts))
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        out.append(f'<g class="panel" data-quantity="{escape(field)}">')
        out.append(f'<rect x="{left}" y="{y0}" width="{plot_w}" height="{panel_h}" fill="#f8fafc" stroke="#dde3ea"/>')
        out.append(f'<text x="{left - 8}" y="{y0 + panel_h / 2 + 4}" text-anchor="end" font-size="12" '
                   f'fill="#1d2733">{escape(str(label))}</text>')
        out.append(f'<text x="{left - 8}" y="{y0 + 10}" text-anchor="end" font-size="10" fill="#5b6b7c">'
                   f'{escape(quantity(field, vmax, switch=False))}</text>')
        out.append(f'<text x="{left - 8}" y="{y0 + panel_h}" text-anchor="end" font-size="10" fill="#5b6b7c">0</text>')
        for d, v in sorted(pts):
            cx = x(d)
            h = panel_h * v / vmax
            out.append(f'<line x1="{cx:.1f}" y1="{y0 + panel_h}" x2="{cx:.1f}" y2="{y0 + panel_h - h:.1f}" '
                       f'stroke="{colour}" stroke-width="3" stroke-linecap="round"/>')
            out.append(f'<circle cx="{cx:.1f}" cy="{y0 + panel_h - h:.1f}" r="4" fill="{colour}">'
                       f'<title>{d.isoformat()}: {escape(quantity(field, v))}</title></circle>')
        out.append("</g>")
    axis_y = top + len(series) * (panel_h + gap) - gap + 16
    for d, text in alerts:
        ax = x(d)
        out.append(f'<g class="alert-mark"><line x1="{ax:.1f}" y1="{top - 2}" x2="{ax:.1f}" y2="{axis_y - 14}" '
                   f'stroke="#be123c" stroke-width="1.5" stroke-dasharray="4 3"/><path d="M{ax - 6:.1f},{top - 12} '
                   f'L{ax + 6:.1f},{top - 12} L{ax:.1f},{top - 2} Z" fill="#be123c"/><title>{d.isoformat()} alert: '
                   f'{escape(text)}</title></g>')
    for frac in (0, 0.25, 0.5, 0.75, 1):
        d = d0 + dt.timedelta(days=round(span * frac))
        anchor = "start" if frac == 0 else "end" if frac == 1 else "middle"
        out.append(f'<text x="{x(d):.1f}" y="{axis_y}" text-anchor="{anchor}" font-size="11" fill="#5b6b7c">'
                   f'{d.isoformat()}</text>')
    out.append("</svg>")
    return "".join(out)


def weekly_bars_svg(rows: list[dict], *, weeks: list | None = None, width: int = 900, height: int = 240) -> str:
    """Stacked bars: studies per modality type and week.  ``rows``: {week, modality_type, n}; ``weeks``: every
    week to show (weeks without studies get an empty slot)."""
    if not rows:
        return ""
    weeks = sorted(set(weeks or []) | {r["week"] for r in rows})
    mods = [m for m in MODALITY_COLOURS if any(r["modality_type"] == m for r in rows)]
    mods += sorted({r["modality_type"] or "unknown" for r in rows} - set(mods))
    counts = {(r["week"], r["modality_type"] or "unknown"): r["n"] for r in rows}
    totals = {w: sum(counts.get((w, m), 0) for m in mods) for w in weeks}
    vmax = _nice_max(max(totals.values()))
    left, right, top, bottom = 50, 10, 10, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    bw = plot_w / len(weeks)
    out = [f'<svg class="chart weekly" role="img" aria-label="Studies per week" viewBox="0 0 {width} {height}" '
           f'xmlns="http://www.w3.org/2000/svg" width="100%">',
           f'<text x="{left - 6}" y="{top + 10}" text-anchor="end" font-size="10" fill="#5b6b7c">{number(vmax)}</text>',
           f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#b8c4d0"/>']
    for i, w in enumerate(weeks):
        y = top + plot_h
        for m in mods:
            n = counts.get((w, m), 0)
            if not n:
                continue
            h = plot_h * n / vmax
            y -= h
            out.append(f'<rect x="{left + i * bw + 2:.1f}" y="{y:.1f}" width="{max(bw - 4, 1):.1f}" height="{h:.1f}" '
                       f'fill="{MODALITY_COLOURS.get(m, "#64748b")}"><title>{escape(str(w))} {escape(m)}: {n}'
                       f'</title></rect>')
        if len(weeks) <= 16 or i % 2 == 0:
            out.append(f'<text x="{left + (i + 0.5) * bw:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                       f'font-size="10" fill="#5b6b7c">{w.isoformat() if hasattr(w, "isoformat") else w}</text>')
    lx = left
    for m in mods:
        label = MODALITY_LABELS.get(m, m)
        colour = MODALITY_COLOURS.get(m, "#64748b")
        out.append(f'<rect x="{lx}" y="{height - 16}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{lx + 14}" y="{height - 7}" font-size="11" fill="#1d2733">{escape(label)}</text>')
        lx += 34 + 7 * len(label)
    out.append("</svg>")
    return "".join(out)


def modality_bars_svg(items: list[tuple[str, int]], *, label: str, width: int = 640) -> str:
    """Horizontal bars: a count per modality type (``items`` in display order).  The page shows the same figures
    as a table beside it (the chart's text alternative)."""
    if not items:
        return ""
    row_h, left, right, top = 26, 150, 60, 6
    height = top * 2 + row_h * len(items)
    vmax = max(n for _m, n in items) or 1
    plot_w = width - left - right
    out = [f'<svg class="chart bars" role="img" aria-label="{escape(label)}" viewBox="0 0 {width} {height}" '
           f'xmlns="http://www.w3.org/2000/svg" width="100%">']
    for i, (m, n) in enumerate(items):
        y = top + i * row_h
        w = plot_w * n / vmax
        name = MODALITY_LABELS.get(m, m or "unknown")
        out.append(f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" font-size="12" fill="#1d2733">'
                   f'{escape(name)}</text>'
                   f'<rect x="{left}" y="{y + 4}" width="{max(w, 1):.1f}" height="{row_h - 8}" '
                   f'fill="{MODALITY_COLOURS.get(m, "#64748b")}"><title>{escape(name)}: {n}</title></rect>'
                   f'<text x="{left + w + 6:.1f}" y="{y + 17}" font-size="12" fill="#1d2733">{number(n, 6)}</text>')
    out.append("</svg>")
    return "".join(out)


# --- one study -------------------------------------------------------------------------------------------------------
def procedure_chart_svg(chart: procedure_chart.ProcedureChart | None) -> str:
    """The fluoroscopy procedure's cumulative chart (``dosereg.core.procedure_chart``) with the locale's numbers."""
    return procedure_chart.render_svg(chart, seps=separators()) if chart else ""


def _bar_panel(rows: list[tuple[str, float]], name: str, drl: float | None, top: float, width: int) -> list[str]:
    """Horizontal bars of one quantity, with the DRL as a dashed line; returns the SVG parts."""
    left, right, row_h = 230, 90, 22
    vmax = _nice_max(max([v for _l, v in rows] + ([drl] if drl else [])))
    plot_w = width - left - right
    out = [f'<g class="panel" data-quantity="{escape(name)}">',
           f'<text x="{left}" y="{top - 6}" font-size="12" font-weight="bold" fill="#1d2733">'
           f'{escape(column_label(name))}</text>']
    for i, (label, v) in enumerate(rows):
        y = top + i * row_h
        w = plot_w * v / vmax
        colour = "#b45309" if drl and v > drl else "#0b6bcb"
        out.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" font-size="11" fill="#1d2733">'
                   f'{escape(label[:34])}</text>'
                   f'<rect x="{left}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row_h - 6}" fill="{colour}">'
                   f'<title>{escape(label)}: {escape(quantity(name, v, switch=False))}</title></rect>'
                   f'<text x="{left + w + 6:.1f}" y="{y + 15}" font-size="11" fill="#1d2733">'
                   f'{escape(quantity(name, v, switch=False))}</text>')
    bottom = top + len(rows) * row_h
    if drl:
        x = left + plot_w * drl / vmax
        out.append(f'<line class="drl" x1="{x:.1f}" y1="{top - 2}" x2="{x:.1f}" y2="{bottom + 2}" stroke="#be123c" '
                   f'stroke-width="2" stroke-dasharray="5 3"/><text x="{x:.1f}" y="{bottom + 15}" text-anchor="middle" '
                   f'font-size="11" fill="#be123c">DRL {escape(quantity(name, drl, switch=False))}</text>')
    out.append("</g>")
    return out


def ct_bars_svg(acquisitions: list[tuple[str, float | None, float | None]], *, dlp_total: float | None,
                drl: dict[str, float], width: int = 900) -> str:
    """CTDIvol and DLP per acquisition ((label, CTDIvol, DLP)) as bars against the study's DRL (``drl``: catalogue
    name -> value, per examination: the DLP line is set against the study's total, shown as its own bar)."""
    ctdi = [(label, c) for label, c, _d in acquisitions if isinstance(c, int | float) and math.isfinite(c)]
    dlp = [(label, d) for label, _c, d in acquisitions if isinstance(d, int | float) and math.isfinite(d)]
    if dlp and dlp_total is not None and len(dlp) > 1:
        dlp.append(("Study total", dlp_total))
    if not ctdi and not dlp:
        return ""
    parts, top = [], 24
    for name, rows in (("ctdivol_mgy", ctdi), ("dlp_mgycm", dlp)):
        if rows:
            parts += _bar_panel(rows, name, drl.get(name), top, width)
            top += len(rows) * 22 + 50
    label = "CTDIvol and DLP per acquisition against the DRL"
    return (f'<svg class="chart ct-bars" role="img" aria-label="{label}" viewBox="0 0 {width} {top}" width="{width}" '
            f'height="{top}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>')
