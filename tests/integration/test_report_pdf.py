"""Charging reports end to end: a month of sessions (three cars, two Wall Connectors, some paused by smart
charging or the planner) and the home's half-hour meter reads in a real SQLite store; `python -m reports`
run as a user runs it, against a stand-in Prometheus serving the billed hourly prices and against none;
the PDF rendered by poppler (page count, charts drawn, the text) and the HTML, both checked against the
report's own JSON; and the session store's /api/reports/{period}.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from aiohttp import web
from PIL import Image

from benchmarks.reports import TARIFF, TARIFF_YAML, ZONE, Filled, fill_storage
from reports.text import cents, kwh, money, percent
from session_store.report_api import add_report_routes
from session_store.storage import Storage
from testkit import ROOT
from testkit.ports import free_port

pytestmark = pytest.mark.integration
POPPLER = ("pdftoppm", "pdfinfo", "pdftotext")
TINTED = 238          # a pixel darker than this in any channel is ink (the charts' plot areas are #e9eef5)


class Prices(BaseHTTPRequestHandler):
    """Prometheus's query_range answer for the billed hourly price, from the month's own prices."""

    hourly: dict[float, float] = {}

    def do_GET(self) -> None:   # noqa: N802 (http.server's name)
        values = [[t, str(v)] for t, v in sorted(self.hourly.items())]
        body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {}, "values": values}]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Made:
    directory: Path
    database: Path
    filled: Filled
    runs: dict[str, Run]


def command(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "reports", *args, "--config", str(config)]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Made]:
    directory = tmp_path_factory.mktemp("reports")
    database = directory / "store.sqlite3"
    storage = Storage(database, ZONE)
    filled = fill_storage(storage, date(2026, 10, 1), 31, 64, seed=11)
    storage.close()
    Prices.hourly = filled.hourly
    server = ThreadingHTTPServer(("127.0.0.1", 0), Prices)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    configs = {}
    for name, url in (("prices", f"http://127.0.0.1:{server.server_address[1]}"),
                      ("offline", f"http://127.0.0.1:{free_port()}")):   # nothing listens there, nor will
        configs[name] = directory / f"{name}.yaml"
        configs[name].write_text(yaml.safe_dump({"general": {"timezone": ZONE.key},
                                                 "sessions": {"database": str(database)},
                                                 "prometheus": {"url": url}, "tariff": TARIFF_YAML}))
    jobs = {
        "month": command(configs["prices"], "2026-10", "--pdf", str(directory / "month.pdf"), "--html",
                         str(directory / "month.html")),
        "month_json": command(configs["prices"], "2026-10", "--json"),
        "year": command(configs["offline"], "2026", "--pdf", str(directory / "year.pdf"), "--json"),
        "offline": command(configs["offline"], "2026-10"),
        "bad": command(configs["offline"], "2026-13", "--pdf", str(directory / "bad.pdf")),
    }
    env = {**os.environ, "TZ": ZONE.key}
    started = {name: subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) for name, argv in jobs.items()}
    runs = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=120)
        runs[name] = Run(process.returncode, out, err)
    server.shutdown()
    yield Made(directory, database, filled, runs)


def ok(made: Made, name: str) -> Run:
    run = made.runs[name]
    assert run.returncode == 0, f"{name}: {run.stderr}"
    return run


def needs_poppler() -> None:
    missing = [tool for tool in POPPLER if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"poppler-utils not installed ({', '.join(missing)} missing): `scripts/setup.sh --test` (make "
                    "test) installs it, or apt-get install poppler-utils")


def pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def chart_areas(pdf: Path, out: Path) -> list[tuple[int, int, float]]:
    """(page, rows, ink share) of every block of at least 25 pixel rows (at 50 dpi) more than half ink, bar
    gridlines (white rows, at most 3 in a row): text never fills half a row, a chart's tinted plot area does."""
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(pdf), str(out / pdf.stem)], check=True)
    found = []
    for number, png in enumerate(sorted(out.glob(f"{pdf.stem}-*.png")), 1):
        image = Image.open(png).convert("RGB")
        width, height = image.size
        pixels = image.load()
        inked = [sum(min(pixels[x, y]) < TINTED for x in range(0, width, 2)) / (width / 2) for y in range(height)]
        run: list[float] = []
        gap = 0
        for share in inked + [0.0] * 4:
            if share > 0.5:
                run += [share]
                gap = 0
                continue
            gap += 1
            if gap <= 3 and run:
                continue
            if len(run) >= 25:
                found.append((number, len(run), sum(run) / len(run)))
            run = []
    return found


def figures(report: dict[str, Any]) -> list[str]:
    """The strings a reader looks for, formatted as the report formats them."""
    totals = report["totals"]
    wanted = [kwh(totals["energy_kwh"]), money(totals["total"]), money(totals["charging"]),
              cents(report["best"][0]["cents_per_kwh"]), cents(report["worst"][0]["cents_per_kwh"])]
    if report["ev_share"]["available"]:
        wanted.append(percent(report["ev_share"]["share"]))
    return wanted


