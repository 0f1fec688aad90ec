"""Every route that changes something needs the bearer token, and smart charging never sends two
commands for one vehicle within `min_interval`, however the price flaps.

Routes are enumerated from the aiohttp apps the entry points themselves assemble (their AppRunner
is recorded while they run in-process), so a write route added anywhere fails here until it is
protected, or listed in EXEMPT with a reason and described in the OpenAPI document.

Exempt as a test tool: the simulator's control API (`/sim/...`: faults, clock, events). It exists
for tests and demo mode, binds loopback by default, and stands in for third-party services; its
other write routes (the simulated Tessie commands) do require the simulated Tessie token.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
import time
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

import session_store.__main__ as store_main
from exporters import fleet, price, twc, vehicle
from upstreams.tessie import Tessie
from servicekit import runtime
from servicekit.config import Listen, Secret, load
from servicekit.upstream import Upstream, UpstreamMetrics
from session_store.openapi import OPENAPI
from session_store.prometheus import Prometheus
from session_store.smart_loop import SmartChargingDriver, TessieCommands
from session_store.storage import Storage
from simulator.app import SimulatorServer
from simulator.scenario import load_scenario
from testkit import ROOT
from testkit.backfill import price_blocks
from testkit.ports import free_port
from testkit.security import API_TOKEN
from testkit.simulator import SIM_TOKEN

pytestmark = pytest.mark.integration
READ = {"GET", "HEAD"}
DEAD = "http://127.0.0.1:9"          # nothing listens there: upstream calls fail fast
EXEMPT: dict[tuple[str, str, str], str] = {}   # (app, method, path) -> why it needs no token (none today)


def concrete(path: str) -> str:
    """A request path for a route pattern: every {parameter} becomes 1."""
    return re.sub(r"\{[^}]+\}", "1", path)


def writes(app: web.Application) -> list[tuple[str, str]]:
    """(method, path pattern) of every route that is not a plain read."""
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix") or "?"
        if route.method not in READ:
            found.append((route.method, path))
    return sorted(set(found))


class Recorder:
    """Records every aiohttp app handed to an AppRunner while it is installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.apps: list[web.Application] = []
        apps = self.apps
        real = web.AppRunner

        class RecordingRunner(real):  # type: ignore[misc, valid-type]
            def __init__(self, app: web.Application, *args: Any, **kwargs: Any) -> None:
                apps.append(app)
                super().__init__(app, *args, **kwargs)
        monkeypatch.setattr(web, "AppRunner", RecordingRunner)


@contextlib.asynccontextmanager
async def run_store(tmp: Path, recorder: Recorder,
                    secrets: dict[str, str]) -> AsyncIterator[tuple[str, web.Application]]:
    """The session store's own `run`, in-process, until the caller is done with it."""
    config = load({"sessions": {"database": str(tmp / "store.sqlite3"), "evaluation_interval": 1},
                   "energy_site": {"enabled": False}, "prometheus": {"url": DEAD}}, {}, secrets)
    port, stop, before = free_port(), asyncio.Event(), len(recorder.apps)
    task = asyncio.create_task(store_main.run(config, "127.0.0.1", port, logging.getLogger("store"), stop))
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        async def healthy() -> bool:
            try:
                async with http.get(f"{url}/-/healthy") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False
        deadline = time.monotonic() + 20
        while not await healthy():
            assert not task.done() and time.monotonic() < deadline, "the session store did not start"
            await asyncio.sleep(0.05)
        try:
            yield url, recorder.apps[before]
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)


