"""The DRL comparison as a PDF for the annual radiation-protection file (fpdf2: pure Python, no system libraries):
the method, the table (each row naming its DRL set, value and verify flag; the sets' sources as numbered notes) and
the box plots of the web page, drawn with fpdf2's primitives from the same grouping and scale (``drl.charts``).
Numbers go through the one formatter (``drl.display`` -> ``dosereg.core.display``)."""

from __future__ import annotations

from fpdf import FPDF

from dosereg.core.display import column_label
from dosereg.core.quantities import QUANTITIES
from drl.charts import (
    ABOVE_COLOUR,
    AXIS_COLOUR,
    BOX_COLOUR,
    FILL_COLOUR,
    GRID_COLOUR,
    BoxScale,
    box_scale,
    chart_groups,
)
from drl.comparison import thickness_text
from drl.display import limit_number, limit_text, number_text, status_text, value_number
from drl.models import DrlComparison

# (title, width mm, characters kept) on A4 landscape (277 mm between the margins)
COLUMNS = [("Examination", 42, 28), ("Unit", 34, 22), ("Group", 14, 10), ("Quantity", 38, 30), ("n", 8, 6),
           ("Left out", 12, 6), ("Median", 17, 12), ("P75", 17, 12), ("Mean", 17, 12), ("DRL", 17, 12),
           ("DRL set", 26, 17), ("Ratio", 11, 8), ("Status", 22, 17)]
# box plot geometry (mm): plot height, value-axis width, room per unit, label band under the plot
PLOT_H, AXIS_W, BOX_STEP, BOX_W, LABEL_H = 42.0, 18.0, 24.0, 11.0, 9.0


def _t(text) -> str:
    """fpdf2's core fonts are Latin-1: spell the few non-Latin-1 characters out."""
    s = "" if text is None else str(text)
    s = s.replace("·", ".").replace("²", "2").replace("≥", ">=").replace("–", "-").replace("—", "-")
    return s.encode("latin-1", "replace").decode("latin-1")


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _header(pdf: FPDF, run: DrlComparison) -> None:
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, _t(f"DRL comparison {run.pk}: {run.period_start} to {run.period_end}"), new_x="LMARGIN",
             new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    lines = [
        "Method: ICRP Publication 135 - median per unit and standard examination, adults (age >= 18 or unknown)"
        + (f", standard-size patients only ({number_text(run.weight_min_kg)}-{number_text(run.weight_max_kg)} kg, "
           f"weight known)" if run.standard_size else "") + ". Per-acquisition values leave out localizers.",
        "Studies with a value that awaits a physicist's confirmation (implausible, flagged at import) are left out of "
        "the medians; 'Left out' counts them.",
        f"Minimum number of patients for a status: {run.min_patients} (site setting; commonly quoted figure, "
        f"not confirmed from ICRP 135 itself).",
        f"Snapshot made {run.created_at:%Y-%m-%d %H:%M} ({run.get_trigger_display()})"
        + (f" by {run.created_by.username}" if run.created_by else "")
        + (", demo studies included" if run.include_demo else "") + ".",
    ]
    if run.equipment_id:
        lines.append(f"Unit: {run.equipment.display_name if run.equipment else run.equipment_id}. {run.note}")
    for line in lines:
        pdf.multi_cell(0, 5, _t(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)


def _table(pdf: FPDF, rows: list) -> dict[str, tuple[int, str, bool]]:
    """The rows; returns the DRL sets named: name -> (note number, source, any value to verify)."""
    sets: dict[str, tuple[int, str, bool]] = {}
    pdf.set_font("Helvetica", "B", 8)
    for title, w, _ in COLUMNS:
        pdf.cell(w, 6, title, border=1)
    pdf.ln()
    for r in rows:
        drl_set = ""
        if r.drl_set_name:
            number, source, verify = sets.get(r.drl_set_name, (len(sets) + 1, r.drl_source, False))
            sets[r.drl_set_name] = (number, source, verify or r.verify)
            drl_set = f"[{number}] {r.drl_set_name}"
        # a band is per image; the cell holds about 24 characters: "AGD (mGy) MLO CBT 60-<100mm"
        band = thickness_text(r.thickness_min_mm, r.thickness_max_mm).replace(" mm", "mm")
        per = "" if band else f" /{r.per[:4]}."
        subset = " ".join(t for t in (r.view, band) if t)
        values = [r.exam_name, r.equipment_name, r.patient_group,
                  f"{column_label(r.column)}{per}" + (f" {subset}" if subset else ""),
                  f"{r.n}", f"{r.n_unconfirmed}", value_number(r.column, r.median), value_number(r.column, r.p75),
                  value_number(r.column, r.mean), limit_number(r.drl) + (" *" if r.verify else ""), drl_set,
                  number_text(r.ratio), status_text(r.status).replace("above", "ABOVE")]
        pdf.set_font("Helvetica", "B" if r.status == "above" else "", 7.5)
        for (_, w, keep), v in zip(COLUMNS, values, strict=True):
            pdf.cell(w, 5, _t(v[:keep]), border=1)
        pdf.ln()
    return sets


def _sources(pdf: FPDF, sets: dict[str, tuple[int, str, bool]]) -> None:
    pdf.set_font("Helvetica", "", 8)
    pdf.ln(3)
    pdf.multi_cell(0, 4.5, _t("* verify: the DRL value was transcribed from a secondary copy; check it against the "
                              "primary publication before relying on it."), new_x="LMARGIN", new_y="NEXT")
    for name, (number, source, verify) in sorted(sets.items(), key=lambda kv: kv[1][0]):
        pdf.multi_cell(0, 4.5, _t(f"[{number}] {name}{' (verify)' if verify else ''}: {source}"),
                       new_x="LMARGIN", new_y="NEXT")


def _box_plot(pdf: FPDF, scale: BoxScale, *, title: str, quantity: str, x0: float, y0: float) -> None:
    """The web page's box plot (``drl.charts.box_plot_svg``) at (x0, y0): value axis with ticks and grid, per unit a
    whisker (minimum-maximum), a P25-P75 box and a thick median line (red when above the DRL), the DRL dashed."""
    unit = QUANTITIES[quantity].unit_symbol
    width = AXIS_W + BOX_STEP * len(scale.rows) + 8
    pdf.set_font("Helvetica", "B", 8)
    pdf.set_text_color(0, 0, 0)
    pdf.text(x0, y0 + 3, _t(title))
    top = y0 + 6

    def y(v: float) -> float:
        return top + PLOT_H * (1 - scale.fraction(v))

    pdf.set_font("Helvetica", "", 6.5)
    pdf.set_line_width(0.2)
    for v in scale.ticks:
        pdf.set_draw_color(*_rgb(GRID_COLOUR))
        pdf.line(x0 + AXIS_W, y(v), x0 + width, y(v))
        label = _t(value_number(quantity, v))
        pdf.text(x0 + AXIS_W - 1.5 - pdf.get_string_width(label), y(v) + 1, label)
    pdf.set_draw_color(*_rgb(AXIS_COLOUR))
    pdf.line(x0 + AXIS_W, top, x0 + AXIS_W, top + PLOT_H)
    with pdf.rotation(90, x0 + 3, top + PLOT_H / 2):
        pdf.text(x0 + 3 - pdf.get_string_width(_t(unit)) / 2, top + PLOT_H / 2, _t(unit))
    for i, r in enumerate(scale.rows):
        cx = x0 + AXIS_W + BOX_STEP * (i + 0.5) + 4
        colour = _rgb(ABOVE_COLOUR if scale.above(r) else BOX_COLOUR)
        pdf.set_draw_color(*_rgb(AXIS_COLOUR))
        pdf.set_line_width(0.2)
        pdf.line(cx, y(r.minimum), cx, y(r.maximum))
        pdf.set_draw_color(*colour)
        pdf.set_fill_color(*_rgb(FILL_COLOUR))
        pdf.rect(cx - BOX_W / 2, y(r.p75), BOX_W, max(y(r.p25) - y(r.p75), 0.3), style="DF")
        pdf.set_line_width(0.8)
        pdf.line(cx - BOX_W / 2, y(r.median), cx + BOX_W / 2, y(r.median))
        pdf.set_text_color(0, 0, 0)
        name = _t(r.equipment_name[:16])
        pdf.text(cx - pdf.get_string_width(name) / 2, top + PLOT_H + 3.5, name)
        pdf.set_text_color(*_rgb(AXIS_COLOUR))
        count = f"n={r.n}"
        pdf.text(cx - pdf.get_string_width(count) / 2, top + PLOT_H + 6.5, count)
    if scale.drl is not None:
        pdf.set_draw_color(*_rgb(ABOVE_COLOUR))
        pdf.set_line_width(0.5)
        pdf.set_dash_pattern(dash=2, gap=1.3)
        pdf.line(x0 + AXIS_W, y(scale.drl), x0 + width, y(scale.drl))
        pdf.set_dash_pattern()
        pdf.set_text_color(*_rgb(ABOVE_COLOUR))
        label = _t(f"DRL {limit_text(quantity, scale.drl)}")
        pdf.text(x0 + width - pdf.get_string_width(label), y(scale.drl) - 1, label)
    pdf.set_text_color(0, 0, 0)
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.2)


