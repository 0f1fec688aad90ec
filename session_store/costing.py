"""What a session cost on the configured tariff: the bill's supply, delivery and reference, as the
session record's fields.

Prices are cents per kWh stamped with the end of their 5-minute interval, the session's energy is
{interval end: Wh}. An hour whose prices are not all published yet is estimated and the session is
provisional (`cost_final` false); it is repriced when the hour closes. A price still missing an
hour after its hour ended will not come: the hour is billed at the mean of the published ones.
"""
from __future__ import annotations

from typing import Any, Mapping

from billing.tariff import Bill, Tariff, bill

GIVE_UP_S = 3600.0


def session_bill(intervals: Mapping[float, float], prices: Mapping[float, float], tariff: Tariff,
                 now: float) -> Bill:
    return bill(intervals, prices, tariff, final_before=now - GIVE_UP_S)


def cost_fields(charged: Bill) -> dict[str, Any]:
    """The money fields of a `Session` (dollars; prices in cents per kWh)."""
    return {"supply_cost": charged.supply, "supply_credit": charged.supply_credit,
            "delivery_cost": charged.delivery, "full_cost": charged.full, "cost_final": charged.final,
            "supply_price_cents": charged.per_kwh_cents(charged.supply), "reference_cost": charged.reference,
            "bill_lines": charged.lines}
