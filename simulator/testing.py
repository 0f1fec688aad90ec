"""Test harness: run the simulator on ephemeral ports with a manual clock and a client session.

    async with simulate(load_scenario(path("constant"))) as h:
        h.advance(600)
        status, vitals = await h.get_json(h.charger_urls["garage"] + "/api/1/vitals")

Time only moves when a test calls ``advance`` (no sleeping to synchronise). The client uses
one connection per request so a fault that resets a connection never makes aiohttp silently
retry on a pooled one.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from simulator.app import SimulatorServer
from simulator.clock import ManualClock
from simulator.scenario import Scenario, load_scenario

TEST_TOKEN = "test-token"


@dataclass
class Harness:
    sim: SimulatorServer
    clock: ManualClock
    session: aiohttp.ClientSession
    token: str

    @property
    def url(self) -> str:
        return self.sim.url

    @property
    def charger_urls(self) -> dict[str, str]:
        return self.sim.charger_urls

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    async def request(self, method: str, url: str, *, auth: bool = True, **kwargs: Any) -> tuple[int, bytes, Any]:
        """(status, raw body, response headers) for an absolute URL or a path on the main port."""
        full = url if url.startswith("http") else self.url + url
        headers = {**(self.headers if auth else {}), **kwargs.pop("headers", {})}
        async with self.session.request(method, full, headers=headers, **kwargs) as response:
            return response.status, await response.read(), response.headers

    async def get_json(self, url: str, **kwargs: Any) -> tuple[int, Any]:
        status, body, _ = await self.request("GET", url, **kwargs)
        return status, json.loads(body) if body else None

    async def post_json(self, url: str, payload: Any = None, **kwargs: Any) -> tuple[int, Any]:
        status, body, _ = await self.request("POST", url, json=payload, **kwargs)
        return status, json.loads(body) if body else None


@asynccontextmanager
async def simulate(scenario: Scenario | Mapping[str, Any] | str | Path, *, token: str = TEST_TOKEN,
                   origin: float | None = None) -> AsyncIterator[Harness]:
    """A started simulator with a ``ManualClock`` at the scenario's start (or ``origin``/now)."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    start = origin if origin is not None else scenario.start
    clock = ManualClock(start if start is not None else float(math.floor(time.time())))
    sim = SimulatorServer(scenario, token=token, clock=clock)
    await sim.start()
    try:
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            yield Harness(sim, clock, session, token)
    finally:
        await sim.stop()
