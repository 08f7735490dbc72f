"""The figures as one landscape A4 page (fpdf2, with its built-in Helvetica:
no font file to find or download): title and period, the rule for hidden
counts, the bars per month, and the whole table.  Hidden cells are printed
as their marks and get no bar, exactly as on the page."""

from __future__ import annotations

from fpdf import FPDF

from bot.webadmin.charts import month_name
from bot.webadmin.pages import View
from handlers.administration.report import ReportData

ENCODING = "windows-1252"
"""What the built-in fonts can print: every letter of Dutch, French and English."""
PAGE_WIDTH = 297.0
MARGIN = 10.0
LABEL_COLUMN = 62.0
BLUE = (31, 95, 139)
GREY = (120, 120, 112)


def printable(text: str) -> str:
    """Text the built-in fonts can print; anything else becomes '?'."""
    return text.encode(ENCODING, "replace").decode(ENCODING)


def figures_pdf(view: View, data: ReportData, labels: dict[tuple[str, str], str],
                org_name: str) -> bytes:
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.core_fonts_encoding = ENCODING
    pdf.set_auto_page_break(False)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    title = view.t("figures.pdf_title", start=month_name(view, data.months[0]),
                   end=month_name(view, data.months[-1]))
    pdf.set_title(printable(title))
    pdf.set_creator("Confidant")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 7, printable(f"{org_name} — {title}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    rule = view.t("figures.marks", threshold=data.threshold)
    if data.blurred:
        rule += " " + view.t("figures.marks_blurred")
    pdf.multi_cell(0, 3.8, printable(view.t("figures.intro") + " " + rule),
                   new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    _month_bars(pdf, view, data)
    _table(pdf, view, data, labels)
    return bytes(pdf.output())


def _month_bars(pdf: FPDF, view: View, data: ReportData) -> None:
    """Conversations per month as bars; hidden months as their mark, no bar."""
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 5, printable(view.t("figures.per_month")), new_x="LMARGIN", new_y="NEXT")
    cells = [data.cell(m, "cases", "all") for m in data.months]
    top = max([c.count for c in cells if c.count is not None] + [1])
    height, y0 = 34.0, pdf.get_y() + 4
    base = y0 + height
    slot = (PAGE_WIDTH - 2 * MARGIN - LABEL_COLUMN) / max(len(cells), 1)
    pdf.set_draw_color(*GREY)
    pdf.line(MARGIN + LABEL_COLUMN, base, PAGE_WIDTH - MARGIN, base)
    pdf.set_font("Helvetica", "", 7)
    for i, cell in enumerate(cells):
        x = MARGIN + LABEL_COLUMN + slot * i + slot * 0.15
        w = slot * 0.7
        if cell.count is None:
            pdf.set_text_color(*GREY)
            pdf.set_xy(x - slot * 0.1, base - 8)
            pdf.cell(w + slot * 0.2, 3.5, printable(view.t("figures.hidden")), align="C")
            pdf.set_xy(x - slot * 0.1, base - 4.5)
            pdf.cell(w + slot * 0.2, 3.5, printable(str(cell.shown)), align="C")
            pdf.set_text_color(0, 0, 0)
        else:
            h = height * cell.count / top
            pdf.set_fill_color(*BLUE)
            if h > 0:
                pdf.rect(x, base - h, w, h, style="F")
            pdf.set_xy(x, base - h - 4)
            pdf.cell(w, 3.5, str(cell.count), align="C")
        pdf.set_xy(x - slot * 0.1, base + 1)
        pdf.cell(w + slot * 0.2, 3.5, printable(month_name(view, cell.month)), align="C")
    pdf.set_xy(MARGIN, base + 7)


def _table(pdf: FPDF, view: View, data: ReportData,
           labels: dict[tuple[str, str], str]) -> None:
    """Every row of the report, months as columns, then the whole period."""
    columns = [*data.months, "all"]
    width = (PAGE_WIDTH - 2 * MARGIN - LABEL_COLUMN) / len(columns)
    size = 7 if len(columns) <= 14 else 5.5
    row_h = 4.2 if len(data.rows) <= 20 else 3.4
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 5, printable(view.t("figures.table")), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", size)
    pdf.set_fill_color(235, 235, 230)
    pdf.cell(LABEL_COLUMN, row_h, "", border=1)
    for month in columns:
        name = view.t("figures.all") if month == "all" else month_name(view, month)
        pdf.cell(width, row_h, printable(name), border=1, align="C", fill=True)
    pdf.ln(row_h)
    pdf.set_font("Helvetica", "", size)
    for dimension, value in data.rows:
        pdf.cell(LABEL_COLUMN, row_h, printable(labels[(dimension, value)][:48]), border=1)
        for month in columns:
            cell = data.cell(month, dimension, value)
            if cell.hidden:
                pdf.set_text_color(*GREY)
                pdf.set_font("Helvetica", "I", size)
            pdf.cell(width, row_h, printable(str(cell.shown)), border=1, align="R")
            pdf.set_text_color(0, 0, 0)
            pdf.set_font("Helvetica", "", size)
        pdf.ln(row_h)
