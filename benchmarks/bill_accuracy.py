"""Session and month costs against the simulator's own bill, on scenarios chosen to be hard to bill:
partial hours, a spike inside a charging hour but outside its minutes, midnight, both clock-change
days, negative-price hours and a session across a month boundary; time-of-day delivery, a fixed and
a capacity charge.

The simulator is stepped in process one second at a time; Prometheus's view is one power sample
every 15 s. Our side is the session store's own path (sessions.step, then the configured tariff,
built from the same `tariff:` mapping the user writes); the truth is simulator/bill.py, which
shares no code with it. The old rule (every 5-minute interval at its own price) is priced beside
it, on the same sessions, to show how wrong it was.

The cases and their comparison are testkit/bill_cases.py, which the tests assert on; this module
prints them as tables.
"""
from __future__ import annotations

from benchmarks.report import table
from testkit.bill_cases import CASES, run


def markdown() -> str:
    """Every case: per session ours vs the bill (and the old rule), then per month."""
    sessions, months = [], []
    for name in CASES:
        outcome = run(name)
        sessions += [[name, f"{s.energy_kwh:.2f} kWh", f"${s.ours['supply']:.4f} vs ${s.truth['supply']:.4f}",
                      f"{s.error_pct('supply'):+.3f} %", f"{s.error_pct('delivery'):+.3f} %",
                      f"{s.error_pct('full'):+.3f} %", f"{s.old_rule_error_pct:+.1f} %"] for s in outcome.sessions]
        months += [[name, month, f"${ours['charging']:.4f} vs ${truth['charging']:.4f}",
                    f"{100 * (ours['charging'] - truth['charging']) / truth['charging']:+.3f} %",
                    f"${ours['total']:.2f} vs ${truth['total']:.2f}",
                    f"{100 * (ours['total'] - truth['total']) / truth['total']:+.4f} %"]
                   for month, ours, truth in outcome.months]
    return "\n".join([
        table(["case", "energy", "supply: ours vs bill", "supply error", "delivery error", "full cost error",
               "old per-interval rule's supply error"], sessions), "",
        table(["case", "month", "charging: ours vs bill", "error", "total with fixed and capacity", "error"], months)])


def main() -> None:
    print(markdown())


if __name__ == "__main__":
    main()
