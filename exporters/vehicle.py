"""vehicle-exporter: Teslas via Tessie -> Prometheus (prefix `tesla_vehicle_`).

It never wakes a sleeping car: it reads Tessie's cached state (`use_cache=true`), exports the
moment that data was current and the car's connectivity (online / asleep / offline). A car is named
as everywhere else (upstreams.tessie, "names"): vehicles.names, else its display name in
Tessie's vehicle list or cached state, else its VIN. Distances stay in metres (base units); showing miles or
kilometres is the dashboards' job.

    tesla_vehicle_battery_level_percent{vehicle="Blue",vin="5YJ3E1EA7KF000001"} 62.0
    tesla_vehicle_charging_state{state="Charging",vehicle="Blue",vin="5YJ3E1EA7KF000001"} 1.0
    tesla_vehicle_data_timestamp_seconds{vehicle="Blue",vin="5YJ3E1EA7KF000001"} 1.764e+09
"""
from __future__ import annotations

import logging
from functools import partial
from typing import Any, Iterable, Sequence

from prometheus_client.core import Metric as Family

from upstreams.tessie import Tessie, VehicleNames, VehicleState
from servicekit.collector import FreshData, SnapshotCollector, Target
from servicekit.config import Config
from servicekit.metrics import ENUM, GAUGE, INFO, Metric, build_families
from servicekit.poller import Poller
from servicekit.runtime import PartsFactory, PartsContext, ExporterParts, run_exporter
from servicekit.upstream import Upstream, UpstreamMetrics

PREFIX = "tesla_vehicle"
UPSTREAM = "Tessie (vehicle state)"   # named in the help of the upstream request metrics
ENDPOINTS = ("vehicles", "state")
DISCOVERY_TARGET = "tessie"
DISCOVERY_INTERVAL = 3600.0

CHARGING_STATES = {0: "Disconnected", 1: "NoPower", 2: "Starting", 3: "Charging", 4: "Stopped", 5: "Complete"}
CONNECTIVITY = {0: "offline", 1: "asleep", 2: "online"}


def _code(table: dict[int, str], text: str | None) -> int | None:
    """Code of a string enumeration; a string we do not know becomes -1 ('unknown'), absent stays absent."""
    if text is None:
        return None
    return next((code for code, name in table.items() if name.lower() == text.lower()), -1)


ROWS: tuple[Metric, ...] = (
    Metric(f"{PREFIX}_battery_level_percent", GAUGE, "State of charge.", lambda v: v.battery_level),
    Metric(f"{PREFIX}_usable_battery_level_percent", GAUGE, "Usable state of charge (lower in the cold).",
           lambda v: v.usable_battery_level),
    Metric(f"{PREFIX}_battery_range_meters", GAUGE, "Rated range (Tessie reports miles; converted).",
           lambda v: v.battery_range_m),
    Metric(f"{PREFIX}_estimated_battery_range_meters", GAUGE, "Estimated range from recent driving.",
           lambda v: v.est_battery_range_m),
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
    Metric(f"{PREFIX}_charge_energy_added_joules", GAUGE, "Energy added in the current or last charge.",
           lambda v: v.charge_energy_added_j),
    Metric(f"{PREFIX}_time_to_full_charge_seconds", GAUGE, "Estimated time until the charge limit is reached.",
           lambda v: v.time_to_full_s),
    Metric(f"{PREFIX}_charge_port_door_open", GAUGE, "1 while the charge port door is open.",
           lambda v: v.charge_port_door_open),
    Metric(f"{PREFIX}_charge_cable", INFO, "Plugged-in cable type (SAE, IEC); absent when unplugged.",
           lambda v: {"cable": v.cable} if v.cable else None),
    Metric(f"{PREFIX}_temperature_celsius", GAUGE, "Cabin (inside) and outside temperature.",
           lambda v: {"inside": v.inside_temp_c, "outside": v.outside_temp_c}, ("location",)),
    Metric(f"{PREFIX}_odometer_meters", GAUGE, "Odometer (Tessie reports miles; converted).", lambda v: v.odometer_m),
    Metric(f"{PREFIX}_software", INFO, "Installed software version.",
           lambda v: {"version": v.car_version} if v.car_version else None),
    Metric(f"{PREFIX}_locked", GAUGE, "1 while the car is locked.", lambda v: v.locked),
    Metric(f"{PREFIX}_sentry_mode", GAUGE, "1 while Sentry Mode is on.", lambda v: v.sentry_mode),
    Metric(f"{PREFIX}_connectivity", ENUM, "Whether the car is online, asleep or offline; asleep cars are never "
           "woken, their data is from when they fell asleep.", lambda v: _code(CONNECTIVITY, v.state),
           states=CONNECTIVITY),
    Metric(f"{PREFIX}_data_timestamp_seconds", GAUGE, "When the car last reported this data; time() minus this is "
           "the age of every other value.", lambda v: v.data_timestamp),
)
BASE_LABELS = ("vehicle", "vin")


def metric_reference() -> list[tuple[str, str, str, str]]:
    return [row for metric in ROWS for row in metric.reference(BASE_LABELS)]


def make_collect(names: VehicleNames):
    def collect(data: FreshData) -> Iterable[Family]:
        records = []
        for values in data.values():
            state: VehicleState | None = values.get("state")
            if state is not None:
                records.append(((names.name(state.vin), state.vin), state))
        yield from build_families(ROWS, BASE_LABELS, records)
    return collect


def target_name(names: VehicleNames, vin: str, taken: Iterable[str] = ()) -> str:
    """The vehicle's name, made unique among `taken` target names (two cars configured with one name
    must not share a target)."""
    name = names.name(vin)
    return name if name not in set(taken) else f"{name} ({vin[-6:]})"


def parts_factory(config: Config, log: logging.Logger) -> PartsFactory:
    settings = config.vehicles
    token = config.require_tessie_token("vehicle-exporter (vehicles.enabled)") if settings.enabled else None

    def make_parts(ctx: PartsContext) -> ExporterParts:
        metrics = UpstreamMetrics(PREFIX, ctx.registry, ENDPOINTS, UPSTREAM)
        targets: list[Target] = []
        names = VehicleNames(settings.names)
        collector = SnapshotCollector(PREFIX, targets, settings.stale_after, make_collect(names))
        ctx.registry.register(collector)
        if not settings.enabled or token is None:
            return ExporterParts(targets, collector)
        tessie = Tessie(Upstream(ctx.session, metrics, timeout=config.tessie.timeout), config.tessie.base_url, token)
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
            """List the account's vehicles (cached state, no wake-up) and start watching new ones."""
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
