"""Deterministic 5-minute electricity prices (cents/kWh), as ComEd would publish them.

Convention used everywhere in the simulator (feed, ground truth, costing):
**a price stamped T (ComEd ``millisUTC``) is the price of the 5-minute interval ENDING at T**,
i.e. it covers (T - 300 s, T]. The one-second step [t, t+1) belongs to the interval ending at
``(t // 300 + 1) * 300``. This matches ComEd's "hour ending" labelling of hourly prices.

Generated prices are a pure function of (seed, T): a daily curve in the site's local time
(cheap nights, a morning bump, an evening peak), a day-level offset, smooth hourly noise,
per-interval jitter, and occasional negative overnight hours, rounded to 0.1 cent. Optional
random spikes (``spike_chance_per_day``, default none) replace generated prices for 15-60 minutes
at a price drawn from ``spike_cents``, starting 11:00-20:00 local, all drawn from the seed per
local day. Scenario overrides/spikes and an explicit list replace generated values. Prices exist
from ``history_days`` before origin onward; the feed only publishes intervals that ended at least
``lag`` seconds ago (never future prices).

Day-ahead (predicted hourly) prices, ComEd's ``/rrtp/ServletFeed`` (``day_ahead_hour``): the
mean of the hour's twelve prices as they would be without random spikes and scenario overrides
(the explicit list counts: it is the scenario's "true" market), times ``1 + e`` with ``e`` drawn
from N(0, ``forecast_error``) seeded per hour, rounded to 0.1 cent. So the forecast knows each
day's shape but never a spike.
"""

from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from simulator.config import PriceConfig

INTERVAL_S = 300
HOUR_S = 3600
SPIKE_DURATION_S = (900, 3600)  # 15 to 60 minutes, in whole 5-minute intervals
SPIKE_WINDOW_H = (11.0, 20.0)   # local hours a random spike starts between


def interval_of_step(t: int) -> int:
    """End timestamp of the 5-minute interval containing the step [t, t+1)."""
    return (int(t) // INTERVAL_S + 1) * INTERVAL_S


def _rng(seed: int, tag: str, n: int) -> random.Random:
    return random.Random(f"{seed}:{tag}:{n}")  # str seeds hash with sha512: stable across runs


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-(((hour - centre) / width) ** 2))


def _round_price(value: float) -> float:
    rounded = round(value, 1)
    return 0.0 if rounded == 0 else rounded  # never "-0.0"


def format_price(value: float) -> str:
    """ComEd's string form: one decimal."""
    return f"{_round_price(value):.1f}"


