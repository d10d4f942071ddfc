"""Skin-dose map pictures: the phantom surface unrolled in 2-D with isodose bands in Gy, a legend and the peak.

Pure (no Django): ``render_svg(result) -> str`` (hand-written SVG) and ``render_png(result) -> bytes`` (Pillow,
already installed with fpdf2).  Both raise :class:`SkinMapUnavailable` (with the reasons) when the result has no
map, so the API can answer 404 with the reason.  Numbers go through :mod:`dosereg.core.display`.

Layout: horizontal axis = around the body, the posterior midline in the middle, the patient's left to the right
(as seen from behind, which is how the back, where most dose lands, is examined), anterior at both edges;
vertical axis = distance from the top of the head, head at the top.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dosereg.core.display import format_number, format_quantity
from dosereg.core.skin_dose import SkinDoseResult

# Isodose levels (mGy) when the peak reaches 2 Gy: 3 Gy is NCRP 168's substantial radiation dose level for PSD; 2, 5,
# 10 and 15 Gy are the band edges of Balter et al. 2010 (reference-data.md §1.1, §1.3).
CLINICAL_LEVELS_MGY = (500.0, 1000.0, 2000.0, 3000.0, 5000.0, 10000.0, 15000.0)
# Yellow-orange-brown sequential palette (ColorBrewer YlOrBr, 7 classes), light to dark; zero dose stays white.
BAND_COLOURS = ("#ffffd4", "#fee391", "#fec44f", "#fe9929", "#ec7014", "#cc4c02", "#8c2d04", "#4a1602")
NO_DOSE = "#ffffff"
CELL_PX = 4
MARGIN = (56, 28, 150, 40)  # left, top, right (legend), bottom


class SkinMapUnavailable(ValueError):
    """The result has no map (geometry incomplete); ``reasons`` says why."""

    def __init__(self, reasons: tuple[str, ...]):
        self.reasons = reasons
        super().__init__("no skin-dose map: " + ("; ".join(reasons) or "geometry incomplete"))


def isodose_levels(psd_mgy: float) -> tuple[float, ...]:
    """Lower edges of the bands (mGy).  Clinical levels from 2 Gy; below, 10-90 % of the peak in round numbers."""
    if psd_mgy >= 2000.0:
        levels = [x for x in CLINICAL_LEVELS_MGY if x <= psd_mgy]
        return (0.0, *levels)
    if psd_mgy <= 0:
        return (0.0,)
    out = [0.0]
    for frac in (0.1, 0.25, 0.5, 0.75, 0.9):
        x = float(format_number(psd_mgy * frac, 2).replace(",", ""))
        if x > out[-1]:
            out.append(x)
    return tuple(out)


def _bands(grid: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
    """Band index per cell: -1 for no dose, else the index of the highest level reached."""
    idx = np.searchsorted(np.asarray(levels), grid, side="right") - 1
    return np.where(grid > 0, np.clip(idx, 0, len(BAND_COLOURS) - 1), -1)


def _need_map(result: SkinDoseResult) -> np.ndarray:
    if not result.geometry_complete or result.dose_map_mgy is None:
        raise SkinMapUnavailable(result.reasons)
    return np.asarray(result.dose_map_mgy, dtype=float)


def _legend_rows(levels: tuple[float, ...]) -> list[tuple[str, str]]:
    rows = []
    for i, lo in enumerate(levels):
        hi = levels[i + 1] if i + 1 < len(levels) else None
        text = f"≥ {format_quantity('psd_mgy', lo)}" if hi is None else (
            f"< {format_quantity('psd_mgy', hi)}" if lo == 0 else
            f"{format_quantity('psd_mgy', lo)} – {format_quantity('psd_mgy', hi)}")
        rows.append((BAND_COLOURS[min(i, len(BAND_COLOURS) - 1)], text))
    return rows


def _geometry(result: SkinDoseResult, grid: np.ndarray) -> tuple[float, float, float, float]:
    """Map extent in cm: u0, du, v0, dv (cell size)."""
    u, v = np.asarray(result.map_u_cm), np.asarray(result.map_v_cm)
    du = float(u[1] - u[0]) if len(u) > 1 else 1.0
    dv = float(v[1] - v[0]) if len(v) > 1 else 1.0
    return float(u[0] - du / 2), du, float(v[0] - dv / 2), dv


def _title(result: SkinDoseResult) -> str:
    return f"Peak skin dose {format_quantity('psd_mgy', result.psd_mgy)} (±{result.uncertainty_pct} %)"


def render_svg(result: SkinDoseResult) -> str:
    grid = _need_map(result)
    levels = isodose_levels(float(grid.max()))
    bands = _bands(grid, levels)
    n_v, n_u = grid.shape
    left, top, right, bottom = MARGIN
    w, h = n_u * CELL_PX, n_v * CELL_PX
    width, height = left + w + right, top + h + bottom
    u0, du, v0, dv = _geometry(result, grid)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="sans-serif" font-size="11" role="img" aria-label="{escape(_title(result))}">',
        f"<title>{escape(_title(result))}</title>",
        f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="{NO_DOSE}" stroke="#888"/>',
    ]
    for r in range(n_v):  # one rectangle per run of equal band in a row
        row, c = bands[r], 0
        while c < n_u:
            end = c
            while end + 1 < n_u and row[end + 1] == row[c]:
                end += 1
            if row[c] >= 0:
                parts.append(f'<rect x="{left + c * CELL_PX}" y="{top + r * CELL_PX}" width="{(end - c + 1) * CELL_PX}" '
                             f'height="{CELL_PX}" fill="{BAND_COLOURS[row[c]]}"/>')
            c = end + 1
    for u, label in result.landmarks:
        x = left + (u - u0) / du * CELL_PX
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + h}" stroke="#999" stroke-dasharray="3 3"/>')
        parts.append(f'<text x="{x:.1f}" y="{top + h + 14}" text-anchor="middle">{escape(label)}</text>')
    for cm in range(0, int(v0 + n_v * dv) + 1, 25):
        y = top + (cm - v0) / dv * CELL_PX
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{cm} cm</text>')
    parts.append(f'<text x="{left}" y="{top - 10}" font-size="13" font-weight="bold">{escape(_title(result))}</text>')
    if result.peak_u_cm is not None:
        px = left + (result.peak_u_cm - u0) / du * CELL_PX
        py = top + (result.peak_v_cm - v0) / dv * CELL_PX
        parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="6" fill="none" stroke="#000" stroke-width="2"/>')
        parts.append(f'<text x="{px + 9:.1f}" y="{py + 4:.1f}" font-weight="bold" paint-order="stroke" '
                     f'stroke="#fff" stroke-width="3">PSD {escape(format_quantity("psd_mgy", result.psd_mgy))}</text>')
    lx = left + w + 16
    parts.append(f'<text x="{lx}" y="{top + 10}" font-weight="bold">Skin dose</text>')
    for i, (colour, text) in enumerate(_legend_rows(levels)):
        y = top + 20 + i * 18
        parts.append(f'<rect x="{lx}" y="{y}" width="14" height="14" fill="{colour}" stroke="#666"/>')
        parts.append(f'<text x="{lx + 20}" y="{y + 11}">{escape(text)}</text>')
    parts.append(f'<text x="{left}" y="{height - 6}" font-size="10">Head at the top; seen from behind; '
                 f'{escape(result.peak_region)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


def _ascii(text: str) -> str:
    """Pillow's built-in font has no dash or ≥ glyphs."""
    return text.replace("–", "-").replace("≥", ">=").replace("±", "+/-")


