"""twc-exporter: Tesla Wall Connector Gen 3 local API -> Prometheus (prefix `twc_`).

    twc_power_watts{charger="garage"} 11520.0
    twc_temperature_celsius{charger="garage",sensor="handle"} 31.5
    twc_lifetime_energy_joules_total{charger="garage"} 9.24e+09

The `charger` label is the name in wall_connectors.chargers; the Fleet exporter names the same unit
by energy_site.unit_names (its DIN or serial). At start-up this exporter reads each charger's serial
and warns once when the two would differ, so one unit carries one name in every view.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Awaitable, Callable, Iterable, Sequence
from urllib.parse import urlsplit

from prometheus_client.core import Metric as Family

from upstreams import wallconnector as wc
from upstreams.tessie import configured_unit_name, places, scaled
from servicekit.collector import FreshData, SnapshotCollector, Target
from servicekit.config import Charger, Config
from servicekit.errors import AuthFailed
from servicekit.metrics import COUNTER, ENUM, GAUGE, INFO, Metric, build_families
from servicekit.poller import Poller
from servicekit.runtime import PartsFactory, PartsContext, ExporterParts, run_exporter
from servicekit.upstream import Upstream, UpstreamMetrics

PREFIX = "twc"
UPSTREAM = "the Wall Connector's local API"   # named in the help of the upstream request metrics
ENDPOINTS = ("vitals", "lifetime", "version", "wifi_status")
WH = 3600.0  # joules per watt-hour

# Local API numbering (Home Assistant's names); the Fleet API's wall_connector_state is a different enum.
EVSE_STATES = {0: "booting", 1: "not_connected", 2: "connected", 4: "ready", 6: "negotiating", 7: "error",
               8: "charging_finished", 9: "waiting_car", 10: "charging_reduced", 11: "charging"}


def _opt(value: Any, scale: float = 1.0) -> float | None:
    """A unit conversion exact to the source's decimals (2567.3 Wh is 9242280 J, no float noise)."""
    return None if value is None else scaled(float(value), scale)


def _power(v: wc.Vitals) -> float | None:
    """Vitals.power_w rounded to the places the exact product of the unit's volts and amps has
    (40.4 A x 228.6 V = 9235.44 W, not 9235.439999999999)."""
    power = v.power_w
    if power is None:
        return None
    volts = [x for x in (v.grid_v, *v.voltages_v.values()) if x is not None]
    amps = [x for x in (v.vehicle_current_a, *v.currents_a.values()) if x is not None]
    return round(power, max(map(places, volts), default=0) + max(map(places, amps), default=0))


VITALS: tuple[Metric, ...] = (
    Metric("twc_power_watts", GAUGE, "Power delivered to the vehicle: 0 with the contactor open; vehicle current "
           "x grid voltage on US split phase; sum of phase voltage x current otherwise.", _power),
    Metric("twc_grid_voltage_volts", GAUGE, "Supply voltage at the charger input.", lambda v: v.grid_v),
    Metric("twc_grid_frequency_hertz", GAUGE, "Grid frequency.", lambda v: v.grid_hz),
    Metric("twc_vehicle_current_amperes", GAUGE, "Current delivered to the vehicle.", lambda v: v.vehicle_current_a),
    Metric("twc_phase_current_amperes", GAUGE, "Measured current per phase/line (N = neutral).",
           lambda v: v.currents_a, ("phase",)),
    Metric("twc_phase_voltage_volts", GAUGE, "Output voltage per phase; a few volts while the contactor is open.",
           lambda v: v.voltages_v, ("phase",)),
    Metric("twc_temperature_celsius", GAUGE, "Temperature by sensor (pcba, handle, mcu).",
           lambda v: v.temperatures_c, ("sensor",)),
    Metric("twc_relay_coil_voltage_volts", GAUGE, "Contactor relay coil voltage (relay_coil_v on older firmware, "
           "relay_k1_v/relay_k2_v on newer).",
           lambda v: {"coil": v.relay_coil_v, "k1": v.relay_k1_v, "k2": v.relay_k2_v}, ("relay",)),
    Metric("twc_input_thermopile_volts", GAUGE, "Raw output of the input-terminal thermopile.",
           lambda v: _opt(v.input_thermopile_uv, 1e-6)),
    Metric("twc_pilot_voltage_volts", GAUGE, "Control pilot high and low levels and the proximity voltage.",
           lambda v: {"high": v.pilot_high_v, "low": v.pilot_low_v, "proximity": v.prox_v}, ("level",)),
    Metric("twc_session_energy_joules", GAUGE, "Energy of the current or last session by the unit's own meter; "
           "kept after charging stops, resets at the next session (not monotonic).",
           lambda v: _opt(v.session_energy_wh, WH)),
    Metric("twc_session_duration_seconds", GAUGE, "Time since the vehicle was plugged in; 0 when unplugged.",
           lambda v: v.session_s),
    Metric("twc_contactor_closed", GAUGE, "1 while the contactor is closed (power flows to the vehicle).",
           lambda v: v.contactor_closed),
    Metric("twc_vehicle_connected", GAUGE, "1 while a vehicle is plugged in.", lambda v: v.vehicle_connected),
    Metric("twc_evse_state", ENUM, "EVSE state of the local API.", lambda v: v.evse_state, states=EVSE_STATES),
    Metric("twc_config_status", GAUGE, "Installation status code (5 = commissioned in every capture seen).",
           lambda v: v.config_status),
    Metric("twc_active_alerts", GAUGE, "Number of alerts the unit reports as active now.",
           lambda v: None if v.current_alerts is None else len(v.current_alerts)),
    Metric("twc_not_ready_reasons", GAUGE, "Number of reasons the EVSE reports for not being ready (newer firmware).",
           lambda v: None if v.evse_not_ready_reasons is None else len(v.evse_not_ready_reasons)),
    Metric("twc_uptime_seconds", GAUGE, "Seconds since the unit last booted, as of the last poll.",
           lambda v: v.uptime_s),
)