class PriceSeries:
    """Prices by interval end; live overrides can be added while the simulator runs."""

    def __init__(self, cfg: PriceConfig, origin: float, time_zone: str) -> None:
        self.cfg = cfg
        self.origin = origin
        self.tz = ZoneInfo(time_zone)
        earliest = origin - cfg.history_days * 86400.0
        self.history_start = int(math.ceil(earliest / INTERVAL_S)) * INTERVAL_S
        self._overrides: list[tuple[float, float, float]] = [
            (origin + o.start_s, origin + o.end_s, o.price) for o in cfg.overrides]
        self._explicit: dict[int, float] = {}
        if cfg.explicit is not None:
            first = interval_of_step(math.floor(origin + cfg.explicit.start_s))
            self._explicit = {first + i * INTERVAL_S: v for i, v in enumerate(cfg.explicit.values)}
        self._cache: dict[int, float] = {}  # interval end -> generated price with random spikes
        self._plain: dict[int, float] = {}  # interval end -> generated price without them
        self._spikes: dict[date, tuple[tuple[float, float, float], ...]] = {}

    def add_override(self, start: float, end: float, price: float) -> None:
        """Price for every interval overlapping (start, end]; later overrides win."""
        self._overrides.append((start, end, price))

    def price(self, end: int) -> float:
        """Price (cents/kWh, 0.1 resolution) of the interval ending at ``end``."""
        for start_o, end_o, value in reversed(self._overrides):
            if end > start_o and end - INTERVAL_S < end_o:
                return _round_price(value)
        if end in self._explicit:
            return _round_price(self._explicit[end])
        cached = self._cache.get(end)
        if cached is None:
            spike = self.spike_at(end) if self.cfg.spike_chance_per_day > 0 else None
            cached = self._cache[end] = spike if spike is not None else self._plain_price(end)
        return cached

    def _plain_price(self, end: int) -> float:
        cached = self._plain.get(end)
        if cached is None:
            cached = self._plain[end] = self._generated(end)
        return cached

    def _expected(self, end: int) -> float:
        """The price without surprises: the explicit list, else the generated price without spikes."""
        if end in self._explicit:
            return _round_price(self._explicit[end])
        return self._plain_price(end)

    def spikes_on(self, day: date) -> tuple[tuple[float, float, float], ...]:
        """The random spikes starting on local ``day``: (start, end, cents), a price for every
        interval ending in (start, end]."""
        cached = self._spikes.get(day)
        if cached is not None:
            return cached
        cfg = self.cfg
        rng = _rng(cfg.seed, "spike", day.toordinal())
        count = int(cfg.spike_chance_per_day)
        count += 1 if rng.random() < cfg.spike_chance_per_day - count else 0
        midnight = datetime(day.year, day.month, day.day, tzinfo=self.tz)
        spikes = []
        for _ in range(count):
            first, last = SPIKE_WINDOW_H
            offset = round(rng.uniform(first * HOUR_S, last * HOUR_S) / INTERVAL_S) * INTERVAL_S
            start = (midnight + timedelta(seconds=offset)).timestamp()
            duration = rng.randint(SPIKE_DURATION_S[0] // INTERVAL_S, SPIKE_DURATION_S[1] // INTERVAL_S) * INTERVAL_S
            spikes.append((start, start + duration, _round_price(rng.uniform(*cfg.spike_cents))))
        cached = self._spikes[day] = tuple(sorted(spikes))
        return cached

    def spike_at(self, end: int) -> float | None:
        """The random spike's price for the interval ending at ``end``, if one covers it."""
        day = datetime.fromtimestamp(end - INTERVAL_S, self.tz).date()
        for start, stop, cents in (*self.spikes_on(day - timedelta(days=1)), *self.spikes_on(day)):
            if start < end <= stop:
                return cents
        return None

    def spikes_between(self, start: float, end: float) -> list[tuple[float, float, float]]:
        """Ground truth: the random spikes overlapping (start, end], oldest first."""
        if self.cfg.spike_chance_per_day <= 0:
            return []
        first = datetime.fromtimestamp(start, self.tz).date() - timedelta(days=1)
        last = datetime.fromtimestamp(end, self.tz).date()
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        return [spike for day in days for spike in self.spikes_on(day) if spike[1] > start and spike[0] < end]

    def day_ahead_hour(self, hour_start: float) -> float:
        """ComEd's day-ahead (predicted) price, cents/kWh, of the hour [hour_start, hour_start + 3600):
        the true mean of its twelve prices without random spikes and overrides, times a seeded
        relative error of standard deviation ``forecast_error``, rounded to 0.1 cent."""
        start = int(hour_start)
        true = sum(self._expected(end) for end in range(start + INTERVAL_S, start + HOUR_S + 1, INTERVAL_S)) / 12
        error = _rng(self.cfg.seed, "day_ahead", start).gauss(0.0, 1.0) * self.cfg.forecast_error
        return _round_price(true * (1.0 + error))

    def latest_published(self, now: float) -> int | None:
        """End of the newest interval the feed may show at ``now`` (None before history starts)."""
        latest = int(math.floor((now - self.cfg.lag_s) / INTERVAL_S)) * INTERVAL_S
        return latest if latest >= self.history_start else None

    def published(self, now: float, start: float, end: float) -> list[tuple[int, float]]:
        """Published (interval end, price) pairs with start <= T <= end, newest first."""
        latest = self.latest_published(now)
        if latest is None:
            return []
        hi = min(latest, int(math.floor(end / INTERVAL_S)) * INTERVAL_S)
        lo = max(self.history_start, int(math.ceil(start / INTERVAL_S)) * INTERVAL_S)
        return [(t, self.price(t)) for t in range(hi, lo - 1, -INTERVAL_S)]

    def between(self, start: float, end: float) -> list[tuple[int, float]]:
        """Ground truth: every interval end in [start, end], oldest first, published or not."""
        lo = int(math.ceil(start / INTERVAL_S)) * INTERVAL_S
        hi = int(math.floor(end / INTERVAL_S)) * INTERVAL_S
        return [(t, self.price(t)) for t in range(lo, hi + 1, INTERVAL_S)]

    def _generated(self, end: int) -> float:
        cfg, seed = self.cfg, self.cfg.seed
        middle = end - INTERVAL_S / 2
        local = datetime.fromtimestamp(middle, self.tz)
        hour = local.hour + local.minute / 60.0
        shape = -0.6 + 0.5 * _bump(hour, 8.0, 1.8) + 0.5 * _bump(hour, 13.0, 3.0) + 1.3 * _bump(hour, 17.5, 2.2)
        day = _rng(seed, "day", local.date().toordinal()).gauss(0.0, 0.35)
        block = int(middle // 3600)
        frac = (middle % 3600) / 3600.0
        knot_a = _rng(seed, "hour", block).gauss(0.0, 1.0)
        knot_b = _rng(seed, "hour", block + 1).gauss(0.0, 1.0)
        smooth = (knot_a + (knot_b - knot_a) * frac) * cfg.noise
        jitter = _rng(seed, "jitter", end).gauss(0.0, cfg.noise * 0.35)
        value = cfg.base + cfg.amplitude * shape + day + smooth + jitter
        if hour < 5.0:
            night = _rng(seed, "negative", block)
            if night.random() < cfg.negative_chance:
                value = -(0.2 + 2.5 * night.random()) + jitter * 0.3
        return _round_price(value)
