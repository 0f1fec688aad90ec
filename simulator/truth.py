"""Ground truth: what really happened, for measuring the accuracy of everything downstream.

A session runs from plug-in to unplug on one charger. Its energy is the exact sum of the
per-step wall power x 1 s (Wh), its charging intervals are the maximal runs of steps with
power > 0, and its supply cost is the sum over steps of step energy (kWh) x the price of the
5-minute interval containing the step, using the simulator-wide convention that a ComEd price
stamped T covers (T - 300 s, T] (see ``simulator.prices``). Costs are evaluated when read, so a
price override added later for an interval is reflected exactly as the feed publishes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.prices import PriceSeries, interval_of_step


@dataclass
class SessionTruth:
    """One plug-in session, accumulated step by step by the model."""

    charger: str
    din: str
    vin: str
    target_id: str
    plug_in: int
    unplug: int | None = None
    first_power: int | None = None  # start of the first step with power > 0
    last_power: int | None = None  # end of the last step with power > 0
    energy_ws: float = 0.0  # joules: sums of whole-watt steps stay exact
    by_interval: dict[int, float] = field(default_factory=dict)  # interval end -> W*s
    intervals: list[list[float]] = field(default_factory=list)  # [start, end, W*s]
    soc_start: float | None = None  # the car's state of charge at plug-in and at unplug (percent)
    soc_end: float | None = None
    battery_ws: float = 0.0  # what the battery took (wall energy x the car's efficiency), joules

    @property
    def energy_wh(self) -> float:
        return self.energy_ws / 3600.0

    def add_step(self, t: int, power_w: float) -> None:
        """Record the 1 s step [t, t+1) at ``power_w``."""
        if power_w <= 0:
            return
        self.energy_ws += power_w
        end = interval_of_step(t)
        self.by_interval[end] = self.by_interval.get(end, 0.0) + power_w
        if self.intervals and self.last_power == t:
            self.intervals[-1][1] = t + 1
            self.intervals[-1][2] += power_w
        else:
            self.intervals.append([t, t + 1, power_w])
        if self.first_power is None:
            self.first_power = t
        self.last_power = t + 1

    def supply_cost_cents(self, prices: PriceSeries) -> float:
        return sum(ws / 3.6e6 * prices.price(end) for end, ws in sorted(self.by_interval.items()))

    def to_json(self, prices: PriceSeries, meter_error: float, delay_s: float) -> dict[str, Any]:
        return {
            "charger": self.charger, "din": self.din, "vin": self.vin, "target_id": self.target_id,
            "plug_in": self.plug_in, "unplug": self.unplug, "open": self.unplug is None,
            "first_power": self.first_power, "last_power": self.last_power,
            "energy_wh": self.energy_wh, "supply_cost_cents": self.supply_cost_cents(prices),
            "intervals": [{"start": s, "end": e, "energy_wh": ws / 3600.0} for s, e, ws in self.intervals],
            "metered_energy_wh": metered_wh(self.energy_wh, meter_error),
            "telemetry_visible_at": None if self.unplug is None else self.unplug + delay_s,
        }


def metered_wh(energy_wh: float, meter_error: float) -> int:
    """What Tesla's charge history reports: true energy scaled by the meter error, whole Wh."""
    return int(round(energy_wh * (1.0 + meter_error)))


@dataclass(frozen=True)
class ChargeRecord:
    """One Fleet ``telemetry_history kind=charge`` entry and when it becomes visible."""

    din: str
    start: int
    duration: int
    energy_wh: int
    target_id: str
    visible_at: float

    def to_json(self) -> dict[str, Any]:
        return {"charge_start_time": {"seconds": self.start}, "charge_duration": {"seconds": self.duration},
                "energy_added_wh": self.energy_wh, "target_id": {"text": self.target_id}, "din": self.din}


def charge_record(session: SessionTruth, meter_error: float, delay_s: float) -> ChargeRecord:
    """Charge history for a finished session: starts at the first power, lasts until the last
    power (0 s and 0 Wh for a session that never charged, as seen in real data)."""
    assert session.unplug is not None
    start = session.first_power if session.first_power is not None else session.plug_in
    end = session.last_power if session.last_power is not None else start
    return ChargeRecord(session.din, start, end - start, metered_wh(session.energy_wh, meter_error),
                        session.target_id, session.unplug + delay_s)


@dataclass(frozen=True)
class VehicleCharge:
    """One entry of Tessie's ``/{vin}/charges``: the car's own record of a charge, home or away."""

    charge_id: int
    vin: str
    start: int
    end: int
    location: str
    latitude: float
    longitude: float
    supercharger: bool
    energy_added_kwh: float   # into the battery
    energy_used_kwh: float    # drawn from the charger
    starting_battery: float
    ending_battery: float
    cost: float               # Tessie's figure: its configured home rate, or the Supercharger's price
    odometer_miles: float
    miles_per_kwh: float
    visible_at: float
    session_index: int | None = None   # the home session in ``TruthLog.sessions`` it comes from

    def to_json(self) -> dict[str, Any]:
        """The wire entry (kWh, percent, Unix seconds, miles)."""
        return {"id": self.charge_id, "started_at": self.start, "ended_at": self.end, "location": self.location,
                "latitude": self.latitude, "longitude": self.longitude, "is_supercharger": self.supercharger,
                "odometer": self.odometer_miles, "energy_added": round(self.energy_added_kwh, 2),
                "energy_used": round(self.energy_used_kwh, 2),
                "miles_added": round(self.energy_added_kwh * self.miles_per_kwh, 1),
                "miles_added_ideal": round(self.energy_added_kwh * self.miles_per_kwh * 1.05, 1),
                "starting_battery": round(self.starting_battery), "ending_battery": round(self.ending_battery),
                "cost": round(self.cost, 2)}

    def truth(self) -> dict[str, Any]:
        """For ``/sim/truth``: exact values, whether it is home charging, and which session it is."""
        return {"id": self.charge_id, "vin": self.vin, "start": self.start, "end": self.end,
                "location": self.location, "supercharger": self.supercharger,
                "away": self.session_index is None, "energy_added_kwh": self.energy_added_kwh,
                "energy_used_kwh": self.energy_used_kwh, "starting_battery": self.starting_battery,
                "ending_battery": self.ending_battery, "cost": round(self.cost, 2), "visible_at": self.visible_at,
                "session_index": self.session_index}


@dataclass
class TruthLog:
    """Everything the tests may compare against."""

    sessions: list[SessionTruth] = field(default_factory=list)
    vehicle_charges: list[VehicleCharge] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
