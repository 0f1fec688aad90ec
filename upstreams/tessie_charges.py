"""Tessie's charge history (`GET /{vin}/charges`): the car's own record of every charge, at home and away.

Vehicle-centric where Fleet's telemetry_history is unit-centric: a Supercharger or a friend's charger
appears here only. Shape and units (shared/upstream/tessie-fleet-api.md, section 6): `{"results":
[...]}`, times in Unix seconds, energy in kWh (converted to Wh here, exactly to the source's decimals),
battery in percent, `cost` in the account's currency as Tessie computes it (its own rate at home, Tesla's
price at a Supercharger). Every field but `id` and the times may be missing and then becomes absent.

Coordinates are read only to tell home from away (servicekit.location) and are never stored or exported.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from servicekit.errors import BadPayload
from upstreams.tessie import Tessie, scaled

WH_PER_KWH = 1000.0


@dataclass(frozen=True)
class VehicleCharge:
    """One charge as the car saw it. `latitude`/`longitude` stay in memory (home or away), never on disk."""

    charge_id: str
    vin: str
    start: float
    end: float
    location: str | None
    supercharger: bool
    energy_added_wh: float | None
    energy_used_wh: float | None
    starting_battery: float | None
    ending_battery: float | None
    cost: float | None
    latitude: float | None = None
    longitude: float | None = None


def _number(entry: Mapping[str, Any], key: str, scale: float = 1.0) -> float | None:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return scaled(value, scale)


def parse_charges(body: Any, vin: str) -> list[VehicleCharge]:
    """`{"results": [...]}` -> charges; entries without an id or with impossible times are skipped."""
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise BadPayload("charges: expected {'results': [...]}")
    charges = []
    for entry in results:
        if not isinstance(entry, dict) or isinstance(entry.get("id"), bool) or entry.get("id") in (None, ""):
            continue
        start, end = _number(entry, "started_at"), _number(entry, "ended_at")
        if start is None or end is None or end < start:
            continue
        location = entry.get("location")
        charges.append(VehicleCharge(
            charge_id=str(entry["id"]), vin=vin, start=start, end=end,
            location=location.strip() if isinstance(location, str) and location.strip() else None,
            supercharger=entry.get("is_supercharger") is True,
            energy_added_wh=_number(entry, "energy_added", WH_PER_KWH),
            energy_used_wh=_number(entry, "energy_used", WH_PER_KWH),
            starting_battery=_number(entry, "starting_battery"), ending_battery=_number(entry, "ending_battery"),
            cost=_number(entry, "cost"), latitude=_number(entry, "latitude"), longitude=_number(entry, "longitude")))
    return charges


async def fetch_charges(tessie: Tessie, vin: str, start: float, end: float) -> list[VehicleCharge]:
    """The car's charges in [start, end] (Unix seconds), counted under the endpoint `charges`."""
    params = {"from": str(int(start)), "to": str(int(math.ceil(end))), "timezone": "UTC",
              "distance_format": "mi", "format": "json"}
    return await tessie.upstream.fetch_json("charges", f"{tessie.base_url}/{vin}/charges", params=params,
                                            parse=lambda body: parse_charges(body, vin))
