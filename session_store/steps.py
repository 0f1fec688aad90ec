"""The session store's three loops as the core's pollers: each step does its work, refreshes the
ledger when it wrote, and returns a frozen view; the poller keeps the last good one, backs off on
failure and logs one line per failure episode.

- sessions: evaluate the power series from the watermark, publish live events;
- reconciliation: import Fleet charge history (every 15 minutes by default, a failure retried within seconds);
- vehicle charges: import each car's own charge history (Tessie) and match it to the sessions;
- smart charging: evaluate every vehicle (its market failures are its own fail-safe decisions);
- live: one Prometheus query for the cars' state, the units' links and the prices (the live API), a
  `vehicle` event on the WebSocket for each car whose state changed.
"""
from __future__ import annotations

import asyncio

import logging
import time
from typing import Any, Awaitable, Callable, Mapping, Protocol

from servicekit.config import Config
from servicekit.errors import UpstreamError
from servicekit.poller import Backoff, Health, Poller
from session_store.ledger import Ledger
from session_store.live import LIVE_QUERY, LiveView, parse, vehicle_events
from session_store.reconciliation import Plan
from session_store.charge_import import ImportResult, VehicleChargeImport
from session_store.service import SessionService
from session_store.smart_loop import SmartChargingDriver
from session_store.views import SessionsView, SmartChargingView
from upstreams.tessie import Tessie, choose_site

TARGET = "session-store"
STEP_TIMEOUT_S = 900.0    # a catch-up runs chunk by chunk, each committed: a timeout loses no work
RETRY_S = 5.0             # a failed charge-history import is retried after this, doubling up to the interval
DEFERRED_RETRY_S = 30.0   # an import that left records for the live data to explain first runs again this soon


class Events(Protocol):
    """Where the sessions step publishes live events: the API's WebSocket clients (api.Events)."""

    def publish(self, event: dict[str, Any]) -> None: ...

    async def flush(self) -> None: ...


def tagged(error: UpstreamError, upstream: str) -> UpstreamError:
    """The same error, its message naming the upstream that failed, so one log line says which."""
    error.args = (f"{upstream}: {error}",)
    return error


def sessions_step(service: SessionService, ledger: Ledger, events: Events) -> Callable[[], Awaitable[SessionsView]]:
    async def step() -> SessionsView:
        try:
            await service.evaluate()
        finally:   # sessions started or completed before a failure still reach the WebSocket
            view = service.view()
            for unit, t, watts in view.power:
                events.publish({"type": "power", "unit": unit, "t": t, "watts": watts})
            await events.flush()
        await ledger.refresh()
        return view
    return step


def reconciliation_step(service: SessionService, tessie: Tessie, site_id: str | None, ledger: Ledger,
                        log: logging.Logger, retry_soon: Callable[[], None] = lambda: None
                        ) -> Callable[[], Awaitable[Plan | None]]:
    """One import of the charge history; `retry_soon` when records wait for the live data (a catch-up under
    way, a session still open), so they are matched or inserted within seconds rather than the next hour."""
    async def step() -> Plan | None:
        nonlocal site_id
        if site_id is None:
            try:
                site = choose_site(await tessie.energy_sites())
            except UpstreamError as error:
                raise tagged(error, "Tessie (products)") from None
            if site is None:
                return None     # no energy site on the account: nothing to reconcile
            site_id = site.site_id
            log.info("charge history of energy site %s (%s)", site.site_id, site.site_name or "unnamed")
        days, started = service.history_window(site_id), time.time()
        try:
            records = await service.fetch_charge_history(tessie, site_id, days)
        except UpstreamError as error:
            raise tagged(error, "Tessie") from None
        try:
            result = await service.reconcile(records, days)
        except UpstreamError as error:
            raise tagged(error, "Prometheus (the prices to cost it)") from None
        service.history_imported(site_id, started)
        await ledger.refresh()
        if result is not None and result.deferred:
            retry_soon()
        return result
    return step


def vehicle_charges_step(importer: VehicleChargeImport, ledger: Ledger,
                         retry_soon: Callable[[], None] = lambda: None) -> Callable[[], Awaitable[ImportResult]]:
    """One import of every car's own charge history; `retry_soon` when charges wait for the wall's sessions."""
    async def step() -> ImportResult:
        try:
            result = await importer.step()
        except UpstreamError as error:
            raise tagged(error, "Tessie (the cars' charge history)") from None
        if result.changed:
            await ledger.refresh()
        if result.deferred:
            retry_soon()
        return result
    return step


def smart_charging_step(driver: SmartChargingDriver, ledger: Ledger) -> Callable[[], Awaitable[SmartChargingView]]:
    async def step() -> SmartChargingView:
        try:
            await driver.evaluate()
        except UpstreamError:
            raise
        except Exception as error:  # noqa: BLE001 - a bug must not end the loop nor leave cars paused forever
            logging.getLogger(__name__).debug("smart charging evaluation failed", exc_info=True)
            raise UpstreamError(f"{type(error).__name__}: {error}") from error
        await ledger.refresh()
        return driver.view()
    return step


