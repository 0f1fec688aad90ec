"""GET /api/reports/{period}?format=json|html|pdf: a month's (2026-10) or a year's (2026) charging report.

Reading a year of sessions, drawing the charts and laying out the PDF take about a second, so all of it
runs in a worker thread on a read-only connection of its own (`Storage.reader`): the event loop keeps
serving scrapes and other requests meanwhile. The billed hourly prices come from `prices_fetcher`
(start, end) -> PriceHistory, called in that thread too (reports.prices.billed_prices, best effort).
"""
from __future__ import annotations

import asyncio
import json
from typing import Callable
from zoneinfo import ZoneInfo

from aiohttp import web

from billing.tariff import Tariff
from reports.model import BadPeriod, Report, parse_period, report_dict
from reports.prices import PriceHistory
from session_store.api import BadParameter, _choice, _json
from session_store.storage import Storage

FORMATS = ("json", "html", "pdf")
PricesFetcher = Callable[[float, float], PriceHistory]


def _render(storage: Storage, tariff: Tariff, zone: ZoneInfo, prices_fetcher: PricesFetcher | None, label: str,
            fmt: str, tolerance: float) -> tuple[Report, bytes]:
    """In a worker thread: read, build, and render the asked format."""
    from reports.data import load_report     # matplotlib and reportlab load on the first report, not at start-up
    period = parse_period(label, zone)
    history = prices_fetcher(period.start, period.end) if prices_fetcher else PriceHistory(None, None)
    reader = storage.reader()
    try:
        report = load_report(reader, tariff, period, zone, history.prices, prices_note=history.note,
                             tolerance=tolerance)
    finally:
        if reader is not storage:
            reader.close()
    if fmt == "json":
        return report, json.dumps(report_dict(report), allow_nan=False).encode()
    from reports.charts import render_charts
    charts = render_charts(report)
    if fmt == "html":
        from reports.html import render_html
        return report, render_html(report, charts).encode()
    from reports.pdf import render_pdf
    return report, render_pdf(report, charts)


def add_report_routes(app: web.Application, storage: Storage, tariff: Tariff, zone: ZoneInfo,
                      prices_fetcher: PricesFetcher | None, tolerance: float = 0.02) -> None:
    """GET /api/reports/{period}; a bad period or format gets a 400 naming it."""

    async def report(request: web.Request) -> web.StreamResponse:
        label = request.match_info["period"]
        try:
            fmt = _choice(request, "format", FORMATS, "json")
            parse_period(label, zone)
        except (BadParameter, BadPeriod) as error:
            return _json({"error": str(error)}, status=400)
        built, body = await asyncio.to_thread(_render, storage, tariff, zone, prices_fetcher, label, fmt, tolerance)
        if fmt == "json":
            return web.Response(body=body, content_type="application/json")
        if fmt == "html":
            return web.Response(body=body, content_type="text/html", charset="utf-8")
        return web.Response(body=body, content_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="charging-report-{built.period.label}.pdf"'})

    app.router.add_get("/api/reports/{period}", report)
