"""Box plots of a comparison: one box per unit, the DRL as a dashed line.  The grouping and the scale are computed
once here (``chart_groups``, ``box_scale``) and drawn twice: as inline SVG for the web page (``box_plot_svg``, no
JavaScript, no CDN) and with fpdf2's primitives for the PDF (``drl.pdf``), so both show the same plot."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from dosereg.core.quantities import QUANTITIES
from drl.display import limit_text, value_number

BOX_COLOUR, ABOVE_COLOUR, AXIS_COLOUR, GRID_COLOUR, FILL_COLOUR = "#0b6bcb", "#b91c1c", "#5b6b7c", "#eef2f6", "#dbe8f7"
TICKS = 4  # intervals on the value axis


@dataclass(frozen=True)
class ChartGroup:
    """The rows of one plot: one examination, quantity (per) and patient group, a row per unit."""

    code: str
    name: str
    column: str  # the catalogue name of the values
    label: str
    per: str
    group: str
    rows: list

    @property
    def title(self) -> str:
        return f"{self.name}: {self.label} per {self.per} ({self.group})"


def chart_groups(rows) -> list[ChartGroup]:
    """Snapshot rows grouped by examination, quantity, per and patient group, in the rows' order."""
    grouped = defaultdict(list)
    for r in rows:
        grouped[(r.exam_code, r.exam_name, r.column, r.label, r.per_text, r.patient_group)].append(r)
    return [ChartGroup(*key, items) for key, items in grouped.items()]


@dataclass(frozen=True)
class BoxScale:
    """The value axis of one plot: 0 to ``top`` (the largest maximum, or 10 % above the DRL), ticks, the DRL."""

    rows: list  # the rows with a median, in order
    top: float
    ticks: list[float]
    drl: float | None

    def fraction(self, value: float) -> float:
        """Height of ``value`` as a fraction of the axis (0 at the bottom)."""
        return value / self.top

    @staticmethod
    def above(row) -> bool:
        return row.drl is not None and row.median > row.drl


def box_scale(rows) -> BoxScale | None:
    """rows: objects with equipment_name, minimum, p25, median, p75, maximum, drl, n; None when none has a median."""
    rows = [r for r in rows if r.median is not None]
    if not rows:
        return None
    drl = next((r.drl for r in rows if r.drl is not None), None)
    top = max([r.maximum for r in rows] + ([drl * 1.1] if drl else [])) or 1.0
    return BoxScale(rows, top, [top * k / TICKS for k in range(TICKS + 1)], drl)


def box_plot_svg(rows, *, title: str, quantity: str) -> SafeString:
    """Inline SVG; ``quantity``: the catalogue name of the values (the axis is in its canonical unit)."""
    scale = box_scale(rows)
    if scale is None:
        return mark_safe("")
    unit = QUANTITIES[quantity].unit_symbol

    def _fmt(v: float) -> str:
        return value_number(quantity, v)

    width, height, left, bottom, pad = max(320, 110 * len(scale.rows) + 80), 240, 60, 60, 16
    plot_h = height - bottom - pad

    def y(v: float) -> float:
        return pad + plot_h * (1 - scale.fraction(v))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="boxplot" width="{width}" height="{height}" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<line x1="{left}" y1="{pad}" x2="{left}" y2="{pad + plot_h}" stroke="{AXIS_COLOUR}"/>']
    for v in scale.ticks:
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end">{_fmt(v)}</text>'
                     f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - 10}" y2="{y(v):.1f}" stroke="{GRID_COLOUR}"/>')
    parts.append(f'<text x="12" y="{pad + plot_h / 2:.0f}" font-size="11" transform="rotate(-90 12 '
                 f'{pad + plot_h / 2:.0f})" text-anchor="middle">{escape(unit)}</text>')
    for i, r in enumerate(scale.rows):
        cx = left + 40 + i * 110
        colour = ABOVE_COLOUR if scale.above(r) else BOX_COLOUR
        parts.append(
            f'<g><title>{escape(r.equipment_name)}: median {_fmt(r.median)}, P25 {_fmt(r.p25)}, '
            f'P75 {_fmt(r.p75)} {escape(unit)}, n={r.n}</title>'
            f'<line x1="{cx}" y1="{y(r.minimum):.1f}" x2="{cx}" y2="{y(r.maximum):.1f}" stroke="{AXIS_COLOUR}"/>'
            f'<rect x="{cx - 25}" y="{y(r.p75):.1f}" width="50" height="{max(y(r.p25) - y(r.p75), 1):.1f}" '
            f'fill="{FILL_COLOUR}" stroke="{colour}"/>'
            f'<line x1="{cx - 25}" y1="{y(r.median):.1f}" x2="{cx + 25}" y2="{y(r.median):.1f}" stroke="{colour}" '
            f'stroke-width="3"/></g>'
            f'<text x="{cx}" y="{height - bottom + 16}" font-size="10" text-anchor="middle">'
            f'{escape(r.equipment_name[:18])}</text>'
            f'<text x="{cx}" y="{height - bottom + 30}" font-size="10" text-anchor="middle" fill="{AXIS_COLOUR}">'
            f'n={r.n}</text>')
    if scale.drl is not None:
        parts.append(f'<line class="drl-line" x1="{left}" y1="{y(scale.drl):.1f}" x2="{width - 10}" '
                     f'y2="{y(scale.drl):.1f}" stroke="{ABOVE_COLOUR}" stroke-dasharray="6 4" stroke-width="2"/>'
                     f'<text x="{width - 12}" y="{y(scale.drl) - 4:.1f}" font-size="11" text-anchor="end" '
                     f'fill="{ABOVE_COLOUR}">DRL {escape(limit_text(quantity, scale.drl))}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
