"""Smart charging's savings on the bill: a simulated month of evening plug-ins and morning departures
with price spikes, some inside hours where a car is charging, run four ways and priced by the
simulator's own bill (simulator/bill.py: each Central clock hour at the mean of its twelve 5-minute
prices, plus delivery):

- none: the car charges as soon as it is plugged in;
- five_minute: the original rule, the latest 5-minute price against 5-minute p90/p75;
- billed: the projected price of the hour in progress against p90/p75 of billed hourly prices;
- perfect foresight: the same energy in the cheapest slots between the same plug-in and unplug,
  at the car's full power (a lower bound: it ignores the taper near the charge limit).

The two rules run the session store's own decision function (`smart_charging.decide`, `remember`)
against the simulator's car once a minute, sending stop and start commands to the model directly,
with thresholds from the last 30 days of prices as PromQL computes them. Nothing waits on a clock.

The month and the strategies are testkit/smart_month.py, which the tests assert on; this module adds
perfect foresight and prints the tables.
"""
from __future__ import annotations

import numpy as np

from benchmarks.report import table
from simulator.bill import bill_lines, hour_mean_price, local_hour_end
from simulator.clock import ManualClock
from simulator.model import Model
from simulator.scenario import load_scenario
from testkit.smart_month import CHICAGO, POWER_KW, STRATEGIES, Plan, Run, month, simulate


def old_rule_errors(run: Run) -> tuple[float, float, int]:
    """Per-session error of the per-interval rule against the bill's supply: (mean |%|, max |%|, sessions),
    over sessions whose billed supply is at least a cent (a percentage of nothing means nothing)."""
    errors = [abs(interval - billed) / abs(billed) * 100 for billed, interval in run.old_rule if abs(billed) >= 0.01]
    return float(np.mean(errors)), float(np.max(errors)), len(errors)


def perfect_foresight(plan: Plan, none: Run, delivery_per_kwh: float = 0.075) -> Run:
    """The same energy per plug-in, in the cheapest 5-minute slots (hour mean + delivery) between
    plug-in and unplug, at full power."""
    scenario = load_scenario(plan.scenario)
    model = Model(scenario, ManualClock(plan.start))
    settings = scenario.tariff.__class__(delivery_per_kwh=delivery_per_kwh)
    run = Run("perfect foresight")
    for plug, unplug, wh in none.sessions:
        slots = []
        for end in range(plug // 300 * 300 + 300, unplug + 300, 300):
            seconds = min(end, unplug) - max(end - 300, plug)
            if seconds > 0:
                slots.append((hour_mean_price(local_hour_end(end, CHICAGO), model.prices), end, seconds))
        energy: dict[int, float] = {}
        left_ws = wh * 3600
        for _, end, seconds in sorted(slots):
            take = min(left_ws, seconds * POWER_KW * 1000)
            if take <= 0:
                break
            energy[end] = take
            left_ws -= take
        lines = bill_lines(energy, model.prices, settings, CHICAGO)
        run.energy_kwh += sum(line["energy_kwh"] for line in lines)
        run.supply += sum(line["supply"] for line in lines)
        run.delivery += sum(line["delivery"] for line in lines)
    return run


def compare(plan: Plan) -> list[Run]:
    runs = [simulate(plan, strategy) for strategy in STRATEGIES]
    return runs + [perfect_foresight(plan, runs[0])]


def savings_table(runs: list[Run]) -> str:
    none, best = runs[0], runs[-1]
    possible = none.cost - best.cost
    rows = []
    for run in runs:
        saved = none.cost - run.cost
        claimed = none.old_rule_supply - run.old_rule_supply if run.old_rule else None
        rows.append([run.strategy, f"{run.energy_kwh:.1f} kWh", f"${run.supply:.2f}", f"${run.delivery:.2f}",
                     f"${run.cost:.2f}", f"${saved:.2f} ({100 * saved / none.cost:.1f} %)",
                     f"{100 * saved / possible:.0f} %" if possible > 0 else "n/a",
                     "-" if claimed is None else f"${claimed:.2f}",
                     str(run.commands) if run.strategy in STRATEGIES else "-"])
    return table(["strategy", "energy", "supply (billed)", "delivery", "charging cost", "saved on the bill",
                  "share of the perfect-foresight saving", "saving the old per-interval costing reported",
                  "commands"], rows)


def old_rule_table(run: Run) -> str:
    mean, worst, count = old_rule_errors(run)
    return table(["sessions", "mean per-session error", "worst session"],
                 [[str(count), f"{mean:.1f} %", f"{worst:.1f} %"]])


def markdown() -> str:
    plan = month()
    runs = compare(plan)
    energies = {round(run.energy_kwh, 1) for run in runs}
    same = "every strategy delivers the same energy" if len(energies) == 1 else "the energy delivered differs"
    return "\n".join([
        f"{len(plan.visits)} plug-ins of two cars over 30 days (June, flat delivery $0.075/kWh), "
        f"{len(plan.scenario['prices']['spikes'])} price spikes; {same}.", "",
        savings_table(runs), "",
        "The original per-interval costing against the bill, same month, no smart charging (per session):", "",
        old_rule_table(runs[0])])


def main() -> None:
    print(markdown())


if __name__ == "__main__":
    main()
