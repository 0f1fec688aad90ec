"""The bill-accuracy cases: scenarios chosen to be hard to bill, one `tariff:` mapping configuring both
the suite and the simulator, and `run`, which prices a case our way (sessions.step from 15-s samples,
then the configured tariff) and the simulator's way (simulator/bill.py, which shares no code with it).

Ground truth shared by the tests (tests/unit/test_bill_accuracy.py asserts every case within 0.5 %;
tests/integration/test_billed_sessions.py uses its tariff, car and charger) and benchmark 3a
(benchmarks/bill_accuracy.py prints the tables).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from billing.settings import tariff_for
from billing.tariff import Tariff, bill, month_totals
from servicekit.config import load
from session_store.sessions import Completed, Params, UnitState, step
from simulator.bill import month_bill, session_bill
from simulator.clock import ManualClock
from simulator.model import Model
from simulator.scenario import load_scenario
from testkit.session_truth import power_each_second, prices_around

SCRAPE_S = 15
CHICAGO = ZoneInfo("America/Chicago")
# The same mapping configures both sides: the suite's `tariff:` section and the scenario's.
TARIFF = {
    "delivery_cents_per_kwh": 5.9,
    "delivery_periods": [
        {"name": "overnight", "start": "21:00", "end": "06:00", "cents_per_kwh": 3.0},
        {"name": "morning", "start": "06:00", "end": "13:00", "cents_per_kwh": 4.0},
        {"name": "super_peak", "months": [6, 7, 8, 9], "days": ["mon", "tue", "wed", "thu", "fri"],
         "start": "13:00", "end": "19:00", "cents_per_kwh": 10.7},
        {"name": "evening", "start": "19:00", "end": "21:00", "cents_per_kwh": 4.0}],
    "monthly_fixed_dollars": 19.56,
    "capacity_dollars_per_month": 9.80,
    "reference_supply_cents_per_kwh": 10.028,
}
CAR = {"vin": "5YJ3E1EA7KF000042", "name": "blue", "battery_kwh": 100, "soc": 10, "charge_limit": 100,
       "max_power_kw": 11.5}
CHARGER = {"name": "garage", "serial": "PGT00000000042", "part_number": "1457768-02-G", "role": "standalone"}


def case(start: str, plug_in: str, unplug: str, hours: float, prices: dict[str, Any] | None = None,
         dips: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    events = [{"at": plug_in, "vehicle": "blue", "plug_in": "garage"}, *dips,
              {"at": unplug, "vehicle": "blue", "unplug": True}]
    return {"scenario": {"start": start, "seed": 5, "chargers": [CHARGER], "vehicles": [CAR],
                         "prices": {"seed": 17, "history_days": 1, **(prices or {})}, "events": events,
                         "tariff": TARIFF},
            "hours": hours}


CASES: dict[str, dict[str, Any]] = {
    # 14:37-16:12 on a July weekday (super-peak delivery); a spike in 14:00-15:00 before the car came.
    "partial hours, spike outside the charging minutes": case(
        "2026-07-14T14:00:00-05:00", "37m", "2h12m", 3,
        {"spikes": [{"from": "5m", "to": "15m", "price": 60.0}]}),
    "across midnight, a dip": case(
        "2026-07-14T22:00:00-05:00", "1h20m", "3h40m", 4.5,
        dips=({"at": "2h10m", "charger": "garage", "dip": {"duration": "4m", "power_kw": 0.0}},)),
    "spring forward (23-hour day)": case("2026-03-08T00:00:00-06:00", "50m", "4h20m", 5),
    "fall back (25-hour day), across the month boundary": case(
        "2026-10-31T22:00:00-05:00", "1h10m", "6h40m", 7.5),
    "negative-price hours": case(
        "2026-05-12T00:00:00-05:00", "1h30m", "5h", 5.5,
        {"spikes": [{"from": "2h", "to": "4h", "price": -2.5}]}),
}


@dataclass(frozen=True)
class Compared:
    name: str
    energy_kwh: float
    ours: dict[str, float]          # supply, delivery, full
    truth: dict[str, float]
    old_rule_supply: float          # every 5-minute interval at its own price

    def error_pct(self, line: str) -> float:
        return 100 * (self.ours[line] - self.truth[line]) / abs(self.truth[line])

    @property
    def old_rule_error_pct(self) -> float:
        return 100 * (self.old_rule_supply - self.truth["supply"]) / abs(self.truth["supply"])


@dataclass(frozen=True)
class Outcome:
    sessions: list[Compared]
    months: list[tuple[str, dict[str, float], dict[str, float]]]    # (YYYY-MM, ours, truth)


def ours_tariff() -> Tariff:
    return tariff_for(load({"tariff": TARIFF}, {}, {}))


def run(name: str) -> Outcome:
    """Step one case, derive sessions from 15-s samples, bill them both ways."""
    spec = CASES[name]
    scenario = load_scenario(spec["scenario"])
    clock = ManualClock(scenario.start)
    model = Model(scenario, clock)
    seconds = int(spec["hours"] * 3600)
    t, watts = power_each_second(model, clock, seconds)
    model.sync()
    sampled = np.arange(7, seconds, SCRAPE_S)
    _, events = step(UnitState(), t[sampled], watts[sampled], Params())
    completed = [e for e in events if isinstance(e, Completed)]
    prices = prices_around(model, t)
    tariff = ours_tariff()
    sessions, days = [], []
    for truth_session in model.truth.sessions:
        mine = [c for c in completed if c.start < truth_session.unplug and c.end > truth_session.plug_in]
        intervals: dict[float, float] = {}
        for c in mine:
            for end, wh in c.intervals.items():
                intervals[end] = intervals.get(end, 0.0) + wh
        charged = bill(intervals, prices, tariff)
        days += charged.by_day(CHICAGO).items()
        truth = session_bill(truth_session, model.prices, scenario.tariff, CHICAGO, model.now)
        old_rule = sum(wh / 1000 * prices[end] / 100 for end, wh in intervals.items())
        sessions.append(Compared(name, charged.energy_wh / 1000,
                                 {"supply": charged.supply, "delivery": charged.delivery, "full": charged.full},
                                 {k: truth[k] for k in ("supply", "delivery", "full")}, old_rule))
    months = []
    for (year, month), totals in month_totals(days, tariff).items():
        truth = month_bill(model.truth.sessions, year, month, model.prices, scenario.tariff, CHICAGO, model.now)
        months.append((f"{year}-{month:02d}",
                       {"charging": totals.charging, "total": totals.total, "fixed": totals.fixed,
                        "capacity": totals.capacity},
                       {"charging": truth["supply"] + truth["delivery"], "total": truth["total"],
                        "fixed": truth["fixed"], "capacity": truth["capacity"]}))
    return Outcome(sessions, months)
