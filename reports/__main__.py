"""charging-report: a month's or a year's charging report as PDF and/or HTML, or a short summary.

    charging-report 2026-10 --pdf october.pdf [--html october.html] [--config FILE]
    charging-report 2026 --pdf 2026.pdf
    charging-report 2026-10            # a few lines on the terminal
    charging-report 2026-10 --json     # every figure, as the API's ?format=json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence
from zoneinfo import ZoneInfo

from billing.settings import tariff_for
from reports.charts import render_charts
from reports.data import load_report, open_read_only
from reports.html import render_html
from reports.model import BadPeriod, parse_period, report_dict
from reports.pdf import render_pdf
from reports.prices import billed_prices
from reports.text import summary
from servicekit.config import default_config_path
from servicekit.runtime import load_config_or_exit

PROG = "charging-report"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("period", help="a month YYYY-MM (2026-10) or a year YYYY (2026), local calendar "
                                  "(general.timezone)")
    p.add_argument("--pdf", type=Path, help="write the PDF here")
    p.add_argument("--html", type=Path, help="write the HTML page here (self-contained)")
    p.add_argument("--json", action="store_true", help="print every figure as JSON instead of the summary")
    p.add_argument("--config", default=default_config_path(),
                   help="YAML configuration (sessions.database, general.timezone, prometheus.url, tariff); default "
                        "$CHARGING_CONFIG, else ./config.yaml when present")
    p.add_argument("--secrets", default=None, help="KEY=VALUE secrets file; default ./.secrets when present")
    p.add_argument("--site", help="the site to report on (default $CHARGING_SITE, else the first)")
    p.add_argument("--no-prices", action="store_true",
                   help="do not ask Prometheus for the billed hourly prices (the price trend and smart-charging "
                        "savings then say they need them)")
    p.add_argument("--prices-timeout", type=float, default=4.0, help="seconds to wait for Prometheus (default 4)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        parse_period(args.period, ZoneInfo("UTC"))
    except BadPeriod as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    config = load_config_or_exit(PROG, args)
    zone = ZoneInfo(config.general.timezone)
    period = parse_period(args.period, zone)
    try:
        storage = open_read_only(config.sessions.database, zone)
    except FileNotFoundError as error:
        print(f"{PROG}: {error} (sessions.database); run session-store first, or pass --config with the file "
              "that names the database", file=sys.stderr)
        return 2
    history = None
    if not args.no_prices:
        history = billed_prices(config.prometheus.url, period.start, period.end, timeout=args.prices_timeout,
                                 matcher=config.site_matcher)
    try:
        report = load_report(storage, tariff_for(config), period, zone,
                             None if history is None else history.prices,
                             prices_note="needs price history (not asked for: --no-prices)" if history is None else history.note,
                             tolerance=config.meter.discrepancy_tolerance)
    finally:
        storage.close()
    if args.pdf or args.html:
        charts = render_charts(report)
        for path, render in ((args.pdf, render_pdf), (args.html, render_html)):
            if path is None:
                continue
            content = render(report, charts)
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(path.name + ".part")
            if isinstance(content, bytes):
                temporary.write_bytes(content)
            else:
                temporary.write_text(content, encoding="utf-8")
            os.replace(temporary, path)       # a reader never sees half a report
            print(f"{PROG}: wrote {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(report_dict(report), indent=1, allow_nan=False))
    elif not (args.pdf or args.html):
        print(summary(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
