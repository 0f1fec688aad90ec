"""The forecast (billing/forecast.py): day-ahead prices first, then the hour-of-week profile, hand-built inputs."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from billing.forecast import DAY_AHEAD, PROFILE, Forecast, build_forecast, hour_of_week_profile

CENTRAL = ZoneInfo("America/Chicago")
MONDAY_MIDNIGHT = datetime(2025, 7, 14, tzinfo=CENTRAL).timestamp()   # Monday 2025-07-14 00:00 CDT
H = 3600.0


def at(day: int, hour: int, month: int = 7) -> float:
    return datetime(2025, month, day, hour, tzinfo=CENTRAL).timestamp()


def test_profile_is_the_mean_per_local_weekday_and_hour_start_keyed_from_hour_ends() -> None:
    billed = [(at(14, 1), 2.0), (at(21, 1), 4.0),    # two Mondays, the hour 00:00-01:00 (ends at 01:00)
              (at(15, 0), 9.0)]                      # ends Tuesday 00:00: it is Monday's 23:00 hour
    assert hour_of_week_profile(billed, CENTRAL) == {(0, 0): 3.0, (0, 23): 9.0}


def test_profile_counts_both_autumn_one_oclock_hours_in_hour_one() -> None:
    first_one = datetime(2025, 11, 2, 1, tzinfo=CENTRAL, fold=0).timestamp()   # 01:00 CDT
    billed = [(first_one + H, 2.0), (first_one + 2 * H, 4.0)]                   # 01:00 CDT and 01:00 CST hours
    assert hour_of_week_profile(billed, CENTRAL) == {(6, 1): 3.0}


def test_day_ahead_hours_lead_and_the_profile_follows() -> None:
    day_ahead = {MONDAY_MIDNIGHT + i * H: 1.0 + i for i in range(3)}
    profile = {(0, hour): 10.0 + hour for hour in range(24)}
    forecast = build_forecast(MONDAY_MIDNIGHT, day_ahead, profile, CENTRAL, hours=6)
    assert forecast == Forecast(MONDAY_MIDNIGHT, (1.0, 2.0, 3.0, 13.0, 14.0, 15.0), 3)
    assert [forecast.source(i) for i in range(6)] == [DAY_AHEAD] * 3 + [PROFILE] * 3
    assert forecast.hour_start(4) == MONDAY_MIDNIGHT + 4 * H and forecast.end == MONDAY_MIDNIGHT + 6 * H
    assert forecast.at(MONDAY_MIDNIGHT + 3 * H + 1799) == 13.0 and forecast.at(forecast.end) is None
    with pytest.raises(IndexError):
        forecast.hour_start(6)


def test_a_day_ahead_price_after_a_gap_is_not_used() -> None:
    day_ahead = {MONDAY_MIDNIGHT: 1.0, MONDAY_MIDNIGHT + 2 * H: 3.0}
    forecast = build_forecast(MONDAY_MIDNIGHT, day_ahead, {(0, 1): 7.0, (0, 2): 8.0}, CENTRAL, hours=3)
    assert forecast.cents == (1.0, 7.0, 8.0) and forecast.day_ahead_hours == 1


def test_without_the_weekday_the_same_hour_on_other_days_then_the_hour_before() -> None:
    profile = {(1, 0): 2.0, (2, 0): 4.0, (1, 1): 6.0}   # Tuesday and Wednesday only; Monday is forecast
    forecast = build_forecast(MONDAY_MIDNIGHT, {}, profile, CENTRAL, hours=3)
    assert forecast.cents == (3.0, 6.0, 6.0) and forecast.day_ahead_hours == 0


def test_hour_zero_unknown_to_the_profile_takes_its_overall_mean() -> None:
    forecast = build_forecast(MONDAY_MIDNIGHT, {}, {(3, 5): 2.0, (4, 6): 4.0}, CENTRAL, hours=2)
    assert forecast.cents == (3.0, 3.0)


def test_day_ahead_alone_carries_its_last_price_forward() -> None:
    forecast = build_forecast(MONDAY_MIDNIGHT, {MONDAY_MIDNIGHT: 2.5}, {}, CENTRAL, hours=3)
    assert forecast.cents == (2.5, 2.5, 2.5) and forecast.day_ahead_hours == 1


def test_nothing_known_is_no_forecast() -> None:
    assert build_forecast(MONDAY_MIDNIGHT, {MONDAY_MIDNIGHT + H: 2.0}, {}, CENTRAL) is None


def test_forecast_hours_are_absolute_across_the_spring_clock_change() -> None:
    start = datetime(2025, 3, 9, 0, tzinfo=CENTRAL).timestamp()    # Sunday; 02:00 does not exist
    profile = {(6, hour): float(hour) for hour in range(24)}
    forecast = build_forecast(start, {}, profile, CENTRAL, hours=4)
    assert forecast.cents == (0.0, 1.0, 3.0, 4.0)                  # the third hour starts at 03:00 CDT
