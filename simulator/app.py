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
import html
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
from simulator.upstreams import comed, fleet, opower, tessie, twc

DEFAULT_TOKEN = "simulator-token"
log = logging.getLogger("simulator")


def _auth_middleware(token: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Tessie token on Tessie and Fleet paths; /sim and ComEd's /api and /rrtp/ServletFeed are open; the
    utility meter's login and Opower paths check their own bearer tokens (``simulator.upstreams.opower``)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        path = request.path
        if path in ("/", "/api", comed.SERVLET_PATH, "/sim") or path.startswith("/sim/") \
                or opower.is_opower_path(path):
            return await handler(request)
        return tessie.auth_error(request, token) or await handler(request)

    return middleware


INDEX = """<!doctype html>
<html><head><meta charset="utf-8"><title>charging-sim</title></head>
<body><h1>charging-sim</h1><p>{scenario}</p>
<h2>Control and ground truth (no token)</h2><ul>
<li><a href="sim/state">/sim/state</a> chargers and vehicles now</li>
<li><a href="sim/clock">/sim/clock</a> simulated time (POST {{"advance": seconds}} jumps ahead)</li>
<li><a href="sim/truth">/sim/truth</a> true sessions with their bills, commands, events, prices</li>
<li><a href="sim/bill">/sim/bill</a> this month's bill (?month=YYYY-MM)</li>
<li><a href="sim/faults">/sim/faults</a> injected faults (POST one, DELETE to clear)</li>
<li>POST /sim/events: one scenario event, applied now</li>
<li><a href="sim/meter">/sim/meter</a> the utility meter's true days and bills (?start=&amp;end=YYYY-MM-DD);
POST /sim/meter/revoke invalidates its refresh tokens</li></ul>
<h2>ComEd (no token)</h2><ul>
<li><a href="api?type=5minutefeed">/api?type=5minutefeed</a> 5-minute prices</li>
<li><a href="api?type=currenthouraverage">/api?type=currenthouraverage</a> the hour's average</li>
<li><a href="rrtp/ServletFeed?type=daynexttoday">/rrtp/ServletFeed?type=daynexttoday</a> and
<a href="rrtp/ServletFeed?type=daynexttomorrow">type=daynexttomorrow</a> day-ahead hourly prices (&amp;date=YYYYMMDD)</li></ul>
<h2>Tessie and the Fleet API (Authorization: Bearer TESSIE_ACCESS_TOKEN)</h2><ul>
<li>/vehicles, /{{vin}}/state, /{{vin}}/status, /{{vin}}/battery, POST /{{vin}}/command/{{command}}, POST /{{vin}}/wake</li>
<li>/api/1/products, /api/1/energy_sites/{{site}}/live_status, site_info, telemetry_history</li></ul>
<h2>ComEd's meter on Opower (its own login; reached through upstreams.opower_route)</h2><ul>
<li>GET /Pages/Login.aspx, /euazurecomed.onmicrosoft.com/B2C_1A_SignIn_Mobile/...
(Azure B2C login, MFA, tokens), /mobile/custom/auth/accounts</li>
<li>/ei/edge/apis/multi-account-v1/cws/cec/customers, DataBrowser-v1/cws/cost/utilityAccount/{{uuid}},
POST dsm-graphql-v1/cws/graphql (Bearer: an opower_connect access token)</li></ul>
<h2>Wall Connectors (local API, one address each)</h2><ul>
{chargers}</ul></body></html>
"""


def _index(server: "SimulatorServer") -> Callable[[web.Request], Awaitable[web.Response]]:
    async def index(request: web.Request) -> web.Response:
        chargers = "".join(
            f'<li>{html.escape(name)}: <a href="{html.escape(url)}/api/1/vitals">{html.escape(url)}/api/1/vitals</a>,'
            " /api/1/lifetime, /api/1/version, /api/1/wifi_status</li>\n" for name, url in server.charger_urls.items())
        scenario = f"{len(server.scenario.chargers)} Wall Connector(s), {len(server.scenario.vehicles)} vehicle(s)"
        return web.Response(text=INDEX.format(scenario=html.escape(scenario), chargers=chargers or "<li>none</li>"),
                            content_type="text/html")
    return index


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
        self.app.router.add_get("/", _index(self))
        self.app.add_routes(control.routes(self.model, self.faults))
        self.app.add_routes(comed.routes(self.model))
        if scenario.meter.enabled:
            self.app.add_routes(opower.routes(self.model))
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
