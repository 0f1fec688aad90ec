"""What the planner plans from: the next departure (weekly across clock changes), the state of charge
(reported or estimated), the hour in progress, and when a new plan is worth keeping as a revision."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from billing.forecast import Forecast
from billing.tariff import DeliveryPeriod, Tariff
from session_store.departure import (
    Departure, estimate_soc, format_weekly, hour_in_progress, market_hours, parse_weekly,
)
from session_store.planning import material_change
from session_store.records import PlanRevision

CHICAGO = ZoneInfo("America/Chicago")


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=CHICAGO).timestamp()


def test_weekly_departure_is_the_next_weekday_at_its_local_time_across_a_clock_change() -> None:
    week = Departure("V", 80, weekly=parse_weekly({"mon": "07:00", "fri": "06:30"}))
    assert week.next(at("2026-11-06T08:00"), CHICAGO) == at("2026-11-09T07:00")   # Friday after 06:30: Monday
    assert week.next(at("2026-11-06T06:00"), CHICAGO) == at("2026-11-06T06:30")
    # Clocks go back on Sunday 1 November 2026: Monday 07:00 is still 07:00 local (13:00 UTC, not 12:00).
    assert datetime.fromtimestamp(week.next(at("2026-10-31T12:00"), CHICAGO), CHICAGO).hour == 7
    assert Departure("V", 80, at=100.0).next(200.0, CHICAGO) is None
    assert format_weekly(week.weekly) == {"mon": "07:00", "fri": "06:30"}
    with pytest.raises(ValueError, match="weekly.mon"):
        parse_weekly({"mon": "25:00"})
    with pytest.raises(ValueError, match="not a weekday"):
        parse_weekly({"monday": "07:00"})


def test_a_stale_reading_is_advanced_by_the_wall_energy_since() -> None:
    fresh = estimate_soc(40.0, 1000.0, 5000.0, 0.9, 75.0, now=1500.0, fresh_s=900)
    assert (fresh.percent, fresh.source) == (40.0, "reported")
    stale = estimate_soc(40.0, 1000.0, 15_000.0, 0.9, 75.0, now=5000.0, fresh_s=900)
    assert stale.source == "estimated" and stale.percent == pytest.approx(40 + 15 * 0.9 / 75 * 100)
    assert estimate_soc(95.0, 0.0, 50_000.0, 0.9, 75.0, now=5000.0, fresh_s=900).percent == 100.0


def test_the_hour_in_progress_fades_from_the_latest_price_to_the_forecast() -> None:
    # 3 published prices of 4 cents, the latest 4; the forecast says 2 for the hour.
    value = hour_in_progress(projected=4.0, published=3, latest=4.0, predicted=2.0)
    fade = sum(0.8 ** k for k in range(1, 10))
    assert value == pytest.approx((12 + 9 * 2 + 2 * fade) / 12)
    assert 2.0 < value < 4.0
    assert hour_in_progress(4.0, 12, 4.0, 2.0) == 4.0          # complete: the published mean
    assert hour_in_progress(4.0, 3, 4.0, None) == 4.0          # no forecast: the exporter's projection


def test_market_hours_price_each_hour_from_its_source_and_flag_peak_risk() -> None:
    tariff = Tariff(CHICAGO, delivery_per_kwh=0.05,
                    delivery_periods=(DeliveryPeriod(14 * 60, 19 * 60, 0.10),))
    start = at("2026-07-06T12:00")                     # a Monday in summer
    forecast = Forecast(start, (3.0, 4.0, 5.0, 6.0), day_ahead_hours=2)
    window = (DeliveryPeriod(13 * 60, 19 * 60, 0.0, months=frozenset({6, 7, 8, 9}), weekdays=frozenset(range(5))),)
    hours = market_hours(start + 600, start + 4 * 3600, tariff, forecast, 3.5, window)
    assert [(h.supply_cents, h.source) for h in hours] == [(3.5, "realized"), (4.0, "day_ahead"), (5.0, "profile"),
                                                            (6.0, "profile")]
    assert [h.delivery_cents for h in hours] == pytest.approx([5.0, 5.0, 10.0, 10.0])
    assert [h.peak_risk for h in hours] == [False, True, True, True]
    assert market_hours(start + 600, start + 5 * 3600, tariff, forecast, 3.5) is None   # past the forecast


def revision(**changes) -> PlanRevision:
    base = dict(t=0.0, vin="V", departure=100.0, target_percent=80.0, soc_percent=40.0, soc_source="reported",
                need_wh=30_000.0, energy_wh=30_000.0, cost=2.0, finish=90.0, feasible=True, reachable_percent=80.0,
                reason="", hours=((0.0, 11_500.0, 3.0), (3600.0, 11_500.0, 3.1)))
    return PlanRevision(**{**base, **changes})


def test_only_material_changes_make_a_revision() -> None:
    first = revision()
    assert material_change(None, first) == "new"
    assert material_change(first, revision(t=60.0, cost=2.04)) is None
    assert material_change(first, revision(cost=2.5)) == "cost"
    assert material_change(first, revision(hours=((7200.0, 11_500.0, 2.0),))) == "hours"
    assert material_change(first, revision(feasible=False)) == "feasibility"
    assert material_change(first, revision(target_percent=90.0)) == "setting"
    assert material_change(first, revision(departure=200.0)) == "new"


def stored_session(vin: str, start: float, end: float, energy_wh: float, cost: float):
    from session_store.records import Session
    return Session(unit="garage", din="D", vin=vin, vehicle="Grey", start=start, end=end, duration_s=end - start,
                   energy_wh=energy_wh, peak_w=11_500.0, average_w=11_000.0, meter_energy_wh=None,
                   supply_cost=cost * 0.6, supply_credit=0.0, delivery_cost=cost * 0.4, full_cost=cost,
                   supply_price_cents=3.0, cost_final=True, intervals={}, gap_s=0.0, source="live_status",
                   reconciliation="pending")


def test_a_departure_gets_its_outcome_once_and_a_car_its_efficiency(tmp_path) -> None:
    """After the departure: met or missed from the last plan's state of charge plus the energy since,
    the cost paid against the cost first planned; recorded once. Efficiency: learned from the car's
    energy added over the wall energy of its last session, once per session."""
    import logging
    from servicekit.config import load
    from session_store.planning import Planning
    from session_store.storage import Storage

    storage = Storage(tmp_path / "s.db", CHICAGO)
    config = load({}, {}, {})
    planning = Planning(config, storage, None, Tariff(CHICAGO), logging.getLogger("test"))   # type: ignore[arg-type]
    vin = "5YJ3E1EA7KF000001"
    planning.set_departure(Departure(vin, 80.0, at=20_000.0))
    storage.save_plans([revision(vin=vin, t=1000.0, departure=20_000.0, soc_percent=40.0, cost=3.0),
                        revision(vin=vin, t=5000.0, departure=20_000.0, soc_percent=55.0, cost=2.5)], [])
    # 25 kWh at the wall after the last revision: 55 + 25 x 0.9 / 75 x 100 = 85 % >= 80 %: met
    storage.save_step({}, [stored_session(vin, 6000.0, 9000.0, 25_000.0, 2.2)], [], 9000.0)
    assert planning._outcomes(19_000.0, {}) == []                      # not yet departed
    [outcome] = planning._outcomes(21_000.0, {})
    assert outcome.met and outcome.revisions == 2 and outcome.planned_cost == 3.0
    assert outcome.cost == pytest.approx(2.2) and outcome.soc_percent == pytest.approx(85.0)
    storage.save_plans([], [outcome])
    assert planning._outcomes(22_000.0, {}) == [] and storage.plan_outcomes(vin)[0].met

    import asyncio
    asyncio.run(planning._learn({}, {vin: 23_000.0}, {vin: 9500.0}))     # the car says 23 kWh added
    assert planning.efficiencies[vin] == pytest.approx(0.92)
    asyncio.run(planning._learn({}, {vin: 20_000.0}, {vin: 9600.0}))     # the same session: not learned twice
    assert planning.efficiencies[vin] == pytest.approx(0.92)
    asyncio.run(planning._learn({}, {vin: 5_000.0}, {vin: 9600.0}))      # 20 %: another charge's figure
    assert storage.efficiencies()[vin][1] == 1
