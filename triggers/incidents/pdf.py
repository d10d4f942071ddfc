"""PDF of an incident report and of the periodic summary, for the QA committee (fpdf2: pure Python, from PyPI).

The PDF core fonts cover Latin-1, which holds the unit characters used here (``·`` and ``²``); anything else is
replaced by a close ASCII form.
"""

from __future__ import annotations

import io
import re

from fpdf import FPDF
from fpdf.fonts import FontFace

from dosereg.core.display import format_quantity
from triggers.incidents.document import document_context, study_pictures
from triggers.incidents.models import IncidentReport
from triggers.templatetags.triggers_display import person_name

REPLACE = {"—": "-", "–": "-", "→": "->", "≥": ">=", "≤": "<=", "…": "...", "‘": "'", "’": "'", "“": '"', "”": '"',
           "µ": "u"}
APPENDIX_TITLE = "Appendix: irradiation events"
CHART_WIDTH_MM = 180
MAP_WIDTH_MM = 88


def _t(value) -> str:
    text = "" if value is None else str(value)
    for a, b in REPLACE.items():
        text = text.replace(a, b)
    return text.encode("latin-1", "replace").decode("latin-1")


def _svg_height(text: str, width_mm: float) -> float:
    """The height of an SVG drawn ``width_mm`` wide (from its viewBox)."""
    vb = text.split('viewBox="', 1)[1].split('"', 1)[0].split()
    return width_mm * float(vb[3]) / float(vb[2])


class _Doc(FPDF):
    def __init__(self, title: str):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.doc_title = title
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(True, 15)
        self.set_title(_t(title))
        self.set_creator("DoseReg")
        self.add_page()

    def header(self):
        self.set_font("Helvetica", "", 8)
        self.set_text_color(90, 100, 110)
        self.cell(0, 5, _t(f"DoseReg - {self.doc_title}"), new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0, 0, 0)

    def footer(self):
        self.set_y(-12)
        self.set_font("Helvetica", "", 8)
        self.cell(0, 5, f"page {self.page_no()}/{{nb}}", align="R")

    def h1(self, text: str):
        self.set_font("Helvetica", "B", 15)
        self.multi_cell(0, 8, _t(text), new_x="LMARGIN", new_y="NEXT")
        self.ln(1)

    def h2(self, text: str):
        self.ln(2)
        self.set_font("Helvetica", "B", 12)
        self.multi_cell(0, 7, _t(text), new_x="LMARGIN", new_y="NEXT")

    def h3(self, text: str):
        self.set_font("Helvetica", "B", 10)
        self.multi_cell(0, 6, _t(text), new_x="LMARGIN", new_y="NEXT")

    def para(self, text: str, *, italic: bool = False, size: int = 9):
        self.set_font("Helvetica", "I" if italic else "", size)
        self.multi_cell(0, 4.8, _t(text), new_x="LMARGIN", new_y="NEXT")

    def fits(self, height_mm: float) -> None:
        """Start a new page unless ``height_mm`` fits on this one (pictures are never split)."""
        if self.get_y() + height_mm > self.page_break_trigger:
            self.add_page()

    def svg(self, text: str, width_mm: float) -> None:
        height_mm = _svg_height(text, width_mm)
        self.fits(height_mm)
        text = re.sub(r"<title>.*?</title>", "", text)  # tooltips: fpdf2 ignores them, with a warning each
        data = _t(text).encode()  # the SVG parser reads UTF-8; _t keeps to what the core fonts draw
        self.image(io.BytesIO(data), x=self.l_margin, w=width_mm, h=height_mm)
        self.ln(2)

    def table_rows(self, header: list[str], rows: list[list], widths: list[float] | None = None, size: int = 8):
        if not rows:
            return
        self.set_font("Helvetica", "", size)
        with self.table(col_widths=widths, line_height=4.5, first_row_as_headings=True,
                        headings_style=FontFace(emphasis="BOLD", fill_color=(235, 240, 245)),
                        text_align="LEFT") as table:
            row = table.row()
            for h in header:
                row.cell(_t(h))
            for values in rows:
                row = table.row()
                for v in values:
                    row.cell(_t(v))
        self.ln(2)


def incident_pdf_bytes(incident: IncidentReport) -> bytes:
    ctx = document_context(incident)
    doc = _Doc(f"Incident report {incident.pk}")
    for section in (_facts, _significance, _dose_parameters, _analysis, _actions_and_comments, _appendix):
        section(doc, incident, ctx)
    return bytes(doc.output())


