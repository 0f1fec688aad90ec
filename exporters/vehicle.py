"""vehicle-exporter: Teslas via Tessie -> Prometheus (prefix `tesla_vehicle_`).

It never wakes a sleeping car: it reads Tessie's cached state (`use_cache=true`), exports the
moment that data was current and the car's connectivity (online / asleep / offline). A car is named
as everywhere else (upstreams.tessie, "names"): vehicles.names, else its display name in
Tessie's vehicle list or cached state, else its VIN. Distances stay in metres (base units); showing miles or
kilometres is the dashboards' job. Every vehicle on the account is discovered, asleep and inactive ones
too (archived ones are left out). Location is exported only as the distance from a configured home and an
at-home flag (vehicles.home_latitude/home_longitude), never as coordinates.

    tesla_vehicle_battery_level_percent{vehicle="Blue",vin="5YJ3E1EA7KF000001"} 62.0
    tesla_vehicle_charging_state{state="Charging",vehicle="Blue",vin="5YJ3E1EA7KF000001"} 1.0
    tesla_vehicle_home_distance_meters{vehicle="Blue",vin="5YJ3E1EA7KF000001"} 100.1
"""
from __future__ import annotations

import logging
from functools import partial
from typing import Any, Iterable, Sequence

from prometheus_client.core import Metric as Family

from servicekit.location import Home, distance_from_home_m, home_from, is_at_home
from upstreams.tessie import MAX_PLAUSIBLE_RANGE_MILES, Tessie, VehicleNames, VehicleState
from servicekit.collector import FreshData, SnapshotCollector, Target
from servicekit.config import Config
from servicekit.metrics import COUNTER, ENUM, GAUGE, INFO, Metric, build_families
from servicekit.poller import Poller
from servicekit.runtime import PartsFactory, PartsContext, ExporterParts, run_exporter
from servicekit.upstream import Upstream, UpstreamMetrics

PREFIX = "tesla_vehicle"
UPSTREAM = "Tessie (vehicle state)"   # named in the help of the upstream request metrics
ENDPOINTS = ("vehicles", "state")
DISCOVERY_TARGET = "tessie"
DISCOVERY_INTERVAL = 3600.0

MIN_LEVEL_FOR_CAPACITY = 40.0   # % below which energy_remaining / battery_level is too coarse to estimate from
CHARGING_STATES = {0: "Disconnected", 1: "NoPower", 2: "Starting", 3: "Charging", 4: "Stopped", 5: "Complete"}
CONNECTIVITY = {0: "offline", 1: "asleep", 2: "online"}


def _code(table: dict[int, str], text: str | None) -> int | None:
    """Code of a string enumeration; a string we do not know becomes -1 ('unknown'), absent stays absent."""
    if text is None:
        return None
    return next((code for code, name in table.items() if name.lower() == text.lower()), -1)


def capacity_estimate_j(v: VehicleState) -> float | None:
    """Usable pack capacity estimated as energy remaining / state of charge, whole joules. Only from
    MIN_LEVEL_FOR_CAPACITY up: the level is a whole percent, so at 40 % its rounding moves the ratio by
    at most 1.25 %, at 10 % by 5 %."""
    if v.energy_remaining_j is None or v.battery_level is None or v.battery_level < MIN_LEVEL_FOR_CAPACITY:
        return None
    return float(round(v.energy_remaining_j * 100 / v.battery_level))


def _facts(**facts: str | None) -> dict[str, str] | None:
    """Labels of an info row, the absent ones left out; None (no sample) when none is known."""
    known = {name: value for name, value in facts.items() if value is not None}
    return known or None


