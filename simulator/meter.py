"""The home's utility meter: what ComEd measures, rates, bills and publishes on its Opower portal.

Ground truth for the suite's meter component, written from the utility's rules and never from the
suite's billing code (``billing/``); the rate uses ``simulator.bill``'s helpers, the simulator's own
independent truth. Everything follows ComEd's clock, America/Chicago (days, hours, bill periods).

- Energy per 5-minute interval (W*s, keyed by the interval's END, as ``SessionTruth.by_interval``):
  a base load (seeded per local day: a daily shape around ``base_load_kw`` with noise, whole W*s,
  never negative) + every EV session's energy in that interval. Preloaded ``telemetry.history``
  sessions count too, spread evenly over their duration (they happened before the simulation).
- Rate per interval ($/kWh): supply + delivery. Supply ``hourly_average`` (ComEd Hourly Pricing):
  the mean of the interval's LOCAL clock hour's twelve 5-minute prices / 100 (``interval``: its own
  price); delivery: ``simulator.bill.delivery_rate``. A read's cost = sum over its intervals of
  kWh x rate, unrounded; so is a day's, and the EV's part uses the same per-interval rate.
- Reads: quarter-hour, half-hour and hour reads are absolute 15/30/60-minute bins (a fall-back day
  has 50 half hours), day reads run local midnight to midnight, bill reads are bill periods. An
  interval belongs to the read containing its start.
- Publication: a read is served once it ended ``delay`` ago (36 h), never before the history start
  (local midnight ``history`` before the scenario start).
- Corrections: a listed local day's intervals are published scaled by ``factor`` (an estimate) until
  ``after`` past the day's end, then at their true values; reads keep their start and end.
- Bills: periods from local midnight of ``bill_cycle_day`` of a month to the same day of the next;
  only periods inside the history. Billed at true values, published ``bill_delay`` after the period
  ends (the bill date). amount = energy charges + ``monthly_fixed`` + ``capacity_per_month``.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from simulator.bill import delivery_rate, hour_mean_price, local_hour_end
from simulator.config import HistoricalSession, MeterConfig, TariffConfig
from simulator.prices import INTERVAL_S, PriceSeries

TZ = ZoneInfo("America/Chicago")  # ComEd's clock, whatever the site's
WS_PER_KWH = 3.6e6
BIN_S = {"quarter_hour": 900, "half_hour": 1800, "hour": 3600}
AGGREGATES = ("bill", "day", "hour", "half_hour", "quarter_hour")  # coarse to fine, Opower's names
FINEST = {"BILLING": "bill", "DAY": "day", "HOUR": "hour", "HALF_HOUR": "half_hour", "QUARTER_HOUR": "quarter_hour"}


# --- the clock ------------------------------------------------------------------------------------


def day_start(day: date, tz: ZoneInfo = TZ) -> int:
    """Unix seconds of the local midnight starting ``day``."""
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


def local_day(t: float, tz: ZoneInfo = TZ) -> date:
    return datetime.fromtimestamp(t, tz).date()


def history_start(origin: float, cfg: MeterConfig, tz: ZoneInfo = TZ) -> int:
    """The first read's start: the local midnight on or before ``origin - history``."""
    return day_start(local_day(origin - cfg.history_s, tz), tz)


def serves(read_resolution: str, aggregate: str) -> bool:
    """Whether a meter read at ``read_resolution`` has reads of ``aggregate`` (coarser or equal)."""
    return aggregate in AGGREGATES and AGGREGATES.index(aggregate) <= AGGREGATES.index(FINEST[read_resolution])


# --- energy ---------------------------------------------------------------------------------------


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-(((hour - centre) / width) ** 2))


@lru_cache(maxsize=1024)
def base_load_day(day: date, base_kw: float, seed: int, tz: ZoneInfo = TZ) -> dict[int, float]:
    """W*s (whole) per interval end for the intervals starting on local ``day``: a night low, a
    morning and a bigger evening bump, a day level and per-interval noise, all from ``seed``.
    Do not mutate the (cached) result."""
    rng = random.Random(f"{seed}:meter:{day.toordinal()}")
    level = max(0.0, 1.0 + rng.gauss(0.0, 0.08))
    start, end = day_start(day, tz), day_start(day + timedelta(days=1), tz)
    load: dict[int, float] = {}
    for t in range(start, end, INTERVAL_S):
        local = datetime.fromtimestamp(t + INTERVAL_S / 2, tz)
        hour = local.hour + local.minute / 60.0
        shape = 0.8 + 0.35 * _bump(hour, 7.5, 1.5) + 0.7 * _bump(hour, 19.0, 2.5) - 0.2 * _bump(hour, 3.5, 2.0)
        kw = base_kw * level * shape * (1.0 + rng.gauss(0.0, 0.12))
        load[t + INTERVAL_S] = float(round(max(0.0, kw) * 1000.0 * INTERVAL_S))
    return load


