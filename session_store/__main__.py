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
from servicekit.errors import UpstreamError
from servicekit.exposition import Exposition
from servicekit.logs import setup_logging
from servicekit.runtime import argument_parser, load_config_or_exit, log_config_source, parse_listen_or_exit
from servicekit.server import metrics_app
from servicekit.upstream import Upstream, UpstreamMetrics
from session_store.api import Events, add_routes, add_smart_charging_routes
from session_store.metrics import SessionCollector
from session_store.prometheus import Prometheus
from session_store.service import SessionService
from session_store.smart_loop import SmartChargingDriver, TessieCommands
from session_store.smart_metrics import SmartChargingCollector
from session_store.storage import Storage

DESCRIPTION = "Charging sessions with energy and cost, derived from the power series in Prometheus."
API_LINKS = (("/api/sessions", "completed sessions (JSON, or ?format=csv)"),
             ("/api/sessions/current", "sessions in progress"),
             ("/api/summary", "energy and cost totals by day or month"),
             ("/api/openapi.json", "the API's OpenAPI description"))
SMART_CHARGING_LINKS = (("/api/smart-charging", "smart charging: price, thresholds, each vehicle's last decision"),
                        ("/api/smart-charging/actions", "commands sent (or simulated in dry run)"))


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if the process is told to stop."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass


RETRY_S = 5.0   # a failed charge-history import is retried after this, doubling up to the full interval


class _FromTessie:
    """Tessie as `reconcile` sees it, its failures tagged, so the log names the upstream that failed:
    Tessie (the charge history) or Prometheus (the prices it is costed with)."""

    def __init__(self, tessie: Tessie) -> None:
        self._tessie = tessie

    def __getattr__(self, name: str):
        method = getattr(self._tessie, name)

        async def call(*args, **kwargs):
            try:
                return await method(*args, **kwargs)
            except UpstreamError as error:
                error.upstream = "Tessie"
                raise
        return call


async def reconcile_forever(service: SessionService, tessie: Tessie, site_id: str | None, interval: float,
                            log: logging.Logger, stop: asyncio.Event) -> None:
    """Match late Fleet charge history every `interval`. A failure is retried soon (RETRY_S, doubling up to
    `interval`), not a whole interval later, and logged once per episode naming the upstream that failed."""
    failing: tuple[str, str] | None = None
    retry = RETRY_S
    tagged = _FromTessie(tessie)
    while not stop.is_set():
        wait = interval
        try:
            if site_id is None:
                sites = [s for s in await tagged.energy_sites() if s.units]
                site_id = sites[0].site_id if sites else None
            if site_id is not None:
                await service.reconcile(tagged, site_id)
            if failing:
                log.info("charge history imported again (%s answers)", failing[0])
            failing, retry = None, RETRY_S
        except UpstreamError as error:
            upstream = getattr(error, "upstream", "Prometheus")
            what = ("charge history unavailable: Tessie" if upstream == "Tessie"
                    else "charge history not imported: its prices are unavailable from Prometheus")
            wait, retry = min(retry, interval), min(retry * 2, interval)
            if failing != (upstream, error.outcome):
                log.warning("%s (%s): %s; retrying in %gs", what, error.outcome, error, wait)
            failing = (upstream, error.outcome)
        await pause(stop, wait)


async def smart_charging_forever(driver: SmartChargingDriver, interval: float, log: logging.Logger,
                                 stop: asyncio.Event) -> None:
    """Evaluate smart charging every `interval`; nothing it meets may end the loop."""
    failing: str | None = None
    while not stop.is_set():
        try:
            await driver.evaluate()
            failing = None
        except Exception as error:  # noqa: BLE001 - a bug here must not stop sessions or leave cars paused forever
            if failing != type(error).__name__:
                log.error("smart charging evaluation failed: %s: %s", type(error).__name__, error)
            failing = type(error).__name__
        await pause(stop, interval)


