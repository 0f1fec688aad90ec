"""The price forecast for the next hours: what each clock hour is expected to be billed at. Pure: no
I/O, no clock; the caller says where the forecast starts and what is known.

Two sources, in order of trust:
- the utility's **day-ahead** (predicted hourly) prices (ComEd publishes today's, and from about
  16:30 Central tomorrow's: upstreams/comed.py), which know the expected shape of each day but not
  the real-time spikes;
- the **fallback profile**: the mean billed price of the same local weekday and hour over the
  lookback (`hour_of_week_profile`), for the hours the day-ahead prices do not reach.

`build_forecast` takes the day-ahead price for hour i while hours 0..i all have one (a contiguous
run from hour 0: `day_ahead_hours` says how long), then the profile; an hour whose weekday the
profile does not know (a history shorter than a week) takes the mean of the same hour on the
weekdays it knows, and an hour it does not know at all repeats the hour before it. So the forecast
is one simple shape: the first `day_ahead_hours` hours are the utility's, the rest the profile's.

    profile = hour_of_week_profile(billed, zone)       # {(weekday, hour): cents}
    forecast = build_forecast(start, day_ahead, profile, zone)
    forecast.cents[0], forecast.hour_start(5), forecast.day_ahead_hours
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Mapping, Sequence
from zoneinfo import ZoneInfo

HOUR_S = 3600.0
FORECAST_HOURS = 48
DAY_AHEAD, PROFILE = "day_ahead", "profile"


def hour_of_week_profile(billed: Sequence[tuple[float, float]], zone: ZoneInfo) -> dict[tuple[int, int], float]:
    """Mean billed price by local (weekday, hour), weekday 0 = Monday, hour the local hour the billed
    hour starts in, from (hour end, billed cents) pairs (ComEd's billed hourly prices: billing/tariff.py
    `billed_prices`). Both autumn 1 a.m. hours count for hour 1; spring has no hour 2 that day."""
    sums: dict[tuple[int, int], list[float]] = {}
    for end, cents in billed:
        local = datetime.fromtimestamp(end - HOUR_S, zone)
        entry = sums.setdefault((local.weekday(), local.hour), [0.0, 0.0])
        entry[0] += cents
        entry[1] += 1
    return {key: total / count for key, (total, count) in sorted(sums.items())}


@dataclass(frozen=True)
class Forecast:
    """Expected billed price of consecutive clock hours from `start` (the start of hour 0)."""

    start: float                 # Unix seconds, the start of a clock hour
    cents: tuple[float, ...]     # one per hour: cents per kWh
    day_ahead_hours: int         # the first N hours are the utility's day-ahead prices, the rest the profile

    @property
    def hours(self) -> int:
        return len(self.cents)

    @property
    def end(self) -> float:
        return self.start + HOUR_S * len(self.cents)

    def hour_start(self, index: int) -> float:
        if not 0 <= index < len(self.cents):
            raise IndexError(f"hour {index} is outside the forecast's {len(self.cents)} hours")
        return self.start + HOUR_S * index

    def source(self, index: int) -> str:
        """`day_ahead` or `profile`: where hour `index`'s price comes from."""
        self.hour_start(index)
        return DAY_AHEAD if index < self.day_ahead_hours else PROFILE

    def at(self, moment: float) -> float | None:
        """The expected price of the hour containing `moment`; None outside the forecast."""
        if not self.start <= moment < self.end:
            return None
        return self.cents[int((moment - self.start) // HOUR_S)]


def build_forecast(start: float, day_ahead: Mapping[float, float], profile: Mapping[tuple[int, int], float],
                   zone: ZoneInfo, hours: int = FORECAST_HOURS) -> Forecast | None:
    """`hours` hours from `start` (a clock-hour start): hour i at `day_ahead[start + 3600 i]` (keyed by
    hour start) while every hour up to i has a day-ahead price; after that at the profile's price of
    its local (weekday, hour), else the mean of the profile's prices for that hour on other weekdays,
    else the value of the hour before it (the profile's overall mean for hour 0). A day-ahead price
    after the first gap is not used, so the first `day_ahead_hours` hours are the day-ahead ones. None
    when nothing is known: no day-ahead price for hour 0 and an empty profile."""
    cents: list[float] = []
    leading = 0
    while leading < hours and (price := day_ahead.get(start + HOUR_S * leading)) is not None:
        cents.append(float(price))
        leading += 1
    if leading < hours and not profile and not cents:
        return None
    by_hour: dict[int, list[float]] = {}
    for (_, hour), value in profile.items():
        by_hour.setdefault(hour, []).append(value)
    last = cents[-1] if cents else sum(profile.values()) / len(profile) if profile else 0.0
    for index in range(leading, hours):
        local = datetime.fromtimestamp(start + HOUR_S * index, zone)
        same_hour = by_hour.get(local.hour)
        last = profile.get((local.weekday(), local.hour),
                           sum(same_hour) / len(same_hour) if same_hour else last)
        cents.append(float(last))
    return Forecast(float(start), tuple(cents), leading)
