"""What the utility bills for energy: a tariff turns energy per 5-minute interval plus the published
prices into bill lines. Pure: no I/O, no clock; the caller says what is known and when it is.

A price provider delivers prices; the tariff decides how they are billed:
- supply, rule `hourly_average` (ComEd Hourly Pricing, Rate BESH): each local clock hour's kWh x the
  mean of that hour's published 5-minute prices ("hour ending"); provisional until every price of
  the hour is published, final after;
- supply, rule `interval`: each price interval's kWh at its own price (markets billed per 15, 30 or
  60 minutes use this with their provider's resolution);
- delivery: a flat $/kWh, or time-of-day periods (months, weekdays, local start and end);
- monthly charges (fixed, capacity) enter month totals only;
- a reference supply price (the utility's fixed-price rate) prices the same energy for savings.

Energy comes as {interval end: Wh}, one entry per 5-minute interval (T - 300, T], the same
convention as the prices (a price stamped T covers the five minutes ending at T). A billing period
that lacks prices is estimated from the nearest earlier published price (the latest one, for the
hour in progress) and flagged provisional.

    bill(energy, prices, tariff) -> Bill(lines, supply, delivery, final, ...)
    projected_price(prices, period_end, tariff) -> Projection(cents, published, expected)
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

INTERVAL_S = 300.0            # energy and ComEd prices come in 5-minute intervals
HOURLY_AVERAGE = "hourly_average"
INTERVAL = "interval"
RULES = (HOURLY_AVERAGE, INTERVAL)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_MONTHS = frozenset(range(1, 13))
ALL_DAYS = frozenset(range(7))


@dataclass(frozen=True)
class DeliveryPeriod:
    """A time-of-day delivery rate: local [start, end) minutes after midnight (end < start wraps
    past midnight), on some months and weekdays (0 = Monday) of the moment itself."""

    start_minute: int
    end_minute: int
    per_kwh: float                       # dollars
    months: frozenset[int] = ALL_MONTHS
    weekdays: frozenset[int] = ALL_DAYS
    name: str = ""

    def covers(self, local: datetime) -> bool:
        if local.month not in self.months or local.weekday() not in self.weekdays:
            return False
        minute = local.hour * 60 + local.minute
        if self.start_minute < self.end_minute:
            return self.start_minute <= minute < self.end_minute
        return minute >= self.start_minute or minute < self.end_minute


@dataclass(frozen=True)
class Tariff:
    zone: ZoneInfo
    supply_rule: str = HOURLY_AVERAGE
    price_interval_s: float = INTERVAL_S           # the provider's resolution (the `interval` rule's period)
    delivery_per_kwh: float = 0.075                # dollars; times no period covers
    delivery_periods: tuple[DeliveryPeriod, ...] = ()
    monthly_fixed: float = 19.56                   # dollars per month
    capacity_per_month: float = 0.0                # dollars per month (hourly-pricing customers only)
    reference_supply_per_kwh: float | None = None  # dollars; the fixed-price rate, for savings

    def period_end(self, interval_end: float) -> float:
        """End of the billing period the 5-minute interval ending at `interval_end` falls in."""
        if self.supply_rule == INTERVAL:
            return math.ceil(interval_end / self.price_interval_s) * self.price_interval_s
        return hour_start(interval_end - INTERVAL_S, self.zone) + 3600.0

    def period_length(self) -> float:
        return self.price_interval_s if self.supply_rule == INTERVAL else 3600.0

    def expected_prices(self) -> int:
        """Published prices a complete billing period holds (twelve for a ComEd hour)."""
        return max(1, round(self.period_length() / self.price_interval_s))

    def delivery_rate(self, moment: float) -> float:
        """Delivery dollars per kWh for energy used at `moment` (local time decides the period)."""
        if not self.delivery_periods:
            return self.delivery_per_kwh
        local = datetime.fromtimestamp(moment, self.zone)
        return next((p.per_kwh for p in self.delivery_periods if p.covers(local)), self.delivery_per_kwh)


def hour_start(moment: float, zone: ZoneInfo) -> float:
    """Start of the local clock hour containing `moment` (every hour lasts 3600 s, DST days included:
    a spring day has 23 of them, an autumn day 25, its repeated 1 a.m. hour being two hours)."""
    local = datetime.fromtimestamp(moment, zone)
    return float(math.floor(moment) - local.minute * 60 - local.second)   # exact: no fraction subtracted


def local_day(moment: float, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(moment, zone).date()


@dataclass(frozen=True)
class Projection:
    cents: float          # the period's billed price: published mean, the rest estimated
    published: int       # prices of the period already published
    expected: int

    @property
    def final(self) -> bool:
        return self.published >= self.expected


class _Prices:
    """Published prices by interval end, with the nearest-earlier lookup estimates need."""

    def __init__(self, prices: Mapping[float, float]) -> None:
        self.prices = prices
        self.ends = sorted(prices)

    def estimate(self, end: float) -> float | None:
        """The latest price published before the interval ending at `end`."""
        index = bisect.bisect_left(self.ends, end) - 1
        return self.prices[self.ends[index]] if index >= 0 else None

    def in_period(self, period_end: float, tariff: Tariff) -> list[float]:
        low = bisect.bisect_right(self.ends, period_end - tariff.period_length())
        high = bisect.bisect_right(self.ends, period_end)
        return [self.prices[end] for end in self.ends[low:high]]


def projected_price(prices: Mapping[float, float], period_end: float, tariff: Tariff,
                    estimate: float | None = None, *, lookup: _Prices | None = None) -> Projection | None:
    """The billed price of the period ending at `period_end`: the mean of its published prices, each
    missing one counted at `estimate` (default: the latest price published before the period's end).
    None when nothing is known."""
    lookup = lookup or _Prices(prices)
    published = lookup.in_period(period_end, tariff)
    expected = tariff.expected_prices()
    missing = max(0, expected - len(published))
    if missing and estimate is None:
        estimate = lookup.estimate(period_end + tariff.price_interval_s)
        if estimate is None and published:   # nothing earlier: the period's own prices stand in
            estimate = sum(published) / len(published)
    if estimate is None and not published:
        return None
    total = sum(published) + (missing * estimate if missing else 0.0)
    return Projection(total / max(expected, len(published)), len(published), expected)


def billed_prices(prices: Mapping[float, float], tariff: Tariff) -> list[tuple[float, float]]:
    """(period end, billed price) of every complete billing period the prices cover, oldest first:
    the series percentiles of what is billed are taken over."""
    lookup = _Prices(prices)
    counts: dict[float, int] = {}
    for end in lookup.ends:
        period = tariff.period_end(end)
        counts[period] = counts.get(period, 0) + 1
    expected = tariff.expected_prices()
    return [(period, sum(lookup.in_period(period, tariff)) / count)
            for period, count in sorted(counts.items()) if count >= expected]


@dataclass(frozen=True)
class Line:
    """One billing period of a bill (one local clock hour for ComEd)."""

    end: float
    energy_wh: float
    price_cents: float           # billed supply price of the period
    supply: float                # dollars, negative when prices were
    delivery: float              # dollars
    final: bool                  # every price of the period is published (or the caller gave up waiting)


@dataclass(frozen=True)
class Bill:
    lines: tuple[Line, ...]
    reference_supply_per_kwh: float | None = None

    @property
    def energy_wh(self) -> float:
        return sum(line.energy_wh for line in self.lines)

    @property
    def supply(self) -> float:
        return sum(line.supply for line in self.lines)

    @property
    def supply_credit(self) -> float:
        """Credits from negative prices as a positive number (kept apart so counters stay monotonic)."""
        return -sum(line.supply for line in self.lines if line.supply < 0)

    @property
    def delivery(self) -> float:
        return sum(line.delivery for line in self.lines)

    @property
    def full(self) -> float:
        return self.supply + self.delivery

    @property
    def final(self) -> bool:
        return all(line.final for line in self.lines)

    @property
    def reference(self) -> float | None:
        """What the same energy costs on the fixed-price rate (same delivery)."""
        if self.reference_supply_per_kwh is None:
            return None
        return self.energy_wh / 1000.0 * self.reference_supply_per_kwh + self.delivery

    @property
    def savings(self) -> float | None:
        reference = self.reference
        return None if reference is None else reference - self.full

    def per_kwh_cents(self, dollars: float) -> float | None:
        kwh = self.energy_wh / 1000.0
        return dollars / kwh * 100.0 if kwh > 0 else None

    def by_day(self, zone: ZoneInfo) -> dict[date, "Bill"]:
        """The bill split by the local day each period starts in (sessions crossing midnight count
        in both days, as the utility's bill does)."""
        days: dict[date, list[Line]] = {}
        for line in self.lines:
            days.setdefault(local_day(line.end - 1, zone), []).append(line)
        return {day: Bill(tuple(lines), self.reference_supply_per_kwh) for day, lines in days.items()}


def bill(energy: Mapping[float, float], prices: Mapping[float, float], tariff: Tariff,
         final_before: float | None = None, estimate: float | None = None) -> Bill:
    """Bill lines for `energy` ({interval end: Wh}) at `prices` ({interval end: cents per kWh}).

    A period missing prices is estimated and provisional, unless it ended before `final_before` (the
    caller stopped waiting: the published prices are all there will be). `estimate` replaces the
    nearest-earlier-price estimate (a forecast, say).
    """
    lookup = _Prices(prices)
    periods: dict[float, list[tuple[float, float]]] = {}
    for end, wh in energy.items():
        if wh:
            periods.setdefault(tariff.period_end(end), []).append((end, wh))
    lines = []
    for period_end, parts in sorted(periods.items()):
        projection = projected_price(prices, period_end, tariff, estimate, lookup=lookup)
        given_up = final_before is not None and period_end <= final_before
        if projection is not None and given_up and projection.published:
            projection = Projection(sum(lookup.in_period(period_end, tariff)) / projection.published,
                                    projection.published, projection.expected)
        cents = projection.cents if projection else 0.0
        energy_wh = sum(wh for _, wh in parts)
        delivery = sum(wh / 1000.0 * tariff.delivery_rate(end - INTERVAL_S) for end, wh in parts)
        final = projection is not None and (projection.final or given_up)
        lines.append(Line(period_end, energy_wh, cents, energy_wh / 1000.0 * cents / 100.0, delivery, final))
    return Bill(tuple(lines), tariff.reference_supply_per_kwh)


@dataclass(frozen=True)
class Totals:
    """The charging of a day, week or month with the monthly charges a month carries."""

    energy_wh: float
    supply: float
    delivery: float
    reference_supply: float | None   # the same energy at the fixed-price supply rate
    final: bool
    fixed: float = 0.0
    capacity: float = 0.0

    @property
    def charging(self) -> float:
        return self.supply + self.delivery

    @property
    def total(self) -> float:
        return self.charging + self.fixed + self.capacity

    @property
    def reference(self) -> float | None:
        """The fixed-price customer's bill: no separate capacity charge (it is in their supply price)."""
        return None if self.reference_supply is None else self.reference_supply + self.delivery + self.fixed

    @property
    def savings(self) -> float | None:
        return None if self.reference is None else self.reference - self.total


def month_totals(days: Iterable[tuple[date, Bill]], tariff: Tariff) -> dict[tuple[int, int], Totals]:
    """(year, month) -> the month's charging (any number of bills per day) plus its monthly charges."""
    sums: dict[tuple[int, int], list[Bill]] = {}
    for day, day_bill in days:
        sums.setdefault((day.year, day.month), []).append(day_bill)
    months = {}
    for key, bills in sorted(sums.items()):
        energy = sum(b.energy_wh for b in bills)
        reference = (None if tariff.reference_supply_per_kwh is None
                     else energy / 1000.0 * tariff.reference_supply_per_kwh)
        months[key] = Totals(energy, sum(b.supply for b in bills), sum(b.delivery for b in bills), reference,
                             all(b.final for b in bills), tariff.monthly_fixed, tariff.capacity_per_month)
    return months


def parse_clock(text: str) -> int | None:
    """'HH:MM' (00:00 to 24:00, on a 5-minute mark) -> minutes after midnight, else None."""
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2 and 1 <= len(hours) <= 2):
        return None
    value = int(hours) * 60 + int(minutes)
    return value if int(minutes) < 60 and value <= 1440 and value % 5 == 0 else None


def weekday_numbers(names: Sequence[str]) -> frozenset[int] | None:
    """['mon', 'tue', ...] -> {0, 1, ...}; None when a name is not a weekday."""
    numbers = set()
    for name in names:
        key = str(name).strip().lower()[:3]
        if key not in WEEKDAYS:
            return None
        numbers.add(WEEKDAYS.index(key))
    return frozenset(numbers)

