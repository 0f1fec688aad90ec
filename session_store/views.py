"""Frozen views: what each step of the session store leaves for `/metrics` and the API to read.

Every loop (sessions, the database's aggregates, smart charging) ends its step by building one of
these; the collectors and the routes read them and nothing else, so a render or a request never
meets a half-updated state, a database query or a driver's internals.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from session_store.departure import Departure, Soc
from session_store.planner import CarPlan, Hour
from session_store.records import ActionRecord, Session, rounded
from session_store.smart_charging import Market


@dataclass(frozen=True)
class OpenSessionView:
    """A session in progress with its estimated cost so far (its hour in progress at the projected price)."""

    key: str                 # the unit's key in its series (DIN, or the charger's name with the local API)
    unit: str
    start: float
    vin: str | None
    vehicle: str | None
    energy_wh: float
    peak_w: float
    power_w: float | None
    estimated_cost: float
    estimated_supply_cost: float
    estimated_delivery_cost: float

    def public(self) -> dict[str, Any]:
        return rounded({name: getattr(self, name) for name in self.__dataclass_fields__ if name != "key"})


@dataclass(frozen=True)
class SessionsView:
    """One evaluation against Prometheus: the units seen, the sessions open and their latest power."""

    evaluated_at: float
    watermark: float | None
    seen: frozenset[str] = frozenset()           # units in the session source's power series
    units: frozenset[str] = frozenset()          # those and the source's configured units
    in_progress: tuple[OpenSessionView, ...] = ()
    power: tuple[tuple[str, float, float], ...] = ()   # (unit, t, watts) of each unit's latest sample


@dataclass(frozen=True)
class PairTotals:
    """Sums over the stored sessions of one unit and vehicle ("" for none); costs count once final."""

    unit: str
    vehicle: str
    sessions: int
    energy_wh: float
    supply_charged: float
    supply_credit: float
    delivery: float
    reference: float
    provisional: int


@dataclass(frozen=True)
class AwayTotals:
    """A car's charging away from home (Tessie's charge history): charges, energy added, Tessie's cost."""

    charges: int = 0
    energy_wh: float = 0.0
    cost: float = 0.0


@dataclass(frozen=True)
class LedgerView:
    """The database's aggregates as of one committed write: the counters' values and the last sessions."""

    version: int
    totals: tuple[PairTotals, ...] = ()
    discarded: Mapping[tuple[str, str], int] = field(default_factory=dict)   # (unit, reason) -> count
    reconciliations: Mapping[str, int] = field(default_factory=dict)         # outcome -> sessions
    last: tuple[Session, ...] = ()                                          # each unit's newest session
    first_recorded: float | None = None
    actions: Mapping[tuple[str, str], int] = field(default_factory=dict)     # (action, outcome) -> count
    away: Mapping[str, AwayTotals] = field(default_factory=dict)             # vehicle -> its away charging

    @property
    def units(self) -> frozenset[str]:
        return frozenset({t.unit for t in self.totals} | {unit for unit, _ in self.discarded})


@dataclass(frozen=True)
class VehicleStatus:
    """One vehicle as smart charging last saw it, with its status code (smart_metrics.STATUS)."""

    vin: str
    vehicle: str | None
    unit: str | None
    plugged: bool
    charging: bool
    paused_by_us: bool
    last_decision: str | None
    last_command_at: float | None
    override_until: float | None
    status: int


@dataclass(frozen=True)
class PlanStatus:
    """One car with a departure set, as the last evaluation saw it."""

    vin: str
    vehicle: str | None
    departure: Departure
    next_departure: float | None
    plugged: bool
    soc: Soc | None
    efficiency: float
    battery_kwh: float
    plan: CarPlan | None
    reason: str               # the verdict (plan_charge, plan_wait, plan_must_charge, fail_safe_...) or why no plan
    charge_now: bool
    first_hour: float | None = None   # start of the clock hour in progress (hours_ahead 0)

    @property
    def at_risk(self) -> bool:
        """The target cannot be reached by the departure (with the margin kept)."""
        return self.plan is not None and not self.plan.feasible


@dataclass(frozen=True)
class PlanningView:
    evaluated_at: float | None = None
    hours: tuple[Hour, ...] = ()          # the priced hours ahead, for the page and the what-if
    day_ahead_hours: int | None = None    # hours of the forecast from the utility's day-ahead prices
    untrusted: str | None = None          # why plans cannot be trusted now (they charge now), or None
    cars: tuple[PlanStatus, ...] = ()
    stop_threshold: float | None = None   # the threshold rule's, for the what-if


@dataclass(frozen=True)
class SmartChargingView:
    """One smart-charging evaluation (or a change of override): the market, every vehicle, the fail-safes."""

    dry_run: bool
    signal: str
    evaluated_at: float | None = None
    market: Market | None = None
    vehicles: tuple[VehicleStatus, ...] = ()
    fail_safe: Mapping[str, int] = field(default_factory=dict)    # reason -> decisions taken for it
    planning: PlanningView | None = None                          # when the departure planner runs


class SmartChargingControl(Protocol):
    """What the API may ask of smart charging: its latest view, the time, and an override."""

    def view(self) -> SmartChargingView: ...

    def now(self) -> float: ...

    def set_override(self, vin: str, until: float) -> ActionRecord: ...
