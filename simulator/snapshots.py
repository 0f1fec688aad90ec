"""Immutable views of the model handed to the wire-format builders.

The model mutates its own state while stepping; everything outside it (routes, payload
builders, the control API) only ever sees these frozen snapshots, so a payload can never
change the simulation and a cached (sleeping-car) state cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.config import ChargerConfig, VehicleConfig


@dataclass(frozen=True)
class Lifetime:
    contactor_cycles: int
    contactor_cycles_loaded: int
    alert_count: int
    thermal_foldbacks: int
    avg_startup_temp: float
    charge_starts: int
    energy_wh: int
    connector_cycles: int
    uptime_s: int
    charging_time_s: int


@dataclass(frozen=True)
class ChargerSnapshot:
    cfg: ChargerConfig
    t: float
    seed: int
    vehicle_connected: bool
    contactor_closed: bool
    power_w: float
    session_s: int
    session_energy_wh: float
    uptime_s: int
    handle_c: float
    pcba_c: float
    mcu_c: float
    lifetime: Lifetime
    vin: str | None
    alerts: tuple[int, ...]
    fault_state: int

    @property
    def evse_state(self) -> int:
        """Local API numbering: 11 charging, 4 plugged not charging, 1 not connected."""
        return 11 if self.contactor_closed else 4 if self.vehicle_connected else 1

    @property
    def fleet_state(self) -> int:
        """Fleet numbering (different!): 1 charging, 4 plugged not charging, 2 not plugged."""
        return 1 if self.contactor_closed else 4 if self.vehicle_connected else 2


@dataclass(frozen=True)
class VehicleSnapshot:
    cfg: VehicleConfig
    t: float  # when this state was observed (timestamps in payloads derive from it)
    state: str  # online | asleep
    soc: float
    charge_limit: int
    charging_state: str  # Disconnected | Stopped | Charging | Complete
    plugged: bool
    power_w: float  # at the wall
    voltage_v: float
    current_a: float  # per phase
    phases: int | None
    pilot_a: int
    charge_amps: int
    energy_added_kwh: float  # into the battery, this session
    cable: str
    ambient_c: float
