"""Pure charging physics: power curve, battery gain, power sharing, thermal response.

All functions take plain numbers and configuration records and return numbers; the model
calls them once per 1-second step. Powers are at the wall (W); the battery receives
``power * efficiency``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from simulator.config import ChargerConfig, VehicleConfig

STEP_S = 1


def full_power_w(vehicle: VehicleConfig, charger: ChargerConfig, current_a: float | None = None) -> float:
    """Steady charging power: the lower of the charger's current limit and the onboard charger."""
    amps = charger.max_current_a if current_a is None else min(current_a, charger.max_current_a)
    return min(amps * charger.volts_for_power, vehicle.max_power_kw * 1000.0)


def desired_power_w(vehicle: VehicleConfig, charger: ChargerConfig, soc: float, limit: float,
                    seconds_since_close: int, current_a: float | None = None) -> float:
    """Power the car asks for in this step: linear ramp after contactor close, linear taper
    over the last ``taper_pct`` of SOC toward ``taper_floor_kw``, never overshooting the limit."""
    full = full_power_w(vehicle, charger, current_a)
    if soc >= limit or full <= 0:
        return 0.0
    power = full
    if vehicle.ramp_s > 0:
        power *= min(1.0, (seconds_since_close + 1) / vehicle.ramp_s)
    remaining = limit - soc
    if vehicle.taper_pct > 0 and remaining < vehicle.taper_pct:
        floor = min(vehicle.taper_floor_kw * 1000.0, full)
        power = min(power, floor + (full - floor) * remaining / vehicle.taper_pct)
    return min(power, power_to_reach_w(vehicle, soc, limit))


def power_to_reach_w(vehicle: VehicleConfig, soc: float, limit: float) -> float:
    """Wall power that lands exactly on ``limit`` after one step."""
    battery_wh = max(0.0, limit - soc) / 100.0 * vehicle.battery_kwh * 1000.0
    return battery_wh / vehicle.efficiency * 3600.0 / STEP_S


def soc_gain(vehicle: VehicleConfig, power_w: float, seconds: float = STEP_S) -> float:
    """Percentage points of SOC added by ``power_w`` at the wall for ``seconds``."""
    return power_w * seconds / 3600.0 * vehicle.efficiency / (vehicle.battery_kwh * 1000.0) * 100.0


def share_current(demands_a: Mapping[str, float], limit_a: float | None) -> dict[str, float]:
    """Split a power-sharing group's current limit: each unit gets its demand or an equal
    share of what is left, whichever is smaller (water filling)."""
    if limit_a is None or sum(demands_a.values()) <= limit_a:
        return dict(demands_a)
    granted: dict[str, float] = {}
    left, pending = limit_a, sorted(demands_a.items(), key=lambda kv: kv[1])
    while pending:
        share = left / len(pending)
        name, demand = pending.pop(0)
        granted[name] = min(demand, share)
        left -= granted[name]
    return granted


THERMAL_TAU_S = {"handle": 900.0, "pcba": 600.0, "mcu": 600.0}


def temperature_targets(ambient_c: float, power_w: float) -> dict[str, float]:
    """Steady-state temperatures for a given power (handle warms most under load)."""
    kw = power_w / 1000.0
    return {"handle": ambient_c + 1.8 * kw, "pcba": ambient_c + 4.0 + 0.9 * kw, "mcu": ambient_c + 8.0 + 0.6 * kw}


def relax(value: float, target: float, seconds: float, tau_s: float) -> float:
    """First-order approach of ``value`` toward ``target`` over ``seconds``."""
    return target + (value - target) * math.exp(-seconds / tau_s)
