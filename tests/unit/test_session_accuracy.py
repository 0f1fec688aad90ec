"""Energy and cost of a realistic simulated charge (ramp, dip, taper, a price spike) from samples
every 15 and 30 s stay within 0.5 % of the simulator's exact ground truth."""
from __future__ import annotations

import pytest

from testkit.session_truth import ground_truth, rectangle, trapezoid


@pytest.fixture(scope="module")
def ground():
    return ground_truth()


@pytest.mark.parametrize("interval", [15, 30])
def test_trapezoid_energy_and_cost_within_half_a_percent(ground, interval: int) -> None:
    energy, cost = trapezoid(ground, interval)
    assert abs(energy - ground.energy_wh) / ground.energy_wh <= 0.005
    assert abs(cost - ground.cost) / ground.cost <= 0.005


def test_the_ground_truth_is_a_real_charge(ground) -> None:
    assert ground.energy_wh > 20_000, "a session of tens of kWh"
    assert (ground.watts == 0).sum() > 120, "with a dip and idle time around it"
    assert max(ground.prices.values()) >= 15.0, "across the price spike"


def test_trapezoid_prices_energy_where_it_was_used(ground) -> None:
    """At 60 s the rectangle method books energy into the wrong price intervals more often."""
    _, trapezoid_cost = trapezoid(ground, 60)
    _, rectangle_cost = rectangle(ground, 60)
    assert abs(trapezoid_cost - ground.cost) <= abs(rectangle_cost - ground.cost)
