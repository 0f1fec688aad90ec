"""Scenario events (``events:`` entries and ``POST /sim/events`` bodies): parsing and name resolution.

See ``simulator.scenario`` for the format; the model applies the resulting ``Event`` records.
"""

from __future__ import annotations

from typing import Any

from simulator.config import AwayCharge, ChargerConfig, Event, Scenario, VehicleConfig
from simulator.schema import Section, fail


class Refs:
    """Name resolution for events: vehicles by name or VIN, chargers by name."""

    def __init__(self, chargers: tuple[ChargerConfig, ...], vehicles: tuple[VehicleConfig, ...]) -> None:
        self.chargers = {c.name for c in chargers}
        self.vehicles = {key: v.vin for v in vehicles for key in (v.vin, v.name)}
        self.target_ids = {key: v.target_id for v in vehicles for key in (v.vin, v.name)}

    def vehicle(self, s: Section) -> str:
        ref = s.str("vehicle")
        if ref not in self.vehicles:
            raise fail(s.key_path("vehicle"), f"unknown vehicle {ref!r}",
                       f"use one of {', '.join(sorted(self.vehicles)) or '(no vehicles defined)'}")
        return self.vehicles[ref]

    def charger(self, s: Section, key: str = "charger") -> str:
        name = s.str(key)
        if name not in self.chargers:
            raise fail(s.key_path(key), f"unknown charger {name!r}", f"use one of {', '.join(sorted(self.chargers))}")
        return name


_VEHICLE_FLAGS = ("unplug", "user_start", "user_stop", "sleep", "wake")
_EVENT_KINDS = ("plug_in", *_VEHICLE_FLAGS, "drive", "away_charge", "dip", "temperature", "alert", "price")


def scenario_refs(scenario: Scenario) -> Refs:
    """Resolver used by the control API to validate live events against a loaded scenario."""
    return Refs(scenario.chargers, scenario.vehicles)


def parse_event(data: Any, path: str, refs: Refs, *, scheduled: bool) -> Event:
    """One event mapping -> Event. Scheduled (scenario) events need ``at``; live ones must not have it."""
    s = Section(data, path)
    kinds = [k for k in _EVENT_KINDS if s.has(k)]
    if len(kinds) != 1:
        raise fail(path, f"found {'no' if not kinds else ' and '.join(kinds)} event kind",
                   f"give exactly one of {', '.join(_EVENT_KINDS)}")
    kind = kinds[0]
    at = s.duration("at") if scheduled else None
    if not scheduled and s.has("at"):
        raise fail(s.key_path("at"), "not allowed for live events", "drop at; live events apply now")
    if kind == "plug_in":
        event = Event(kind, at, vehicle=refs.vehicle(s), charger=refs.charger(s, "plug_in"))
    elif kind in _VEHICLE_FLAGS:
        if s.bool(kind) is not True:
            raise fail(s.key_path(kind), "got false", f"use {kind}: true or drop the event")
        event = Event(kind, at, vehicle=refs.vehicle(s))
    elif kind == "drive":
        d = s.section("drive", required=True)
        event = Event(kind, at, vehicle=refs.vehicle(s), price=d.float("soc", min=0, max=100))
        d.finish()
    elif kind == "away_charge":
        d = s.section("away_charge", required=True)
        away = AwayCharge(soc=d.float("soc", min=0, max=100), location=d.str("location", "Supercharger"),
                          supercharger=d.bool("supercharger", True),
                          price_per_kwh=d.float("price_per_kwh", 0.45, min=0, max=10),
                          latitude=d.float("latitude", 41.5250, min=-90, max=90),
                          longitude=d.float("longitude", -88.0817, min=-180, max=180))
        event = Event(kind, at, vehicle=refs.vehicle(s), duration_s=d.duration("duration", 1800.0), away=away)
        d.finish()
    elif kind == "dip":
        d = s.section("dip", required=True)
        event = Event(kind, at, charger=refs.charger(s), duration_s=d.duration("duration"),
                      power_w=d.float("power_kw", min=0, max=50) * 1000.0)
        d.finish()
    elif kind == "temperature":
        d = s.section("temperature", required=True)
        temps = tuple((k, d.float(f"{k}_c", min=-40, max=150)) for k in ("handle", "pcba", "mcu") if d.has(f"{k}_c"))
        if not temps:
            raise fail(d.path, "no temperature given", "set handle_c, pcba_c and/or mcu_c")
        event = Event(kind, at, charger=refs.charger(s), duration_s=d.duration("duration"), temps=temps)
        d.finish()
    elif kind == "alert":
        d = s.section("alert", required=True)
        codes = d.raw("codes", [])
        if not isinstance(codes, list) or not all(isinstance(c, int) and not isinstance(c, bool) for c in codes):
            raise fail(d.key_path("codes"), f"got {codes!r}", "use a list of integers")
        event = Event(kind, at, charger=refs.charger(s), duration_s=d.duration("duration"), codes=tuple(codes),
                      fault_state=d.int("fault_state", None))
        d.finish()
    else:
        d = s.section("price", required=True)
        event = Event(kind, at, duration_s=d.duration("duration"), price=d.float("price", min=-100, max=1000))
        d.finish()
    s.finish()
    return event
