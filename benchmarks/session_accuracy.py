"""Session accuracy against the simulator's ground truth: energy and cost of a realistic charge
(ramp, a dip, taper near the limit) derived from samples every 15, 30 or 60 s, as Prometheus stores
them, with the session store's trapezoid and with the rectangle method (last value x interval).

The simulator's model is stepped in process, one second at a time, so truth is exact: energy is
the sum of the per-second power, cost the simulator's own bill of it (simulator/bill.py: each
Central clock hour at the mean of its twelve 5-minute prices, plus delivery), computed without the
suite's code. Nothing here waits on a clock. The charge and both methods are
testkit/session_truth.py, which the tests assert on.
"""
from __future__ import annotations

from testkit.session_truth import ground_truth, rectangle, trapezoid


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