def base_load_ws(end: int, base_kw: float, seed: int, tz: ZoneInfo = TZ) -> float:
    """The base load of the interval ending at ``end``."""
    return base_load_day(local_day(end - INTERVAL_S, tz), base_kw, seed, tz)[end]


def historical_energy(sessions: Iterable[HistoricalSession], origin: int) -> dict[int, float]:
    """Preloaded sessions' energy (W*s by interval end), spread evenly over each one's duration."""
    energy: dict[int, float] = {}
    for h in sessions:
        start = origin + h.start_s
        end = start + h.duration_s
        if h.duration_s <= 0 or h.energy_wh <= 0:
            continue
        per_s = h.energy_wh * 3600.0 / h.duration_s
        t = int(start // INTERVAL_S) * INTERVAL_S
        while t < end:
            overlap = min(end, t + INTERVAL_S) - max(start, t)
            energy[t + INTERVAL_S] = energy.get(t + INTERVAL_S, 0.0) + overlap * per_s
            t += INTERVAL_S
    return energy


def ev_energy(sources: Iterable[Mapping[int, float]]) -> dict[int, float]:
    """W*s by interval end, summed over sessions (``SessionTruth.by_interval`` maps)."""
    total: dict[int, float] = {}
    for source in sources:
        for end, ws in source.items():
            total[end] = total.get(end, 0.0) + ws
    return total


# --- money ----------------------------------------------------------------------------------------


def interval_rate(end: int, prices: PriceSeries, tariff: TariffConfig, tz: ZoneInfo = TZ,
                  hour_means: dict[int, float] | None = None) -> float:
    """$/kWh of the interval ending at ``end``: supply (the local hour's mean price, or the
    interval's own with ``supply_billing: interval``) + delivery. ``hour_means`` memoises."""
    if tariff.supply_billing == "hourly_average":
        hour = local_hour_end(end, tz)
        means = hour_means if hour_means is not None else {}
        if hour not in means:
            means[hour] = hour_mean_price(hour, prices)
        supply = means[hour] / 100.0
    else:
        supply = prices.price(end) / 100.0
    return supply + delivery_rate(end, tariff, tz)


@dataclass(frozen=True)
class Interval:
    """One 5-minute interval of the home: base and EV energy (W*s) and its rate ($/kWh)."""

    end: int
    base_ws: float
    ev_ws: float
    rate: float

    @property
    def kwh(self) -> float:
        return (self.base_ws + self.ev_ws) / WS_PER_KWH

    @property
    def ev_kwh(self) -> float:
        return self.ev_ws / WS_PER_KWH


def intervals(start: int, end: int, cfg: MeterConfig, ev: Mapping[int, float], prices: PriceSeries,
              tariff: TariffConfig, tz: ZoneInfo = TZ) -> list[Interval]:
    """The intervals STARTING in [start, end), oldest first."""
    first = int(math.ceil(start / INTERVAL_S)) * INTERVAL_S
    means: dict[int, float] = {}
    return [Interval(t + INTERVAL_S, base_load_ws(t + INTERVAL_S, cfg.base_load_kw, cfg.seed, tz),
                     ev.get(t + INTERVAL_S, 0.0), interval_rate(t + INTERVAL_S, prices, tariff, tz, means))
            for t in range(first, end, INTERVAL_S)]


# --- reads ----------------------------------------------------------------------------------------


def correction_factor(end: int, now: float, cfg: MeterConfig, tz: ZoneInfo = TZ) -> float:
    """The factor the interval ending at ``end`` is published with at ``now`` (1 = true value)."""
    if not cfg.corrections:
        return 1.0
    day = local_day(end - INTERVAL_S, tz)
    for c in cfg.corrections:
        if c.day == day and now < day_start(day + timedelta(days=1), tz) + c.after_s:
            return c.factor
    return 1.0


@dataclass(frozen=True)
class Read:
    """One read as the portal serves it: [start, end), kWh, $ and whether it is an estimate."""

    start: int
    end: int
    kwh: float
    cost: float
    estimated: bool = False


def aggregate(items: list[Interval], bounds: Iterable[tuple[int, int]],
              factor: Callable[[int], float] = lambda end: 1.0) -> list[Read]:
    """One read per (start, end) bound over the intervals starting in it; ``factor`` scales an
    interval's energy (a published estimate). Bounds with no interval give no read."""
    by_end = {i.end: i for i in items}
    reads = []
    for start, end in bounds:
        kwh = cost = 0.0
        seen, estimated = False, False
        for t in range(start + INTERVAL_S, end + 1, INTERVAL_S):
            item = by_end.get(t)
            if item is None:
                continue
            f = factor(t)
            estimated = estimated or f != 1.0
            seen = True
            kwh += item.kwh * f
            cost += item.kwh * f * item.rate
        if seen:
            reads.append(Read(start, end, kwh, cost, estimated))
    return reads


def day_bounds(start: int, end: int, tz: ZoneInfo = TZ) -> list[tuple[int, int]]:
    """Local days overlapping [start, end) as (midnight, next midnight)."""
    bounds, day = [], local_day(start, tz)
    while (lo := day_start(day, tz)) < end:
        bounds.append((lo, day_start(day + timedelta(days=1), tz)))
        day += timedelta(days=1)
    return bounds


def read_bounds(kind: str, start: int, end: int, tz: ZoneInfo = TZ) -> list[tuple[int, int]]:
    """The sub-day or day reads (an Opower aggregateType) overlapping [start, end)."""
    if kind in BIN_S:
        step = BIN_S[kind]
        first = start // step * step
        return [(t, t + step) for t in range(first, end, step)]
    if kind == "day":
        return day_bounds(start, end, tz)
    raise ValueError(f"no interval bounds for {kind!r}")


# --- bills ----------------------------------------------------------------------------------------


def cycle_boundary(year: int, month: int, cycle_day: int, tz: ZoneInfo = TZ) -> int:
    """Local midnight starting ``cycle_day`` of the month (month may run past 12)."""
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return day_start(date(year, month, cycle_day), tz)


def period_containing(t: float, cycle_day: int, tz: ZoneInfo = TZ) -> tuple[int, int]:
    """The bill period [start, end) containing ``t``."""
    local = datetime.fromtimestamp(t, tz)
    month = local.year * 12 + local.month - 1
    if cycle_boundary(0, month + 1, cycle_day, tz) > t:
        month -= 1
    return cycle_boundary(0, month + 1, cycle_day, tz), cycle_boundary(0, month + 2, cycle_day, tz)


def bill_periods(first: int, until: float, cycle_day: int, tz: ZoneInfo = TZ) -> list[tuple[int, int]]:
    """The bill periods starting at or after ``first`` and ended by ``until``."""
    start, end = period_containing(first, cycle_day, tz)
    if start < first:
        start, end = end, period_containing(end, cycle_day, tz)[1]
    periods = []
    while end <= until:
        periods.append((start, end))
        start, end = end, period_containing(end, cycle_day, tz)[1]
    return periods


def bill_date(period_end: int, cfg: MeterConfig, tz: ZoneInfo = TZ) -> date:
    return local_day(period_end + cfg.bill_delay_s, tz)


def iso(t: float, tz: ZoneInfo = TZ) -> str:
    """ISO 8601 with the local offset, as Opower prints times: ``2026-11-01T01:00:00-05:00``."""
    return datetime.fromtimestamp(t, tz).isoformat()


def bill_truth(period: tuple[int, int], items: list[Interval], cfg: MeterConfig, tariff: TariffConfig,
               now: float, tz: ZoneInfo = TZ) -> dict[str, Any]:
    """One bill: its period, kWh, energy charges, amount and the EV's part."""
    start, end = period
    inside = [i for i in items if start < i.end <= end]
    energy = sum(i.kwh * i.rate for i in inside)
    return {
        "start": iso(start, tz), "end": iso(end, tz), "bill_date": bill_date(end, cfg, tz).isoformat(),
        "published": now >= end + cfg.bill_delay_s,
        "kwh": sum(i.kwh for i in inside), "energy_charges": energy,
        "fixed": tariff.monthly_fixed, "capacity": tariff.capacity_per_month,
        "amount": energy + tariff.monthly_fixed + tariff.capacity_per_month,
        "ev_kwh": sum(i.ev_kwh for i in inside), "ev_cost": sum(i.ev_kwh * i.rate for i in inside),
    }


def day_truth(day: date, items: list[Interval], complete: bool) -> dict[str, Any]:
    """One local day of the home: kWh and $ in total, of the base load and of the EV."""
    home_kwh = sum(i.kwh for i in items)
    ev_kwh = sum(i.ev_kwh for i in items)
    return {
        "day": day.isoformat(), "complete": complete,
        "home_kwh": home_kwh, "ev_kwh": ev_kwh, "base_kwh": sum(i.base_ws for i in items) / WS_PER_KWH,
        "home_cost": sum(i.kwh * i.rate for i in items), "ev_cost": sum(i.ev_kwh * i.rate for i in items),
        "ev_share": ev_kwh / home_kwh if home_kwh > 0 else 0.0,
    }


# --- the meter bound to a running simulation -------------------------------------------------------


class Meter:
    """The meter of one simulation: its config, the prices and tariff, and a live view of the EV
    sessions (``sessions()`` returns their ``by_interval`` maps; the caller syncs the model)."""

    def __init__(self, cfg: MeterConfig, tariff: TariffConfig, prices: PriceSeries, origin: int,
                 history: Iterable[HistoricalSession], sessions: Callable[[], Iterable[Mapping[int, float]]],
                 tz: ZoneInfo = TZ) -> None:
        self.cfg, self.tariff, self.prices, self.tz = cfg, tariff, prices, tz
        self.origin = origin
        self.start = history_start(origin, cfg, tz)
        self._historical = historical_energy(history, origin)
        self._sessions = sessions

    def ev(self) -> dict[int, float]:
        return ev_energy([self._historical, *self._sessions()])

    def intervals(self, start: int, end: float) -> list[Interval]:
        """Complete intervals starting in [max(start, history start), end)."""
        lo = max(start, self.start)
        hi = int(end // INTERVAL_S) * INTERVAL_S
        return intervals(lo, hi, self.cfg, self.ev(), self.prices, self.tariff, self.tz) if hi > lo else []

    def published_until(self, now: float) -> float:
        """Reads ending at or before this are served."""
        return now - self.cfg.delay_s

    def reads(self, kind: str, start: int, end: int, now: float) -> list[Read]:
        """The published reads of ``kind`` starting in [start, end), as served at ``now``."""
        lo = max(start, self.start)
        if kind == "bill":
            bounds = [p for p in self.bill_periods(now) if lo <= p[0] < end]
            items = self.intervals(bounds[0][0], bounds[-1][1]) if bounds else []
            return aggregate(items, bounds)
        limit = self.published_until(now)
        bounds = [(a, b) for a, b in read_bounds(kind, lo, end, self.tz)
                  if a >= lo and b <= limit]
        if not bounds:
            return []
        items = self.intervals(bounds[0][0], bounds[-1][1])
        return aggregate(items, bounds, lambda t: correction_factor(t, now, self.cfg, self.tz))

    def bill_periods(self, now: float) -> list[tuple[int, int]]:
        """Periods whose bill is out at ``now``."""
        return [p for p in bill_periods(self.start, now, self.cfg.bill_cycle_day, self.tz)
                if now >= p[1] + self.cfg.bill_delay_s]

    def bills(self, now: float, *, published_only: bool = True) -> list[dict[str, Any]]:
        """Bills, oldest first (all complete periods unless ``published_only``)."""
        periods = self.bill_periods(now) if published_only else bill_periods(
            self.start, now, self.cfg.bill_cycle_day, self.tz)
        if not periods:
            return []
        items = self.intervals(periods[0][0], periods[-1][1])
        return [bill_truth(p, items, self.cfg, self.tariff, now, self.tz) for p in periods]

    def forecast(self, now: float) -> dict[str, Any]:
        """The bill in progress: the period containing ``now``; so far = its published reads at the
        account's resolution (estimates included, as shown); estimated = so far scaled to the
        whole period (0 with nothing published yet)."""
        start, end = period_containing(now, self.cfg.bill_cycle_day, self.tz)
        kind = FINEST[self.cfg.read_resolution]
        reads = self.reads(kind, start, end, now) if kind != "bill" else []
        kwh, cost = sum(r.kwh for r in reads), sum(r.cost for r in reads)
        covered = (reads[-1].end - max(start, self.start)) if reads else 0
        scale = (end - max(start, self.start)) / covered if covered > 0 else 0.0
        return {"start": iso(start, self.tz), "end": iso(end, self.tz), "current": iso(now, self.tz),
                "so_far_kwh": kwh, "so_far_cost": cost,
                "estimated_kwh": kwh * scale, "estimated_cost": cost * scale}

    def truth(self, now: float, first: date | None = None, last: date | None = None) -> dict[str, Any]:
        """``GET /sim/meter`` without the credentials: days in [first, last] (default: history
        start to today), the bills overlapping them, and the forecast."""
        first = first or local_day(self.start, self.tz)
        last = last or local_day(now, self.tz)
        lo = max(day_start(first, self.tz), self.start)
        hi = day_start(last + timedelta(days=1), self.tz)
        items = self.intervals(lo, min(hi, now))
        ends = [i.end for i in items]
        days: list[dict[str, Any]] = []
        for a, b in day_bounds(lo, hi, self.tz):
            if a >= now:
                break
            inside = items[bisect.bisect_right(ends, a):bisect.bisect_right(ends, b)]
            days.append(day_truth(local_day(a, self.tz), inside, b <= now))
        bills = [b for b in self.bills(now, published_only=False)
                 if datetime.fromisoformat(b["start"]).timestamp() < hi
                 and datetime.fromisoformat(b["end"]).timestamp() > lo]
        return {
            "time_zone": str(self.tz), "history_start": iso(self.start, self.tz),
            "published_until": iso(self.published_until(now), self.tz), "days": days, "bills": bills,
            "forecast": self.forecast(now),
        }
