"""price-backfill: write the provider's price history into Prometheus's TSDB, so the 30-day
percentiles exist from the first minute instead of after 30 days.

It fetches the history a day per request (the same provider code as price-exporter), writes it
as OpenMetrics under the exact series the exporter produces live
(`electricity_price_5m_cents_per_kwh{provider, job, instance}`, one sample per price stamped with
the end of its interval, and `electricity_price_billed_cents_per_kwh`, one sample per complete
billing hour stamped with its end, as the tariff bills it), and runs `promtool tsdb create-blocks-from openmetrics` with a block
duration covering the whole range (a few blocks instead of hundreds of two-hour ones). Backfilled
and scraped samples of a price share name, labels and timestamp, so Prometheus keeps one of them
and every price weighs once in `quantile_over_time`.

Run it before Prometheus starts (as `make up` does) or against a running Prometheus's data
directory, where the blocks appear within about a minute (its next compaction cycle).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import aiohttp

from exporters.core.config import Config, ConfigError
from exporters.core.errors import UpstreamError
from exporters.core.logs import setup_logging
from exporters.core.runtime import load_config_or_exit
from exporters.core.upstream import Upstream, UpstreamMetrics
from billing.settings import tariff_for
from billing.tariff import Tariff, billed_prices
from exporters.price import PREFIX, SERIES_5M, SERIES_5M_HELP, SERIES_BILLED, SERIES_BILLED_HELP, PriceBook, fill_history
from exporters.price_history import PriceHistory
from exporters.price_providers import PROVIDERS
from prometheus_client import CollectorRegistry

BLOCK_HOURS_STEP = 24


def openmetrics(history: PriceHistory, labels: dict[str, str], tariff: Tariff, start: float = 0.0,
                until: float = float("inf")) -> str:
    """Both series as OpenMetrics text, prices and billing periods ending in (start, until], oldest first
    (promtool needs order). A period counts once all its prices are in the history."""
    label_text = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    prices = dict(zip(history.ends.tolist(), history.cents.tolist()))
    lines = []
    for name, text, points in ((SERIES_5M, SERIES_5M_HELP, prices.items()),
                               (SERIES_BILLED, SERIES_BILLED_HELP, billed_prices(prices, tariff))):
        lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge"]
        lines += [f"{name}{{{label_text}}} {cents!r} {end:.0f}" for end, cents in points if start < end <= until]
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def block_duration(history: PriceHistory) -> str:
    """A whole number of days covering the range, so promtool writes a handful of blocks."""
    span_h = (float(history.ends[-1]) - float(history.ends[0])) / 3600 if len(history) else 0
    return f"{max(BLOCK_HOURS_STEP, math.ceil(span_h / BLOCK_HOURS_STEP + 1) * BLOCK_HOURS_STEP)}h"


def create_blocks(text: str, data_dir: Path, duration: str, promtool: str = "promtool") -> int:
    """Run promtool; returns the number of blocks it wrote."""
    binary = shutil.which(promtool)
    if not binary:
        raise ConfigError("promtool: not found, got nothing on PATH; install it with: apt-get install -y prometheus")
    data_dir.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in data_dir.iterdir()}
    with tempfile.NamedTemporaryFile("w", suffix=".om", delete=False) as handle:
        handle.write(text)
    try:
        result = subprocess.run([binary, "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                                 f"--max-block-duration={duration}", handle.name, str(data_dir)],
                                capture_output=True, text=True, timeout=600)
    finally:
        os.unlink(handle.name)
    if result.returncode != 0:
        raise RuntimeError(f"promtool failed: {result.stderr.strip().splitlines()[-1] if result.stderr else ''}")
    return len({p.name for p in data_dir.iterdir()} - before)


async def fetch(config: Config, days: int, log) -> PriceHistory:
    """The provider's history over `days` days, fetched a day at a time; up to three attempts, each resuming."""
    settings = config.price
    book = PriceBook(days * 86400.0)
    async with aiohttp.ClientSession() as session:
        metrics = UpstreamMetrics(PREFIX, CollectorRegistry())
        provider = PROVIDERS[settings.provider](Upstream(session, metrics, timeout=settings.timeout),
                                                settings.base_url)
        for attempt in range(1, 4):
            try:
                await fill_history(book, provider, provider.zone, days, lambda: None)
                return book.history
            except UpstreamError as error:
                log.warning("fetching price history failed (%s): %s; attempt %d of 3", error.outcome, error, attempt)
                await asyncio.sleep(2 * attempt)
    raise RuntimeError("price history unavailable after 3 attempts")


