"""The DRL comparison as a PDF for the annual radiation-protection file (fpdf2: pure Python, no system libraries)."""

from __future__ import annotations

from fpdf import FPDF

from dosereg.core.display import column_label
from drl.display import limit_number, number_text, value_number
from drl.models import DrlComparison

STATUS_TEXT = {"above": "ABOVE DRL", "below": "below DRL", "insufficient_data": "insufficient data",
               "no_drl": "no DRL"}


def _t(text) -> str:
    """fpdf2's core fonts are Latin-1: spell the few non-Latin-1 characters out."""
    s = "" if text is None else str(text)
    s = s.replace("·", ".").replace("²", "2").replace("≥", ">=").replace("–", "-").replace("—", "-")
    return s.encode("latin-1", "replace").decode("latin-1")


def drl_comparison_pdf(run: DrlComparison) -> bytes:
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
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
        + (f" by {run.created_by.username}" if run.created_by else "") + (", demo studies included" if
                                                                          run.include_demo else "") + ".",
    ]
    if run.equipment_id:
        lines.append(f"Unit: {run.equipment.display_name if run.equipment else run.equipment_id}. {run.note}")
    for line in lines:
        pdf.multi_cell(0, 5, _t(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    cols = [("Examination", 44), ("Unit", 44), ("Group", 16), ("Quantity", 38), ("n", 10), ("Left out", 12),
            ("Median", 18), ("P75", 18), ("Mean", 18), ("DRL", 16), ("Ratio", 12), ("Status", 26)]
    pdf.set_font("Helvetica", "B", 8)
    for title, w in cols:
        pdf.cell(w, 6, title, border=1)
    pdf.ln()
    pdf.set_font("Helvetica", "", 7.5)
    sets = {}
    for r in run.rows.all().order_by("exam_code", "equipment_name", "patient_group", "quantity"):
        if r.drl_set_name:
            sets[r.drl_set_name] = (r.drl_source, r.verify or sets.get(r.drl_set_name, ("", False))[1])
        values = [r.exam_name[:30], r.equipment_name[:30], r.patient_group,
                  f"{column_label(r.column)} /{r.per[:4]}.", f"{r.n}", f"{r.n_unconfirmed}",
                  value_number(r.column, r.median), value_number(r.column, r.p75), value_number(r.column, r.mean),
                  limit_number(r.drl) + (" *" if r.verify else ""), number_text(r.ratio),
                  STATUS_TEXT.get(r.status, r.status)]
        bold = r.status == "above"
        pdf.set_font("Helvetica", "B" if bold else "", 7.5)
        for (_, w), v in zip(cols, values, strict=True):
            pdf.cell(w, 5, _t(v), border=1)
        pdf.ln()
    pdf.set_font("Helvetica", "", 8)
    pdf.ln(3)
    pdf.multi_cell(0, 4.5, _t("* verify: the DRL value was transcribed from a secondary copy; check it against the "
                              "primary publication before relying on it."), new_x="LMARGIN", new_y="NEXT")
    for name, (source, _) in sets.items():
        pdf.multi_cell(0, 4.5, _t(f"{name}: {source}"), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