async def evaluate_forever(service: SessionService, exposition: Exposition, events: Events, interval: float,
                           log: logging.Logger, stop: asyncio.Event) -> None:
    """Evaluate, render, publish; a failing Prometheus is logged once per episode and retried."""
    failing: str | None = None
    while not stop.is_set():
        try:
            await service.evaluate()
            if failing:
                log.info("prometheus answers again; caught up")
            failing = None
        except UpstreamError as error:
            service.live.up = False
            if failing != error.outcome:
                log.warning("evaluation failed (%s): %s; sessions wait for Prometheus, nothing is lost",
                            error.outcome, error)
            failing = error.outcome
        for key, (t, watts) in service.live.power.items():
            events.publish({"type": "power", "unit": service.live.names.get(key, key), "t": t, "watts": watts})
        exposition.render_now()
        await events.flush()
        await pause(stop, interval)


async def run(config: Config, listen_host: str, listen_port: int, log: logging.Logger,
              stop: asyncio.Event | None = None) -> None:
    if stop is None:
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):   # SIGHUP: the terminal closed
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    storage = Storage(config.sessions.database, ZoneInfo(config.general.timezone))
    registry = CollectorRegistry()
    exposition = Exposition(registry)
    events = Events()
    async with aiohttp.ClientSession() as http:
        prometheus = Prometheus(Upstream(http, UpstreamMetrics("charging_session_store", registry, ("query",)),
                                         timeout=30), config.prometheus.url)
        service = SessionService(config, storage, prometheus, log, on_event=events.publish)
        registry.register(SessionCollector(storage, service))
        exposition.render_now()
        app = metrics_app("session-store", DESCRIPTION, exposition, links=API_LINKS + (
            SMART_CHARGING_LINKS if config.smart_charging.enabled else ()))
        add_routes(app, storage, service, events, ZoneInfo(config.general.timezone))
        token = config.secrets.tessie_access_token
        driver: SmartChargingDriver | None = None
        if config.smart_charging.enabled:
            commands = None
            if config.smart_charging.control_enabled and token is not None:
                commands = TessieCommands(Tessie(
                    Upstream(http, UpstreamMetrics("smart_charging_tessie", registry,
                                                   ("start_charging", "stop_charging")),
                             timeout=max(config.tessie.timeout, 90)), config.tessie.base_url, token))
            driver = SmartChargingDriver(config, storage, prometheus, commands, log, session_starts=lambda: {
                key: state.open.start for key, state in service.live.states.items() if state.open is not None})
            registry.register(SmartChargingCollector(driver, storage))
            add_smart_charging_routes(app, driver, storage, config.secrets.smart_charging_api_token,
                                      ZoneInfo(config.general.timezone))
            log.info("smart charging on (%s)", "live: commands are sent" if commands else "dry run")
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, listen_host, listen_port, reuse_address=True).start()
        log.info("serving the session API and /metrics on http://%s:%d/ (database %s)", listen_host, listen_port,
                 config.sessions.database)
        tasks = []
        if driver is not None:
            tasks.append(asyncio.create_task(smart_charging_forever(
                driver, config.smart_charging.evaluation_interval, log, stop)))
        if config.energy_site.enabled and token is not None:
            tessie = Tessie(Upstream(http, UpstreamMetrics("charging_session_store_fleet", registry,
                                                           ("products", "telemetry_history")),
                                     timeout=config.tessie.timeout), config.tessie.base_url, token)
            tasks.append(asyncio.create_task(reconcile_forever(
                service, tessie, config.energy_site.site_id, config.energy_site.charge_history_interval, log, stop)))
        else:
            log.info("no Fleet charge history (energy_site disabled or no TESSIE_ACCESS_TOKEN): no reconciliation")
        try:
            await evaluate_forever(service, exposition, events, config.sessions.evaluation_interval, log, stop)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            log.info("shutting down")
            await events.close()
            await runner.cleanup()
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