SERIES = [SERIES_5M, SERIES_BILLED]


def read_state(path: Path | None) -> float:
    """The end of what was backfilled before; 0 (everything again) when that did not include every
    series written now (a state from before the billed series, say)."""
    try:
        state = json.loads(path.read_text()) if path else {}
        return float(state["end"]) if state.get("series", [SERIES_5M]) == SERIES else 0.0
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return 0.0


def run(config: Config, data_dir: Path, days: int, instance: str, job: str, state: Path | None,
        output: Path | None, log, until: float = float("inf")) -> int:
    started = time.monotonic()
    history = asyncio.run(fetch(config, days, log))
    if not len(history):
        log.error("the provider returned no prices for the last %d days; nothing to backfill", days)
        return 1
    has_blocks = data_dir.is_dir() and any((d / "meta.json").exists() for d in data_dir.iterdir())
    since = read_state(state) if has_blocks else 0.0  # a wiped TSDB needs the whole history again
    text = openmetrics(history, {"provider": config.price.provider, "job": job, "instance": instance},
                       tariff_for(config), since, until)
    count = text.count(f"\n{SERIES_5M}{{")
    fetched = time.monotonic() - started
    if output:
        output.write_text(text)
        log.info("wrote %d prices to %s", count, output)
        return 0
    if count <= 0:
        log.info("price history already backfilled up to %s; nothing to do", time.strftime("%F %T", time.gmtime(since)))
        return 0
    written_at = time.monotonic()
    blocks = create_blocks(text, data_dir, block_duration(history))
    log.info("backfilled %d 5-minute prices (%d days) into %s as %d blocks: fetch %.1fs, promtool %.2fs",
             count, days, data_dir, blocks, fetched, time.monotonic() - written_at)
    if state:
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps({"end": float(min(history.ends[-1], until)), "series": SERIES}))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="price-backfill", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=os.environ.get("CHARGING_CONFIG"), help="YAML configuration")
    parser.add_argument("--secrets", default=None, help="KEY=VALUE secrets file (default ./.secrets when present)")
    parser.add_argument("--data-dir", help="Prometheus TSDB directory (default <general.data_dir>/prometheus)")
    parser.add_argument("--days", type=int, help="days of history (default smart_charging.lookback_days + 2)")
    parser.add_argument("--job", default="price", help="the job label Prometheus gives the price exporter")
    parser.add_argument("--instance", help="its instance label (default price.listen, e.g. 127.0.0.1:9884)")
    parser.add_argument("--state", help="file remembering the last backfilled price, so reruns add only new ones")
    parser.add_argument("--output", help="write the OpenMetrics text here instead of creating blocks")
    parser.add_argument("--until", type=float, default=float("inf"),
                        help="only prices whose interval ends at or before this Unix time (default: all)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    args = parser.parse_args(argv)
    config = load_config_or_exit("price-backfill", args)
    log = setup_logging("price-backfill", args.log_level or config.general.log_level)
    days = args.days or math.ceil(config.smart_charging.lookback_days) + 2
    data_dir = Path(args.data_dir or Path(config.general.data_dir) / "prometheus")
    try:
        return run(config, data_dir, days, args.instance or str(config.price.listen), args.job,
                   Path(args.state) if args.state else None, Path(args.output) if args.output else None, log,
                   args.until)
    except ConfigError as error:
        print(f"price-backfill: configuration error: {error}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as error:
        log.error("backfill failed: %s", error)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
