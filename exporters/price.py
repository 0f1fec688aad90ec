"""price-exporter: real-time electricity price, the billed price and their statistics -> Prometheus
(prefix `electricity_price_`).

On start it bootstraps about `smart_charging.lookback_days` of 5-minute prices from the provider,
a day per request, then keeps the rolling history up to date from the live feed. Statistics are
numpy over that history; they agree with PromQL `quantile_over_time` over the same prices.

What is billed comes from the tariff (billing/tariff.py): ComEd bills each clock hour at the mean of
its twelve 5-minute prices, so beside the 5-minute price it exports the projected price of the hour
in progress (its published prices, the rest at the latest one) and every complete hour's billed price
once, stamped with the hour's end. Everything is derived from the latest price's moment, not a clock.

A third poller reads the utility's day-ahead (predicted hourly) prices every 30 minutes; with the
hour-of-week profile of the lookback's billed prices as the fallback they make the forecast of the
next 48 clock hours (billing/forecast.py), hour 0 being the hour in progress. Prometheus refuses
samples stamped in the future, so the forecast is a set of present-time gauges indexed by a bounded
`hours_ahead` label, with the start of hour 0 beside it.

    electricity_price_cents_per_kwh{provider="comed"} 3.4
    electricity_price_hour_projected_cents_per_kwh{provider="comed"} 4.1
    electricity_price_billed_cents_per_kwh{provider="comed"} 3.9 1784000000000
    electricity_price_percentile_rank_percent{provider="comed"} 61.5
    electricity_price_forecast_cents_per_kwh{hours_ahead="1",provider="comed"} 3.2
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from prometheus_client.core import GaugeMetricFamily, Metric as Family

from billing.forecast import FORECAST_HOURS, Forecast, build_forecast, hour_of_week_profile
from billing.settings import tariff_for
from billing.tariff import INTERVAL_S, Projection, Tariff, billed_prices, hour_start, projected_price
from servicekit.collector import FreshData, SnapshotCollector, Target
from servicekit.config import Config
from servicekit.errors import NoData
from servicekit.metrics import GAUGE, Metric, build_families
from servicekit.poller import Poller
from servicekit.runtime import PartsFactory, PartsContext, ExporterParts, run_exporter
from servicekit.upstream import Upstream, UpstreamMetrics
from exporters.price_history import PriceHistory, PriceStats, percentile_rank, statistics
from upstreams.comed import HourPrice
from upstreams.price_providers import PROVIDERS, CurrentPrice, PriceProvider, Rate

PREFIX = "electricity_price"
UPSTREAM = "the price provider"   # named in the help of the upstream request metrics
ENDPOINTS = ("5minutefeed", "5minutefeed_range", "currenthouraverage", "daynexttoday", "daynexttomorrow")
HISTORY_REFRESH = 6 * 3600.0
HISTORY_TIMEOUT = 900.0
# New prices appear after each 5-minute mark; polling a little after it sees each one once.
CURRENT_POLL_OFFSET = 20.0
# Day-ahead prices change twice a day at most (tomorrow's appear about 16:30 Central): every half hour,
# a minute past :00 and :30, sees tomorrow's within a minute of their usual publication.
DAY_AHEAD_REFRESH = 1800.0
DAY_AHEAD_POLL_OFFSET = 60.0
DAY_AHEAD_KEEP_S = 3 * 86400.0    # day-ahead hours kept behind the newest one (the forecast only looks ahead)
NO_DAY_AHEAD: Mapping[float, float] = MappingProxyType({})


class PriceBook:
    """The pollers' accumulator: the rolling history and the day-ahead prices (immutable references,
    replaced on each merge, counted by `version`) and which days are complete. Only the pollers touch it."""

    def __init__(self, lookback_s: float) -> None:
        self.lookback_s = lookback_s
        self.history = PriceHistory.empty()
        self.day_ahead: Mapping[float, float] = NO_DAY_AHEAD   # hour start -> predicted cents per kWh
        self.complete_days: set[date] = set()
        self.version = 0

    def add_day_ahead(self, hours: Iterable[HourPrice]) -> None:
        """Merge an answer into the known day-ahead hours (new values win; hours already known stay when
        an answer has fewer, as before tomorrow is published), dropping hours three days behind the newest."""
        incoming = {hour.start: hour.cents for hour in hours}
        if not incoming:
            return
        merged = {**self.day_ahead, **incoming}
        keep_after = max(merged) - DAY_AHEAD_KEEP_S
        self.day_ahead = MappingProxyType({start: merged[start] for start in sorted(merged) if start >= keep_after})
        self.version += 1

    def add(self, rates: Iterable[Rate]) -> None:
        points = [(r.end, r.cents) for r in rates]
        if not points:
            return
        newest = max(max(p[0] for p in points), self.history.ends[-1] if len(self.history) else 0.0)
        # Keep a day more than the lookback so the window is full whatever the moment of the query.
        self.history = self.history.merged(points, newest - self.lookback_s - 86400)
        self.version += 1

    def snapshot(self, current: CurrentPrice | None = None) -> "PriceSnapshot":
        return PriceSnapshot(current, self.history, self.version, self.day_ahead)


async def fill_history(book: PriceBook, provider: PriceProvider, zone: Any, days: int,
                       on_progress: Callable[[], None], clock: Callable[[], float] = time.time) -> int:
    """Fetch every missing day of the lookback, newest first; days already complete are skipped.

    A failure raises out (the poller backs off) and the next attempt resumes where this one stopped.
    """
    today = datetime.fromtimestamp(clock(), zone).date()
    for offset in range(days + 1):
        day = today - timedelta(days=offset)
        if day in book.complete_days:
            continue
        book.add(await provider.history(datetime(day.year, day.month, day.day)))
        if day < today:
            book.complete_days.add(day)
        on_progress()
    return len(book.history)


@dataclass(frozen=True)
class Billed:
    """What the tariff makes of the prices: the billing period in progress and the last complete one."""

    projection: Projection | None        # the period in progress (ComEd: the clock hour)
    projection_rank: float | None        # its percentile rank among the lookback's billed prices
    latest: tuple[float, float] | None   # (end, billed price) of the newest complete period
    delivery_cents: float                # the delivery rate in force for the interval in progress
    stats: PriceStats | None = None      # of the lookback's billed prices
    profile: Mapping[tuple[int, int], float] = field(default_factory=dict)   # their mean by local (weekday, hour)


@dataclass(frozen=True)
class PriceView:
    """What one render exports: the current price (when fresh), the billed price and the statistics
    of the lookback."""

    current: Rate | None
    hour_average: float | None
    stats: PriceStats | None
    rank: float | None
    oldest: float | None
    covered_s: float | None
    billed: Billed | None = None
    tariff: Tariff | None = None
    forecast: Forecast | None = None


def bill_view(latest: Rate | None, history: PriceHistory, lookback_s: float, tariff: Tariff) -> Billed | None:
    """The tariff over the history, as of the latest price: the period of the interval after it is the
    one in progress (clock-free, so a render between polls stays true)."""
    if latest is None or not len(history):
        return None
    newest = float(history.ends[-1])
    keep = history.ends > newest - lookback_s - tariff.period_length()
    prices = dict(zip(history.ends[keep].tolist(), history.cents[keep].tolist()))
    billed = [(end, cents) for end, cents in billed_prices(prices, tariff) if end > newest - lookback_s]
    projection = projected_price(prices, tariff.period_end(latest.end + INTERVAL_S), tariff)
    values = np.array([cents for _, cents in billed])
    # the profile is by clock hour whatever the billing period: each period counts in the hour it falls in
    hourly = [(hour_start(end - tariff.period_length(), tariff.zone) + 3600.0, cents) for end, cents in billed]
    return Billed(projection, percentile_rank(values, projection.cents) if projection else None,
                  billed[-1] if billed else None, 100 * tariff.delivery_rate(latest.end), statistics(values),
                  hour_of_week_profile(hourly, tariff.zone))


def forecast_view(latest: Rate | None, billed: Billed | None, day_ahead: Mapping[float, float],
                  tariff: Tariff | None) -> Forecast | None:
    """The next 48 clock hours from the hour in progress, the hour of the interval after the latest price
    (clock-free, like the projection): the day-ahead prices, then the profile of the billed prices."""
    if latest is None or tariff is None:
        return None
    return build_forecast(hour_start(latest.end, tariff.zone), day_ahead, billed.profile if billed else {},
                          tariff.zone, FORECAST_HOURS)


def view(current: CurrentPrice | None, history: PriceHistory, lookback_s: float,
         tariff: Tariff | None = None, day_ahead: Mapping[float, float] = NO_DAY_AHEAD,
         hour_average: float | None = None) -> PriceView:
    """`hour_average`: from its own endpoint's poller; else whatever the current answer carries."""
    latest = current.recent[-1] if current and current.recent else None
    if hour_average is None and current is not None:
        hour_average = current.hour_average
    billed = bill_view(latest, history, lookback_s, tariff) if tariff else None
    forecast = forecast_view(latest, billed, day_ahead, tariff)
    if not len(history):
        return PriceView(latest, hour_average, None, None, None, None, billed, tariff, forecast)
    newest = float(history.ends[-1])
    window = history.window(newest - lookback_s, newest)
    oldest = float(history.ends[history.ends > newest - lookback_s][0]) if window.size else None
    return PriceView(latest, hour_average, statistics(window),
                     percentile_rank(window, latest.cents) if latest else None, oldest,
                     window.size * 300.0, billed, tariff, forecast)