ROWS: tuple[Metric, ...] = (
    Metric(f"{PREFIX}_battery_level_percent", GAUGE, "State of charge.", lambda v: v.battery_level),
    Metric(f"{PREFIX}_usable_battery_level_percent", GAUGE, "Usable state of charge (lower in the cold).",
           lambda v: v.usable_battery_level),
    Metric(f"{PREFIX}_battery_range_meters", GAUGE, "Rated range (Tessie reports miles; converted).",
           lambda v: v.battery_range_m),
    Metric(f"{PREFIX}_estimated_battery_range_meters", GAUGE, "Estimated range from recent driving.",
           lambda v: v.est_battery_range_m),
    Metric(f"{PREFIX}_ideal_battery_range_meters", GAUGE, "Ideal range (Tessie reports miles; x 1609.344). Absent "
           f"for Tessie's 999-mile placeholder: no range above {MAX_PLAUSIBLE_RANGE_MILES:g} miles is exported.",
           lambda v: v.ideal_battery_range_m),
    Metric(f"{PREFIX}_charge_limit_percent", GAUGE, "Charge limit set in the car.", lambda v: v.charge_limit_soc),
    Metric(f"{PREFIX}_charging_state", ENUM, "Charging state as the car reports it (cached while asleep: cross-check "
           "the Wall Connector's power).", lambda v: _code(CHARGING_STATES, v.charging_state),
           states=CHARGING_STATES),
    Metric(f"{PREFIX}_charger_power_watts", GAUGE, "Charger power as the car reports it (whole kW).",
           lambda v: v.charger_power_w),
    Metric(f"{PREFIX}_charger_voltage_volts", GAUGE, "Charger voltage as the car reports it.",
           lambda v: v.charger_voltage_v),
    Metric(f"{PREFIX}_charger_current_amperes", GAUGE, "Charger current as the car reports it.",
           lambda v: v.charger_current_a),
    Metric(f"{PREFIX}_charge_amps_setting_amperes", GAUGE, "Charging current set in the car (Tessie charge_amps, "
           "what set_charging_amps changes); the car draws at most this, less when the charger offers less.",
           lambda v: v.charge_amps_a),
    Metric(f"{PREFIX}_charger_phases", GAUGE, "AC phases the charger supplies (1 or 3); absent when unplugged.",
           lambda v: v.charger_phases),
    Metric(f"{PREFIX}_charge_rate_meters_per_second", GAUGE, "Rated range added per second while charging "
           "(Tessie charge_rate in miles of range per hour; x 1609.344 / 3600 = x 0.44704).",
           lambda v: v.charge_rate_m_per_s),
    Metric(f"{PREFIX}_charge_energy_added_joules", GAUGE, "Energy added in the current or last charge.",
           lambda v: v.charge_energy_added_j),
    Metric(f"{PREFIX}_charge_range_added_meters", GAUGE, "Rated range added in the current or last charge "
           "(Tessie charge_miles_added_rated; miles x 1609.344).", lambda v: v.charge_range_added_m),
    Metric(f"{PREFIX}_time_to_full_charge_seconds", GAUGE, "Estimated time until the charge limit is reached.",
           lambda v: v.time_to_full_s),
    Metric(f"{PREFIX}_charge_port_door_open", GAUGE, "1 while the charge port door is open.",
           lambda v: v.charge_port_door_open),
    Metric(f"{PREFIX}_charge_cable", INFO, "Plugged-in cable type (SAE, IEC); absent when unplugged.",
           lambda v: {"cable": v.cable} if v.cable else None),
    Metric(f"{PREFIX}_charge_port_latch_engaged", GAUGE, "1 while the charge port latch holds the connector "
           "(Engaged), 0 when it is released (Disengaged); absent for any other report.",
           lambda v: v.charge_port_latch_engaged),
    Metric(f"{PREFIX}_fast_charger_present", GAUGE, "1 while connected to a DC fast charger (a Supercharger, "
           "CCS); 0 on AC (a Wall Connector) or unplugged.", lambda v: v.fast_charger_present),
    Metric(f"{PREFIX}_fast_charger", INFO, "Charger type and brand the car reports (Tessie fast_charger_type, "
           "fast_charger_brand; ACSingleWireCAN is AC such as a Wall Connector); Tessie's placeholders for none "
           "are left out, no sample when neither is known.",
           lambda v: _facts(type=v.fast_charger_type, brand=v.fast_charger_brand)),
    Metric(f"{PREFIX}_scheduled_charging_pending", GAUGE, "1 while a scheduled charge is waiting to start.",
           lambda v: v.scheduled_charging_pending),
    Metric(f"{PREFIX}_scheduled_charging_start_timestamp_seconds", GAUGE, "When the scheduled charge starts "
           "(Unix time); absent when none is scheduled.", lambda v: v.scheduled_charging_start),
    Metric(f"{PREFIX}_temperature_celsius", GAUGE, "Cabin (inside) and outside temperature.",
           lambda v: {"inside": v.inside_temp_c, "outside": v.outside_temp_c}, ("location",)),
    Metric(f"{PREFIX}_battery_heater_on", GAUGE, "1 while the battery heater runs (charge_state.battery_heater_on "
           "or climate_state.battery_heater).", lambda v: v.battery_heater_on),
    Metric(f"{PREFIX}_preconditioning", GAUGE, "1 while the car preconditions (climate_state.is_preconditioning).",
           lambda v: v.preconditioning),
    Metric(f"{PREFIX}_battery_energy_remaining_joules", GAUGE, "Energy left in the pack (Tessie energy_remaining, "
           "kWh x 3.6e6).", lambda v: v.energy_remaining_j),
    Metric(f"{PREFIX}_battery_capacity_estimate_joules", GAUGE, "Estimated usable pack capacity: energy remaining / "
           "(battery level / 100). An estimate for tracking degradation over months; only exported from "
           f"{MIN_LEVEL_FOR_CAPACITY:g} % battery level up, where the whole-percent level makes the ratio meaningful.",
           capacity_estimate_j),
    Metric(f"{PREFIX}_lifetime_energy_used_joules", COUNTER, "Energy the car has used over its life (Tessie "
           "lifetime_energy_used, kWh x 3.6e6).", lambda v: v.lifetime_energy_used_j),
    Metric(f"{PREFIX}_battery_pack_voltage_volts", GAUGE, "Battery pack voltage.", lambda v: v.pack_voltage_v),
    Metric(f"{PREFIX}_battery_pack_current_amperes", GAUGE, "Battery pack current, signed as Tessie reports it "
           "(negative while charging).", lambda v: v.pack_current_a),
    Metric(f"{PREFIX}_battery_module_temperature_celsius", GAUGE, "Coldest (min) and warmest (max) battery "
           "module temperature.", lambda v: {"min": v.module_temp_min_c, "max": v.module_temp_max_c}, ("stat",)),
    Metric(f"{PREFIX}_odometer_meters", GAUGE, "Odometer (Tessie reports miles; converted).", lambda v: v.odometer_m),
    Metric(f"{PREFIX}_software", INFO, "Installed software version.",
           lambda v: {"version": v.car_version} if v.car_version else None),
    Metric(f"{PREFIX}_model", INFO, "Model as Tessie names it (vehicle_config.car_type: model3, modely, ...).",
           lambda v: _facts(car_type=v.car_type)),
    Metric(f"{PREFIX}_locked", GAUGE, "1 while the car is locked.", lambda v: v.locked),
    Metric(f"{PREFIX}_sentry_mode", GAUGE, "1 while Sentry Mode is on.", lambda v: v.sentry_mode),
    Metric(f"{PREFIX}_connectivity", ENUM, "Whether the car is online, asleep or offline; asleep cars are never "
           "woken, their data is from when they fell asleep.", lambda v: _code(CONNECTIVITY, v.state),
           states=CONNECTIVITY),
    Metric(f"{PREFIX}_data_timestamp_seconds", GAUGE, "When the car last reported this data; time() minus this is "
           "the age of every other value.", lambda v: v.data_timestamp),
)
BASE_LABELS = ("vehicle", "vin")


