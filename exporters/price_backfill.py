"""price-backfill: write the provider's price history into Prometheus's TSDB (or VictoriaMetrics), so
the 30-day percentiles exist from the first minute instead of after 30 days.

It fetches the history a day per request (the same provider code as price-exporter), writes it
as OpenMetrics under the exact series the exporter produces live
(`electricity_price_5m_cents_per_kwh{provider, job, instance, site}`, one sample per price stamped with
the end of its interval, and `electricity_price_billed_cents_per_kwh`, one sample per complete
billing hour stamped with its end, as the tariff bills it), and runs `promtool tsdb create-blocks-from openmetrics` with a block
duration covering the whole range (a few blocks instead of hundreds of two-hour ones). Backfilled
and scraped samples of a price share name, labels and timestamp, so Prometheus keeps one of them
and every price weighs once in `quantile_over_time`.

Run it before Prometheus starts (as `make up` does) or against a running Prometheus's data
directory, where the blocks appear within about a minute (its next compaction cycle). With
`--import-url` (or prometheus.import_url) the same samples go to a running VictoriaMetrics's import
API instead (`servicekit.history_import`).
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

from servicekit.config import Config, ConfigError, default_config_path
from servicekit import history_import
from servicekit.errors import UpstreamError
from servicekit.logs import setup_logging
from servicekit.runtime import load_config_or_exit, log_config_source
from servicekit.upstream import Upstream, UpstreamMetrics
from billing.settings import tariff_for
from billing.tariff import Tariff, billed_prices
from exporters.price import (
    PREFIX, SERIES_5M, SERIES_5M_HELP, SERIES_BILLED, SERIES_BILLED_HELP, PriceBook, fill_history, tidy,
)
from exporters.price_history import PriceHistory
from upstreams.price_providers import PROVIDERS
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
        lines += [f"{name}{{{label_text}}} {tidy(cents)!r} {end:.0f}" for end, cents in points if start < end <= until]
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def block_duration(history: PriceHistory) -> str:
    """A whole number of days covering the range, so promtool writes a handful of blocks."""
    span_h = (float(history.ends[-1]) - float(history.ends[0])) / 3600 if len(history) else 0
    return f"{max(BLOCK_HOURS_STEP, math.ceil(span_h / BLOCK_HOURS_STEP + 1) * BLOCK_HOURS_STEP)}h"


def create_blocks(text: str, data_dir: Path, duration: str, promtool: str = "promtool", umask: int = -1) -> list[str]:
    """Run promtool; returns the names of the blocks it wrote. `umask` (e.g. 0o002) for blocks that a
    Prometheus running as another user of the same group must be able to compact and delete."""
    binary = shutil.which(promtool)
    if not binary:
        raise ConfigError("promtool: not found on PATH; install it with: apt-get install -y prometheus")
    data_dir.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in data_dir.iterdir()}
    with tempfile.NamedTemporaryFile("w", suffix=".om", delete=False) as handle:
        handle.write(text)
    try:
        result = subprocess.run([binary, "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                                 f"--max-block-duration={duration}", handle.name, str(data_dir)],
                                capture_output=True, text=True, timeout=600, umask=umask)
    finally:
        os.unlink(handle.name)
    if result.returncode != 0:
        raise RuntimeError(f"promtool failed: {result.stderr.strip().splitlines()[-1] if result.stderr else ''}")
    return sorted({p.name for p in data_dir.iterdir()} - before)


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


def state_source(config: Config, mode: str | None) -> dict[str, str | None]:
    """What a backfill's prices came from: the provider, its base URL, the suite's mode (demo or live) and the
    site they are labelled with."""
    return {"provider": config.price.provider, "base_url": config.price.base_url, "mode": mode, "site": config.site}


def load_state(path: Path | None) -> dict:
    try:
        state = json.loads(path.read_text()) if path else {}
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def read_state(path: Path | None, source: dict[str, str | None] | None = None) -> float:
    """The end of what was backfilled before; 0 (everything again) when that did not include every
    series written now (a state from before the billed series, say) or came from another source (another
    provider or base URL, the demo's simulator rather than the real provider, or a state that does not say)."""
    state = load_state(path)
    try:
        if state.get("series", [SERIES_5M]) != SERIES:
            return 0.0
        if source is not None and {key: state.get(key, "?") for key in source} != source:
            return 0.0
        return float(state["end"])
    except (KeyError, TypeError, ValueError):
        return 0.0


def remove_blocks(data_dir: Path, names: Sequence[str], log) -> list[str]:
    """Delete the blocks an earlier backfill of other prices wrote, when they are still there (Prometheus
    compacts blocks together after a while; those prices then stay, overlaid by the new ones). Never while a
    Prometheus holds the directory's lock."""
    if _locked(data_dir):
        log.warning("%s is in use by a running Prometheus: the earlier backfill's blocks stay", data_dir)
        return []
    removed = []
    for name in names:
        block = data_dir / str(name)
        if "/" not in str(name) and block.is_dir() and (block / "meta.json").is_file():
            shutil.rmtree(block)
            removed.append(str(name))
    return removed


def _locked(data_dir: Path) -> bool:
    import fcntl
    lock = data_dir / "lock"
    if not lock.exists():
        return False
    try:
        with open(lock, "a") as handle:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.lockf(handle, fcntl.LOCK_UN)
    except OSError:
        return True
    return False


def import_history(config: Config, history: PriceHistory, days: int, import_url: str, instance: str, job: str,
                   until: float, log, fetched: float) -> int:
    """The whole history into VictoriaMetrics's import API, every run: a few thousand samples, and samples
    already there (same series and timestamp) are dropped by its deduplication (-dedup.minScrapeInterval),
    so a wiped or new store is simply filled again. No state file is needed."""
    text = openmetrics(history, {"provider": config.price.provider, "job": job, "instance": instance, "site": config.site},
                       tariff_for(config), 0.0, until)
    started = time.monotonic()
    try:
        count = history_import.post(import_url, text)
    except history_import.ImportFailed as error:
        log.error("backfill failed: %s", error)
        return 1
    log.info("imported %d samples (%d days of prices) from %s into %s: fetch %.1fs, import %.2fs", count,
             days, _describe(state_source(config, None)), history_import.endpoint(import_url),
             fetched, time.monotonic() - started)
    return 0


def run(config: Config, data_dir: Path, days: int, instance: str, job: str, state: Path | None,
        output: Path | None, log, until: float = float("inf"), mode: str | None = None,
        import_url: str | None = None) -> int:
    started = time.monotonic()
    history = asyncio.run(fetch(config, days, log))
    if not len(history):
        log.error("the provider returned no prices for the last %d days; nothing to backfill", days)
        return 1
    if import_url and not output:
        return import_history(config, history, days, import_url, instance, job, until, log, time.monotonic() - started)
    has_blocks = data_dir.is_dir() and any((d / "meta.json").exists() for d in data_dir.iterdir())
    source = state_source(config, mode)
    previous = load_state(state)
    since = read_state(state, source) if has_blocks else 0.0  # a wiped TSDB needs the whole history again
    kept = [str(b) for b in previous.get("blocks", []) if (data_dir / str(b)).is_dir()] if since else []
    if has_blocks and not since and previous and not output:
        before = {key: previous.get(key) for key in source}
        if before != source:
            removed = remove_blocks(data_dir, previous.get("blocks", []), log)
            log.info("the prices backfilled before came from %s; backfilling everything again from %s "
                     "(%d earlier blocks removed)", _describe(before), _describe(source), len(removed))
    text = openmetrics(history, {"provider": config.price.provider, "job": job, "instance": instance, "site": config.site},
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
    log.info("backfilled %d 5-minute prices (%d days) from %s into %s as %d blocks: fetch %.1fs, promtool %.2fs",
             count, days, _describe(source), data_dir, len(blocks), fetched, time.monotonic() - written_at)
    if state:
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps({"end": float(min(history.ends[-1], until)), "series": SERIES, **source,
                                     "blocks": kept + blocks}))
    return 0


def _describe(source: dict[str, str | None]) -> str:
    if not source.get("provider"):
        return "an unrecorded source"
    mode = f", {source['mode']} mode" if source.get("mode") else ""
    return f"{source['provider']} at {source.get('base_url')}{mode}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="price-backfill", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=default_config_path(),
                        help="YAML configuration (default $CHARGING_CONFIG, else ./config.yaml when present)")
    parser.add_argument("--secrets", default=None, help="KEY=VALUE secrets file (default ./.secrets when present)")
    parser.add_argument("--data-dir", help="Prometheus TSDB directory (default <general.data_dir>/prometheus)")
    parser.add_argument("--import-url", help="VictoriaMetrics (or vminsert .../insert/0/prometheus) to import into "
                                             "instead of a TSDB directory (default prometheus.import_url)")
    parser.add_argument("--days", type=int, help="days of history (default smart_charging.lookback_days + 2)")
    parser.add_argument("--job", default="price", help="the job label Prometheus gives the price exporter")
    parser.add_argument("--instance", help="its instance label (default price.listen, e.g. 127.0.0.1:9884)")
    parser.add_argument("--state", help="file remembering the last backfilled price, so reruns add only new ones")
    parser.add_argument("--output", help="write the OpenMetrics text here instead of creating blocks")
    parser.add_argument("--until", type=float, default=float("inf"),
                        help="only prices whose interval ends at or before this Unix time (default: all)")
    parser.add_argument("--mode", help="recorded in the state file with the provider and its base URL "
                                       "(charging-suite passes demo or live); another one backfills everything again")
    parser.add_argument("--site", help="the site whose prices these are (default $CHARGING_SITE, else the first)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    args = parser.parse_args(argv)
    config = load_config_or_exit("price-backfill", args)
    log = setup_logging("price-backfill", args.log_level or config.general.log_level)
    log_config_source(log, args.config)
    days = args.days or math.ceil(config.smart_charging.lookback_days) + 2
    data_dir = Path(args.data_dir or Path(config.general.data_dir) / "prometheus")
    try:
        return run(config, data_dir, days, args.instance or str(config.price.listen), args.job,
                   Path(args.state) if args.state else None, Path(args.output) if args.output else None, log,
                   args.until, args.mode, args.import_url or config.prometheus.import_url)
    except ConfigError as error:
        print(f"price-backfill: configuration error: {error}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as error:
        log.error("backfill failed: %s", error)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
