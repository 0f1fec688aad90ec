"""The simulated utility meter's truth (simulator/meter.py), without HTTP: base load, DST days, the
rate (hour-mean supply + delivery), reads with corrections, bill periods, and the ``meter:`` section."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from simulator.bill import delivery_rate
from simulator.config import ExplicitPrices, HistoricalSession, MeterConfig, MeterCorrection, PriceConfig, TariffConfig
from simulator.meter import (
    Interval, Meter, aggregate, base_load_day, bill_periods, correction_factor, day_bounds, historical_energy,
    history_start, interval_rate, intervals, period_containing, read_bounds, serves,
)
from simulator.prices import PriceSeries
from simulator.scenario import ScenarioError, load_scenario

TZ = ZoneInfo("America/Chicago")
KWH = 3.6e6


def local(*args: int, fold: int = 0) -> int:
    return int(datetime(*args, tzinfo=TZ).replace(fold=fold).timestamp())


def test_base_load_is_seeded_positive_and_around_its_level() -> None:
    day = date(2026, 10, 14)
    load = base_load_day(day, 0.6, 11, TZ)
    assert load == base_load_day(day, 0.6, 11, TZ) and load != base_load_day(day, 0.6, 12, TZ)
    assert len(load) == 288 and all(ws >= 0 and ws == int(ws) for ws in load.values())
    assert 0.4 < sum(load.values()) / KWH / 24 < 0.8  # kWh per hour ~ base_load_kw
    assert min(load) == local(2026, 10, 14, 0, 5) and max(load) == local(2026, 10, 15)


def test_dst_days_have_23_and_25_hours_of_intervals_and_reads() -> None:
    assert len(base_load_day(date(2026, 11, 1), 0.6, 1, TZ)) == 300
    assert len(base_load_day(date(2026, 3, 8), 0.6, 1, TZ)) == 276
    (start, end), = day_bounds(local(2026, 11, 1), local(2026, 11, 1, 12), TZ)
    assert end - start == 25 * 3600
    assert len(read_bounds("half_hour", start, end, TZ)) == 50
    assert len(read_bounds("hour", start, end, TZ)) == 25
    assert len(read_bounds("quarter_hour", start, end, TZ)) == 100


def test_rate_is_the_local_hours_mean_price_plus_delivery() -> None:
    origin = local(2026, 7, 1)
    values = [1.0] * 6 + [13.0] * 6 + [2.0] * 12  # hour 0: mean 7 c; hour 1: 2 c
    prices = PriceSeries(PriceConfig(history_days=1, explicit=ExplicitPrices(0.0, tuple(values))), origin,
                         "America/Chicago")
    tariff = TariffConfig(delivery_per_kwh=0.05)
    assert interval_rate(origin + 300, prices, tariff, TZ) == pytest.approx(0.07 + 0.05)
    assert interval_rate(origin + 3600, prices, tariff, TZ) == pytest.approx(0.07 + 0.05)  # 00:55-01:00
    assert interval_rate(origin + 3900, prices, tariff, TZ) == pytest.approx(0.02 + 0.05)
    flat = TariffConfig(supply_billing="interval", delivery_per_kwh=0.05)
    assert interval_rate(origin + 300, prices, flat, TZ) == pytest.approx(0.01 + 0.05)
    assert delivery_rate(origin + 300, tariff, TZ) == 0.05


def test_intervals_add_the_ev_to_the_base_load() -> None:
    origin = local(2026, 7, 1)
    prices = PriceSeries(PriceConfig(history_days=1), origin, "America/Chicago")
    cfg = MeterConfig(base_load_kw=1.0)
    ev = {origin + 600: 7000.0 * 300}
    items = intervals(origin, origin + 900, cfg, ev, prices, TariffConfig(), TZ)
    assert [i.end for i in items] == [origin + 300, origin + 600, origin + 900]
    assert items[1].ev_kwh == pytest.approx(7000 * 300 / KWH)
    assert items[1].kwh == pytest.approx(items[1].ev_kwh + items[1].base_ws / KWH)


def test_aggregate_sums_intervals_and_scales_estimates() -> None:
    items = [Interval(300 * k, 360000.0, 0.0, 0.1 * k) for k in range(1, 13)]  # 0.1 kWh each
    read, = aggregate(items, [(0, 3600)])
    assert read.kwh == pytest.approx(1.2) and read.cost == pytest.approx(sum(0.01 * k for k in range(1, 13)))
    halves = aggregate(items, [(0, 1800), (1800, 3600)], lambda end: 0.5 if end > 1800 else 1.0)
    assert [r.estimated for r in halves] == [False, True]
    assert halves[1].kwh == pytest.approx(0.3)
    assert aggregate(items, [(7200, 9000)]) == []  # no interval, no read


def test_corrections_apply_until_after_the_days_end() -> None:
    cfg = MeterConfig(corrections=(MeterCorrection(date(2026, 11, 2), 0.9, 72 * 3600.0),))
    end = local(2026, 11, 2, 12)
    day_end = local(2026, 11, 3)
    assert correction_factor(end, day_end + 71 * 3600, cfg, TZ) == 0.9
    assert correction_factor(end, day_end + 72 * 3600, cfg, TZ) == 1.0
    assert correction_factor(local(2026, 11, 2), day_end, cfg, TZ) == 1.0  # ends at 00:00: the day before
    assert correction_factor(local(2026, 11, 3, 0, 5), day_end, cfg, TZ) == 1.0


def test_bill_periods_follow_the_cycle_day() -> None:
    assert period_containing(local(2026, 11, 15, 12), 1, TZ) == (local(2026, 11, 1), local(2026, 12, 1))
    assert period_containing(local(2026, 1, 3), 5, TZ) == (local(2025, 12, 5), local(2026, 1, 5))
    assert period_containing(local(2026, 1, 5), 5, TZ) == (local(2026, 1, 5), local(2026, 2, 5))
    periods = bill_periods(local(2026, 10, 20), local(2027, 1, 6), 5, TZ)
    assert periods == [(local(2026, 11, 5), local(2026, 12, 5)), (local(2026, 12, 5), local(2027, 1, 5))]


def test_history_starts_at_local_midnight_and_preloaded_sessions_spread() -> None:
    origin = local(2026, 11, 5, 12)
    assert history_start(origin, MeterConfig(history_s=3 * 86400), TZ) == local(2026, 11, 2)
    spread = historical_energy([HistoricalSession("garage", "t", -3600.0 - 100, 1000.0, 2000)], origin)
    assert sum(spread.values()) == pytest.approx(2000 * 3600)
    assert min(spread) == (origin - 3700) // 300 * 300 + 300


def test_meter_serves_only_published_reads() -> None:
    origin = local(2026, 11, 5, 12)
    cfg = MeterConfig(history_s=2 * 86400)
    meter = Meter(cfg, TariffConfig(), PriceSeries(PriceConfig(history_days=1), origin, "America/Chicago"),
                  origin, (), lambda: [])
    now = origin + 0.5
    reads = meter.reads("half_hour", local(2026, 11, 1), local(2026, 11, 6), now)
    assert reads[0].start == local(2026, 11, 3) and reads[-1].end == local(2026, 11, 4)  # now - 36 h
    days = meter.reads("day", local(2026, 11, 1), local(2026, 11, 6), now)
    assert [r.start for r in days] == [local(2026, 11, 3)]
    assert days[0].kwh == pytest.approx(sum(r.kwh for r in reads), abs=1e-9)
    assert serves("HALF_HOUR", "day") and not serves("HOUR", "half_hour") and serves("BILLING", "bill")


def test_meter_section_defaults_and_errors() -> None:
    base = {"chargers": [{"name": "garage"}]}
    cfg = load_scenario(base).meter
    assert cfg == MeterConfig() and cfg.delay_s == 36 * 3600 and cfg.history_s == 40 * 86400
    cfg = load_scenario({**base, "meter": {"corrections": [{"day": date(2026, 11, 2), "factor": 0.8}],
                                           "delay": "2d", "read_resolution": "HOUR"}}).meter
    assert cfg.corrections == (MeterCorrection(date(2026, 11, 2), 0.8, 72 * 3600.0),)
    assert cfg.delay_s == 2 * 86400 and cfg.read_resolution == "HOUR"
    for meter, message in [
        ({"read_resolution": "MINUTE"}, "meter.read_resolution: got 'MINUTE'"),
        ({"bill_cycle_day": 31}, "meter.bill_cycle_day: got 31"),
        ({"corrections": [{"day": "11/02/2026"}]}, "meter.corrections[0].day"),
        ({"corrections": [{"day": "2026-11-02", "after": "soon"}]}, "meter.corrections[0].after"),
        ({"mfa_code": "12ab56"}, "meter.mfa_code"),
        ({"refresh_token_lifetime": 0}, "meter.refresh_token_lifetime"),
        ({"pasword": "x"}, "meter.pasword: unknown key"),
    ]:
        with pytest.raises(ScenarioError, match=f"^{message}".replace("[", r"\[").replace("]", r"\]")):
            load_scenario({**base, "meter": meter})


def test_day_after_dst_is_an_ordinary_day() -> None:
    day = date(2026, 11, 1) + timedelta(days=1)
    assert len(base_load_day(day, 0.6, 1, TZ)) == 288
