"""fleet-exporter: Tesla Fleet API energy site via Tessie -> Prometheus.

Every Wall Connector unit of the site, leader and followers, keyed by DIN with a friendly name,
plus site-level power flows when the site reports them. Units and vehicles are named as everywhere
else (upstreams.tessie, "names"): a unit by energy_site.unit_names (DIN or serial), else its
serial; a vehicle by vehicles.names, else the display name from Tessie's vehicle list (read hourly
with the same token, cached state, no car woken), else its VIN:

    tesla_wall_connector_power_watts{din="1457768-02-G--PGT0001",unit="garage"} 11500.0
    tesla_wall_connector_vehicle_info{din="...",unit="garage",vehicle="Blue",vin="5YJ3..."} 1.0
    tesla_energy_site_power_watts{energy_site="Home",flow="grid"} 3200.0
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

from prometheus_client.core import Metric as Family

from upstreams.tessie import (
    LiveStatus, SiteInfo, Tessie, choose_site, VehicleNames, WallConnectorStatus, unit_name, unit_name_problems,
    unit_roles,
)
from servicekit.collector import FreshData, SnapshotCollector, Target
from servicekit.config import Config
from servicekit.errors import BadPayload, UpstreamError
from servicekit.metrics import ENUM, GAUGE, INFO, Metric, build_families
from servicekit.poller import Poller
from servicekit.runtime import PartsFactory, PartsContext, ExporterParts, run_exporter
from servicekit.upstream import Upstream, UpstreamMetrics

UNIT_PREFIX, SITE_PREFIX = "tesla_wall_connector", "tesla_energy_site"
HEALTH_PREFIX = SITE_PREFIX  # tesla_energy_site_up{target="energy_site"}
UPSTREAM = "Tessie (Fleet API)"   # named in the help of the upstream request metrics
ENDPOINTS = ("products", "live_status", "site_info", "vehicles")
VEHICLES_INTERVAL = 3600.0   # display names change rarely; the vehicle exporter lists as often

# Fleet numbering, community-observed only (Tesla publishes none); it differs from the local API's.
FLEET_STATES = {1: "charging", 2: "disconnected", 4: "connected"}


class Units:
    """Names of the units (energy_site.unit_names by DIN or serial, else the serial) and of the vehicles
    plugged into them (vehicles.names, else Tessie's display name, else the VIN), by the rule every
    component shares. Display names are learned at the edge (`VehicleDirectory`); the collector reads."""

    def __init__(self, unit_names: Mapping[str, str], vehicle_names: Mapping[str, str], leaders: str | None = None,
                 on_lan: Iterable[str] = ()) -> None:
        self.unit_names = dict(unit_names)
        self.leaders = tuple((leaders or "").split(","))     # energy_site.leaders
        self.on_lan = frozenset(on_lan)                      # names of the units the local API reaches
        self.vehicles = VehicleNames(vehicle_names)
        self.warned: set[str] = set()

    def unit(self, din: str) -> str:
        return unit_name(self.unit_names, din)

    def vehicle(self, vin: str | None) -> str | None:
        return None if vin is None else self.vehicles.name(vin)

    def check(self, dins: Iterable[str], log: logging.Logger) -> None:
        """Once the site's units are known: one warning per configured key that names none of them."""
        dins = list(dins)
        if not dins:
            return
        for key, line in unit_name_problems(self.unit_names, dins).items():
            if key not in self.warned:
                self.warned.add(key)
                log.warning("%s", line)


class VehicleDirectory:
    """Display names from Tessie's vehicle list (`GET /vehicles`, cached state: it never wakes a car),
    read hourly, and sooner when a car the list has not named yet is plugged in (at most every
    RETRY_S: a guest's car is never in the list). The first live_status waits briefly for the first
    read, so a car is not exported under its VIN for a poll and under its name after."""

    RETRY_S = 300.0

    def __init__(self, tessie: Tessie, units: Units, clock: Callable[[], float] = time.monotonic) -> None:
        self.tessie, self.units, self.clock = tessie, units, clock
        self.tried = asyncio.Event()
        self.last_read: float | None = None

    async def refresh(self) -> int:
        self.last_read = self.clock()
        try:
            states = await self.tessie.vehicles()
            self.units.vehicles.learn(states)
            return len(states)
        finally:
            self.tried.set()

    async def settled(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.tried.wait(), timeout)
        except asyncio.TimeoutError:
            pass   # named by VIN until the list answers; the rule still holds once it does

    async def name(self, live: LiveStatus) -> None:
        """Read the list again when a plugged-in car has no name yet; its failures are the hourly read's to report."""
        unnamed = [u.vin for u in live.wall_connectors if u.vin and not self.units.vehicles.knows(u.vin)]
        if unnamed and (self.last_read is None or self.clock() - self.last_read >= self.RETRY_S):
            try:
                await self.refresh()
            except UpstreamError:
                pass


def unit_rows(names: Units) -> tuple[Metric, ...]:
    return (
        Metric(f"{UNIT_PREFIX}_power_watts", GAUGE, "Power of the unit from Fleet live_status; negative while "
               "power flows back to the home (Powershare).", lambda u: u.power_w),
        Metric(f"{UNIT_PREFIX}_state", ENUM, "Fleet wall_connector_state (community-observed meanings; not the "
               "local API's evse_state).", lambda u: u.state, states=FLEET_STATES),
        Metric(f"{UNIT_PREFIX}_fault_state_code", GAUGE, "Fleet wall_connector_fault_state as reported (2 is "
               "normal in every observation; meanings are undocumented, so do not alert on it alone).",
               lambda u: u.fault_state),
        Metric(f"{UNIT_PREFIX}_vehicle_connected", GAUGE, "1 while a vehicle is plugged in (a VIN is reported, "
               "or the state is charging or connected); absent when the unit reports neither.",
               lambda u: u.vehicle_connected),
        Metric(f"{UNIT_PREFIX}_vehicle", INFO, "The vehicle plugged into the unit, by VIN and name (vehicles.names, "
               "else Tessie's display name, else the VIN: the same name as in every other metric).",
               lambda u: {"vin": u.vin, "vehicle": names.vehicle(u.vin)} if u.vin else None),
    )


UNIT_INFO = (
    Metric(f"{UNIT_PREFIX}", INFO, "Facts of each unit from site_info: part number, serial (from the DIN), "
           "device id, active, and its power-sharing role (leader, follower or unknown: energy_site.leaders).",
           lambda u: {"part_number": u[0].part_number, "serial_number": u[0].serial_number,
                      "device_id": u[0].device_id,
                      "active": None if u[0].is_active is None else str(u[0].is_active).lower(), "role": u[1]}),
)

SITE_ROWS = (
    Metric(f"{SITE_PREFIX}_power_watts", GAUGE, "Site power flows in watts (grid: + import, - export; battery: "
           "+ discharge); only the flows the site reports.", lambda s: s.power_w, ("flow",)),
    Metric(f"{SITE_PREFIX}_battery_level_percent", GAUGE, "Powerwall state of energy.", lambda s: s.percentage_charged),
    Metric(f"{SITE_PREFIX}_energy_left_joules", GAUGE, "Energy left in the Powerwalls.", lambda s: s.energy_left_j),
    Metric(f"{SITE_PREFIX}_live_status_timestamp_seconds", GAUGE, "Time stamp of the site's live_status.",
           lambda s: s.timestamp),
)

SITE_INFO = (
    Metric(f"{SITE_PREFIX}", INFO, "Site facts from site_info.",
           lambda s: {"site_id": s.site_id, "site_name": s.site_name, "time_zone": s.time_zone,
                      "version": s.version}),
)


def make_collect(names: Units, site_label: list[str]):
    rows = unit_rows(names)

    def families(data: FreshData) -> Iterable[Family]:
        values = next(iter(data.values()), {})
        live: LiveStatus | None = values.get("live_status")
        info: SiteInfo | None = values.get("site_info")
        site = (site_label[0],)
        units: list[WallConnectorStatus] = list(live.wall_connectors) if live else []
        yield from build_families(rows, ("unit", "din"), [((names.unit(u.din), u.din), u) for u in units])
        infos = list(info.units) if info else []
        roles = unit_roles((u.din for u in infos), names.leaders, names.on_lan, names.unit_names)
        yield from build_families(UNIT_INFO, ("unit", "din"),
                                  [((names.unit(u.din), u.din), (u, roles[u.din])) for u in infos])
        yield from build_families(SITE_ROWS, ("energy_site",), [(site, live)] if live else [])
        yield from build_families(SITE_INFO, ("energy_site",), [(site, info)] if info else [])
    return families


def metric_reference() -> list[tuple[str, str, str, str]]:
    names = Units({}, {})
    rows = [r for m in (*unit_rows(names), *UNIT_INFO) for r in m.reference(("unit", "din"))]
    return rows + [r for m in (*SITE_ROWS, *SITE_INFO) for r in m.reference(("energy_site",))]


class SiteResolver:
    """The configured site id, or the one `choose_site` picks from /api/1/products."""

    def __init__(self, tessie: Tessie, site_id: str | None, label: list[str], log: logging.Logger,
                 units: Units | None = None) -> None:
        self.tessie, self.site_id, self.label, self.log = tessie, site_id, label, log
        self.units = units
        self.lock = asyncio.Lock()  # both pollers start at once; discover once

    async def resolve(self) -> str:
        async with self.lock:
            return self.site_id or await self._discover()

    async def _discover(self) -> str:
        site = choose_site(await self.tessie.energy_sites())
        if site is None:
            raise BadPayload("products: no energy site in this account; set energy_site.site_id")
        self.site_id = site.site_id
        self.label[0] = site.site_name or site.site_id
        self.log.info("using energy site %s (%s) with %d Wall Connectors", site.site_id, self.label[0], len(site.units))
        if self.units is not None:
            self.units.check((u.din for u in site.units), self.log)
        return site.site_id


def parts_factory(config: Config, log: logging.Logger) -> PartsFactory:
    settings = config.energy_site
    token = config.require_tessie_token("fleet-exporter (energy_site.enabled)") if settings.enabled else None
    names = Units(settings.unit_names, config.vehicles.names, settings.leaders,
                  (charger.name for charger in config.wall_connectors.chargers) if config.wall_connectors.enabled else ())
    site_label = [settings.site_id or "site"]

    def make_parts(ctx: PartsContext) -> ExporterParts:
        metrics = UpstreamMetrics(HEALTH_PREFIX, ctx.registry, ENDPOINTS, UPSTREAM)
        targets: list[Target] = []
        if settings.enabled and token is not None:
            tessie = Tessie(Upstream(ctx.session, metrics, timeout=config.tessie.timeout), config.tessie.base_url, token,
                            config.vehicles.vins)
            resolver = SiteResolver(tessie, settings.site_id, site_label, log, names)
            directory = VehicleDirectory(tessie, names)

            async def live() -> Any:
                await directory.settled(config.tessie.timeout / 2)
                status = await tessie.live_status(await resolver.resolve())
                await directory.name(status)
                return status

            async def info() -> Any:
                site = await tessie.site_info(await resolver.resolve())
                names.check((u.din for u in site.units), log)
                return site

            target = Target("energy_site")
            for endpoint, fetch, interval in (("live_status", live, settings.live_status_interval),
                                              ("site_info", info, settings.site_info_interval),
                                              ("vehicles", directory.refresh, VEHICLES_INTERVAL)):
                target.add(Poller("energy_site", endpoint, fetch, interval, timeout=config.tessie.timeout * 2,
                                  on_update=ctx.on_update, logger=log))
            targets.append(target)
        # vehicle names learned from Tessie's list and the site's name found by discovery label the samples
        collector = SnapshotCollector(HEALTH_PREFIX, targets, settings.stale_after, make_collect(names, site_label),
                                      version=lambda: (names.vehicles.version, site_label[0]))
        ctx.registry.register(collector)
        return ExporterParts(targets, collector)

    return make_parts


def main(argv: Sequence[str] | None = None) -> int:
    return run_exporter("fleet-exporter", "Tesla Fleet API energy site (Wall Connector units) exporter, via Tessie.",
                        argv, lambda c: c.energy_site.listen, parts_factory)


if __name__ == "__main__":
    raise SystemExit(main())