LIFETIME: tuple[Metric, ...] = (
    Metric("twc_lifetime_energy_joules", COUNTER, "Energy delivered over the unit's life by its own counter; "
           "known to jump and to update only at session end, so do not derive power from it.",
           lambda l: _opt(l["energy_wh"], WH)),
    Metric("twc_charge_starts", COUNTER, "Charge starts over the unit's life.", lambda l: l["charge_starts"]),
    Metric("twc_contactor_cycles", COUNTER, "Contactor closings over the unit's life.",
           lambda l: l["contactor_cycles"]),
    Metric("twc_contactor_cycles_loaded", COUNTER, "Contactor cycles under load over the unit's life.",
           lambda l: l["contactor_cycles_loaded"]),
    Metric("twc_connector_cycles", COUNTER, "Plug-ins over the unit's life.", lambda l: l["connector_cycles"]),
    Metric("twc_alerts", COUNTER, "Alerts raised over the unit's life (thousands is normal).",
           lambda l: l["alert_count"]),
    Metric("twc_thermal_foldbacks", COUNTER, "Times current was reduced because of temperature.",
           lambda l: l["thermal_foldbacks"]),
    Metric("twc_charging_time_seconds", COUNTER, "Time spent charging over the unit's life.",
           lambda l: l["charging_time_s"]),
    Metric("twc_powered_on_time_seconds", COUNTER, "Time powered on over the unit's life.",
           lambda l: l["uptime_s"]),
    Metric("twc_average_startup_temperature_celsius", GAUGE, "Average temperature at charge start; absent when "
           "the unit reports nan.", lambda l: l["avg_startup_temp"]),
)

VERSION: tuple[Metric, ...] = (
    Metric("twc_version", INFO, "Firmware, part number and serial number of the unit.",
           lambda v: {"firmware_version": v.firmware_version, "part_number": v.part_number,
                      "serial_number": v.serial_number}),
)

WIFI: tuple[Metric, ...] = (
    Metric("twc_wifi", INFO, "Wi-Fi network facts (SSID decoded from base64, address).",
           lambda w: {"ssid": w.ssid, "ip": w.ip, "mac": w.mac}),
    Metric("twc_wifi_signal_strength_percent", GAUGE, "Wi-Fi signal quality as reported by the unit.",
           lambda w: w.signal_strength),
    Metric("twc_wifi_rssi_dbm", GAUGE, "Wi-Fi received signal strength.", lambda w: w.rssi_dbm),
    Metric("twc_wifi_snr_decibels", GAUGE, "Wi-Fi signal-to-noise ratio.", lambda w: w.snr_db),
    Metric("twc_wifi_connected", GAUGE, "1 while the unit is connected to the access point.", lambda w: w.connected),
    Metric("twc_internet_connected", GAUGE, "1 while the unit reaches Tesla's servers.", lambda w: w.internet),
)

TABLES = {"vitals": VITALS, "lifetime": LIFETIME, "version": VERSION, "wifi_status": WIFI}
BASE_LABELS = ("charger",)