def _distributions(pdf: FPDF, rows: list) -> int:
    """The box plots, laid out left to right and page by page; returns how many were drawn."""
    plots = [(g, scale) for g in chart_groups(rows) if (scale := box_scale(g.rows)) is not None]
    if not plots:
        return 0
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 7, "Distributions", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    pdf.multi_cell(0, 4.5, _t("Boxes: 25th-75th percentile; thick line: median (red when above the DRL); whiskers: "
                              "minimum-maximum; dashed red line: the DRL."), new_x="LMARGIN", new_y="NEXT")
    x, y = pdf.l_margin, pdf.get_y() + 2
    height = 6 + PLOT_H + LABEL_H + 4
    for g, scale in plots:
        pdf.set_font("Helvetica", "B", 8)  # the title's font: a slot is as wide as its plot or its title
        width = max(AXIS_W + BOX_STEP * len(scale.rows) + 8, pdf.get_string_width(_t(g.title)) + 2)
        if x > pdf.l_margin and x + width > pdf.w - pdf.r_margin:
            x, y = pdf.l_margin, y + height
        if y + height > pdf.h - pdf.b_margin:
            pdf.add_page()
            x, y = pdf.l_margin, pdf.t_margin
        _box_plot(pdf, scale, title=g.title, quantity=g.column, x0=x, y0=y)
        x += width + 10
    return len(plots)


def drl_comparison_pdf(run: DrlComparison) -> bytes:
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    _header(pdf, run)
    rows = list(run.rows.all().order_by("exam_code", "quantity", "per", "view", "thickness_min_mm", "patient_group",
                                        "equipment_name"))
    sets = _table(pdf, rows)
    _sources(pdf, sets)
    _distributions(pdf, rows)
    return bytes(pdf.output())
