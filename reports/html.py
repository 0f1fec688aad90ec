"""The report as one self-contained HTML page: charts inlined as data: URIs, no JavaScript, no CDN, so it
opens offline, prints, and survives being mailed as an attachment."""
from __future__ import annotations

import base64
from typing import Any, Mapping

import jinja2

from reports.model import Report
from reports.text import Chart, Facts, Paragraph, Table, sections

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("reports", "templates"), autoescape=True,
                          trim_blocks=True, lstrip_blocks=True)
_KINDS = {Facts: "facts", Table: "table", Chart: "chart", Paragraph: "paragraph"}


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(report: Report, charts: Mapping[str, bytes]) -> str:
    """`charts`: PNG bytes per chart key (reports.charts.render_charts)."""
    laid_out: list[Any] = [{"title": s.title, "blocks": [{"kind": _KINDS[type(b)], "block": b} for b in s.blocks]}
                           for s in sections(report)]
    return _ENV.get_template("report.html.j2").render(
        report=report, sections=laid_out, charts={key: data_uri(png) for key, png in charts.items()})