def live_step(service: SessionService, events: Events, names: Mapping[str, str]) -> Callable[[], Awaitable[LiveView]]:
    """One query for everything live (not one per car) through the service's Prometheus client, and an event
    per car whose state changed since the last good read."""
    previous: LiveView | None = None

    async def step() -> LiveView:
        nonlocal previous
        view = parse(await service.prometheus.query(LIVE_QUERY), service.clock())
        for event in vehicle_events(previous, view, names):
            events.publish(event)
        await events.flush()
        previous = view
        return view
    return step


class Loops:
    """The store's pollers by name and its ledger: the latest view of each, as /metrics and the API read them."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.pollers: dict[str, Poller] = {}

    def _latest(self, name: str) -> Any:
        poller = self.pollers.get(name)
        return poller.latest.value if poller is not None and poller.latest is not None else None

    def sessions(self) -> SessionsView | None:
        """The last good evaluation's view (None before the first)."""
        return self._latest("sessions")

    def health(self) -> Health:
        """Of the sessions loop: `charging_session_store_up` and its last success."""
        poller = self.pollers.get("sessions")
        return poller.health if poller is not None else Health()

    def live(self) -> LiveView | None:
        """The last good read of the cars, the units' links and the prices (None before the first)."""
        return self._latest("live")

    def live_health(self) -> Health | None:
        poller = self.pollers.get("live")
        return poller.health if poller is not None else None

    def session_starts(self) -> dict[str, float]:
        """Unit key -> start of its open session, for smart charging."""
        view = self.sessions()
        return {session.key: session.start for session in view.in_progress} if view else {}


def soon(found: Mapping[str, Poller], name: str, interval: float) -> Callable[[], None]:
    """Wake the poller `name` within DEFERRED_RETRY_S (at most its interval): an import that left records
    for the live data to explain runs again in seconds, not at its next interval."""
    def wake_soon() -> None:
        asyncio.get_running_loop().call_later(min(DEFERRED_RETRY_S, interval), found[name].wake)
    return wake_soon


def pollers(config: Config, service: SessionService, ledger: Ledger, events: Events, log: logging.Logger,
            driver: SmartChargingDriver | None, tessie: Tessie | None,
            on_update: Callable[[], None], charges: VehicleChargeImport | None = None) -> dict[str, Poller]:
    """Every loop the configuration asks for, by name; `on_update` is called after each step (a render).
    A failing evaluation backs off to at most four intervals (a minute by default): Prometheus is local,
    and sessions and decisions should resume soon after it does."""
    interval = config.sessions.evaluation_interval
    found: dict[str, Poller] = {"sessions": Poller(
        "sessions", "evaluation", sessions_step(service, ledger, events), interval, timeout=STEP_TIMEOUT_S,
        backoff=Backoff(maximum=4 * interval), on_update=on_update, logger=log,
        meanwhile="sessions wait in Prometheus and are caught up from the watermark, nothing is lost")}
    # at the sessions' cadence: a car's state changes once per vehicle-exporter poll, a minute by default
    found["live"] = Poller(
        "live state", "read", live_step(service, events, config.vehicles.names), interval,
        timeout=STEP_TIMEOUT_S, backoff=Backoff(maximum=4 * interval), logger=log,
        meanwhile="the API serves the last state read")
    if tessie is not None:
        history = config.energy_site.charge_history_interval
        found["reconciliation"] = Poller(
            "charge history", "import",
            reconciliation_step(service, tessie, config.energy_site.site_id, ledger, log,
                                soon(found, "reconciliation", history)),
            history, timeout=STEP_TIMEOUT_S, backoff=Backoff(maximum=history, first=RETRY_S), on_update=on_update,
            logger=log, meanwhile="sessions are kept and matched when it answers")
    if charges is not None:
        every = config.sessions.vehicle_history_interval
        found["vehicle_charges"] = Poller(
            "vehicle charges", "import", vehicle_charges_step(charges, ledger, soon(found, "vehicle_charges", every)),
            every, timeout=STEP_TIMEOUT_S, backoff=Backoff(maximum=every, first=RETRY_S), on_update=on_update, logger=log,
            meanwhile="sessions are kept; the cars' charges are imported when it answers")
    if driver is not None:
        every = config.smart_charging.evaluation_interval
        found["smart_charging"] = Poller(
            "smart charging", "evaluation", smart_charging_step(driver, ledger), every, timeout=STEP_TIMEOUT_S,
            backoff=Backoff(maximum=4 * every), on_update=on_update, logger=log,
            meanwhile="vehicles are left as they are")
    return found
