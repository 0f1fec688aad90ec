"""The tariff bills like the utility: hour means, not 5-minute prices; delivery by local period;
provisional hours; clock-change days; monthly charges. Values are worked out by hand."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from billing.tariff import (
    HOURLY_AVERAGE, INTERVAL, Bill, DeliveryPeriod, Tariff, bill, billed_prices, hour_start, month_totals,
    parse_clock, projected_price,
)

CHICAGO = ZoneInfo("America/Chicago")
HOUR = datetime(2026, 7, 14, 14, 0, tzinfo=CHICAGO).timestamp()   # 14:00 CDT, a Tuesday
SPIKE_HOUR = [3, 3, 3, 3, 50, 50, 3, 3, 3, 3, 3, 3]                # mean 130 / 12 = 10.8333


def hourly(**kwargs) -> Tariff:
    return Tariff(CHICAGO, HOURLY_AVERAGE, **{"delivery_per_kwh": 0.0, **kwargs})


def prices_of(start: float, values: list[float]) -> dict[float, float]:
    """Prices of consecutive 5-minute intervals, the first ending at start + 300."""
    return {start + 300 * (i + 1): float(v) for i, v in enumerate(values)}


def spread(start: float, end: float, kwh: float) -> dict[float, float]:
    """kWh spread evenly over whole 5-minute intervals in [start, end)."""
    ends = [start + 300 * (i + 1) for i in range(int((end - start) // 300))]
    return {e: kwh * 1000 / len(ends) for e in ends}


def test_a_spike_outside_the_charging_minutes_still_raises_the_hours_price() -> None:
    prices = prices_of(HOUR, SPIKE_HOUR)
    energy = spread(HOUR + 40 * 60, HOUR + 60 * 60, 1.0)    # minutes 40-60: every interval at 3 cents
    result = bill(energy, prices, hourly())
    assert result.supply == pytest.approx(130 / 12 / 100)      # $0.1083, not the 5-minute rule's $0.03
    assert [line.price_cents for line in result.lines] == [pytest.approx(130 / 12)]
    assert result.final


def test_interval_rule_bills_each_interval_at_its_own_price() -> None:
    prices = prices_of(HOUR, SPIKE_HOUR)
    energy = spread(HOUR + 15 * 60, HOUR + 25 * 60, 1.0)    # the intervals ending :20 (3) and :25 (50)
    result = bill(energy, prices, Tariff(CHICAGO, INTERVAL, delivery_per_kwh=0.0))
    assert result.supply == pytest.approx((0.5 * 3 + 0.5 * 50) / 100)


def test_an_hour_not_yet_published_is_estimated_from_the_latest_price_and_provisional() -> None:
    prices = prices_of(HOUR, [3, 3, 3, 3, 50, 50])            # half the hour published
    energy = spread(HOUR, HOUR + 30 * 60, 1.0)
    result = bill(energy, prices, hourly())
    assert not result.final
    assert result.supply == pytest.approx((12 + 100 + 6 * 50) / 12 / 100)   # the rest at the latest price, 50
    done = bill(energy, {**prices, **prices_of(HOUR + 1800, [3] * 6)}, hourly())
    assert done.final and done.supply == pytest.approx(130 / 12 / 100)


def test_giving_up_on_a_missing_price_bills_the_mean_of_what_was_published() -> None:
    prices = prices_of(HOUR, [4] * 11)                        # the twelfth never came
    energy = spread(HOUR, HOUR + 3600, 2.0)
    assert not bill(energy, prices, hourly()).final
    given_up = bill(energy, prices, hourly(), final_before=HOUR + 3600)
    assert given_up.final and given_up.supply == pytest.approx(2 * 0.04)


def test_projection_mixes_published_prices_and_the_estimate() -> None:
    prices = prices_of(HOUR, [2, 4, 6])
    projection = projected_price(prices, HOUR + 3600, hourly())
    assert (projection.published, projection.expected, projection.final) == (3, 12, False)
    assert projection.cents == pytest.approx((2 + 4 + 6 + 9 * 6) / 12)
    assert projected_price(prices, HOUR + 3600, hourly(), estimate=1.0).cents == pytest.approx((12 + 9) / 12)
    # the next hour, nothing of it published yet: the latest price is the whole estimate
    assert projected_price(prices, HOUR + 7200, hourly()).cents == pytest.approx(6.0)
    assert projected_price({}, HOUR, hourly()) is None


def test_negative_hours_are_credits() -> None:
    prices = prices_of(HOUR, [-2.0] * 12)
    result = bill(spread(HOUR, HOUR + 3600, 3.0), prices, hourly(delivery_per_kwh=0.05))
    assert result.supply == pytest.approx(-0.06) and result.supply_credit == pytest.approx(0.06)
    assert result.delivery == pytest.approx(0.15) and result.full == pytest.approx(0.09)


def test_a_session_across_hours_and_midnight_splits_by_local_hour_and_day() -> None:
    evening = datetime(2026, 7, 14, 23, 0, tzinfo=CHICAGO).timestamp()
    prices = prices_of(evening, [2] * 12 + [6] * 12)
    energy = spread(evening + 1800, evening + 5400, 3.0)      # 23:30-00:30: 1.5 kWh in each hour
    result = bill(energy, prices, hourly())
    assert [line.energy_wh for line in result.lines] == [pytest.approx(1500), pytest.approx(1500)]
    assert result.supply == pytest.approx(1.5 * 0.02 + 1.5 * 0.06)
    days = result.by_day(CHICAGO)
    assert sorted(days) == [date(2026, 7, 14), date(2026, 7, 15)]
    assert days[date(2026, 7, 15)].supply == pytest.approx(0.09)


@pytest.mark.parametrize("day, hours", [(date(2026, 3, 8), 23), (date(2026, 11, 1), 25), (date(2026, 7, 14), 24)])
def test_clock_change_days_have_23_and_25_billing_hours(day: date, hours: int) -> None:
    start = datetime(day.year, day.month, day.day, tzinfo=CHICAGO).timestamp()
    end = datetime.combine(date.fromordinal(day.toordinal() + 1), datetime.min.time(), CHICAGO).timestamp()
    prices = {start + 300 * (i + 1): float(i // 12) for i in range(int((end - start) // 300))}
    result = bill(spread(start, end, hours), prices, hourly())
    assert len(result.lines) == hours
    assert [line.price_cents for line in result.lines] == pytest.approx([float(h) for h in range(hours)])
    assert result.supply == pytest.approx(sum(range(hours)) / 100)


def test_the_repeated_autumn_hour_is_two_hours_with_their_own_means() -> None:
    first = datetime(2026, 11, 1, 1, 0, tzinfo=CHICAGO).timestamp()     # 01:00 CDT
    assert hour_start(first + 3600 + 60, CHICAGO) == first + 3600       # 01:01 CST starts its own hour
    prices = prices_of(first, [1] * 12 + [9] * 12)
    result = bill(spread(first, first + 7200, 2.0), prices, hourly())
    assert [line.price_cents for line in result.lines] == [1.0, 9.0]


def test_delivery_by_time_of_day_period_including_one_that_wraps_midnight() -> None:
    weekdays = frozenset(range(5))
    periods = (DeliveryPeriod(13 * 60, 19 * 60, 0.10, frozenset({6, 7, 8, 9}), weekdays, "summer_peak"),
               DeliveryPeriod(21 * 60, 6 * 60, 0.03, name="overnight"))
    tariff = hourly(delivery_per_kwh=0.05, delivery_periods=periods)
    at = lambda *args: datetime(*args, tzinfo=CHICAGO).timestamp()   # noqa: E731
    assert tariff.delivery_rate(at(2026, 7, 14, 13, 0)) == 0.10       # Tuesday in July, peak
    assert tariff.delivery_rate(at(2026, 7, 18, 13, 0)) == 0.05       # Saturday: not the weekday peak
    assert tariff.delivery_rate(at(2026, 1, 13, 13, 0)) == 0.05       # January: not a summer month
    assert tariff.delivery_rate(at(2026, 7, 14, 23, 30)) == 0.03      # overnight, before midnight
    assert tariff.delivery_rate(at(2026, 7, 15, 5, 55)) == 0.03       # and after it
    assert tariff.delivery_rate(at(2026, 7, 15, 6, 0)) == 0.05
    energy = spread(at(2026, 7, 14, 18, 30), at(2026, 7, 14, 19, 30), 2.0)   # half peak, half default
    prices = prices_of(at(2026, 7, 14, 18, 0), [0] * 24)
    assert bill(energy, prices, tariff).delivery == pytest.approx(1.0 * 0.10 + 1.0 * 0.05)


def test_reference_and_savings_use_the_same_energy_and_delivery() -> None:
    prices = prices_of(HOUR, [4] * 12)
    result = bill(spread(HOUR, HOUR + 3600, 10.0), prices, hourly(delivery_per_kwh=0.05,
                                                                   reference_supply_per_kwh=0.10))
    assert result.reference == pytest.approx(10 * 0.10 + 10 * 0.05)
    assert result.savings == pytest.approx(10 * (0.10 - 0.04))
    assert bill({}, prices, hourly()).reference is None


def test_months_add_fixed_and_capacity_charges_and_the_reference_leaves_capacity_out() -> None:
    tariff = hourly(monthly_fixed=19.56, capacity_per_month=12.0, reference_supply_per_kwh=0.1)
    start = datetime(2026, 7, 31, 23, 0, tzinfo=CHICAGO).timestamp()
    prices = prices_of(start, [5] * 24)
    days = bill(spread(start, start + 7200, 4.0), prices, tariff).by_day(CHICAGO)
    months = month_totals(days.items(), tariff)
    assert list(months) == [(2026, 7), (2026, 8)]
    july = months[2026, 7]
    assert july.energy_wh == pytest.approx(2000) and july.supply == pytest.approx(0.10)
    assert july.total == pytest.approx(0.10 + 19.56 + 12.0)
    assert july.reference == pytest.approx(0.2 + 19.56)
    assert july.savings == pytest.approx(0.2 + 19.56 - (0.10 + 19.56 + 12.0))


def test_billed_prices_are_one_per_complete_hour() -> None:
    prices = {**prices_of(HOUR, SPIKE_HOUR), **prices_of(HOUR + 3600, [4] * 5)}
    assert billed_prices(prices, hourly()) == [(HOUR + 3600, pytest.approx(130 / 12))]
    assert len(billed_prices(prices, Tariff(CHICAGO, INTERVAL))) == 17


@pytest.mark.parametrize("text, minutes", [("13:00", 780), ("0:05", 5), ("24:00", 1440), ("13:03", None),
                                           ("25:00", None), ("1300", None), ("ab:cd", None)])
def test_clock_times(text: str, minutes: int | None) -> None:
    assert parse_clock(text) == minutes


def test_an_empty_bill_is_zero_and_final() -> None:
    empty = Bill(())
    assert (empty.energy_wh, empty.full, empty.final, empty.per_kwh_cents(1.0)) == (0, 0, True, None)
