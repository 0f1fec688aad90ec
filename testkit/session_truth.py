"""One realistic charge (ramp, a 3-minute dip, taper near the limit, a price spike) stepped exactly, and
the session energy and cost derived from samples of it: ground truth for how accurate the session
store's trapezoid is (and the rectangle method is not).

The simulator's model is stepped in process, one second at a time, so truth is exact: energy is
the sum of the per-second power, cost the simulator's own bill of it (simulator/bill.py: each
Central clock hour at the mean of its twelve 5-minute prices, plus delivery), computed without the
suite's code. Nothing here waits on a clock. Shared by tests/unit/test_session_accuracy.py (within
0.5 % at 15 and 30 s) and benchmark 3 (benchmarks/session_accuracy.py, the error table).
"""
from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from billing.tariff import HOURLY_AVERAGE, Tariff, bill
from session_store.sessions import Completed, Params, UnitState, step
from simulator.bill import session_bill
from simulator.clock import ManualClock
from simulator.model import Model
from simulator.scenario import load_scenario

ORIGIN = 1_790_000_100.0      # a fixed moment, so every run prices the same intervals
SCENARIO = {
    "start": "2026-09-21T14:08:20+00:00",
    "seed": 3,
    "chargers": [{"name": "garage", "serial": "PGT00000000042", "part_number": "1457768-02-G", "role": "standalone"}],
    "vehicles": [{"vin": "5YJ3E1EA7KF000042", "name": "blue", "battery_kwh": 75, "soc": 25, "charge_limit": 90,
                  "max_power_kw": 11.5}],
    "prices": {"seed": 11, "history_days": 1, "spikes": [{"from": "1h", "to": "1h20m", "price": 15.0}]},
    "events": [{"at": "2m", "vehicle": "blue", "plug_in": "garage"},
               {"at": "1h30m", "charger": "garage", "dip": {"duration": "3m", "power_kw": 0.0}},
               {"at": "6h", "vehicle": "blue", "unplug": True}],
}
DELIVERY = 0.075
TARIFF = Tariff(ZoneInfo("America/Chicago"), HOURLY_AVERAGE, delivery_per_kwh=DELIVERY)


@dataclass(frozen=True)
class Ground:
    t: np.ndarray            # every second
    watts: np.ndarray        # true power during that second
    prices: dict[float, float]
    energy_wh: float
    cost: float              # the simulator's bill: supply + delivery, dollars


def power_each_second(model: Model, clock: ManualClock, seconds: int,
                      charger: str = "garage") -> tuple[np.ndarray, np.ndarray]:
    """Step the simulator's model one second at a time: (t, the charger's true power) for every second."""
    t, watts = np.empty(seconds), np.empty(seconds)
    for i in range(seconds):
        model.sync()
        t[i], watts[i] = model.t, model.current_power(charger)
        clock.advance(1.0)
    return t, watts


def prices_around(model: Model, t: np.ndarray) -> dict[float, float]:
    """Every 5-minute price (interval end -> cents) of the whole hours around `t`: from the hour before
    its first second to two hours after its last."""
    first, last = int(t[0] // 3600 * 3600) - 3600, int(t[-1] // 3600 * 3600) + 7200
    return {float(end): model.prices.price(end) for end in range(first + 300, last + 1, 300)}


def ground_truth(hours: float = 6.5) -> Ground:
    scenario = load_scenario(SCENARIO)
    clock = ManualClock(scenario.start if scenario.start is not None else ORIGIN)
    model = Model(scenario, clock)
    t, watts = power_each_second(model, clock, int(hours * 3600))
    prices = prices_around(model, t)
    [session] = model.truth.sessions
    truth = session_bill(session, model.prices, scenario.tariff, ZoneInfo(scenario.site.time_zone), model.now)
    return Ground(t, watts, prices, float(watts.sum() / 3600.0), truth["full"])


def sampled(ground: Ground, interval: float, phase: float = 7.0) -> tuple[np.ndarray, np.ndarray]:
    """What Prometheus stores: one sample every `interval`, the power at that second."""
    index = np.arange(int(phase), ground.t.size, int(interval))
    return ground.t[index], ground.watts[index]


def trapezoid(ground: Ground, interval: float) -> tuple[float, float]:
    t, w = sampled(ground, interval)
    _, events = step(UnitState(), t, w, Params(grace_s=600, max_gap_s=max(300, 2 * interval)))
    [session] = [e for e in events if isinstance(e, Completed)]
    return session.energy_wh, bill(session.intervals, ground.prices, TARIFF).full


def rectangle(ground: Ground, interval: float) -> tuple[float, float]:
    """Each sample's value held for one interval (what a naive 'value x interval' sum does), billed
    by the same tariff."""
    t, w = sampled(ground, interval)
    wh = w * interval / 3600.0
    ends = np.ceil((t + interval / 2) / 300.0) * 300.0
    intervals: dict[float, float] = {}
    for end, energy in zip(ends, wh):
        intervals[float(end)] = intervals.get(float(end), 0.0) + float(energy)
    return float(wh.sum()), bill(intervals, ground.prices, TARIFF).full
