"""What a session cost: supply (energy in each 5-minute interval x the price in force then),
delivery (energy x the delivery rate) and their sum, in dollars.

Prices are cents per kWh stamped with the end of their interval (see exporters/clients/comed.py).
An interval whose price is not known yet is priced at the nearest earlier known price and the
cost is marked provisional; it is recomputed once the price arrives. Negative prices are valid:
the supply cost of an interval can be a credit, kept apart so counters stay monotonic.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class Cost:
    supply: float          # dollars, net (credits included)
    supply_credit: float   # dollars credited by negative prices, as a positive number
    delivery: float
    final: bool            # every interval had its own price

    @property
    def full(self) -> float:
        return self.supply + self.delivery


def price_at(prices: Mapping[float, float], ends: list[float], end: float) -> tuple[float | None, bool]:
    """The price of the interval ending at `end`, else the nearest earlier one (flagged estimate)."""
    if end in prices:
        return prices[end], True
    index = bisect.bisect_left(ends, end) - 1
    return (prices[ends[index]], False) if index >= 0 else (None, False)


def session_cost(intervals: Mapping[float, float], prices: Mapping[float, float], delivery_per_kwh: float) -> Cost:
    """`intervals` maps interval end -> Wh; `prices` maps interval end -> cents per kWh."""
    ends = sorted(prices)
    supply = credit = 0.0
    final = True
    for end, wh in intervals.items():
        cents, exact = price_at(prices, ends, end)
        final = final and exact
        if cents is None:
            continue
        dollars = wh / 1000.0 * cents / 100.0
        supply += dollars
        if dollars < 0:
            credit -= dollars
    energy_kwh = sum(intervals.values()) / 1000.0
    return Cost(supply, credit, energy_kwh * delivery_per_kwh, final)