def tidy(value: Any) -> Any:
    """Derived figures (means, percentiles, ranks, rates) to 1e-4 of their unit: prices come with one
    decimal, so finer digits are float noise (1.6000000000000008)."""
    if isinstance(value, float):
        return round(value, 4)
    return {key: tidy(item) for key, item in value.items()} if isinstance(value, dict) else value


def _stat(pick: Callable[[PriceStats], float]) -> Callable[[PriceView], float | None]:
    return lambda v: tidy(pick(v.stats)) if v.stats else None


def _billed(pick: Callable[[Billed], Any]) -> Callable[[PriceView], Any]:
    return lambda v: tidy(pick(v.billed)) if v.billed else None


def _tariff(pick: Callable[[Tariff], float | None]) -> Callable[[PriceView], float | None]:
    return lambda v: tidy(pick(v.tariff)) if v.tariff else None


def _forecast(pick: Callable[[Forecast], Any]) -> Callable[[PriceView], Any]:
    return lambda v: tidy(pick(v.forecast)) if v.forecast else None


ROWS: tuple[Metric, ...] = (
    Metric(f"{PREFIX}_cents_per_kwh", GAUGE, "Latest 5-minute supply price in cents per kWh (it covers the 5 "
           "minutes ending at electricity_price_interval_end_timestamp_seconds).",
           lambda v: v.current.cents if v.current else None),
    Metric(f"{PREFIX}_interval_end_timestamp_seconds", GAUGE, "End of the 5-minute interval the latest price "
           "covers; time() minus this is the price's age.", lambda v: v.current.end if v.current else None),
    Metric(f"{PREFIX}_hour_average_cents_per_kwh", GAUGE, "The provider's running mean of the current hour's "
           "5-minute prices so far (ComEd's currenthouraverage).", lambda v: v.hour_average),
    Metric(f"{PREFIX}_hour_projected_cents_per_kwh", GAUGE, "Projected billed price of the billing period in "
           "progress (ComEd: the clock hour): the mean of its published 5-minute prices with the rest at the latest "
           "price. Energy drawn anywhere in the hour pays this; smart charging decides on it.",
           _billed(lambda b: b.projection.cents if b.projection else None)),
    Metric(f"{PREFIX}_hour_published_prices", GAUGE, "Prices of the billing period in progress published so far "
           "(ComEd: 12 make the hour final).", _billed(lambda b: b.projection.published if b.projection else None)),
    Metric(f"{PREFIX}_hour_projected_percentile_rank_percent", GAUGE, "Where the projected hour price ranks among "
           "the lookback's billed hourly prices, in percent (equal prices count half).",
           _billed(lambda b: b.projection_rank)),
    Metric(f"{PREFIX}_billed_lookback_percentile_cents_per_kwh", GAUGE, "Percentiles (10, 25, 50, 75, 90, 95) of "
           "the billed prices (ComEd: hourly means) over the lookback, every hour weighing once.",
           _billed(lambda b: {f"{q * 100:g}": x for q, x in b.stats.quantiles.items()} if b.stats else {}),
           ("percentile",)),
    Metric(f"{PREFIX}_lookback_mean_cents_per_kwh", GAUGE, "Mean 5-minute price over the lookback.",
           _stat(lambda s: s.mean)),
    Metric(f"{PREFIX}_lookback_median_cents_per_kwh", GAUGE, "Median 5-minute price over the lookback.",
           _stat(lambda s: s.median)),
    Metric(f"{PREFIX}_lookback_stddev_cents_per_kwh", GAUGE, "Standard deviation of the 5-minute prices over the "
           "lookback.", _stat(lambda s: s.stddev)),
    Metric(f"{PREFIX}_lookback_percentile_cents_per_kwh", GAUGE, "Percentiles (10, 25, 50, 75, 90, 95) of the "
           "5-minute prices over the lookback (linear interpolation, as PromQL quantile_over_time).",
           lambda v: {f"{q * 100:g}": x for q, x in v.stats.quantiles.items()} if v.stats else {}, ("percentile",)),
    Metric(f"{PREFIX}_percentile_rank_percent", GAUGE, "Where the latest price ranks within the lookback, in "
           "percent (equal prices count half).", lambda v: tidy(v.rank)),
    Metric(f"{PREFIX}_lookback_prices", GAUGE, "Number of 5-minute prices in the lookback window.",
           lambda v: v.stats.count if v.stats else None),
    Metric(f"{PREFIX}_history_covered_seconds", GAUGE, "Price history available in the lookback window "
           "(5-minute prices held x 300 s).", lambda v: v.covered_s),
    Metric(f"{PREFIX}_history_oldest_timestamp_seconds", GAUGE, "End of the oldest price in the lookback window.",
           lambda v: v.oldest),
    Metric(f"{PREFIX}_delivery_cents_per_kwh", GAUGE, "Delivery charges per kWh in force now (tariff: the "
           "delivery period covering the interval in progress, else tariff.delivery_cents_per_kwh), so PromQL can compute "
           "the full cost.", _billed(lambda b: b.delivery_cents)),
    Metric(f"{PREFIX}_monthly_fixed_dollars", GAUGE, "Fixed monthly charges (tariff.monthly_fixed_dollars).",
           _tariff(lambda t: t.monthly_fixed)),
    Metric(f"{PREFIX}_monthly_capacity_dollars", GAUGE,
           "Capacity charge per month (tariff.capacity_dollars_per_month).",
           _tariff(lambda t: t.capacity_per_month)),
    Metric(f"{PREFIX}_reference_supply_cents_per_kwh", GAUGE, "The fixed-price supply rate savings are measured "
           "against (tariff.reference_supply_cents_per_kwh); absent when none is set.",
           _tariff(lambda t: None if t.reference_supply_per_kwh is None else 100 * t.reference_supply_per_kwh)),
    Metric(f"{PREFIX}_forecast_cents_per_kwh", GAUGE, "Predicted billed supply price, in cents per kWh, of the clock "
           "hour starting at electricity_price_forecast_start_timestamp_seconds + 3600 x hours_ahead (0 = the hour in "
           "progress, up to 47). The first electricity_price_forecast_day_ahead_prices hours are the utility's "
           "day-ahead prices, the rest the lookback's mean billed price for that weekday and hour. A present-time "
           "value per hour ahead, because Prometheus accepts no samples stamped in the future.",
           _forecast(lambda f: {str(i): cents for i, cents in enumerate(f.cents)}), ("hours_ahead",)),
    Metric(f"{PREFIX}_forecast_start_timestamp_seconds", GAUGE, "Start of the forecast's first hour, the clock hour "
           "in progress (hours_ahead 0 of electricity_price_forecast_cents_per_kwh), in Unix time.",
           _forecast(lambda f: f.start)),
    Metric(f"{PREFIX}_forecast_day_ahead_prices", GAUGE, "How many leading hours of the forecast are the utility's "
           "day-ahead prices (ComEd publishes today's, and tomorrow's from about 16:30 Central); the later hours are "
           "the fallback profile of the lookback's billed prices. 0 = the whole forecast is the fallback.",
           _forecast(lambda f: f.day_ahead_hours)),
)
BASE_LABELS = ("provider",)


