"""Price providers behind one small interface, so config picks `provider: comed` and nothing else changes.

Every provider answers "what were the prices over this interval?" as `Rate`s in cents per kWh
(negative prices are valid; no data is an empty list, never zero), "what is the price now?" and
"what does the utility predict for each clock hour of today and, once published, tomorrow?"
(`day_ahead`, as `HourPrice`s).
A provider delivers prices; it does not bill them. How its market bills them (its supply rule,
ComEd's hourly average) is a fact it declares, and the tariff (billing/tariff.py) applies it with
delivery and monthly charges on top.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from billing.tariff import HOURLY_AVERAGE
from upstreams.comed import INTERVAL_S, ComEd, HourPrice, PricePoint
from servicekit.errors import NoData
from servicekit.upstream import Upstream


@dataclass(frozen=True)
class Rate:
    start: float   # Unix seconds, inclusive
    end: float     # Unix seconds, exclusive... the price covers (start, end]
    cents: float   # cents per kWh


@dataclass(frozen=True)
class CurrentPrice:
    recent: tuple[Rate, ...]        # the provider's recent rates, oldest first, the last being current
    hour_average: float | None      # running mean of the current hour, cents per kWh


class PriceProvider(Protocol):
    name: str
    resolution: float               # seconds per rate
    billing_rule: str               # how the market bills supply: hourly_average or interval
    zone: ZoneInfo                  # the provider's calendar, for day-sized history requests

    async def history(self, day: datetime) -> list[Rate]:
        """Every rate of one local calendar day (the chunk size providers accept reliably)."""

    async def current(self) -> CurrentPrice:
        """Recent rates (the hour average comes from `hour_average`, its own endpoint)."""

    async def hour_average(self) -> float | None:
        """The provider's running mean of the current hour, cents per kWh (None: it published none)."""

    async def day_ahead(self, now: float) -> list[HourPrice]:
        """The utility's predicted price of every clock hour of the provider's today (as of `now`, Unix
        seconds) and, once published, tomorrow, sorted by start. Tomorrow not yet published is not an
        error; no prices for today is `NoData`."""


def _rate(point: PricePoint) -> Rate:
    return Rate(point.end - INTERVAL_S, point.end, point.cents)


class ComEdProvider:
    """ComEd 5-minute real-time prices (supply only, cents/kWh), fetched a Central-time day at a time."""

    name = "comed"
    resolution = INTERVAL_S
    billing_rule = HOURLY_AVERAGE   # Rate BESH: each clock hour at the mean of its twelve 5-minute prices
    zone = ZoneInfo("America/Chicago")

    def __init__(self, upstream: Upstream, base_url: str) -> None:
        self.api = ComEd(upstream, base_url)

    async def history(self, day: datetime) -> list[Rate]:
        start = datetime(day.year, day.month, day.day, tzinfo=self.zone)
        end = start + timedelta(hours=23, minutes=55)
        return [_rate(p) for p in await self.api.five_minute(start, end)]

    async def current(self) -> CurrentPrice:
        return CurrentPrice(tuple(_rate(p) for p in await self.api.five_minute()), None)

    async def hour_average(self) -> float | None:
        average = await self.api.current_hour_average()
        return average.cents if average else None

    async def day_ahead(self, now: float) -> list[HourPrice]:
        """Today's and (from about 16:30 Central) tomorrow's day-ahead hours; see upstreams.comed for the
        hour convention (hour ending) and the clock changes."""
        today = datetime.fromtimestamp(now, self.zone).date()
        hours = {hour.start: hour for hour in await self.api.day_ahead_today(today)}
        if not hours:
            raise NoData(f"{self.name} answered with no day-ahead prices for {today} (no data, not a zero price)")
        hours.update((hour.start, hour) for hour in await self.api.day_ahead_tomorrow(today))
        return [hours[start] for start in sorted(hours)]


PROVIDERS: dict[str, type[ComEdProvider]] = {"comed": ComEdProvider}
