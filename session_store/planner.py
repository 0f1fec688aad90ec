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
USABLE_POWER = 0.95          # plans count on this share of a charger's or circuit's power: commands take a
                             # minute to land, cars ramp up and taper, cars sharing a circuit switch over


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
    usable_power: float = USABLE_POWER    # 1.0 only for bounds (perfect foresight)


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
    now_wh: float = 0.0          # planned in the stretch starting now (up to the next hour or cut-off)

    def charge_now(self, now: float) -> bool:
        """Whether the plan charges now (`now` is the request's: plans are made for the moment)."""
        return self.now_wh >= MIN_ENERGY_WH


@dataclass(frozen=True)
class _Slot:
    """A stretch of one clock hour between cut points (now, hours' ends, the cars' cut-offs and
    arrivals): within it every car may charge all along or not at all."""

    start: float
    end: float
    hour: int


def windows(request: Request, car: Car) -> np.ndarray:
    """Seconds of each hour the car may charge in: from now to its departure less the margin."""
    cutoff = car.departure - request.margin_s
    begin = max(request.now, car.plugged_from)
    return np.array([max(0.0, min(hour.end, cutoff) - max(hour.start, begin)) for hour in request.hours])


def unit_costs(request: Request) -> np.ndarray:
    """Cents per kWh of each hour, with the peak-risk penalty."""
    return np.array([hour.cents + (PEAK_PENALTY if hour.peak_risk else 0.0) for hour in request.hours])


def _slots(request: Request, cutoffs: Sequence[float], arrivals: Sequence[float]) -> list[_Slot]:
    """The hours cut where a car's window starts or ends, so a circuit's limit holds before each
    departure, not only over the whole hour."""
    cuts = set(cutoffs) | set(arrivals)
    slots = []
    for index, hour in enumerate(request.hours):
        begin = max(hour.start, request.now)
        points = sorted({begin, hour.end} | {c for c in cuts if begin < c < hour.end})
        slots += [_Slot(a, b, index) for a, b in zip(points, points[1:]) if b > a]
    return slots