def metric_reference() -> list[tuple[str, str, str, str]]:
    rows = [row for metric in ROWS for row in metric.reference(BASE_LABELS)]
    return rows + [(SERIES_5M, "gauge (sample timestamps)", "provider", SERIES_5M_HELP),
                   (SERIES_BILLED, "gauge (sample timestamps)", "provider", SERIES_BILLED_HELP)]


SERIES_5M = f"{PREFIX}_5m_cents_per_kwh"
SERIES_5M_HELP = ("Every 5-minute price exactly once, each sample stamped with the end of its interval, so "
                  "quantile_over_time weights every price once whatever the scrape interval; backfilled history "
                  "uses the same name. Use electricity_price_cents_per_kwh for the current price.")
SERIES_BILLED = f"{PREFIX}_billed_cents_per_kwh"
SERIES_BILLED_HELP = ("The price each complete billing period was billed at (ComEd: the mean of the hour's twelve "
                      "5-minute prices), one sample per period stamped with its end, so quantile_over_time weights "
                      "every billed hour once; backfilled history uses the same name.")


def timestamped(name: str, text: str, provider: str, point: tuple[float, float] | None) -> GaugeMetricFamily:
    """One sample stamped with the end of the interval or period its (end, cents) covers."""
    family = GaugeMetricFamily(name, text, labels=list(BASE_LABELS))
    if point is not None:
        family.add_metric([provider], tidy(point[1]), timestamp=point[0])
    return family