def database_rows(path: Path) -> list[str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return list(db.iterdump())


async def test_every_write_route_of_the_session_store_needs_the_bearer_token(tmp_path: Path, monkeypatch) -> None:
    recorder = Recorder(monkeypatch)
    configured = tmp_path / "configured"
    async with aiohttp.ClientSession() as http:
        async with run_store(configured, recorder, {"SMART_CHARGING_API_TOKEN": API_TOKEN}) as (url, app):
            routes = writes(app)
            assert ("POST", "/api/smart-charging/override") in routes, "enumeration found the known write route"
            before = database_rows(configured / "store.sqlite3")
            refusals = {}
            for method, path in routes:
                if ("session-store", method, path) in EXEMPT:
                    continue
                spec = OPENAPI["paths"].get(path, {}).get(method.lower() if method != "*" else "post")
                assert spec is not None, f"{method} {path} is not in the OpenAPI description"
                assert spec.get("security") == [{"bearer": []}], f"{method} {path}: not documented as needing the token"
                for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {API_TOKEN}x"},
                                {"Authorization": f"Bearer {API_TOKEN[:-1]}"}, {"Authorization": f"Basic {API_TOKEN}"},
                                {"Authorization": API_TOKEN}, {"Authorization": f"bearer  {API_TOKEN} extra"}):
                    async with http.request("POST" if method == "*" else method, url + concrete(path),
                                            json={"vin": "5YJ3E1EA7KF000001", "until": time.time() + 3600},
                                            headers=headers) as response:
                        refusals[(method, path, str(headers))] = response.status
            assert set(refusals.values()) == {401}, refusals
            assert database_rows(configured / "store.sqlite3") == before, "a refused request changed the database"

        async with run_store(tmp_path / "unconfigured", recorder, {}) as (url, app):
            for method, path in writes(app):
                if ("session-store", method, path) in EXEMPT:
                    continue
                async with http.request("POST" if method == "*" else method, url + concrete(path), json={},
                                        headers={"Authorization": "Bearer anything"}) as response:
                    assert response.status == 403, (method, path, response.status)


async def test_the_exporters_have_no_write_routes(tmp_path: Path, monkeypatch) -> None:
    recorder = Recorder(monkeypatch)
    config = load({"tessie": {"base_url": DEAD}, "price": {"base_url": DEAD}}, {}, {"TESSIE_ACCESS_TOKEN": "t"})
    log = logging.getLogger("exporters")
    for name, module in {"twc-exporter": twc, "fleet-exporter": fleet, "vehicle-exporter": vehicle,
                         "price-exporter": price}.items():
        stop, started = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(runtime.serve(name, "", Listen("127.0.0.1", 0), module.parts_factory(config, log), log,
                                                 stop=stop, ready=lambda port: started.set()))
        await asyncio.wait_for(started.wait(), 20)
        app = recorder.apps[-1]
        stop.set()
        await asyncio.wait_for(task, 20)
        unprotected = [(m, p) for m, p in writes(app) if (name, m, p) not in EXEMPT]
        assert unprotected == [], f"{name}: write routes without a token: {unprotected}"
        assert {route.method for route in app.router.routes()} <= READ


# The utility portal's login (Azure B2C) and Opower: their own credentials (a login transaction, its CSRF
# token, bearer tokens), never the Tessie token.
METER_PORTAL = re.compile(r"^/(ei|mobile|Pages)/|\.onmicrosoft\.com/")


async def test_the_simulator_writes_outside_its_control_api_need_the_tessie_token() -> None:
    sim = SimulatorServer(load_scenario(ROOT / "simulator" / "scenarios" / "demo.yaml"), token=SIM_TOKEN)
    routes = writes(sim.app)
    control = [(m, p) for m, p in routes if p.startswith("/sim/")]
    portal = [(m, p) for m, p in routes if METER_PORTAL.search(p)]
    others = [(m, p) for m, p in routes if not p.startswith("/sim/") and (m, p) not in portal]
    assert control and others and portal, routes
    async with TestClient(TestServer(sim.app)) as client:
        for method, path in others:
            response = await client.request("POST" if method == "*" else method, concrete(path))
            assert response.status == 401, (method, path, response.status)
        for method, path in portal:   # without the login flow's state nothing is accepted
            response = await client.request("POST" if method == "*" else method, concrete(path),
                                            headers={"Authorization": f"Bearer {SIM_TOKEN}"})
            assert 400 <= response.status < 500, (method, path, response.status)


# --- the command rate limit under a flapping price ---------------------------------------------------------

VIN = "7SAYGDEE1PA000001"          # the demo scenario's Model Y, on the garage unit
DIN = "1457768-01-G--PGT12345678901"
MIN_INTERVAL = 600.0
STEP = 60.0                         # one evaluation a minute, the default