def location_rows(home: Home) -> tuple[Metric, ...]:
    """Rows for a configured home only: without one, no location family exists at all."""
    return (
        Metric(f"{PREFIX}_home_distance_meters", GAUGE, "Great-circle (haversine) distance of the car from "
               "vehicles.home_latitude/home_longitude, to 0.1 m; only with a home configured. Coordinates are "
               "never exported.", lambda v: distance_from_home_m(home, v.position)),
        Metric(f"{PREFIX}_at_home", GAUGE, "1 while the car is within vehicles.home_radius_m of home (the boundary "
               "included), 0 farther away; only with a home configured, absent without a position.",
               lambda v: is_at_home(home, v.position)),
    )


def metric_reference() -> list[tuple[str, str, str, str]]:
    rows = (*ROWS, *location_rows(Home(0.0, 0.0, 1.0)))   # the rows' names and help do not depend on home
    return [row for metric in rows for row in metric.reference(BASE_LABELS)]


def make_collect(names: VehicleNames, home: Home | None = None):
    rows = (*ROWS, *location_rows(home)) if home is not None else ROWS

    def collect(data: FreshData) -> Iterable[Family]:
        records = []
        for values in data.values():
            state: VehicleState | None = values.get("state")
            if state is not None:
                records.append(((names.name(state.vin), state.vin), state))
        yield from build_families(rows, BASE_LABELS, records)
    return collect