@dataclass(frozen=True)
class PriceSnapshot:
    """What a poll leaves: the live feed's answer (None from the history poll) and the rolling history
    as of then, with its version so the newer of the two pollers' histories wins."""

    current: CurrentPrice | None
    history: PriceHistory
    version: int = 0
    day_ahead: Mapping[float, float] = field(default_factory=lambda: NO_DAY_AHEAD)  # hour start -> predicted cents


def make_collect(provider: str, lookback_s: float, tariff: Tariff | None = None):
    """Families from the pollers' snapshots only. The history poller's snapshot (refreshed every six
    hours) keeps the lookback statistics exported while the live feed fails (`_up` 0): they describe
    the past 30 days, which stay true; the current price, its rank, the hour in progress and the
    forecast (which starts from the latest price) are withdrawn with the live snapshot. Every snapshot
    carries the book as of its poll, so the newest one has the latest history and day-ahead prices:
    the last good day-ahead prices stay in use while their endpoint fails. Without a tariff there is
    no forecast. The hour average has its own endpoint and poller: either endpoint failing leaves the
    other's figures served."""
    def collect(data: FreshData) -> Iterable[Family]:
        values = data.get(provider, {})
        live: PriceSnapshot | None = values.get("current")
        snapshots = [snapshot for snapshot in (live, values.get("history"), values.get("day_ahead"))
                     if snapshot is not None]
        newest = max(snapshots, key=lambda snapshot: snapshot.version) if snapshots else None
        history = newest.history if newest else PriceHistory.empty()
        record = view(live.current if live else None, history, lookback_s, tariff,
                      newest.day_ahead if newest else NO_DAY_AHEAD, values.get("hour_average"))
        yield from build_families(ROWS, BASE_LABELS, [((provider,), record)])
        latest = record.current
        yield timestamped(SERIES_5M, SERIES_5M_HELP, provider, (latest.end, latest.cents) if latest else None)
        yield timestamped(SERIES_BILLED, SERIES_BILLED_HELP, provider, record.billed.latest if record.billed else None)
    return collect