def market(tmp: Path, name: str, price_now: float, power: float) -> Path:
    """Two days of 5-minute prices 0..99 and their hourly means (billed stop threshold ~79, resume ~68), the
    current price (5-minute and projected hour alike), and the garage unit with the Model Y plugged in,
    drawing `power`."""
    now = time.time()
    recent = [now - 240 + 15 * k for k in range(15)]
    price_labels = 'instance="p:1",job="price",provider="comed"'
    unit = f'din="{DIN}",instance="f:1",job="fleet",unit="garage"'
    extra = ""
    for metric, labels, value in (("electricity_price_cents_per_kwh", price_labels, price_now),
                                  ("electricity_price_hour_projected_cents_per_kwh", price_labels, price_now),
                                  ("electricity_price_interval_end_timestamp_seconds", price_labels, now - 300),
                                  ("tesla_wall_connector_power_watts", unit, power),
                                  ("tesla_wall_connector_vehicle_info", f'{unit},vehicle="Model Y",vin="{VIN}"', 1)):
        extra += f"# TYPE {metric} gauge\n" + "".join(f"{metric}{{{labels}}} {value} {t:.0f}\n" for t in recent)
    return price_blocks(tmp / name, price_labels, [float(i % 100) for i in range(577)], (now // 300) * 300 - 300,
                        extra)


async def test_min_interval_holds_commands_to_one_per_interval_while_the_price_flaps(
        tmp_path: Path, start_simulator, start_prometheus) -> None:
    """Real SmartChargingDriver in live mode, real Prometheus (one TSDB per market state), the simulator's
    Tessie: the price crosses both thresholds at every evaluation for 40 minutes of (simulated) time."""
    sim = start_simulator("demo")
    states = {"high, charging": (95.0, 11000.0), "high, stopped": (95.0, 0.0), "low": (1.0, 0.0)}
    servers = {state: start_prometheus({}, data_dir=market(tmp_path, f"tsdb-{i}", *values), name=f"prom-{i}",
                                       wait=False)
               for i, (state, values) in enumerate(states.items())}
    for server in servers.values():
        server.process.wait_ready(30)
    config = load({"smart_charging": {"control_enabled": True, "lookback_days": 2, "min_history_days": 1,
                                      "max_price_age": "30d", "min_interval": MIN_INTERVAL}},
                  {}, {"TESSIE_ACCESS_TOKEN": SIM_TOKEN})
    started = time.time()
    offset = [0.0]
    async with aiohttp.ClientSession() as http:
        await http.post(f"{sim.url}/sim/events", json={"vehicle": "model_y", "plug_in": "garage"})
        await http.post(f"{sim.url}/sim/clock", json={"advance": 120})

        def prometheus(server: Any) -> Prometheus:
            return Prometheus(Upstream(http, UpstreamMetrics("p", CollectorRegistry(), ()), timeout=10), server.url)
        clients = {state: prometheus(server) for state, server in servers.items()}
        tessie = Tessie(Upstream(http, UpstreamMetrics("t", CollectorRegistry(), ()), timeout=10), sim.url,
                        Secret(SIM_TOKEN))
        smart = SmartChargingDriver(config, Storage(tmp_path / "s.db"), clients["high, charging"], TessieCommands(tessie),
                             logging.getLogger("smart"), clock=lambda: started + offset[0])
        records = []
        for i in range(40):
            offset[0] = i * STEP
            async with http.get(f"{sim.url}/sim/state") as response:
                charging = (await response.json())["vehicles"][VIN]["charging_state"] == "Charging"
            high = i % 2 == 0
            state = "high, charging" if high and charging else "high, stopped" if high else "low"
            smart.prometheus = clients[state]
            records += await smart.evaluate()
        async with http.get(f"{sim.url}/sim/truth") as response:
            commands = [c["command"] for c in (await response.json())["commands"] if c["vin"] == VIN]
    sent = [(r.t - started, r.action) for r in records if r.outcome == "sent"]
    assert [action for _, action in sent] == ["stop", "start", "stop", "start"], sent
    assert commands == ["stop_charging", "start_charging", "stop_charging", "start_charging"], commands
    gaps = [later - earlier for (earlier, _), (later, _) in zip(sent, sent[1:])]
    assert all(MIN_INTERVAL <= gap <= MIN_INTERVAL + 2 * STEP for gap in gaps), gaps
    held = [r for r in records if r.reason.startswith("min_interval")]
    assert len(held) >= 3, "the flapping price asked for commands the interval held back"
