"""Ground truth for money: the electricity bill of the charging the simulator simulates.

Written on its own, from the utility's rules, so the suite's costing can be measured against it
(nothing here comes from the suite). Inputs: energy per 5-minute interval (``{interval end: W*s}``,
as ``SessionTruth.by_interval`` keeps it), the true prices (cents/kWh; a price stamped T covers
(T - 300 s, T], see ``simulator.prices``), a ``TariffConfig`` and the site's time zone.

- Supply, ``hourly_average`` (ComEd Hourly Pricing, Rate BESH): each LOCAL clock hour bills its
  kWh at the arithmetic mean of its twelve 5-minute prices (intervals ending hour start + 300 s
  ... hour end). An interval belongs to the hour containing its start. Hours are real 60-minute
  hours: a spring-forward day has 23, a fall-back day 25 (the repeated 01:00 is two hours).
  ``interval``: each interval's kWh at its own price. Negative prices are credits.
- Delivery: the first delivery period matching the interval's local start (time of day, and the
  month and weekday of that moment), else the flat ``delivery_per_kwh``.
- Month bills add ``monthly_fixed`` and ``capacity_per_month``. Reference (when
  ``reference_supply_per_kwh`` > 0): kWh x reference + the same delivery (+ monthly_fixed for a
  month; a fixed-rate customer's capacity is inside its supply price); savings = reference - cost.

Money is in dollars, unrounded. A bill is ``final`` once every hour (or interval) it touches has
ended; before that the hour's later prices are still the true ones, just not yet published.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from simulator.config import DeliveryPeriodConfig, TariffConfig
from simulator.prices import INTERVAL_S, PriceSeries

HOUR_S = 3600
WS_PER_KWH = 3.6e6
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class HasIntervals(Protocol):
    """Anything that keeps energy per interval end, like ``SessionTruth``."""

    @property
    def by_interval(self) -> Mapping[int, float]: ...


EnergySource = HasIntervals | Mapping[int, float]


def energy_of(source: EnergySource) -> Mapping[int, float]:
    """W*s by interval end, from a session record or a plain mapping."""
    return source if isinstance(source, Mapping) else source.by_interval


def local_hour_end(interval_end: int, tz: ZoneInfo) -> int:
    """End (unix s) of the local clock hour containing the interval's START. Counting back the
    local minutes and seconds keeps the two 01:00 hours of a fall-back day apart."""
    start = interval_end - INTERVAL_S
    local = datetime.fromtimestamp(start, tz)
    return start - local.minute * 60 - local.second + HOUR_S


def hour_mean_price(hour_end: int, prices: PriceSeries) -> float:
    """Mean of the twelve 5-minute prices (cents/kWh) of the hour ending at ``hour_end``."""
    return sum(prices.price(hour_end - HOUR_S + INTERVAL_S * k) for k in range(1, 13)) / 12.0


def _covers(period: DeliveryPeriodConfig, minute_of_day: int) -> bool:
    if period.start_min < period.end_min:
        return period.start_min <= minute_of_day < period.end_min
    return minute_of_day >= period.start_min or minute_of_day < period.end_min  # wraps midnight


def delivery_rate(interval_end: int, tariff: TariffConfig, tz: ZoneInfo) -> float:
    """$/kWh for the interval: the first period matching its local start, else the flat rate."""
    local = datetime.fromtimestamp(interval_end - INTERVAL_S, tz)
    minute = local.hour * 60 + local.minute
    for period in tariff.delivery_periods:
        if local.month in period.months and local.weekday() in period.days and _covers(period, minute):
            return period.per_kwh
    return tariff.delivery_per_kwh


def bill_lines(energy: Mapping[int, float], prices: PriceSeries, tariff: TariffConfig,
               tz: ZoneInfo) -> list[dict[str, Any]]:
    """One line per billed hour (or interval with the ``interval`` rule), oldest first:
    ``{"end", "energy_kwh", "price_cents", "supply", "delivery"}``."""
    hourly = tariff.supply_billing == "hourly_average"
    lines: dict[int, dict[str, Any]] = {}
    for end, ws in sorted(energy.items()):
        if ws == 0:
            continue
        line_end = local_hour_end(end, tz) if hourly else end
        line = lines.get(line_end)
        if line is None:
            price = hour_mean_price(line_end, prices) if hourly else prices.price(end)
            line = lines[line_end] = {"end": line_end, "energy_kwh": 0.0, "price_cents": price,
                                      "supply": 0.0, "delivery": 0.0}
        kwh = ws / WS_PER_KWH
        line["energy_kwh"] += kwh
        line["delivery"] += kwh * delivery_rate(end, tariff, tz)
    for line in lines.values():
        line["supply"] = line["energy_kwh"] * line["price_cents"] / 100.0
    return [lines[k] for k in sorted(lines)]


def _totals(lines: list[dict[str, Any]]) -> tuple[float, float, float]:
    """(energy kWh, supply $, delivery $) over the lines."""
    return (sum(line["energy_kwh"] for line in lines), sum(line["supply"] for line in lines),
            sum(line["delivery"] for line in lines))


def _reference(energy_kwh: float, extra: float, tariff: TariffConfig) -> float | None:
    """What a fixed-price supply customer would pay (None when no reference price is set)."""
    if tariff.reference_supply_per_kwh == 0:
        return None
    return energy_kwh * tariff.reference_supply_per_kwh + extra


def session_bill(source: EnergySource, prices: PriceSeries, tariff: TariffConfig, tz: ZoneInfo,
                 now: float) -> dict[str, Any]:
    """The bill of one session's energy (no monthly charges)."""
    lines = bill_lines(energy_of(source), prices, tariff, tz)
    energy, supply, delivery = _totals(lines)
    full = supply + delivery
    reference = _reference(energy, delivery, tariff)
    return {
        "supply_billing": tariff.supply_billing, "energy_kwh": energy, "supply": supply, "delivery": delivery,
        "full": full, "reference": reference, "savings": None if reference is None else reference - full,
        "final": all(line["end"] <= now for line in lines), "lines": lines,
    }