def parts_factory(config: Config, log: logging.Logger, clock: Callable[[], float] = time.time) -> PartsFactory:
    """`clock` says which day it is for the history and the day-ahead requests (tests pass the simulator's)."""
    settings = config.price
    lookback_s = config.smart_charging.lookback_days * 86400.0
    days = math.ceil(config.smart_charging.lookback_days)

    def make_parts(ctx: PartsContext) -> ExporterParts:
        metrics = UpstreamMetrics(PREFIX, ctx.registry, ENDPOINTS, UPSTREAM)
        provider = PROVIDERS[settings.provider](Upstream(ctx.session, metrics, timeout=settings.timeout),
                                                settings.base_url)
        book = PriceBook(lookback_s)   # the pollers' accumulator; the collector sees only their snapshots

        async def current() -> PriceSnapshot:
            answer = await provider.current()
            if not answer.recent:
                raise NoData(f"{provider.name} answered with no prices (no data, not a zero price)")
            book.add(answer.recent)
            return book.snapshot(answer)

        async def history() -> PriceSnapshot:
            count = await fill_history(book, provider, provider.zone, days, ctx.on_update, clock)
            newest = float(book.history.ends[-1]) if count else 0.0
            in_lookback = book.history.window(newest - lookback_s, newest).size
            # the figure electricity_price_lookback_prices shows; a day more is held for the window's edge
            log.info("price history: %d 5-minute prices in the %g-day lookback (%d held)", in_lookback,
                     lookback_s / 86400, count)
            return book.snapshot()

        async def day_ahead() -> PriceSnapshot:
            book.add_day_ahead(await provider.day_ahead(clock()))
            return book.snapshot()

        target = Target(provider.name)
        target.add(Poller(provider.name, "current", current, settings.poll_interval, timeout=settings.timeout * 2,
                          on_update=ctx.on_update, logger=log, align=CURRENT_POLL_OFFSET))
        target.add(Poller(provider.name, "hour_average", provider.hour_average, settings.poll_interval,
                          timeout=settings.timeout * 2, on_update=ctx.on_update, logger=log, align=CURRENT_POLL_OFFSET,
                          meanwhile="the 5-minute price is served without it"))
        target.add(Poller(provider.name, "history", history, HISTORY_REFRESH, timeout=HISTORY_TIMEOUT,
                          on_update=ctx.on_update, logger=log))
        target.add(Poller(provider.name, "day_ahead", day_ahead, DAY_AHEAD_REFRESH, timeout=settings.timeout * 2,
                          on_update=ctx.on_update, logger=log, align=DAY_AHEAD_POLL_OFFSET,
                          meanwhile="the forecast keeps the day-ahead prices it has, the fallback profile after them"))
        collector = SnapshotCollector(PREFIX, [target], settings.stale_after,
                                      make_collect(provider.name, lookback_s, tariff_for(config)))
        ctx.registry.register(collector)
        return ExporterParts([target], collector)

    return make_parts


def main(argv: Sequence[str] | None = None) -> int:
    return run_exporter("price-exporter", "Real-time electricity price exporter (ComEd 5-minute prices).", argv,
                        lambda c: c.price.listen, parts_factory)


if __name__ == "__main__":
    raise SystemExit(main())
