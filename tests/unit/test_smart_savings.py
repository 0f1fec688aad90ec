"""Smart charging on the bill: over ten simulated days of evening plug-ins with price spikes, priced
by the simulator's own bill, deciding on the billed hour saves more than the original 5-minute rule,
both save against charging at once, and every car still gets the same energy. (The month-long
comparison with perfect foresight is a benchmark: `python -m benchmarks --only savings`.)"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import pytest

from testkit.smart_month import month, simulate


def test_the_billed_price_rule_beats_the_five_minute_rule_on_the_bill() -> None:
    plan = month(seed=3, days=10)
    strategies = ("none", "five_minute", "billed")
    with ProcessPoolExecutor(len(strategies)) as pool:   # three independent simulations, seconds each: every core
        none, five, billed = pool.map(simulate, [plan] * len(strategies), strategies)
    assert none.energy_kwh > 500
    assert five.energy_kwh == pytest.approx(none.energy_kwh) and billed.energy_kwh == pytest.approx(none.energy_kwh), \
        "no strategy leaves a car short"
    assert billed.cost < five.cost < none.cost
    assert none.cost - billed.cost > 1.5 * (none.cost - five.cost)
