"""What the planner plans from, as pure functions: the user's departure setting, the car's state of
charge (measured or estimated), and the hours ahead with what a kWh in each is expected to cost.

- A departure is one-off (a moment) or weekly (a local time per weekday); its next occurrence is
  the first one after now.
- Tessie's cached state is never refreshed by waking the car, and overnight it is often stale
  while the car charges. A reading younger than `fresh_s` is used as is ("reported"); an older one
  is advanced by the wall energy delivered since it was taken, times the efficiency, over the
  battery ("estimated").
- Hour prices: the hour in progress pays the mean of its published 5-minute prices with the rest
  estimated (the projection smart charging decides on); later hours use the forecast (the
  utility's day-ahead prices, else the fallback profile); delivery comes from the tariff.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping, Sequence
from zoneinfo import ZoneInfo

from billing.forecast import Forecast
from billing.tariff import DeliveryPeriod, Tariff, hour_start
from session_store.planner import Hour

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Departure:
    """A car's departure setting: `at` (one-off) or `weekly` (weekday index -> minutes after local midnight)."""

    vin: str
    target_percent: float
    at: float | None = None
    weekly: tuple[tuple[int, int], ...] = ()
    battery_kwh: float | None = None
    updated_at: float = 0.0

    def next(self, now: float, zone: ZoneInfo) -> float | None:
        """The next departure after `now`, or None (a one-off in the past, an empty week)."""
        if self.at is not None:
            return self.at if self.at > now else None
        today = datetime.fromtimestamp(now, zone).date()
        moments = []
        for offset in range(8):
            day = today + timedelta(days=offset)
            for weekday, minute in self.weekly:
                if day.weekday() == weekday:
                    local = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(minutes=minute)
                    # wall-clock arithmetic through a naive datetime keeps 07:00 on clock-change days
                    local = datetime(local.year, local.month, local.day, minute // 60, minute % 60, tzinfo=zone)
                    if local.timestamp() > now:
                        moments.append(local.timestamp())
        return min(moments) if moments else None


def parse_weekly(value: Mapping[str, str]) -> tuple[tuple[int, int], ...]:
    """{"mon": "07:00", ...} -> ((0, 420), ...); raises ValueError naming the bad entry."""
    week = []
    for day, clock in value.items():
        if day not in WEEKDAYS:
            raise ValueError(f"weekly: {day!r} is not a weekday; use {', '.join(WEEKDAYS)}")
        try:
            hours, minutes = (int(part) for part in str(clock).split(":"))
        except ValueError:
            raise ValueError(f"weekly.{day}: {clock!r} is not a local time HH:MM") from None
        if not (0 <= hours < 24 and 0 <= minutes < 60):
            raise ValueError(f"weekly.{day}: {clock!r} is not a local time HH:MM")
        week.append((WEEKDAYS.index(day), hours * 60 + minutes))
    return tuple(sorted(week))


def format_weekly(weekly: Sequence[tuple[int, int]]) -> dict[str, str]:
    return {WEEKDAYS[day]: f"{minute // 60:02d}:{minute % 60:02d}" for day, minute in weekly}


@dataclass(frozen=True)
class Soc:
    percent: float
    source: str              # reported (a fresh reading) or estimated (an old one plus the wall energy since)
    reading_percent: float
    reading_at: float


def estimate_soc(reading_percent: float, reading_at: float, wall_wh_since: float, efficiency: float,
                 battery_kwh: float, now: float, fresh_s: float) -> Soc:
    if now - reading_at <= fresh_s or wall_wh_since <= 0:
        return Soc(reading_percent, "reported", reading_percent, reading_at)
    gained = wall_wh_since * efficiency / (battery_kwh * 1000) * 100
    return Soc(min(100.0, reading_percent + gained), "estimated", reading_percent, reading_at)


PERSISTENCE = 0.8   # how much of the latest 5-minute price's departure from the forecast lasts one interval more


def hour_in_progress(projected: float, published: int, latest: float, predicted: float | None,
                     expected: int = 12) -> float:
    """The billed price expected for the hour in progress: its published prices, and each missing one
    at the forecast plus the latest price's departure from it, fading by PERSISTENCE per interval ahead
    (real-time prices persist for minutes: a spike under way lasts a while, a quiet price stays
    quiet; later in the hour the forecast knows better). `projected` is the exporter's projection,
    the missing prices at the latest one."""
    missing = max(0, expected - published)
    if predicted is None or missing == 0:
        return projected
    known = projected * expected - missing * latest
    fade = sum(PERSISTENCE ** k for k in range(1, missing + 1))
    return (known + missing * predicted + (latest - predicted) * fade) / expected


def in_window(windows: Sequence[DeliveryPeriod], start: float, zone: ZoneInfo) -> bool:
    """Whether any part of the hour starting at `start` falls in a peak-risk window (checked every 5 minutes)."""
    return any(window.covers(datetime.fromtimestamp(start + minute * 60, zone))
               for window in windows for minute in range(0, 60, 5))


def market_hours(now: float, until: float, tariff: Tariff, forecast: Forecast | None, projected_cents: float | None,
                 peak_windows: Sequence[DeliveryPeriod] = ()) -> tuple[Hour, ...] | None:
    """The clock hours from the one containing `now` to the one containing `until`, priced; None when an
    hour has no price (the plan cannot be trusted: charge now). `projected_cents` prices the hour in
    progress (see `hour_in_progress`)."""
    first = hour_start(now, tariff.zone)
    hours = []
    start = first
    while start < until:
        index = None if forecast is None else round((start - forecast.start) / 3600)
        predicted = forecast.cents[index] if forecast and 0 <= index < len(forecast.cents) else None
        source = "day_ahead" if forecast and index is not None and 0 <= index < forecast.day_ahead_hours else "profile"
        if start == first and projected_cents is not None:
            supply, source = projected_cents, "realized"
        elif predicted is None:
            return None
        else:
            supply = predicted
        hours.append(Hour(start, supply, 100 * tariff.delivery_rate(start + 1800), source,
                          in_window(peak_windows, start, tariff.zone)))
        start += 3600.0
    return tuple(hours)
