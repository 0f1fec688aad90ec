"""The departure planner: which hours (or parts of hours) to charge each car in so it reaches its
target by its departure at the lowest billed cost. Pure and deterministic: no I/O, no clock.

What is optimised is the bill, not the 5-minute price. ComEd bills every kWh of a clock hour at the
mean of that hour's twelve 5-minute prices, so the unit of decision is the clock hour: energy drawn
anywhere in an hour pays that hour's price (its published prices plus an estimate of the rest for
the hour in progress, the day-ahead forecast or the fallback profile for later hours), plus the
delivery rate in force, plus a steep penalty in peak-risk windows (the hours that set next year's
capacity charge), which are used only when the deadline needs them.

Priorities: the deadline first, then cost. Each car's need is wall energy:
(target - state of charge) x battery / efficiency. A car may charge in an hour up to its power
times the part of the hour before its departure (less a safety margin); cars on one power-sharing
circuit (a leader and its followers) together take at most the circuit's power. Energy the hours
cannot hold is reported as a shortfall with the state of charge that can be reached.

- One car on its circuit (the usual home): filling the cheapest hours first is exact (a fractional
  knapsack), microseconds.
- Several cars on one circuit: a linear programme (scipy's HiGHS): minimise the cost plus a
  shortfall penalty far above any price, so delivering by the deadline always wins over cost.

Ties between equally priced hours go to the earlier hour, so a plan finishes as early as its cost
allows and a car that falls behind has slack.

    plan(request) -> tuple[CarPlan, ...]
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

# Costs are compared in cents per kWh (what the solver sees too: well scaled, ties above its tolerance).
SHORTFALL_PENALTY = 1e6      # cents per kWh not delivered: above any price and any peak penalty
PEAK_PENALTY = 100.0         # cents per kWh drawn in a peak-risk window (ComEd prices are ~3-20)
TIE_BREAK = 1e-4             # cents per kWh per hour of lateness: earlier wins between equal prices
STICKINESS = 0.3             # cents per kWh: the hour in progress looks this much better to a car already
                             # charging (worse to one waiting), so a price wobbling at the margin does not
                             # start and stop a car every few minutes
MIN_ENERGY_WH = 1.0          # below this an hour's allotment is noise


@dataclass(frozen=True)
class Hour:
    """A clock hour the plan may charge in, with what a kWh drawn in it is expected to cost."""

    start: float
    supply_cents: float          # expected billed supply price of the whole hour
    delivery_cents: float        # delivery rate in force in the hour
    source: str = "day_ahead"    # realized (the hour in progress), day_ahead or profile
    peak_risk: bool = False

    @property
    def end(self) -> float:
        return self.start + 3600.0

    @property
    def cents(self) -> float:
        return self.supply_cents + self.delivery_cents


@dataclass(frozen=True)
class Car:
    vin: str
    soc_percent: float           # the state of charge planned from (measured or estimated)
    target_percent: float
    departure: float
    battery_kwh: float
    max_power_w: float           # what its Wall Connector (and onboard charger) can give
    efficiency: float = 0.9      # battery energy / wall energy
    circuit: str = ""            # cars on one circuit share `circuit_power_w`
    plugged_from: float = 0.0    # not before this (only perfect-foresight bounds plan arrivals ahead)
    charging: bool | None = None # charging now (True), waiting (False), unknown (None): see STICKINESS

    @property
    def need_wh(self) -> float:
        return max(0.0, self.target_percent - self.soc_percent) / 100 * self.battery_kwh * 1000 / self.efficiency


@dataclass(frozen=True)
class Request:
    now: float
    cars: tuple[Car, ...]
    hours: tuple[Hour, ...]               # consecutive clock hours from the one containing `now`
    circuit_power_w: dict[str, float] = field(default_factory=dict)   # circuit -> shared limit (absent: none)
    margin_s: float = 1800.0              # finish this long before departure (taper, ramp, stale readings)


@dataclass(frozen=True)
class PlannedHour:
    start: float
    end: float                   # the usable part's end (the departure cut-off in the last hour)
    energy_wh: float             # wall energy
    cost: float                  # dollars: supply + delivery
    cents: float                 # the hour's expected price, supply + delivery
    seconds: float               # charging time at the car's full power
    source: str


@dataclass(frozen=True)
class CarPlan:
    vin: str
    hours: tuple[PlannedHour, ...]
    need_wh: float
    energy_wh: float
    cost: float
    finish: float | None         # expected end of charging (charging from the start of each planned hour)
    reachable_percent: float     # the state of charge the departure can reach
    feasible: bool               # the target is reached with the margin kept

    def charge_now(self, now: float) -> bool:
        """Whether to charge now: the plan charges in the hour containing `now`, or the target cannot be
        reached (then every minute counts, the margin's included: "must charge")."""
        if not self.feasible:
            return True
        first = self.hours[0] if self.hours else None
        return first is not None and first.start <= now < first.end and first.energy_wh >= MIN_ENERGY_WH


def windows(request: Request, car: Car) -> np.ndarray:
    """Seconds of each hour the car may charge in: from now to its departure less the margin."""
    cutoff = car.departure - request.margin_s
    begin = max(request.now, car.plugged_from)
    return np.array([max(0.0, min(hour.end, cutoff) - max(hour.start, begin)) for hour in request.hours])


def unit_costs(request: Request) -> np.ndarray:
    """Cents per kWh of each hour, with the peak-risk penalty and the tie-break toward earlier hours."""
    return np.array([hour.cents + (PEAK_PENALTY if hour.peak_risk else 0.0) + TIE_BREAK * index
                     for index, hour in enumerate(request.hours)])


def _fill_cheapest(need: float, capacity: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Exact for one car: the cheapest capacity first (stable order: earlier hours win ties)."""
    energy = np.zeros_like(capacity)
    for index in np.argsort(costs, kind="stable"):
        if need <= 0:
            break
        energy[index] = min(capacity[index], need)
        need -= energy[index]
    return energy


def _shared(need: np.ndarray, capacity: np.ndarray, circuit: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Several cars on one circuit: a linear programme over x[car, hour] (kWh) and a shortfall per car;
    `costs` is per car and hour."""
    from scipy.optimize import linprog   # only households with shared circuits pay its import

    cars, hours = capacity.shape
    # Equal prices tie between cars too: the car leaving first takes the earlier hours, so solves a few
    # minutes apart agree and cars are not started and stopped in turn.
    last_hour = np.array([np.flatnonzero(row)[-1] if row.any() else 0 for row in capacity])
    weight = cars - np.argsort(np.argsort(last_hour, kind="stable"), kind="stable")
    lateness = TIE_BREAK * np.arange(hours)
    c = np.concatenate([*(row + lateness * w for row, w in zip(costs, weight)), np.full(cars, SHORTFALL_PENALTY)])
    equality = np.zeros((cars, cars * hours + cars))
    shared = np.zeros((hours, cars * hours + cars))
    for car in range(cars):
        equality[car, car * hours:(car + 1) * hours] = 1.0
        equality[car, cars * hours + car] = 1.0
        shared[np.arange(hours), car * hours + np.arange(hours)] = 1.0
    bounds = [(0.0, float(cap) / 1000) for cap in capacity.ravel()] + [(0.0, None)] * cars
    result = linprog(c, A_ub=shared, b_ub=circuit / 1000, A_eq=equality, b_eq=need / 1000, bounds=bounds,
                     method="highs")
    if result.status != 0:   # cannot happen (shortfall keeps it feasible); never plan on a failed solve
        raise ArithmeticError(f"planner: linear programme failed: {result.message}")
    return np.clip(result.x[:cars * hours].reshape(cars, hours) * 1000, 0.0, capacity)


def _car_plan(request: Request, car: Car, energy: np.ndarray, window: np.ndarray, watts: float) -> CarPlan:
    hours = []
    finish = None
    for hour, wh, seconds in zip(request.hours, energy, window):
        if wh < MIN_ENERGY_WH:
            continue
        start = max(hour.start, request.now, car.plugged_from)
        charge_s = wh / watts * 3600
        hours.append(PlannedHour(hour.start, start + seconds, float(wh), float(wh) / 1000 * hour.cents / 100,
                                 hour.cents, charge_s, hour.source))
        finish = start + charge_s
    total = float(sum(h.energy_wh for h in hours))
    need = car.need_wh
    gained = total * car.efficiency / (car.battery_kwh * 1000) * 100
    reachable = min(car.target_percent, car.soc_percent + gained) if need > 0 else car.soc_percent
    return CarPlan(car.vin, tuple(hours), need, total, sum(h.cost for h in hours), finish,
                   round(reachable, 2), need - total < max(MIN_ENERGY_WH, need * 1e-6))


def plan(request: Request) -> tuple[CarPlan, ...]:
    """A plan per car, in the request's order."""
    base = unit_costs(request)
    plans: dict[str, CarPlan] = {}
    for circuit, members in _by_circuit(request.cars):
        limit = request.circuit_power_w.get(circuit)
        power = [min(car.max_power_w, limit or math.inf) for car in members]
        caps = np.array([windows(request, car) * watts / 3600 for car, watts in zip(members, power)])
        costs = np.array([_sticky(base, car) for car in members])
        if len(members) == 1 or limit is None:
            energies = [_fill_cheapest(car.need_wh, cap, cost) for car, cap, cost in zip(members, caps, costs)]
        else:
            span = np.array([max(0.0, hour.end - max(hour.start, request.now)) for hour in request.hours])
            energies = list(_shared(np.array([car.need_wh for car in members]), caps, span * limit / 3600, costs))
        for car, energy, watts in zip(members, energies, power):
            plans[car.vin] = _car_plan(request, car, energy, windows(request, car), watts)
    return tuple(plans[car.vin] for car in request.cars)


def _sticky(costs: np.ndarray, car: Car) -> np.ndarray:
    if car.charging is None or not len(costs):
        return costs
    adjusted = costs.copy()
    adjusted[0] += -STICKINESS if car.charging else STICKINESS
    return adjusted


def _by_circuit(cars: Sequence[Car]) -> Iterable[tuple[str, list[Car]]]:
    groups: dict[str, list[Car]] = {}
    for car in cars:
        groups.setdefault(car.circuit or f"car:{car.vin}", []).append(car)
    return groups.items()


def hours_needed(car: Car) -> float:
    """Hours at full power the car's need takes (what "charge now" would take)."""
    return car.need_wh / car.max_power_w if car.max_power_w > 0 else math.inf


def in_order(request: Request, car: Car, allow: Callable[[Hour], bool] = lambda hour: True) -> CarPlan:
    """The car charged at full power from now in every allowed hour until its need is met: "charge now"
    (every hour allowed) or the threshold rule (hours priced below the stop threshold), for what-ifs."""
    cap = windows(request, car) * car.max_power_w / 3600
    energy = np.zeros_like(cap)
    need = car.need_wh
    for index, hour in enumerate(request.hours):
        if need <= 0:
            break
        if allow(hour):
            energy[index] = min(cap[index], need)
            need -= energy[index]
    return _car_plan(request, car, energy, windows(request, car), car.max_power_w)
