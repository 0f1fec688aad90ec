"""Talking to a running `charging-sim` over its control API (`/sim/...`): faults, the clock, live
events, its state and its ground truth.

One client for every test and benchmark, so "inject a fault" or "jump the clock" means the same
request everywhere; the simulator documents the API in simulator/control.py.
"""
from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from suite.processes import ManagedProcess
from testkit.http import call_json, get_json

# The Tessie token the simulator accepts in tests and benchmarks (the security tests use their own).
SIM_TOKEN = "test-token-0123456789abcdef"


@dataclass
class Simulator:
    url: str
    charger_urls: dict[str, str]         # charger name -> its Wall Connector's base URL
    process: ManagedProcess | None = None
    token: str = SIM_TOKEN               # the Tessie token it accepts

    def charger_address(self, name: str) -> str:
        """host:port of one simulated Wall Connector, as TWC_CHARGERS and config.yaml name it."""
        return self.charger_urls[name].split("://", 1)[1].rstrip("/")

    def call(self, path: str, body: Any = None, method: str = "POST", timeout: float = 10) -> Any:
        """One control request that must succeed; its JSON answer."""
        return call_json(self.url + path, body, method, timeout)

    # --- faults ---------------------------------------------------------------------------------

    def add_fault(self, spec: dict[str, Any]) -> str:
        return self.call("/sim/faults", spec)["id"]

    def clear_faults(self) -> None:
        """Clear every fault (releases hung requests)."""
        self.call("/sim/faults", method="DELETE")

    def faults(self) -> list[dict[str, Any]]:
        return self.call("/sim/faults", method="GET")["faults"]

    def hits(self) -> dict[str, int]:
        """fault id -> requests it has answered."""
        return {fault["id"]: fault["hits"] for fault in self.faults()}

    # --- the clock ------------------------------------------------------------------------------

    def clock(self) -> dict[str, Any]:
        return get_json(f"{self.url}/sim/clock")

    def now(self) -> float:
        """The simulated clock, epoch seconds."""
        return float(self.clock()["now"])

    def offset(self) -> float:
        """Wall clock minus simulated clock (constant between jumps), from the midpoint of one request."""
        before = time.time()
        now = self.now()
        return (before + time.time()) / 2 - now

    def advance(self, seconds: float) -> dict[str, Any]:
        """Jump the simulated clock forward; its physics steps through the gap."""
        return self.call("/sim/clock", {"advance": seconds})

    def jump_to(self, when: float) -> None:
        """Move the simulated clock forward to `when` (never back)."""
        self.advance(max(0.0, when - self.now()))

    # --- events, state, truth -------------------------------------------------------------------

    def event(self, **event: Any) -> Any:
        """Apply one scenario event now, e.g. `event(vehicle="blue", plug_in="garage")`."""
        return self.call("/sim/events", event)

    def state(self) -> dict[str, Any]:
        return get_json(f"{self.url}/sim/state")

    def truth(self, **params: Any) -> dict[str, Any]:
        """Sessions (each with its bill), commands, events and prices (`prices_from`, `prices_to`)."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return get_json(f"{self.url}/sim/truth{query}", timeout=30)

    def commands(self, vin: str | None = None) -> list[str]:
        """The Tessie commands the simulator received, oldest first (of one car with `vin`)."""
        return [c["command"] for c in self.truth()["commands"] if vin is None or c["vin"] == vin]
