"""The session store's domain records: a completed session and a smart-charging action.

Plain frozen values with no I/O, so the pure parts (reconciliation, views, the API's shapes) use them
without importing the database; `storage` reads and writes them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from billing.tariff import Line


@dataclass(frozen=True)
class Session:
    unit: str
    din: str | None
    vin: str | None
    vehicle: str | None
    start: float
    end: float
    duration_s: float
    energy_wh: float
    peak_w: float
    average_w: float
    meter_energy_wh: float | None
    supply_cost: float
    supply_credit: float
    delivery_cost: float
    full_cost: float
    supply_price_cents: float | None           # supply cost over energy: the average supply price paid
    cost_final: bool
    intervals: dict[float, float]
    gap_s: float
    source: str
    reconciliation: str
    metered_energy_wh: float | None = None
    target_id: str | None = None
    reference_cost: float | None = None        # the same energy on the fixed-price rate (same delivery)
    bill_lines: tuple[Line, ...] = ()           # one per billed hour (ComEd) or price interval
    energy_site_id: str | None = None          # the Fleet energy site of the unit, once known
    id: int | None = None

    @property
    def energy_of_record_wh(self) -> float:
        """The meter's energy from Fleet charge history once matched, else the live integral."""
        return self.metered_energy_wh if self.metered_energy_wh is not None else self.energy_wh

    @property
    def savings(self) -> float | None:
        return None if self.reference_cost is None else self.reference_cost - self.full_cost

    @property
    def effective_price_cents(self) -> float | None:
        """All-in price paid: supply and delivery over the energy, cents per kWh."""
        return self.full_cost / self.energy_wh * 1e5 if self.energy_wh > 0 else None

    def public(self, lines: bool = False) -> dict[str, Any]:
        """The JSON shape served by the API (intervals omitted: internal costing detail; the bill's
        lines only when asked, for one session)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__ if name not in ("intervals",
                                                                                                "bill_lines")}
        data.update(energy_of_record_wh=self.energy_of_record_wh, savings=self.savings,
                    effective_price_cents=self.effective_price_cents)
        if lines:
            data["bill_lines"] = [rounded(asdict(line)) for line in self.bill_lines]
        return rounded(data)


# Decimals served per unit, no finer than what the sources give: Prometheus times to the millisecond,
# power and energy to a tenth of a watt (hour), money to a millionth of a dollar, prices to 1e-4 cent.
DECIMALS = (("_wh", 1), ("_w", 1), ("_s", 3), ("_cost", 6), ("_credit", 6), ("_cents", 4), ("_kwh", 4))
NAMED = {"start": 3, "end": 3, "savings": 6, "supply": 6, "delivery": 6}


def rounded(data: dict[str, Any]) -> dict[str, Any]:
    """The API's numbers without float noise (11500.710000000001 W, 1.6000000000000008 kWh)."""
    out = {}
    for key, value in data.items():
        digits = NAMED.get(key, next((d for suffix, d in DECIMALS if key.endswith(suffix)), None))
        out[key] = round(value, digits) if digits is not None and isinstance(value, float) else value
    return out



@dataclass(frozen=True)
class ActionRecord:
    """One line of the smart-charging action log: what was decided, why, and what came of it."""

    t: float
    vin: str
    vehicle: str | None
    action: str | None          # stop, start, stop_simulated, start_simulated, None (a logged non-action)
    reason: str
    outcome: str                # sent, failed, simulated, skipped
    price: float | None
    stop_threshold: float | None
    resume_threshold: float | None
    detail: str | None = None


@dataclass(frozen=True)
class PlanRevision:
    """A departure plan as computed at `t`; kept when it changed materially (the first plan of a
    departure, other hours, feasibility, the target or departure, or a cost off by 5 %)."""

    t: float
    vin: str
    departure: float
    target_percent: float
    soc_percent: float
    soc_source: str             # reported or estimated
    need_wh: float
    energy_wh: float
    cost: float
    finish: float | None
    feasible: bool
    reachable_percent: float
    reason: str                 # why it was kept: new, hours, feasibility, cost, setting, forecast
    hours: tuple[tuple[float, float, float], ...]   # (hour start, wall Wh, cents per kWh)


@dataclass(frozen=True)
class PlanOutcome:
    """How a departure went: the target met or missed, the cost paid against the cost first planned."""

    vin: str
    departure: float
    target_percent: float
    planned_cost: float | None      # the first revision's expected cost
    revisions: int
    soc_percent: float | None       # the state of charge at departure as last known (reported or estimated)
    met: bool
    energy_wh: float                # wall energy of the car's sessions between the first plan and departure
    cost: float                     # their cost on the bill (supply + delivery)
    recorded_at: float


@dataclass(frozen=True)
class VehicleChargeRecord:
    """A charge as the car recorded it (Tessie's charge history), matched to the Wall Connector session it
    was (home) or to none (away). `cost` is Tessie's figure: the bill's money for a home charge is the
    matched session's cost; away, Tessie's figure is what Tesla or the charger's operator charged."""

    vin: str
    vehicle: str
    charge_id: str
    start: float
    end: float
    location: str
    away: bool
    supercharger: bool
    energy_added_wh: float | None
    energy_used_wh: float | None
    starting_battery: float | None
    ending_battery: float | None
    cost: float | None
    session_id: int | None = None
    wall_energy_wh: float | None = None
    efficiency: float | None = None
    id: int | None = None

    def public(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["cost"] = None if self.cost is None else round(self.cost, 2)
        data["efficiency"] = None if self.efficiency is None else round(self.efficiency, 4)
        return rounded(data)