def month_bounds(year: int, month: int, tz: ZoneInfo) -> tuple[int, int]:
    """Unix [start, end) of the local calendar month."""
    first = datetime(year, month, 1, tzinfo=tz)
    following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
    return int(first.timestamp()), int(following.timestamp())


def month_energy(sources: Iterable[EnergySource], start: int, end: int) -> dict[int, float]:
    """W*s per interval, summed over sessions, for intervals STARTING in [start, end): a session
    crossing the month boundary counts in each month for what it used there."""
    total: dict[int, float] = {}
    for source in sources:
        for t, ws in energy_of(source).items():
            if start <= t - INTERVAL_S < end:
                total[t] = total.get(t, 0.0) + ws
    return total


def month_bill(sources: Iterable[EnergySource], year: int, month: int, prices: PriceSeries,
               tariff: TariffConfig, tz: ZoneInfo, now: float) -> dict[str, Any]:
    """The bill of a local calendar month: charging energy plus the monthly charges. ``final``
    once the month is over (a month still running can gain sessions)."""
    start, end = month_bounds(year, month, tz)
    lines = bill_lines(month_energy(sources, start, end), prices, tariff, tz)
    energy, supply, delivery = _totals(lines)
    fixed, capacity = tariff.monthly_fixed, tariff.capacity_per_month
    total = supply + delivery + fixed + capacity
    reference = _reference(energy, delivery + fixed, tariff)
    return {
        "month": f"{year:04d}-{month:02d}", "start": start, "end": end, "supply_billing": tariff.supply_billing,
        "energy_kwh": energy, "supply": supply, "delivery": delivery, "fixed": fixed, "capacity": capacity,
        "total": total, "reference": reference, "savings": None if reference is None else reference - total,
        "final": now >= end, "lines": lines,
    }


def parse_month(text: str) -> tuple[int, int]:
    """``YYYY-MM`` to (year, month); ValueError otherwise."""
    match = _MONTH.match(text)
    if not match or not 1 <= int(match[2]) <= 12 or not 1 <= int(match[1]) <= 9998:
        raise ValueError(f"month: got {text!r}; use YYYY-MM, e.g. 2026-03")
    return int(match[1]), int(match[2])


def month_of(now: float, tz: ZoneInfo) -> tuple[int, int]:
    """The local (year, month) at ``now``."""
    local = datetime.fromtimestamp(now, tz)
    return local.year, local.month