def render_png(result: SkinDoseResult) -> bytes:
    grid = _need_map(result)
    levels = isodose_levels(float(grid.max()))
    bands = _bands(grid, levels)
    n_v, n_u = grid.shape
    left, top, right, bottom = MARGIN
    w, h = n_u * CELL_PX, n_v * CELL_PX
    palette = np.array([_rgb(c) for c in (*BAND_COLOURS, NO_DOSE)], dtype=np.uint8)
    cells = palette[np.where(bands < 0, len(BAND_COLOURS), bands)]
    pixels = np.repeat(np.repeat(cells, CELL_PX, axis=0), CELL_PX, axis=1)
    img = Image.new("RGB", (left + w + right, top + h + bottom), "white")
    img.paste(Image.fromarray(pixels, "RGB"), (left, top))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=11)
    bold = ImageFont.load_default(size=13)
    draw.rectangle([left - 1, top - 1, left + w, top + h], outline=(136, 136, 136))
    u0, du, v0, dv = _geometry(result, grid)
    for u, label in result.landmarks:
        x = left + (u - u0) / du * CELL_PX
        for y in range(top, top + h, 6):
            draw.line([(x, y), (x, min(y + 3, top + h))], fill=(153, 153, 153))
        draw.text((x, top + h + 4), label, fill="black", font=font, anchor="ma")
    for cm in range(0, int(v0 + n_v * dv) + 1, 25):
        y = top + (cm - v0) / dv * CELL_PX
        draw.text((left - 6, y), f"{cm} cm", fill="black", font=font, anchor="rm")
    draw.text((left, top - 8), _ascii(_title(result)), fill="black", font=bold, anchor="ls")
    if result.peak_u_cm is not None:
        px = left + (result.peak_u_cm - u0) / du * CELL_PX
        py = top + (result.peak_v_cm - v0) / dv * CELL_PX
        draw.ellipse([px - 6, py - 6, px + 6, py + 6], outline="black", width=2)
        draw.text((px + 9, py), f"PSD {format_quantity('psd_mgy', result.psd_mgy)}", fill="black", font=font,
                  anchor="lm", stroke_width=2, stroke_fill="white")
    lx = left + w + 16
    draw.text((lx, top + 10), "Skin dose", fill="black", font=font, anchor="ls")
    for i, (colour, text) in enumerate(_legend_rows(levels)):
        y = top + 20 + i * 18
        draw.rectangle([lx, y, lx + 14, y + 14], fill=_rgb(colour), outline=(102, 102, 102))
        draw.text((lx + 20, y + 7), _ascii(text), fill="black", font=font, anchor="lm")
    draw.text((left, img.height - 6), f"Head at the top; seen from behind; {result.peak_region}", fill="black",
              font=font, anchor="ls")
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()