def test_the_month_pdf_has_its_pages_charts_and_the_reports_figures(made: Made, tmp_path: Path) -> None:
    needs_poppler()
    ok(made, "month")
    report = json.loads(ok(made, "month_json").stdout)
    pdf = made.directory / "month.pdf"
    count = pages(pdf)
    assert 3 <= count <= 6, count
    charts = chart_areas(pdf, tmp_path)
    assert len(charts) == 3, f"energy, breakdown and price charts drawn: {charts}"
    assert all(share > 0.6 for *_, share in charts), f"most of each chart row is drawn: {charts}"
    text = pdf_text(pdf)
    assert text.count("\f") >= count - 1 and f"page {count} of {count}" in text
    for figure in figures(report):
        assert figure in text, f"{figure!r} not in the PDF"
    assert report["totals"]["sessions"] == len(made.filled.sessions) == 64
    assert any(line.split()[-1:] == ["64"] and line.strip().startswith("sessions") for line in text.splitlines())
    assert report["ev_share"]["available"] and 0.2 < report["ev_share"]["share"] < 0.9
    assert report["smart"]["available"] and report["smart"]["shifted"], "the paused plug-ins are priced"
    assert money(report["smart"]["total"]) in text
    assert "Best and worst sessions" in text and "EV share of the home's bill" in text


def test_the_html_shows_the_same_figures_self_contained(made: Made) -> None:
    ok(made, "month")
    report = json.loads(ok(made, "month_json").stdout)
    html = (made.directory / "month.html").read_text()
    for figure in figures(report) + [money(report["smart"]["total"])]:
        assert figure in html, f"{figure!r} not in the HTML"
    assert html.count('src="data:image/png;base64,') == 3
    assert "<script" not in html and "http://" not in html and "https://" not in html


def test_the_year_pdf_without_prometheus(made: Made, tmp_path: Path) -> None:
    needs_poppler()
    report = json.loads(ok(made, "year").stdout)
    assert [b["label"] for b in report["bars"]][9] == "Oct" and len(report["bars"]) == 12
    assert report["totals"]["months_charged"] == 12
    assert report["smart"]["note"].startswith("needs price history (Prometheus unreachable)")
    pdf = made.directory / "year.pdf"
    assert pages(pdf) >= 2
    assert len(chart_areas(pdf, tmp_path)) == 3
    text = pdf_text(pdf)
    for figure in figures(report):
        assert figure in text, f"{figure!r} not in the PDF"
    assert "needs price history (Prometheus unreachable)" in " ".join(text.split())


def test_the_summary_and_a_bad_period(made: Made) -> None:
    summary = ok(made, "offline").stdout
    assert "Charging report October 2026" in summary and "needs price history (Prometheus unreachable)" in summary
    bad = made.runs["bad"]
    assert bad.returncode == 2 and not (made.directory / "bad.pdf").exists()
    assert bad.stderr.strip() == ("charging-report: period: expected a month YYYY-MM (2026-10) or a year YYYY (2026), "
                                  "got '2026-13'")


async def test_the_api_serves_json_html_and_pdf(made: Made, aiohttp_client: Any) -> None:
    storage = Storage(made.database, ZONE)
    app = web.Application()
    calls = []

    def prices(start: float, end: float):
        from reports.prices import PriceHistory
        calls.append((start, end))
        return PriceHistory(made.filled.hourly, None)

    add_report_routes(app, storage, TARIFF, ZONE, prices)
    client = await aiohttp_client(app)
    answer = await client.get("/api/reports/2026-10")
    assert answer.status == 200
    report = await answer.json()
    assert report["totals"]["sessions"] == 64 and report["smart"]["available"]
    cli = json.loads(ok(made, "month_json").stdout)
    assert report["totals"] == cli["totals"] and report["best"] == cli["best"], "the API and the CLI agree"
    pdf = await client.get("/api/reports/2026-10", params={"format": "pdf"})
    assert pdf.status == 200 and pdf.content_type == "application/pdf"
    assert pdf.headers["Content-Disposition"] == 'attachment; filename="charging-report-2026-10.pdf"'
    assert (await pdf.read()).startswith(b"%PDF-")
    html = await client.get("/api/reports/2026", params={"format": "html"})
    assert html.status == 200 and "Charging report 2026" in await html.text()
    for path, message in (("/api/reports/2026-13", "period: expected a month YYYY-MM"),
                          ("/api/reports/2026-10?format=docx", "format: expected one of json, html, pdf")):
        bad = await client.get(path)
        assert bad.status == 400 and (await bad.json())["error"].startswith(message)
    assert len(calls) == 3
    storage.close()