def _facts(doc: _Doc, incident: IncidentReport, ctx: dict) -> None:
    doc.h1(f"Incident report {incident.pk}" + (f": {incident.title}" if incident.title else ""))
    doc.para(f"Generated {ctx['generated_at']:%Y-%m-%d %H:%M} for the quality assurance committee.", italic=True)
    doc.h2("The incident")
    alerts = "; ".join(f"alert {a.pk} ({a.rule.name}, {a.get_severity_display()}, {a.quantity_label} "
                       f"{format_quantity(a.quantity, a.value)}, threshold {format_quantity(a.quantity, a.threshold)})"
                       for a in ctx["linked_alerts"])
    patients = "; ".join(" · ".join(x for x in (p.patient_id, person_name(p.name)) if x)
                         for p in ctx["incident_patients"])
    doc.table_rows(["Field", "Value"], [
        ["Patient", patients or "-"],
        ["Type", incident.get_kind_display()],
        ["Category", incident.get_category_display()],
        ["Date of the exposure", incident.incident_date.isoformat()],
        ["Date discovered", incident.discovered_date.isoformat() if incident.discovered_date else "-"],
        ["Room / unit", f"{incident.room.name if incident.room_id else '-'} / "
                        f"{incident.equipment.display_name if incident.equipment_id else '-'}"],
        ["Reporter", incident.reporter.username if incident.reporter_id else "system (automatic draft)"],
        ["Origin", incident.get_origin_display()],
        ["State", incident.get_state_display()],
        ["Linked alerts", alerts or "-"],
    ], widths=[45, 135])
    doc.h3("What happened")
    doc.para(incident.description or "-")


def _significance(doc: _Doc, incident: IncidentReport, ctx: dict) -> None:
    doc.h2("Significance")
    if incident.is_significant:
        due = incident.notification_due_date.isoformat() if incident.notification_due_date else "-"
        doc.para(f"SIGNIFICANT EVENT - to be notified to the competent authority. Due {due}"
                 + (" (OVERDUE)" if incident.notification_overdue else "") + ".")
        for r in ctx["significance"]:
            doc.para(f"- {r['text']}" + (f" - {r['source']}" if r["source"] else ""))
        if incident.notified_date:
            doc.para(f"Notified on {incident.notified_date.isoformat()} to {incident.notified_authority or '-'}, "
                     f"reference {incident.notification_reference or '-'}.")
        else:
            doc.para("Not yet notified.")
    else:
        doc.para("Not a significant event under the active significant-event rules.")


def _dose_parameters(doc: _Doc, incident: IncidentReport, ctx: dict) -> None:
    doc.h2("Dose parameters (physical quantities)")
    taken = incident.snapshot_taken_at.strftime("%Y-%m-%d %H:%M") if incident.snapshot_taken_at else "-"
    doc.para(f"Snapshot taken {taken} when the report was made; kept unchanged if a study is re-imported.",
             italic=True)
    for d in ctx["differences"]:
        doc.para(f"NOTE: the registry's values for study {d['study_instance_uid']} have changed since the snapshot:")
        doc.table_rows(["Quantity", "In this report", "In the registry now"],
                       [[c["what"], c["snapshot"], c["current"]] for c in d["changes"]], widths=[80, 50, 50])
    for s in ctx["snapshot_studies"]:
        doc.h3(f"Study {s['study_instance_uid']}")
        doc.para(f"{s.get('study_date') or 'no date'} - {s.get('modality_type') or ''} - "
                 f"{s.get('study_description') or ''} - {s.get('unit') or 'unit unknown'}"
                 + (f" ({s['room']})" if s.get("room") else ""))
        if s["total_rows"]:
            doc.table_rows(["Quantity", "Value", "Unit"], [list(r) for r in s["total_rows"]], widths=[90, 50, 40])
        else:
            doc.para("No dose quantities recorded for this study.")
        if s.get("effective_dose_method") and s["totals"].get("effective_dose_msv") is not None:
            doc.para(f"Effective dose method: {s['effective_dose_method']}. {ctx['effective_dose_note']}",
                     italic=True, size=8)
        if s["plane_rows"]:
            doc.table_rows(["Plane", *s["plane_cols"]], [[p["plane"], *p["values"]] for p in s["plane_rows"]])
        if s["has_ka_r"]:
            doc.para(ctx["ka_r_note"], italic=True, size=8)
        _pictures(doc, study_pictures(s.get("study_id")))
        if s["event_rows"]:
            doc.para(f"{len(s['event_rows'])} irradiation event(s): listed in the appendix.", size=8)