def target_name(names: VehicleNames, vin: str, taken: Iterable[str] = ()) -> str:
    """The vehicle's name, made unique among `taken` target names (two cars configured with one name
    must not share a target)."""
    name = names.name(vin)
    return name if name not in set(taken) else f"{name} ({vin[-6:]})"


def parts_factory(config: Config, log: logging.Logger) -> PartsFactory:
    settings = config.vehicles
    token = config.require_tessie_token("vehicle-exporter (vehicles.enabled)") if settings.enabled else None
    home = home_from(settings)
    if home is None:
        log.info("no home location (vehicles.home_latitude, home_longitude): no distance-from-home or at-home "
                 "metrics")
    else:
        log.info("home location set: exporting distance from home and at-home within %g m", home.radius_m)

    def make_parts(ctx: PartsContext) -> ExporterParts:
        metrics = UpstreamMetrics(PREFIX, ctx.registry, ENDPOINTS, UPSTREAM)
        targets: list[Target] = []
        names = VehicleNames(settings.names)
        # a learned display name renames a car (and may suffix another sharing it): every car re-renders
        collector = SnapshotCollector(PREFIX, targets, settings.stale_after, make_collect(names, home),
                                      version=lambda: names.version)
        ctx.registry.register(collector)
        if not settings.enabled or token is None:
            return ExporterParts(targets, collector)
        tessie = Tessie(Upstream(ctx.session, metrics, timeout=config.tessie.timeout), config.tessie.base_url, token,
                        config.vehicles.vins)
        known: set[str] = set()

        async def state(vin: str) -> VehicleState:
            """Cached state (no wake-up); a display name in it names the car as the list would."""
            record = await tessie.vehicle_state(vin)
            names.learn([record])
            return record

        def watch(vin: str, name: str) -> Target:
            known.add(vin)
            target = Target(name)
            target.add(Poller(name, "state", partial(state, vin), settings.poll_interval,
                              timeout=config.tessie.timeout * 2, on_update=ctx.on_update, logger=log))
            return target

        async def discover() -> Any:
            """List every vehicle on the account, asleep ones too (cached state, no wake-up), and start watching
            new ones; a car listed without a cached state is watched all the same."""
            states = await tessie.vehicles()
            names.learn(states)
            for state in states:
                if state.vin not in known:
                    name = target_name(names, state.vin, (t.name for t in targets))
                    log.info("watching vehicle %s (%s)", name, state.vin)
                    ctx.spawn(watch(state.vin, name))
            return len(states)

        for vin in settings.names:
            targets.append(watch(vin, target_name(names, vin, (t.name for t in targets))))
        discovery = Target(DISCOVERY_TARGET)
        discovery.add(Poller(DISCOVERY_TARGET, "vehicles", discover, DISCOVERY_INTERVAL,
                             timeout=config.tessie.timeout * 2, on_update=ctx.on_update, logger=log))
        targets.append(discovery)
        return ExporterParts(targets, collector)

    return make_parts


def main(argv: Sequence[str] | None = None) -> int:
    return run_exporter("vehicle-exporter", "Tesla vehicles via Tessie exporter (never wakes a sleeping car).",
                        argv, lambda c: c.vehicles.listen, parts_factory)


if __name__ == "__main__":
    raise SystemExit(main())
