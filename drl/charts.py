"""Server-side inline SVG box plots (no JavaScript, no CDN): one box per unit, the DRL as a dashed line."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from dosereg.core.quantities import QUANTITIES
from drl.display import limit_text, value_number


def box_plot_svg(rows, *, title: str, quantity: str) -> SafeString:
    """rows: objects with equipment_name, minimum, p25, median, p75, maximum, drl, n; ``quantity``: the catalogue
    name of the values (the axis is in its canonical unit)."""
    unit = QUANTITIES[quantity].unit_symbol

    def _fmt(v: float) -> str:
        return value_number(quantity, v)

    rows = [r for r in rows if r.median is not None]
    if not rows:
        return mark_safe("")
    drl = next((r.drl for r in rows if r.drl is not None), None)
    top = max([r.maximum for r in rows] + ([drl * 1.1] if drl else [])) or 1.0
    width, height, left, bottom, pad = max(320, 110 * len(rows) + 80), 240, 60, 60, 16
    plot_h = height - bottom - pad

    def y(v: float) -> float:
        return pad + plot_h * (1 - v / top)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="boxplot" width="{width}" height="{height}" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<line x1="{left}" y1="{pad}" x2="{left}" y2="{pad + plot_h}" stroke="#5b6b7c"/>']
    for k in range(5):
        v = top * k / 4
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end">{_fmt(v)}</text>'
                     f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - 10}" y2="{y(v):.1f}" stroke="#eef2f6"/>')
    parts.append(f'<text x="12" y="{pad + plot_h / 2:.0f}" font-size="11" transform="rotate(-90 12 '
                 f'{pad + plot_h / 2:.0f})" text-anchor="middle">{escape(unit)}</text>')
    for i, r in enumerate(rows):
        cx = left + 40 + i * 110
        colour = "#b91c1c" if r.drl is not None and r.median > r.drl else "#0b6bcb"
        parts.append(
            f'<g><title>{escape(r.equipment_name)}: median {_fmt(r.median)}, P25 {_fmt(r.p25)}, '
            f'P75 {_fmt(r.p75)} {escape(unit)}, n={r.n}</title>'
            f'<line x1="{cx}" y1="{y(r.minimum):.1f}" x2="{cx}" y2="{y(r.maximum):.1f}" stroke="#5b6b7c"/>'
            f'<rect x="{cx - 25}" y="{y(r.p75):.1f}" width="50" height="{max(y(r.p25) - y(r.p75), 1):.1f}" '
            f'fill="#dbe8f7" stroke="{colour}"/>'
            f'<line x1="{cx - 25}" y1="{y(r.median):.1f}" x2="{cx + 25}" y2="{y(r.median):.1f}" stroke="{colour}" '
            f'stroke-width="3"/></g>'
            f'<text x="{cx}" y="{height - bottom + 16}" font-size="10" text-anchor="middle">'
            f'{escape(r.equipment_name[:18])}</text>'
            f'<text x="{cx}" y="{height - bottom + 30}" font-size="10" text-anchor="middle" fill="#5b6b7c">n={r.n}'
            f'</text>')
    if drl is not None:
        parts.append(f'<line class="drl-line" x1="{left}" y1="{y(drl):.1f}" x2="{width - 10}" y2="{y(drl):.1f}" '
                     f'stroke="#b91c1c" stroke-dasharray="6 4" stroke-width="2"/>'
                     f'<text x="{width - 12}" y="{y(drl) - 4:.1f}" font-size="11" text-anchor="end" fill="#b91c1c">'
                     f'DRL {escape(limit_text(quantity, drl))}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