def _skin_lines(skin: dict, ka_r_total_mgy) -> list[str]:
    if skin.get("geometry_complete") and skin.get("psd_mgy") is not None:
        lines = [f"Peak skin dose {format_quantity('psd_mgy', skin['psd_mgy'])} (estimate, about "
                 f"+/-{skin.get('uncertainty_pct', 50)} %)"
                 + (f", at the {skin['peak']['region']}" if (skin.get("peak") or {}).get("region") else "") + "."]
        by_plane = skin.get("psd_mgy_by_plane") or {}
        if len(by_plane) > 1:
            lines.append("Per plane: " + "; ".join(f"{p} {format_quantity('psd_mgy', v)}"
                                                   for p, v in sorted(by_plane.items())) + ".")
        lines.append(f"Ka,r at the reference point: {format_quantity('ka_r_total_mgy', ka_r_total_mgy)} "
                     f"(not skin dose).")
        return lines
    return [f"Geometry incomplete: Ka,r shown as the surrogate for skin dose - "
            f"{format_quantity('ka_r_total_mgy', ka_r_total_mgy)}. No skin dose map is drawn.",
            *(f"- {r}" for r in skin.get("reasons") or ())]


def _pictures(doc: _Doc, pictures: dict) -> None:
    """The procedure chart, then the skin dose map with its summary beside it (or the geometry notice)."""
    if not pictures:
        return
    if pictures["chart_svg"]:
        doc.fits(_svg_height(pictures["chart_svg"], CHART_WIDTH_MM) + 8)  # the heading stays with its chart
        doc.h3("Dose over the procedure (drawn from the registry's current events)")
        doc.svg(pictures["chart_svg"], CHART_WIDTH_MM)
    skin = pictures["skin"]
    if not skin:
        return
    lines = _skin_lines(skin, pictures["ka_r_total_mgy"])
    if not pictures["skin_png"]:
        doc.h3("Skin dose")
        for line in lines:
            doc.para(line, size=8)
        return
    height = MAP_WIDTH_MM * 668 / 594  # the map's aspect (core.skin_map draws a fixed layout)
    doc.fits(height + 8)
    doc.h3("Skin dose map")
    top = doc.get_y()
    info = doc.image(io.BytesIO(pictures["skin_png"]), x=doc.l_margin, y=top, w=MAP_WIDTH_MM)
    doc.set_xy(doc.l_margin + MAP_WIDTH_MM + 4, top)
    doc.set_font("Helvetica", "", 8)
    text = "\n".join(lines) + "\n\nMethod: " + (skin.get("psd_method") or "-")
    doc.multi_cell(0, 4, _t(text[:1500]), new_x="LMARGIN", new_y="NEXT")
    doc.set_y(max(doc.get_y(), top + info.rendered_height) + 2)


def _appendix(doc: _Doc, incident: IncidentReport, ctx: dict) -> None:
    """The irradiation events of the snapshot, after the report (the QA committee reads the report first)."""
    studies = [s for s in ctx["snapshot_studies"] if s["event_rows"]]
    if not studies:
        return
    doc.add_page()
    doc.h1(APPENDIX_TITLE)
    for s in studies:
        doc.h3(f"Study {s['study_instance_uid']}")
        header = ["#", "Type", "Protocol", "Plane", *s["event_cols"]]
        doc.table_rows(header, [[e["n"], e["type"], e["protocol"], e["plane"], *e["values"]]
                                for e in s["event_rows"]], size=7)


