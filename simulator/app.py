"""Wiring: one main listener (Tessie + Fleet passthrough + ComEd + ``/sim``) and one listener
per reachable Wall Connector, all sharing one model, clock and fault registry.

    sim = SimulatorServer(load_scenario("demo.yaml"), port=0)
    await sim.start()            # sim.url, sim.charger_urls
    ...
    await sim.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from simulator import control
from simulator.clock import Clock, RealClock
from simulator.faults import FaultRegistry
from simulator.inject import classify_charger, classify_main, fault_middleware
from simulator.model import Model
from simulator.scenario import Scenario
from simulator.upstreams import comed, fleet, tessie, twc

DEFAULT_TOKEN = "simulator-token"
log = logging.getLogger("simulator")


def _auth_middleware(token: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Tessie token on Tessie and Fleet paths; /sim and ComEd's /api are open."""

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        path = request.path
        if path == "/api" or path == "/sim" or path.startswith("/sim/"):
            return await handler(request)
        return tessie.auth_error(request, token) or await handler(request)

    return middleware


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class SimulatorServer:
    """The whole simulator as one object; ``port=0`` / ``charger_port_base=0`` bind ephemerally."""

    def __init__(self, scenario: Scenario, host: str = "127.0.0.1", port: int = 0, charger_port_base: int = 0,
                 token: str = DEFAULT_TOKEN, speed: float | None = None, clock: Clock | None = None,
                 access_log: bool = False) -> None:
        if clock is None:
            origin = scenario.start if scenario.start is not None else float(math.floor(time.time()))
            clock = RealClock(origin, scenario.speed if speed is None else speed)
        self.scenario = scenario
        self.host, self.port, self.charger_port_base = host, port, charger_port_base
        self.clock = clock
        self.model = Model(scenario, clock)
        self.faults = FaultRegistry(self.model.origin)
        for spec in scenario.faults:
            self.faults.add(spec, clock.now())
        self.app = web.Application(middlewares=[
            fault_middleware(self.faults, clock, classify_main), _auth_middleware(token)])
        self.app.add_routes(control.routes(self.model, self.faults))
        self.app.add_routes(comed.routes(self.model))
        self.app.add_routes(fleet.routes(self.model))
        self.app.add_routes(tessie.routes(self.model))
        self.charger_apps: dict[str, web.Application] = {}
        for c in scenario.chargers:
            if c.reachable:
                app = web.Application(middlewares=[fault_middleware(self.faults, clock, classify_charger(c.name))])
                app.add_routes(twc.routes(self.model, c.name))
                self.charger_apps[c.name] = app
        self._access_log = logging.getLogger("simulator.access") if access_log else None
        self._runners: list[web.AppRunner] = []
        self._ticker: asyncio.Task[None] | None = None
        self.url = ""
        self.charger_urls: dict[str, str] = {}

    async def _serve(self, app: web.Application, port: int) -> int:
        runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=self._access_log,
                               access_log_format='%a "%r" %s %b %Tfs')
        await runner.setup()
        self._runners.append(runner)
        await web.TCPSite(runner, self.host, port).start()
        return int(runner.addresses[0][1])

    async def start(self) -> None:
        """Bind every listener; afterwards ``url`` and ``charger_urls`` are set."""
        try:
            self.url = _url(self.host, await self._serve(self.app, self.port))
            for i, (name, app) in enumerate(self.charger_apps.items()):
                port = self.charger_port_base + i if self.charger_port_base else 0
                self.charger_urls[name] = _url(self.host, await self._serve(app, port))
        except BaseException:
            await self.stop()
            raise
        if isinstance(self.clock, RealClock):
            self._ticker = asyncio.create_task(self._tick())
        log.info("simulator listening on %s (chargers: %s)", self.url,
                 ", ".join(f"{n}={u}" for n, u in self.charger_urls.items()) or "none")

    async def _tick(self, interval_s: float = 1.0) -> None:
        """Keep the model current even when nobody asks, so scheduled events are applied (and
        logged) on time and a late request never has to catch up a long stretch at once."""
        while True:
            await asyncio.sleep(interval_s)
            self.model.sync()

    async def stop(self) -> None:
        """Release hung requests and close every listener."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        self.faults.clear()
        runners, self._runners = self._runners, []
        for runner in reversed(runners):
            await runner.cleanup()
