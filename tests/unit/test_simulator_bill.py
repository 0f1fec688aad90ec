"""The simulator's ground-truth bill (simulator/bill.py): hourly-average and interval supply, local
hours across midnight and DST, negative prices, time-of-day delivery, month bills and the
/sim/bill and /sim/truth endpoints. Expected values are worked out by hand in the comments."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import yaml

from simulator.bill import delivery_rate, month_bill, session_bill
from simulator.clock import ManualClock
from simulator.config import ExplicitPrices, PriceConfig, Scenario, TariffConfig
from simulator.model import Model
from simulator.prices import PriceSeries
from simulator.scenario import ScenarioError, load_scenario
from simulator.testing import simulate

TZ = ZoneInfo("America/Chicago")
KWH = 3.6e6  # W*s
RED = "5YJ3E1EA7KF000001"
SPIKE_HOUR = [3, 3, 3, 3, 50, 50, 3, 3, 3, 3, 3, 3]  # mean 130/12 = 10.8333 c


def local(*args: int, fold: int = 0) -> int:
    """Unix seconds of a Chicago wall-clock time."""
    return int(datetime(*args, tzinfo=TZ).replace(fold=fold).timestamp())


def series(origin: int, values: list[float]) -> PriceSeries:
    """values[i] = price of the interval ending origin + 300 (i + 1); other intervals generated."""
    return PriceSeries(PriceConfig(history_days=1, explicit=ExplicitPrices(0.0, tuple(values))), origin,
                       "America/Chicago")


def spread(start: int, minutes: int, kwh: float) -> dict[int, float]:
    """``kwh`` spread evenly over the 5-minute intervals of [start, start + minutes)."""
    n = minutes // 5
    return {start + 300 * (i + 1): kwh * KWH / n for i in range(n)}


def charging_scenario(start: str, prices: list[float], plug: str, unplug: str, kw: float,
                      tariff: dict | None = None) -> dict:
    """One car at a constant ``kw`` (no ramp, no taper, far from its limit) from plug to unplug."""
    return {
        "start": start,
        "chargers": [{"name": "garage", "serial": "PGT00000000001"}],
        "vehicles": [{"vin": RED, "name": "red", "battery_kwh": 100, "soc": 10, "charge_limit": 100,
                      "max_power_kw": kw, "ramp": 0, "taper_pct": 0}],
        "prices": {"history_days": 1, "explicit": {"start": 0, "values": prices}},
        "events": [{"at": plug, "vehicle": "red", "plug_in": "garage"},
                   {"at": unplug, "vehicle": "red", "unplug": True}],
        "tariff": tariff or {},
    }


def stepped(data: dict, seconds: int) -> Model:
    scn = load_scenario(data)
    clock = ManualClock(scn.start)  # type: ignore[arg-type]
    model = Model(scn, clock)
    clock.advance(seconds)
    model.sync()
    return model


# --- supply rules -------------------------------------------------------------------------------


def test_hourly_average_bills_the_hour_mean_not_the_interval_prices() -> None:
    # 3 kW from minute 20 to 40 = 3000 W x 1200 s = 1 kWh, all in intervals :25 :30 :35 :40 (50 50 3 3 c).
    data = charging_scenario("2026-07-14T12:00:00-05:00", SPIKE_HOUR, "20m", "40m", 3.0)
    model = stepped(data, 3600)
    [session] = model.truth.sessions
    bill = session_bill(session, model.prices, model.scenario.tariff, TZ, model.now)
    assert bill["energy_kwh"] == pytest.approx(1.0)
    assert bill["supply"] == pytest.approx(0.108333333)          # 1 kWh x 10.8333 c
    assert bill["delivery"] == pytest.approx(0.075)
    assert bill["full"] == pytest.approx(0.183333333)
    assert bill["reference"] is None and bill["savings"] is None
    assert bill["final"] is True
    [line] = bill["lines"]
    assert line["end"] == local(2026, 7, 14, 13)
    assert line["price_cents"] == pytest.approx(10.833333333)
    assert line["energy_kwh"] == pytest.approx(1.0)
    assert line["supply"] == pytest.approx(0.108333333) and line["delivery"] == pytest.approx(0.075)


def test_interval_rule_bills_each_interval_at_its_own_price() -> None:
    data = charging_scenario("2026-07-14T12:00:00-05:00", SPIKE_HOUR, "20m", "40m", 3.0,
                             {"supply_billing": "interval"})
    model = stepped(data, 3600)
    bill = session_bill(model.truth.sessions[0], model.prices, model.scenario.tariff, TZ, model.now)
    assert bill["supply"] == pytest.approx(0.265)                # 0.25 kWh x (50 + 50 + 3 + 3) c
    noon = local(2026, 7, 14, 12)
    assert [line["end"] for line in bill["lines"]] == [noon + 1500, noon + 1800, noon + 2100, noon + 2400]
    assert [line["price_cents"] for line in bill["lines"]] == [50, 50, 3, 3]
    assert [line["energy_kwh"] for line in bill["lines"]] == pytest.approx([0.25] * 4)


def test_cheap_intervals_of_an_expensive_hour_still_pay_the_hour_mean() -> None:
    noon = local(2026, 7, 14, 12)
    prices = series(noon, SPIKE_HOUR)
    energy = spread(noon + 2400, 20, 1.0)                        # minutes 40-60, all at 3 c
    hourly = session_bill(energy, prices, TariffConfig(), TZ, noon + 3600)
    interval = session_bill(energy, prices, TariffConfig(supply_billing="interval"), TZ, noon + 3600)
    assert hourly["supply"] == pytest.approx(0.108333333)
    assert interval["supply"] == pytest.approx(0.03)


def test_final_only_once_the_hour_is_over() -> None:
    data = charging_scenario("2026-07-14T12:00:00-05:00", SPIKE_HOUR, "20m", "40m", 3.0)
    model = stepped(data, 45 * 60)                               # unplugged, but the hour runs to 13:00
    bill = session_bill(model.truth.sessions[0], model.prices, model.scenario.tariff, TZ, model.now)
    assert bill["final"] is False
    assert bill["supply"] == pytest.approx(0.108333333)          # later prices of the hour are already true


def test_session_crossing_an_hour_and_local_midnight() -> None:
    # 23:00-24:00 prices 2 x6 then 4 x6 (mean 3); 00:00-01:00 all 6 (mean 6). 6 kW 23:30-00:30:
    # 3 kWh in each hour -> supply 3 x 0.03 + 3 x 0.06 = 0.27; delivery 6 x 0.075 = 0.45.
    eleven = local(2026, 7, 14, 23)
    prices = series(eleven, [2] * 6 + [4] * 6 + [6] * 12)
    energy = spread(eleven + 1800, 60, 6.0)
    bill = session_bill(energy, prices, TariffConfig(), TZ, eleven + 7200)
    assert [line["end"] for line in bill["lines"]] == [local(2026, 7, 15, 0), local(2026, 7, 15, 1)]
    assert [line["price_cents"] for line in bill["lines"]] == pytest.approx([3.0, 6.0])
    assert [line["energy_kwh"] for line in bill["lines"]] == pytest.approx([3.0, 3.0])
    assert [line["supply"] for line in bill["lines"]] == pytest.approx([0.09, 0.18])
    assert bill["supply"] == pytest.approx(0.27) and bill["delivery"] == pytest.approx(0.45)
    assert bill["full"] == pytest.approx(0.72)
    assert bill["final"] is True
    assert session_bill(energy, prices, TariffConfig(), TZ, eleven + 7199)["final"] is False


# --- daylight saving ------------------------------------------------------------------------------


def day_prices(origin: int, hours: int) -> PriceSeries:
    """Real hour k of the day: eleven prices of k and one of k + 12, so its mean is k + 1."""
    return series(origin, [p for k in range(hours) for p in [k] * 11 + [k + 12]])


def test_spring_forward_day_has_23_hours_each_at_its_own_mean() -> None:
    start, end = local(2026, 3, 8), local(2026, 3, 9)
    assert end - start == 23 * 3600
    energy = spread(start, 23 * 60, 23.0)                        # 1 kWh per real hour
    bill = session_bill(energy, day_prices(start, 23), TariffConfig(), TZ, end)
    lines = bill["lines"]
    assert len(lines) == 23
    assert [datetime.fromtimestamp(line["end"] - 3600, TZ).hour for line in lines] == [0, 1, *range(3, 24)]
    assert [line["price_cents"] for line in lines] == pytest.approx([k + 1 for k in range(23)])
    assert bill["supply"] == pytest.approx(2.76)                 # (1 + 2 + ... + 23) c = 276 c
    assert bill["energy_kwh"] == pytest.approx(23.0)


def test_fall_back_day_has_25_hours_and_the_repeated_one_am_twice() -> None:
    start, end = local(2026, 11, 1), local(2026, 11, 2)
    assert end - start == 25 * 3600
    energy = spread(start, 25 * 60, 25.0)
    bill = session_bill(energy, day_prices(start, 25), TariffConfig(), TZ, end)
    lines = bill["lines"]
    assert len(lines) == 25
    assert [datetime.fromtimestamp(line["end"] - 3600, TZ).hour for line in lines] == [0, 1, 1, *range(2, 24)]
    assert [line["price_cents"] for line in lines] == pytest.approx([k + 1 for k in range(25)])
    assert bill["supply"] == pytest.approx(3.25)                 # (1 + ... + 25) c = 325 c


def test_the_two_one_am_hours_are_not_merged() -> None:
    # First 01:00 (CDT): all 2 c, 1 kWh; second 01:00 (CST): all 8 c, 2 kWh -> 0.02 + 0.16 = 0.18
    # (merging them would give 3 kWh x 5 c = 0.15).
    first, second = local(2026, 11, 1, 1, fold=0), local(2026, 11, 1, 1, fold=1)
    assert second - first == 3600
    prices = series(first, [2] * 12 + [8] * 12)
    energy = {**spread(first, 60, 1.0), **spread(second, 60, 2.0)}
    bill = session_bill(energy, prices, TariffConfig(), TZ, second + 3600)
    assert [line["end"] for line in bill["lines"]] == [first + 3600, second + 3600]
    assert [line["price_cents"] for line in bill["lines"]] == pytest.approx([2.0, 8.0])
    assert bill["supply"] == pytest.approx(0.18)


def test_local_hours_follow_the_zone_not_utc_hours() -> None:
    # St. John's is UTC-2:30 in summer: its 12:00-13:00 hour is 14:30-15:30 UTC. Prices 3 x6, 9 x6
    # (mean 6); 1 kWh over 12:00-12:30 local -> 0.06 in one line ending at 13:00 local.
    tz = ZoneInfo("America/St_Johns")
    noon = int(datetime(2026, 7, 14, 12, tzinfo=tz).timestamp())
    prices = series(noon, [3] * 6 + [9] * 12)
    bill = session_bill(spread(noon, 30, 1.0), prices, TariffConfig(), tz, noon + 3600)
    [line] = bill["lines"]
    assert line["end"] == noon + 3600 and line["price_cents"] == pytest.approx(6.0)
    assert bill["supply"] == pytest.approx(0.06)


# --- negative prices, reference ---------------------------------------------------------------------


def test_negative_price_hour_is_a_supply_credit_and_savings_use_the_reference() -> None:
    # mean of -2 x6 and -1 x6 = -1.5 c; 2 kWh -> supply -0.03, delivery 0.15, full 0.12;
    # reference 2 x 0.10 + 0.15 = 0.35, savings 0.35 - 0.12 = 0.23.
    two = local(2026, 7, 14, 2)
    prices = series(two, [-2] * 6 + [-1] * 6)
    tariff = TariffConfig(reference_supply_per_kwh=0.10)
    bill = session_bill(spread(two, 60, 2.0), prices, tariff, TZ, two + 3600)
    assert bill["lines"][0]["price_cents"] == pytest.approx(-1.5)
    assert bill["supply"] == pytest.approx(-0.03)
    assert bill["full"] == pytest.approx(0.12)
    assert bill["reference"] == pytest.approx(0.35)
    assert bill["savings"] == pytest.approx(0.23)


# --- delivery ---------------------------------------------------------------------------------------

SCHEDULE = {
    "delivery_cents_per_kwh": 5,
    "delivery_periods": [
        {"name": "summer_peak", "months": [7], "days": ["mon", "tue", "wed", "thu", "fri"],
         "start": "13:00", "end": "19:00", "cents_per_kwh": 10},
        {"name": "saturday_night", "days": ["sat"], "start": "22:00", "end": "06:00", "cents_per_kwh": 2},
        {"name": "shadowed", "start": "13:00", "end": "14:00", "cents_per_kwh": 90},  # the first match wins
    ],
}


@pytest.mark.parametrize(("when", "rate"), [
    ((2026, 7, 14, 13, 0), 0.10),    # Tuesday in July, first interval of the peak
    ((2026, 7, 14, 18, 55), 0.10),   # last interval of the peak
    ((2026, 7, 14, 12, 55), 0.05),   # just before
    ((2026, 7, 14, 19, 0), 0.05),    # end is exclusive
    ((2026, 7, 18, 14, 0), 0.05),    # Saturday: not a peak day, and 14:00 is past 'shadowed'
    ((2026, 8, 4, 13, 30), 0.9),     # August Tuesday: peak is July only, so 'shadowed' applies
    ((2026, 7, 17, 23, 0), 0.05),    # Friday 23:00: the wrapping period is Saturday-only
    ((2026, 7, 18, 2, 0), 0.02),     # Saturday 02:00, after midnight of the wrap
    ((2026, 7, 18, 23, 55), 0.02),   # Saturday 23:55
    ((2026, 7, 19, 1, 0), 0.05),     # Sunday 01:00: weekday of the moment itself
])
def test_delivery_periods_by_local_start_month_and_weekday(when: tuple[int, ...], rate: float) -> None:
    tariff = load_scenario(charging_scenario("2026-07-14T00:00:00-05:00", [3], "1m", "2m", 3.0, SCHEDULE)).tariff
    assert delivery_rate(local(*when) + 300, tariff, TZ) == rate


def test_delivery_schedule_in_a_session_bill() -> None:
    # Tuesday 12:30-13:30 at 6 kW: 3 kWh at 0.05 (12:30-13:00) + 3 kWh at 0.10 (13:00-13:30) = 0.45.
    tariff = load_scenario(charging_scenario("2026-07-14T00:00:00-05:00", [3], "1m", "2m", 3.0, SCHEDULE)).tariff
    half = local(2026, 7, 14, 12, 30)
    bill = session_bill(spread(half, 60, 6.0), series(half, [3] * 12), tariff, TZ, half + 7200)
    assert bill["delivery"] == pytest.approx(0.45)
    assert [line["delivery"] for line in bill["lines"]] == pytest.approx([0.15, 0.30])


# --- month bills ------------------------------------------------------------------------------------

MONTH_END = charging_scenario(
    "2026-07-31T23:00:00-05:00", [2] * 6 + [4] * 6 + [6] * 12, "30m", "1h30m", 6.0,
    {"monthly_fixed_dollars": 19.56, "capacity_dollars_per_month": 8.0, "reference_supply_cents_per_kwh": 12})


def test_month_bill_splits_a_session_crossing_the_month_boundary() -> None:
    # Same shape as the midnight test: July gets 3 kWh at 3 c, August 3 kWh at 6 c.
    model = stepped(MONTH_END, 3 * 3600)
    july = month_bill(model.truth.sessions, 2026, 7, model.prices, model.scenario.tariff, TZ, model.now)
    august = month_bill(model.truth.sessions, 2026, 8, model.prices, model.scenario.tariff, TZ, model.now)
    assert july["energy_kwh"] == pytest.approx(3.0) and august["energy_kwh"] == pytest.approx(3.0)
    assert july["supply"] == pytest.approx(0.09) and august["supply"] == pytest.approx(0.18)
    assert july["delivery"] == pytest.approx(0.225) and august["delivery"] == pytest.approx(0.225)
    assert july["fixed"] == 19.56 and july["capacity"] == 8.0
    assert july["total"] == pytest.approx(0.09 + 0.225 + 19.56 + 8.0)            # 27.875
    assert july["total"] == pytest.approx(july["supply"] + july["delivery"] + july["fixed"] + july["capacity"])
    assert july["reference"] == pytest.approx(3 * 0.12 + 0.225 + 19.56)           # 20.145, no capacity
    assert july["savings"] == pytest.approx(20.145 - 27.875)
    assert july["final"] is True and august["final"] is False
    assert july["month"] == "2026-07" and (july["start"], july["end"]) == (local(2026, 7, 1), local(2026, 8, 1))
    assert [line["end"] for line in july["lines"]] == [local(2026, 8, 1)]


def test_month_bill_sums_sessions_into_hourly_lines() -> None:
    eleven = local(2026, 7, 14, 23)
    prices = series(eleven, [2] * 6 + [4] * 6)
    a, b = spread(eleven, 30, 1.0), spread(eleven + 1800, 30, 2.0)  # two sessions, same hour
    bill = month_bill([a, b], 2026, 7, prices, TariffConfig(monthly_fixed=10.0), TZ, eleven + 3600)
    [line] = bill["lines"]
    assert line["energy_kwh"] == pytest.approx(3.0) and line["supply"] == pytest.approx(0.09)
    assert bill["total"] == pytest.approx(0.09 + 3 * 0.075 + 10.0)
    assert bill["reference"] is None and bill["savings"] is None


# --- HTTP ---------------------------------------------------------------------------------------------


async def test_sim_bill_and_sim_truth_over_http() -> None:
    async with simulate(MONTH_END) as h:
        h.advance(3 * 3600)
        status, july = await h.get_json("/sim/bill", params={"month": "2026-07"})
        assert status == 200
        assert july["total"] == pytest.approx(27.875) and july["supply"] == pytest.approx(0.09)
        status, current = await h.get_json("/sim/bill")           # now is 2026-08-01 02:00 local
        assert status == 200 and current["month"] == "2026-08" and current["supply"] == pytest.approx(0.18)
        _, truth = await h.get_json("/sim/truth")
        bill = truth["sessions"][0]["bill"]
        assert bill["supply"] == pytest.approx(0.27) and bill["delivery"] == pytest.approx(0.45)
        assert bill["full"] == pytest.approx(0.72)
        assert bill["reference"] == pytest.approx(6 * 0.12 + 0.45) and bill["savings"] == pytest.approx(0.45)
        assert bill["final"] is True
        assert bill["lines"][0] == {"end": local(2026, 8, 1), "energy_kwh": pytest.approx(3.0),
                                    "price_cents": pytest.approx(3.0), "supply": pytest.approx(0.09),
                                    "delivery": pytest.approx(0.225)}
        for bad in ("2026-13", "july", "2026-7", ""):
            status, body = await h.get_json("/sim/bill", params={"month": bad})
            assert status == 400 and set(body) == {"error"} and "YYYY-MM" in body["error"]
            assert "\n" not in body["error"]


# --- scenario key -------------------------------------------------------------------------------------


def test_tariff_defaults() -> None:
    tariff = Scenario().tariff
    assert (tariff.supply_billing, tariff.delivery_per_kwh, tariff.monthly_fixed) == ("hourly_average", 0.075, 19.56)
    assert (tariff.capacity_per_month, tariff.reference_supply_per_kwh, tariff.delivery_periods) == (0.0, 0.0, ())
    assert load_scenario(charging_scenario("2026-07-14T00:00:00-05:00", [3], "1m", "2m", 3.0)).tariff == tariff


def test_tariff_documented_example_loads() -> None:
    text = """
    supply_billing: interval
    delivery_periods:
      - {name: super_peak, months: [6, 7, 8, 9], days: [mon, tue, wed, thu, fri],
         start: "13:00", end: "19:00", cents_per_kwh: 10.7}
      - {name: night, start: "22:00", end: "06:00", cents_per_kwh: 3}
      - {start: "00:00", end: "24:00", cents_per_kwh: 6}
    """
    data = charging_scenario("2026-07-14T00:00:00-05:00", [3], "1m", "2m", 3.0, yaml.safe_load(text))
    peak, night, day = load_scenario(data).tariff.delivery_periods
    assert (peak.start_min, peak.end_min, peak.months, peak.days) == (780, 1140, (6, 7, 8, 9), (0, 1, 2, 3, 4))
    assert (night.start_min, night.end_min, night.days) == (1320, 360, tuple(range(7)))
    assert (day.start_min, day.end_min) == (0, 1440)


@pytest.mark.parametrize(("tariff", "message"), [
    ({"supply_billing": "hourly"}, "tariff.supply_billing: got 'hourly'; use one of hourly_average, interval"),
    ({"delivery": 0.07}, "tariff.delivery: unknown key; use one of"),
    ({"delivery_cents_per_kwh": "7c"}, "tariff.delivery_cents_per_kwh: got '7c'; use a number"),
    ({"monthly_fixed_dollars": -1}, "tariff.monthly_fixed_dollars: got -1.0; use a value >= 0"),
    ({"delivery_periods": [{"start": "25:00", "end": "06:00", "cents_per_kwh": 3}]},
     "tariff.delivery_periods[0].start: got '25:00'; use HH:MM on a 5-minute mark"),
    ({"delivery_periods": [{"start": "13:07", "end": "19:00", "cents_per_kwh": 10}]},
     "tariff.delivery_periods[0].start: got '13:07'; use HH:MM on a 5-minute mark"),
    ({"delivery_periods": [{"start": "13:00", "end": "24:05", "cents_per_kwh": 10}]},
     "tariff.delivery_periods[0].end: got '24:05'; use HH:MM on a 5-minute mark"),
    ({"delivery_periods": [{"start": "24:00", "end": "06:00", "cents_per_kwh": 10}]},
     "tariff.delivery_periods[0].start: got '24:00'"),
    ({"delivery_periods": [{"start": "13:00", "end": "13:00", "cents_per_kwh": 10}]},
     "tariff.delivery_periods[0].end: equals start"),
    ({"delivery_periods": [{"start": 1320, "end": "06:00", "cents_per_kwh": 10}]},
     "tariff.delivery_periods[0].start: got the number 1320"),
    ({"delivery_periods": [{"start": "13:00", "end": "19:00"}]},
     "tariff.delivery_periods[0].cents_per_kwh: missing"),
    ({"delivery_periods": [{"start": "13:00", "end": "19:00", "cents_per_kwh": 10, "days": ["monday"]}]},
     "tariff.delivery_periods[0].days: got ['monday']; use a non-empty list of mon, tue"),
    ({"delivery_periods": [{"start": "13:00", "end": "19:00", "cents_per_kwh": 10, "months": [0, 13]}]},
     "tariff.delivery_periods[0].months: got [0, 13]; use a non-empty list of months 1..12"),
    ({"delivery_periods": [{"start": "13:00", "end": "19:00", "cents_per_kwh": 10, "hours": 6}]},
     "tariff.delivery_periods[0].hours: unknown key"),
])
def test_bad_tariff_fails_with_one_line(tariff: dict, message: str) -> None:
    with pytest.raises(ScenarioError) as exc:
        load_scenario(charging_scenario("2026-07-14T00:00:00-05:00", [3], "1m", "2m", 3.0, tariff))
    assert str(exc.value).startswith(message)
    assert "\n" not in str(exc.value)


def test_unquoted_yaml_time_is_rejected_with_a_hint() -> None:
    period = yaml.safe_load("{start: 22:00, end: '06:00', cents_per_kwh: 3}")
    data = charging_scenario("2026-07-14T00:00:00-05:00", [3], "1m", "2m", 3.0, {"delivery_periods": [period]})
    with pytest.raises(ScenarioError, match=r'quote the time, e.g. "22:00"'):
        load_scenario(data)