def _fill_cheapest(need: float, capacity: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Exact for one car: the cheapest capacity first (costs carry the tie-break toward earlier slots)."""
    energy = np.zeros_like(capacity)
    for index in np.argsort(costs, kind="stable"):
        if need <= 0:
            break
        energy[index] = min(capacity[index], need)
        need -= energy[index]
    return energy


def _shared(need: np.ndarray, capacity: np.ndarray, circuit: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Several cars on one circuit: a linear programme over x[car, slot] (kWh) and a shortfall per car;
    `costs` is per car and slot."""
    from scipy.optimize import linprog   # only households with shared circuits pay its import

    cars, slots = capacity.shape
    # Equal prices tie between cars too: the car leaving first takes the earlier slots, so solves a few
    # minutes apart agree and cars are not started and stopped in turn.
    last = np.array([np.flatnonzero(row)[-1] if row.any() else 0 for row in capacity])
    weight = cars - np.argsort(np.argsort(last, kind="stable"), kind="stable")
    lateness = TIE_BREAK * np.arange(slots)
    # When the circuit cannot serve every car by its departure, whole targets beat kWh spread thin: the car
    # leaving first is filled first (its shortfall weighs most; equal departures: the one needing least),
    # an order that stays the same all night as the cars charge.
    order = np.lexsort((need, last))
    priority = cars - np.argsort(order, kind="stable")
    c = np.concatenate([*(row + lateness * w for row, w in zip(costs, weight)), SHORTFALL_PENALTY * priority])
    equality = np.zeros((cars, cars * slots + cars))
    shared = np.zeros((slots, cars * slots + cars))
    for car in range(cars):
        equality[car, car * slots:(car + 1) * slots] = 1.0
        equality[car, cars * slots + car] = 1.0
        shared[np.arange(slots), car * slots + np.arange(slots)] = 1.0
    bounds = [(0.0, float(cap) / 1000) for cap in capacity.ravel()] + [(0.0, None)] * cars
    result = linprog(c, A_ub=shared, b_ub=circuit / 1000, A_eq=equality, b_eq=need / 1000, bounds=bounds,
                     method="highs")
    if result.status != 0:   # cannot happen (shortfall keeps it feasible); never plan on a failed solve
        raise ArithmeticError(f"planner: linear programme failed: {result.message}")
    return np.clip(result.x[:cars * slots].reshape(cars, slots) * 1000, 0.0, capacity)


def _solve(request: Request, members: Sequence[Car], power: Sequence[float], margins: Sequence[float],
           limit: float | None, base: np.ndarray) -> tuple[list[_Slot], list[np.ndarray], list[np.ndarray]]:
    """(slots, energy per car and slot, capacity per car and slot) for one circuit's cars."""
    cutoffs = [car.departure - margin for car, margin in zip(members, margins)]
    begins = [max(request.now, car.plugged_from) for car in members]
    slots = _slots(request, cutoffs, begins)
    span = np.array([slot.end - slot.start for slot in slots])
    caps = [np.array([max(0.0, min(slot.end, cutoff) - max(slot.start, begin)) for slot in slots])
            * watts * request.usable_power / 3600 for cutoff, begin, watts in zip(cutoffs, begins, power)]
    costs = [_sticky(np.array([base[slot.hour] + TIE_BREAK * i for i, slot in enumerate(slots)]), slots, car)
             for car in members]
    if len(members) == 1 or limit is None:
        energies = [_fill_cheapest(car.need_wh, cap, cost) for car, cap, cost in zip(members, caps, costs)]
    else:
        energies = list(_shared(np.array([car.need_wh for car in members]), np.array(caps),
                                span * limit * request.usable_power / 3600, np.array(costs)))
    return slots, energies, caps


def _short(car: Car, energy: np.ndarray) -> bool:
    return car.need_wh - float(energy.sum()) >= max(MIN_ENERGY_WH, car.need_wh * 1e-6)


def _car_plan(request: Request, car: Car, slots: Sequence[_Slot], energy: np.ndarray, cap: np.ndarray,
              watts: float, feasible: bool) -> CarPlan:
    by_hour: dict[int, list[tuple[_Slot, float, float]]] = {}
    for slot, wh, capacity in zip(slots, energy, cap):
        by_hour.setdefault(slot.hour, []).append((slot, float(wh), float(capacity)))
    hours = []
    finish = None
    for index, parts in sorted(by_hour.items()):
        wh = sum(p[1] for p in parts)
        if wh < MIN_ENERGY_WH:
            continue
        hour = request.hours[index]
        usable = [slot for slot, _, capacity in parts if capacity > 0]
        start = min(slot.start for slot in usable)
        charge_s = wh / watts * 3600
        hours.append(PlannedHour(hour.start, max(slot.end for slot in usable), wh, wh / 1000 * hour.cents / 100,
                                 hour.cents, charge_s, hour.source))
        finish = start + charge_s
    total = float(sum(h.energy_wh for h in hours))
    need = car.need_wh
    gained = total * car.efficiency / (car.battery_kwh * 1000) * 100
    reachable = min(car.target_percent, car.soc_percent + gained) if need > 0 else car.soc_percent
    first = float(energy[0]) if len(slots) and slots[0].start <= request.now else 0.0
    return CarPlan(car.vin, tuple(hours), need, total, sum(h.cost for h in hours), finish, round(reachable, 2),
                   feasible, first)


def plan(request: Request) -> tuple[CarPlan, ...]:
    """A plan per car, in the request's order. A car that cannot reach its target with the margin kept
    is planned again with the margin's time too ("must charge": every minute to its departure counts),
    and reported as not feasible."""
    base = unit_costs(request)
    plans: dict[str, CarPlan] = {}
    for circuit, members in _by_circuit(request.cars):
        limit = request.circuit_power_w.get(circuit)
        power = [min(car.max_power_w, limit or math.inf) for car in members]
        margins = [request.margin_s] * len(members)
        slots, energies, caps = _solve(request, members, power, margins, limit, base)
        feasible = [not _short(car, energy) for car, energy in zip(members, energies)]
        if not all(feasible):
            margins = [m if ok else 0.0 for m, ok in zip(margins, feasible)]
            slots, energies, caps = _solve(request, members, power, margins, limit, base)
        for car, energy, cap, watts, ok in zip(members, energies, caps, power, feasible):
            plans[car.vin] = _car_plan(request, car, slots, energy, cap, watts, ok)
    return tuple(plans[car.vin] for car in request.cars)


def _sticky(costs: np.ndarray, slots: Sequence[_Slot], car: Car) -> np.ndarray:
    """The hour in progress a little cheaper for a car already charging, dearer for one waiting."""
    if car.charging is None:
        return costs
    adjusted = costs.copy()
    adjusted[[i for i, slot in enumerate(slots) if slot.hour == 0]] += -STICKINESS if car.charging else STICKINESS
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
    slots = _slots(request, [car.departure - request.margin_s], [max(request.now, car.plugged_from)])
    cutoff, begin = car.departure - request.margin_s, max(request.now, car.plugged_from)
    cap = np.array([max(0.0, min(slot.end, cutoff) - max(slot.start, begin)) for slot in slots]) * car.max_power_w / 3600
    energy = np.zeros_like(cap)
    need = car.need_wh
    for index, slot in enumerate(slots):
        if need <= 0:
            break
        if allow(request.hours[slot.hour]):
            energy[index] = min(cap[index], need)
            need -= energy[index]
    return _car_plan(request, car, slots, energy, cap, car.max_power_w, not _short(car, energy))
