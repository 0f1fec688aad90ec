"""session-store: charging sessions from Prometheus, kept in SQLite, served over HTTP and /metrics."""
from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Sequence
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from upstreams.tessie import Tessie
from servicekit.config import Config
from servicekit.exposition import Exposition, PartsRenderer
from servicekit.logs import setup_logging
from servicekit.runtime import argument_parser, load_config_or_exit, log_config_source, parse_listen_or_exit
from servicekit.server import metrics_app
from servicekit.upstream import Upstream, UpstreamMetrics
from session_store.api import Events, add_routes, add_smart_charging_routes
from session_store.docs_page import add_docs_routes
from session_store.live import vehicles_now
from session_store.live_api import add_live_routes
from billing.settings import tariff_for
from session_store.ledger import Ledger
from session_store.plan_api import add_plan_routes, known_vehicles
from session_store.planning import Planning
from reports.prices import billed_prices
from session_store.meter_api import add_meter_routes
from session_store.report_api import add_report_routes
from session_store.metrics import (FLEET_PREFIX, FLEET_UPSTREAM, HEALTH_PREFIX, PROMETHEUS_UPSTREAM, VEHICLES_PREFIX,
                                   VEHICLES_UPSTREAM, exposition_parts)
from session_store.charge_import import VehicleChargeImport
from session_store.charges_api import add_charge_routes
from session_store.prometheus import Prometheus
from session_store.service import SessionService
from session_store.smart_loop import SmartChargingDriver, TessieCommands
from session_store.smart_metrics import COMMANDS_PREFIX, COMMANDS_UPSTREAM
from session_store.steps import Loops, pollers
from session_store.storage import Storage

DESCRIPTION = "Charging sessions with energy and cost, derived from the power series in Prometheus."
API_LINKS = (("/api/sessions", "completed sessions (JSON, or ?format=csv)"),
             ("/api/sessions/current", "sessions in progress"),
             ("/api/summary", "energy and cost totals by day or month"),
             ("/api/chargers", "every Wall Connector unit now: charging, plugged in or idle, its car and session"),
             ("/api/vehicles", "every car: battery, charging state, connectivity, its last sessions"),
             ("/api/prices", "the price now, the hour's average and projection, thresholds, the forecast"),
             ("/api/charges", "each car's own charges (Tessie): home ones matched to a session, away ones"),
             ("/api/meter", "the utility's meter data per day and per bill, with the EV's share (charging-meter)"),
             ("/api/reports/2026-10?format=pdf", "monthly or yearly charging report (format=json|html|pdf)"),
             ("/api/openapi.json", "the API's OpenAPI description"),
             ("/api/docs", "interactive API documentation (Swagger UI): every route, tried from the page"))
SMART_CHARGING_LINKS = (("/api/smart-charging", "smart charging: price, thresholds, each vehicle's last decision"),
                        ("/api/smart-charging/actions", "commands sent (or simulated in dry run)"))
PLAN_LINKS = (("/plans", "departure plans: set when each car leaves, see its plan over the price forecast"),
              ("/api/plans", "departure plans (JSON)"))