def families(data: FreshData) -> Iterable[Family]:
    """Data families from fresh snapshots only; a charger whose vitals are stale yields nothing."""
    for endpoint, rows in TABLES.items():
        records = [((charger,), values[endpoint]) for charger, values in data.items() if endpoint in values]
        yield from build_families(rows, BASE_LABELS, records)


def metric_reference() -> list[tuple[str, str, str, str]]:
    return [row for rows in TABLES.values() for metric in rows for row in metric.reference(BASE_LABELS)]


def fetch_local(upstream: Upstream, base_url: str, endpoint: str) -> Callable[[], Awaitable[Any]]:
    """wc.fetch, with a 401/403 explained: the local API asks for no credentials (and we send none),
    so a rejection means something other than the Wall Connector answers at that address."""
    async def fetch() -> Any:
        try:
            return await wc.fetch(upstream, base_url, endpoint)
        except AuthFailed as error:
            status = re.search(r"HTTP (\d+)", str(error))
            raise AuthFailed(
                f"{endpoint} at {urlsplit(base_url).netloc}: HTTP {status.group(1) if status else '401/403'}, yet a "
                "Wall Connector's local API has no login, so another device answers at this address (the charger "
                "got a new IP from DHCP, or a proxy is in between); no token fixes this: find the charger's IP "
                "and correct wall_connectors.chargers (TWC_CHARGERS)") from None
    return fetch


class NameCheck:
    """Warns once per charger when the Fleet view would call it something else: energy_site.unit_names
    (by DIN or serial) names its unit differently, or names it not at all while the Fleet exporter runs
    (it would then be called by its serial)."""

    def __init__(self, config: Config, log: logging.Logger) -> None:
        self.unit_names = config.energy_site.unit_names
        self.fleet = config.energy_site.enabled and config.secrets.tessie_access_token is not None
        self.log = log
        self.checked: set[str] = set()

    def wrap(self, charger: Charger, fetch: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        async def checked() -> Any:
            version = await fetch()
            self.check(charger, version)
            return version
        return checked

    def check(self, charger: Charger, version: wc.Version) -> None:
        if charger.name in self.checked or not version.serial_number:
            return
        self.checked.add(charger.name)
        serial = version.serial_number
        din = f"{version.part_number}--{serial}" if version.part_number else serial
        fleet_name = configured_unit_name(self.unit_names, din)
        if fleet_name is not None and fleet_name != charger.name:
            self.log.warning("wall_connectors.chargers: %r is unit %s, which energy_site.unit_names calls %r; give "
                             "both the same name so dashboards, sessions and alerts show one", charger.name, din,
                             fleet_name)
        elif fleet_name is None and self.fleet:
            self.log.warning("energy_site.unit_names: no name for unit %s, so the Fleet view calls charger %r by "
                             "its serial %s; add %s: %s (WALL_CONNECTOR_NAMES=%s:%s) so both views use one name",
                             din, charger.name, serial, serial, charger.name, serial, charger.name)


def parts_factory(config: Config, log: logging.Logger) -> PartsFactory:
    settings = config.wall_connectors
    intervals = {"vitals": settings.vitals_interval, "lifetime": settings.lifetime_interval,
                 "version": settings.version_interval, "wifi_status": settings.wifi_interval}
    if not settings.enabled:
        log.warning("wall_connectors.enabled is false: serving health metrics only")
    if settings.enabled and not settings.chargers:
        log.warning("no Wall Connectors configured: set wall_connectors.chargers or TWC_CHARGERS")

    names = NameCheck(config, log)

    def make_parts(ctx: PartsContext) -> ExporterParts:
        metrics = UpstreamMetrics(PREFIX, ctx.registry, ENDPOINTS, UPSTREAM)
        upstream = Upstream(ctx.session, metrics, timeout=settings.timeout)
        targets = []
        for charger in settings.chargers if settings.enabled else ():
            target = Target(charger.name)
            for endpoint in ENDPOINTS:
                fetch = fetch_local(upstream, charger.url, endpoint)
                if endpoint == "version":
                    fetch = names.wrap(charger, fetch)
                target.add(Poller(charger.name, endpoint, fetch, intervals[endpoint], timeout=settings.timeout * 2,
                                  on_update=ctx.on_update, logger=log))
            targets.append(target)
        collector = SnapshotCollector(PREFIX, targets, settings.stale_after, families)
        ctx.registry.register(collector)
        return ExporterParts(targets, collector)

    return make_parts


def main(argv: Sequence[str] | None = None) -> int:
    return run_exporter("twc-exporter", "Tesla Wall Connector (local API) exporter for Prometheus.", argv,
                        lambda c: c.wall_connectors.listen, parts_factory)


if __name__ == "__main__":
    raise SystemExit(main())