def _analysis(doc: _Doc, incident: IncidentReport, ctx: dict) -> None:
    doc.h2("Analysis")
    doc.h3("Comparison with the DRL")
    for s in ctx["snapshot_studies"]:
        if s.get("drl"):
            doc.para(f"Study {s['study_instance_uid']}: {s['drl']}")
    doc.para(incident.drl_comparison or "-")
    doc.h3("Comparison with the trigger levels")
    if ctx["triggers"]:
        doc.table_rows(["Alert", "Rule", "Severity", "Quantity", "Value", "Threshold"],
                       [[t["alert_id"], t["rule"], t["severity_label"], t["quantity"], t["value_text"],
                         t["threshold_text"]] for t in ctx["triggers"]], widths=[12, 62, 26, 28, 26, 26])
    else:
        doc.para("No trigger level was reached by the linked studies.")
    if incident.trigger_level_comparison:
        doc.para(incident.trigger_level_comparison)
    doc.h3("Skin dose")
    doc.para(ctx["ka_r_note"], italic=True)
    if incident.skin_dose_note and incident.skin_dose_note != ctx["ka_r_note"]:
        doc.para(incident.skin_dose_note)
    doc.h3("Effective dose estimate")
    if incident.effective_dose_estimate_msv is not None:
        doc.para(f"{ctx['effective_dose_text']} - method: "
                 f"{incident.effective_dose_method or 'not stated'}. {ctx['effective_dose_note']}")
    else:
        doc.para("No effective dose estimate.")
    doc.h3("Root cause")
    doc.para(incident.root_cause or "-")
    if incident.analysis_notes:
        doc.h3("Notes")
        doc.para(incident.analysis_notes)
    doc.h3("Information")

    def yn(v):
        return "not recorded" if v is None else ("yes" if v else "no")

    doc.para(f"Patient informed: {yn(incident.patient_informed)}"
             + (f" ({incident.patient_informed_date})" if incident.patient_informed_date else "")
             + f". Referrer informed: {yn(incident.referrer_informed)}"
             + (f" ({incident.referrer_informed_date})" if incident.referrer_informed_date else "") + ".")


def _actions_and_comments(doc: _Doc, incident: IncidentReport, ctx: dict) -> None:
    doc.h2("Corrective and preventive actions")
    if ctx["actions"]:
        today = ctx["today"]
        doc.table_rows(["Kind", "Action", "Owner", "Due", "Done"],
                       [[a.get_kind_display(), a.description, a.owner,
                         a.due_date.isoformat() + (" (overdue)" if a.is_open and a.due_date < today else ""),
                         a.done_date.isoformat() if a.done_date else "open"] for a in ctx["actions"]],
                       widths=[22, 78, 30, 30, 20])
    else:
        doc.para("No actions recorded.")
    doc.h2("Review and comments")
    if ctx["comments"]:
        for c in ctx["comments"]:
            who = c.author.username if c.author_id else "system"
            move = f" {c.from_state} -> {c.to_state}" if c.to_state else ""
            doc.para(f"{c.created_at:%Y-%m-%d %H:%M} {who}{move}" + (f": {c.text}" if c.text else ""))
    else:
        doc.para("None yet.")



def summary_pdf_bytes(summary: dict) -> bytes:
    doc = _Doc(f"Incident summary {summary['period']}")
    doc.h1(f"Incident reports: summary for {summary['period']}")
    doc.para(f"{summary['start']:%Y-%m-%d} to {summary['end']:%Y-%m-%d} - generated "
             f"{summary['generated_at']:%Y-%m-%d %H:%M} - {summary['total']} incident report(s).", italic=True)
    if not summary["total"]:
        doc.para("No incidents were reported in this period.")
    doc.h2("By category")
    doc.table_rows(["Category", "Count"], [[name, n] for _c, name, n in summary["by_category"]], widths=[150, 30])
    doc.h2("By room")
    if summary["by_room"]:
        doc.table_rows(["Room", "Count"], [[name, n] for name, n in summary["by_room"]], widths=[150, 30])
    else:
        doc.para("None.")
    doc.h2("By state")
    doc.table_rows(["State", "Count"], [[name, n] for _c, name, n in summary["by_state"]], widths=[150, 30])
    doc.h2("Significant events")
    if summary["significant"]:
        doc.table_rows(["#", "Date", "Category", "Room", "Notification due", "Notified"],
                       [[s["id"], s["date"].isoformat(), s["category"], s["room"] or "-",
                         (s["due"].isoformat() if s["due"] else "-") + (" (overdue)" if s["overdue"] else ""),
                         s["notified"].isoformat() if s["notified"] else "not yet"] for s in summary["significant"]],
                       widths=[12, 24, 56, 30, 34, 24])
    else:
        doc.para("None.")
    doc.h2("Open actions")
    if summary["open_actions"]:
        doc.table_rows(["Incident", "Kind", "Action", "Owner", "Due"],
                       [[a["incident_id"], a["kind"], a["description"], a["owner"],
                         a["due"].isoformat() + (" (overdue)" if a["overdue"] else "")]
                        for a in summary["open_actions"]], widths=[18, 24, 80, 30, 28])
    else:
        doc.para("None.")
    return bytes(doc.output())