async def run(config: Config, listen_host: str, listen_port: int, log: logging.Logger,
              stop: asyncio.Event | None = None) -> None:
    if stop is None:
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):   # SIGHUP: the terminal closed
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    zone = ZoneInfo(config.general.timezone)
    storage = Storage(config.sessions.database, zone)
    ledger = Ledger(storage)
    registry = CollectorRegistry()
    events = Events()
    token = config.secrets.tessie_access_token
    async with aiohttp.ClientSession() as http:
        prometheus = Prometheus(Upstream(http, UpstreamMetrics(HEALTH_PREFIX, registry, ("query",), PROMETHEUS_UPSTREAM),
                                         timeout=30), config.prometheus.url, config.site_matcher)
        service = SessionService(config, storage, prometheus, log, on_event=events.publish)
        loops = Loops(ledger)
        driver: SmartChargingDriver | None = None
        planning: Planning | None = None
        if config.smart_charging.enabled:
            commands = None
            if config.smart_charging.control_enabled and token is not None:
                commands = TessieCommands(Tessie(
                    Upstream(http, UpstreamMetrics(COMMANDS_PREFIX, registry, ("start_charging", "stop_charging"),
                                                   COMMANDS_UPSTREAM),
                             timeout=max(config.tessie.timeout, 90)), config.tessie.base_url, token))
            planning = Planning(config, storage, prometheus, tariff_for(config), log) if config.planner.enabled else None
            driver = SmartChargingDriver(config, storage, prometheus, commands, log, session_starts=loops.session_starts,
                                         planning=planning)
            log.info("smart charging on (%s)", "live: commands are sent" if commands else "dry run")
        tessie = None
        if config.energy_site.enabled and token is not None:
            tessie = Tessie(Upstream(http, UpstreamMetrics(FLEET_PREFIX, registry, ("products", "telemetry_history"),
                                                           FLEET_UPSTREAM),
                                     timeout=config.tessie.timeout), config.tessie.base_url, token)
        else:
            log.info("no Fleet charge history (energy_site disabled or no TESSIE_ACCESS_TOKEN): no reconciliation")
        charges = None
        if config.vehicles.enabled and token is not None:
            charges = VehicleChargeImport(config, storage, Tessie(
                Upstream(http, UpstreamMetrics(VEHICLES_PREFIX, registry, ("vehicles", "charges"), VEHICLES_UPSTREAM),
                         timeout=config.tessie.timeout), config.tessie.base_url, token, config.vehicles.vins), log,
                lambda: [(state.open.start, state.open.vin) for state in service.working.states.values()
                         if state.open is not None],
                on_learned=planning.efficiencies.__setitem__ if planning is not None else lambda vin, value: None)
        exposition = Exposition(renderer=PartsRenderer(exposition_parts(loops, registry, config, driver)))
        loops.pollers.update(pollers(config, service, ledger, events, log, driver, tessie, exposition.mark_dirty,
                                     charges))
        exposition.render_now()
        app = metrics_app("session-store", DESCRIPTION, exposition, links=API_LINKS + (
            SMART_CHARGING_LINKS if driver is not None else ()) + (PLAN_LINKS if planning is not None else ()))
        add_routes(app, storage, loops.sessions, service.tariff, events, zone,
                   hello=lambda: {"vehicles": vehicles_now(loops.live(), config.vehicles.names)})
        add_live_routes(app, config, storage, loops.sessions, loops.live, loops.live_health,
                        lambda: driver.view() if driver is not None else None,
                        lambda: service.source.name if service.source is not None else None)
        add_docs_routes(app)
        add_charge_routes(app, storage, zone)
        add_meter_routes(app, storage, service.tariff, zone, config.meter.discrepancy_tolerance)
        add_report_routes(app, storage, service.tariff, zone,
                          lambda start, end: billed_prices(config.prometheus.url, start, end, matcher=config.site_matcher),
                          config.meter.discrepancy_tolerance)
        if driver is not None:
            add_smart_charging_routes(app, driver, storage, config.secrets.smart_charging_api_token, zone)
        if driver is not None and planning is not None:
            smart = loops.pollers["smart_charging"]
            add_plan_routes(app, planning, storage, config.secrets.smart_charging_api_token, zone, driver.now,
                            smart.wake, known_vehicles(config, driver))
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, listen_host, listen_port, reuse_address=True).start()
        log.info("serving the session API and /metrics on http://%s:%d/ (database %s)", listen_host, listen_port,
                 config.sessions.database)
        tasks = [asyncio.create_task(poller.run(), name=name) for name, poller in loops.pollers.items()]
        tasks.append(asyncio.create_task(exposition.run(), name="exposition"))
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            log.info("shutting down")
            await events.close()
            await runner.cleanup()
            ledger.close()
            storage.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = argument_parser("session-store", DESCRIPTION).parse_args(argv)
    config = load_config_or_exit("session-store", args)
    listen = parse_listen_or_exit("session-store", args.listen, config.sessions.listen)
    log = setup_logging("session-store", args.log_level or config.general.log_level, config.secrets.all())
    log_config_source(log, args.config)
    try:
        asyncio.run(run(config, listen.host, listen.port, log))
    except OSError as error:
        log.error("cannot start: %s", error.strerror or error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
