"""fleet-exporter: Tesla Fleet API energy site via Tessie -> Prometheus.

Every Wall Connector unit of the site, leader and followers, keyed by DIN with a friendly name,
plus site-level power flows when the site reports them:

    tesla_wall_connector_power_watts{din="1457768-02-G--PGT0001",unit="garage"} 11500.0
    tesla_wall_connector_vehicle_info{din="...",unit="garage",vehicle="Blue",vin="5YJ3..."} 1.0
    tesla_energy_site_power_watts{flow="grid",site="Home"} 3200.0
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Iterable, Sequence

from prometheus_client.core import Metric as Family

from exporters.clients.tessie import LiveStatus, SiteInfo, Tessie, UnitInfo, WallConnectorStatus
from exporters.core.collector import FreshData, SnapshotCollector, Target
from exporters.core.config import Config
from exporters.core.errors import BadPayload
from exporters.core.metrics import ENUM, GAUGE, INFO, Metric, build_families
from exporters.core.poller import Poller
from exporters.core.runtime import Build, BuildContext, ExporterParts, run_exporter
from exporters.core.upstream import Upstream, UpstreamMetrics

UNIT_PREFIX, SITE_PREFIX = "tesla_wall_connector", "tesla_energy_site"
HEALTH_PREFIX = SITE_PREFIX  # tesla_energy_site_up{target="energy_site"}
ENDPOINTS = ("products", "live_status", "site_info")

# Fleet numbering, community-observed only (Tesla publishes none); it differs from the local API's.
FLEET_STATES = {1: "charging", 2: "disconnected", 4: "connected"}


class Units:
    """Friendly names of units (configured by DIN, else the serial) and of vehicles (by VIN)."""

    def __init__(self, unit_names: dict[str, str], vehicle_names: dict[str, str]) -> None:
        self.unit_names = unit_names
        self.vehicle_names = vehicle_names

    def unit(self, din: str) -> str:
        return self.unit_names.get(din) or UnitInfo(din, None, None).serial_number

    def vehicle(self, vin: str | None) -> str | None:
        return None if vin is None else self.vehicle_names.get(vin, vin)


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
        Metric(f"{UNIT_PREFIX}_vehicle", INFO, "The vehicle plugged into the unit, by VIN and configured name.",
               lambda u: {"vin": u.vin, "vehicle": names.vehicle(u.vin)} if u.vin else None),
    )


UNIT_INFO = (
    Metric(f"{UNIT_PREFIX}", INFO, "Facts of each unit from site_info: part number, serial (from the DIN), "
           "device id, active.", lambda u: {"part_number": u.part_number, "serial_number": u.serial_number,
                                            "device_id": u.device_id,
                                            "active": None if u.is_active is None else str(u.is_active).lower()}),
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

    def build(data: FreshData) -> Iterable[Family]:
        values = next(iter(data.values()), {})
        live: LiveStatus | None = values.get("live_status")
        info: SiteInfo | None = values.get("site_info")
        site = (site_label[0],)
        units: list[WallConnectorStatus] = list(live.wall_connectors) if live else []
        yield from build_families(rows, ("unit", "din"), [((names.unit(u.din), u.din), u) for u in units])
        infos = list(info.units) if info else []
        yield from build_families(UNIT_INFO, ("unit", "din"), [((names.unit(u.din), u.din), u) for u in infos])
        yield from build_families(SITE_ROWS, ("site",), [(site, live)] if live else [])
        yield from build_families(SITE_INFO, ("site",), [(site, info)] if info else [])
    return build


def metric_reference() -> list[tuple[str, str, str, str]]:
    names = Units({}, {})
    rows = [r for m in (*unit_rows(names), *UNIT_INFO) for r in m.reference(("unit", "din"))]
    return rows + [r for m in (*SITE_ROWS, *SITE_INFO) for r in m.reference(("site",))]


class SiteResolver:
    """The configured site id, or the first energy site with Wall Connectors in /api/1/products."""

    def __init__(self, tessie: Tessie, site_id: str | None, label: list[str], log: logging.Logger) -> None:
        self.tessie, self.site_id, self.label, self.log = tessie, site_id, label, log
        self.lock = asyncio.Lock()  # both pollers start at once; discover once

    async def resolve(self) -> str:
        async with self.lock:
            return self.site_id or await self._discover()

    async def _discover(self) -> str:
        sites = await self.tessie.energy_sites()
        with_units = [s for s in sites if s.units] or sites
        if not with_units:
            raise BadPayload("products: no energy site in this account; set energy_site.site_id")
        site = with_units[0]
        self.site_id = site.site_id
        self.label[0] = site.site_name or site.site_id
        self.log.info("using energy site %s (%s) with %d Wall Connectors", site.site_id, self.label[0], len(site.units))
        return site.site_id


def make_build(config: Config, log: logging.Logger) -> Build:
    settings = config.energy_site
    token = config.require_tessie_token("fleet-exporter (energy_site.enabled)") if settings.enabled else None
    names = Units(settings.unit_names, config.vehicles.names)
    site_label = [settings.site_id or "site"]

    def build_parts(ctx: BuildContext) -> ExporterParts:
        metrics = UpstreamMetrics(HEALTH_PREFIX, ctx.registry, ENDPOINTS)
        targets: list[Target] = []
        if settings.enabled and token is not None:
            tessie = Tessie(Upstream(ctx.session, metrics, timeout=config.tessie.timeout), config.tessie.base_url, token)
            resolver = SiteResolver(tessie, settings.site_id, site_label, log)

            async def live() -> Any:
                return await tessie.live_status(await resolver.resolve())

            async def info() -> Any:
                return await tessie.site_info(await resolver.resolve())

            target = Target("energy_site")
            for endpoint, fetch, interval in (("live_status", live, settings.live_status_interval),
                                              ("site_info", info, settings.site_info_interval)):
                target.add(Poller("energy_site", endpoint, fetch, interval, timeout=config.tessie.timeout * 2,
                                  on_update=ctx.on_update, logger=log))
            targets.append(target)
        collector = SnapshotCollector(HEALTH_PREFIX, targets, settings.stale_after, make_collect(names, site_label))
        ctx.registry.register(collector)
        return ExporterParts(targets, collector)

    return build_parts


def main(argv: Sequence[str] | None = None) -> int:
    return run_exporter("fleet-exporter", "Tesla Fleet API energy site (Wall Connector units) exporter, via Tessie.",
                        argv, lambda c: c.energy_site.listen, make_build)


if __name__ == "__main__":
    raise SystemExit(main())
