"""The report as a PDF: A4 portrait, page numbers, tables that split across pages (their header repeated),
the same sections, figures and chart images as the HTML (reports.text lays out both).

Why reportlab: a pure-Python wheel with no system libraries, so `pip install` is the whole set-up on any
machine (and in the Docker image), and it lays out a year's report in a fraction of a second. WeasyPrint
would render the HTML itself, but it needs Debian's pango/cairo stack and takes seconds per document;
matplotlib's own PDF backend cannot lay out text and tables.
"""
from __future__ import annotations

import io
from typing import Any, Mapping
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from reports.model import Report
from reports import text

MARGIN = 16 * mm
WIDTH = A4[0] - 2 * MARGIN
_STYLES = getSampleStyleSheet()
BODY = ParagraphStyle("body", parent=_STYLES["BodyText"], fontSize=9, leading=12)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=8, leading=10, textColor=colors.HexColor("#5b6878"))
H1 = ParagraphStyle("h1", parent=_STYLES["Title"], fontSize=18, leading=22, alignment=0, spaceAfter=2)
H2 = ParagraphStyle("h2", parent=_STYLES["Heading2"], fontSize=12, leading=15, spaceBefore=10, spaceAfter=4)
CAPTION = ParagraphStyle("caption", parent=BODY, fontName="Helvetica-Bold", spaceBefore=2, spaceAfter=2)
GRID = colors.HexColor("#dfe4ea")
HEAD = colors.HexColor("#f2f5f9")


def _page_numbers(title: str) -> type[Canvas]:
    """A canvas that holds its pages back so each footer can say "page N of M"."""

    class Numbered(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:   # noqa: N802 (reportlab's name)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            for number, state in enumerate(self._pages, 1):
                self.__dict__.update(state)
                self.setFont("Helvetica", 8)
                self.setFillColor(colors.HexColor("#7a8594"))
                self.drawString(MARGIN, 9 * mm, f"Charging report {title}")
                self.drawRightString(A4[0] - MARGIN, 9 * mm, f"page {number} of {len(self._pages)}")
                super().showPage()
            super().save()

    return Numbered


def _table(block: text.Table) -> list[Any]:
    rows = [list(block.header)] + [list(r) for r in block.rows]
    if not block.rows:
        rows.append(["none in this period"] + [""] * (len(block.header) - 1))
    table = Table(rows, repeatRows=1, hAlign="LEFT")
    style = [("FONT", (0, 0), (-1, -1), "Helvetica", 8), ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
             ("BACKGROUND", (0, 0), (-1, 0), HEAD), ("LINEBELOW", (0, 0), (-1, -1), 0.4, GRID),
             ("ALIGN", (block.numeric_from, 0), (-1, -1), "RIGHT"), ("TOPPADDING", (0, 0), (-1, -1), 2),
             ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]
    if not block.rows:
        style.append(("SPAN", (0, 1), (-1, 1)))
    table.setStyle(TableStyle(style))
    out: list[Any] = [Paragraph(escape(block.caption), CAPTION)] if block.caption else []
    return out + [table, Spacer(1, 4)]


def _facts(block: text.Facts) -> list[Any]:
    table = Table([[label, value] for label, value in block.rows], hAlign="LEFT",
                  colWidths=(WIDTH * 0.55, WIDTH * 0.25))
    table.setStyle(TableStyle([("FONT", (0, 0), (0, -1), "Helvetica", 9), ("FONT", (1, 0), (1, -1), "Helvetica-Bold", 9),
                               ("ALIGN", (1, 0), (1, -1), "RIGHT"), ("LINEBELOW", (0, 0), (-1, -1), 0.4, GRID),
                               ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]))
    return [table, Spacer(1, 4)]


def _chart(block: text.Chart, charts: Mapping[str, bytes]) -> list[Any]:
    png = charts[block.key]
    width, height = ImageReader(io.BytesIO(png)).getSize()
    image = Image(io.BytesIO(png), width=WIDTH, height=WIDTH * height / width)
    return [image, Paragraph(escape(block.caption), SMALL), Spacer(1, 4)]


def _flowables(block: text.Block, charts: Mapping[str, bytes]) -> list[Any]:
    if isinstance(block, text.Table):
        return _table(block)
    if isinstance(block, text.Facts):
        return _facts(block)
    if isinstance(block, text.Chart):
        return _chart(block, charts)
    return [Paragraph(escape(block.text), BODY)]


def render_pdf(report: Report, charts: Mapping[str, bytes]) -> bytes:
    """`charts`: PNG bytes per chart key (reports.charts.render_charts)."""
    out = io.BytesIO()
    title = report.period.title
    document = SimpleDocTemplate(out, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                                 bottomMargin=MARGIN + 4 * mm, title=f"Charging report {title}",
                                 author="charging-report", subject="EV charging energy and cost")
    story: list[Any] = [Paragraph(escape(f"Charging report {title}"), H1),
                        Paragraph(escape(f"{report.period.first_day} to {report.period.last_day}, local time "
                                         f"({report.zone}); money in dollars, energy in kWh, prices in cents per kWh."),
                                  SMALL)]
    for section in text.sections(report):
        blocks = [_flowables(b, charts) for b in section.blocks]
        # the heading stays with the first block (a chart or a table's first rows), never alone at a page end
        first = blocks[0] if blocks else []
        story.append(KeepTogether([Paragraph(escape(section.title), H2), *first[:2]]))
        story.extend(first[2:])
        for flowables in blocks[1:]:
            story.extend(flowables)
    document.build(story, canvasmaker=_page_numbers(title))
    return out.getvalue()
