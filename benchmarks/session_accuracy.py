"""Session accuracy against the simulator's ground truth: energy and cost of a realistic charge
(ramp, a dip, taper near the limit) derived from samples every 15, 30 or 60 s, as Prometheus stores
them, with the session store's trapezoid and with the rectangle method (last value x interval).

The simulator's model is stepped in process, one second at a time, so truth is exact: energy is
the sum of the per-second power, cost the simulator's own bill of it (simulator/bill.py: each
Central clock hour at the mean of its twelve 5-minute prices, plus delivery), computed without the
suite's code. Nothing here waits on a clock.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zoneinfo import ZoneInfo

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


def ground_truth(hours: float = 6.5) -> Ground:
    scenario = load_scenario(SCENARIO)
    clock = ManualClock(scenario.start if scenario.start is not None else ORIGIN)
    model = Model(scenario, clock)
    seconds = int(hours * 3600)
    t = np.empty(seconds)
    watts = np.empty(seconds)
    for i in range(seconds):
        model.sync()
        t[i], watts[i] = model.t, model.current_power("garage")
        clock.advance(1.0)
    first, last = int(t[0] // 3600 * 3600) - 3600, int(t[-1] // 3600 * 3600) + 7200   # whole hours around it
    prices = {float(end): model.prices.price(end) for end in range(first + 300, last + 1, 300)}
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


def accuracy(intervals: tuple[float, ...] = (15, 30, 60)) -> list[dict[str, float]]:
    ground = ground_truth()
    rows = []
    for interval in intervals:
        for method, run in (("trapezoid", trapezoid), ("rectangle", rectangle)):
            energy, cost = run(ground, interval)
            rows.append({"interval_s": interval, "method": method,
                         "energy_error_pct": 100 * (energy - ground.energy_wh) / ground.energy_wh,
                         "cost_error_pct": 100 * (cost - ground.cost) / ground.cost,
                         "true_energy_kwh": ground.energy_wh / 1000, "true_cost": ground.cost})
    return rows


def main() -> None:
    rows = accuracy()
    print(f"true session: {rows[0]['true_energy_kwh']:.3f} kWh, ${rows[0]['true_cost']:.4f}")
    print("| scrape interval | method | energy error | cost error |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['interval_s']:.0f} s | {row['method']} | {row['energy_error_pct']:+.3f} % | "
              f"{row['cost_error_pct']:+.3f} % |")


if __name__ == "__main__":
    main()
