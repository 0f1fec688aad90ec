"""The running suite the security tests attack: distinctive tokens, hostile vehicle names, live mode.

The stack: the simulator (speaking Tessie with our own distinctive token), the four exporters, the
session store in live mode (commands are sent), charging-meter logged in to the simulator's utility
portal (its refresh token is a secret too), and a real Prometheus scraping all six every second, its TSDB seeded with a day of low 5-minute prices so the simulator's 50 c/kWh price is
above the stop threshold and the session store stops both cars within seconds. Every component
reads the same YAML file, whose `vehicles.names` hold HTML, quotes, newlines and formulas.
"""
from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from suite.processes import ManagedProcess, wait_until
from testkit.backfill import price_blocks
from testkit.env import clean_env
from testkit.http import get_json
from testkit.ports import free_port
from testkit.prometheus import RunningPrometheus
from testkit.simulator import Simulator
from testkit.stack import Stack

# Distinctive, and with characters that URL-encoding changes, so the encoded forms differ.
TESSIE_TOKEN = "tsk-CANARY-tessie/7f3a+9c2e=Q41d"
API_TOKEN = "api-CANARY-override/5b1e+77aa=Zx9"

VIN_BLUE = "5YJ3E1EA7KF000071"
VIN_RED = "5YJ3E1EA7KF000072"
DIN_GARAGE = "1457768-02-G--PGT00000000071"
DIN_DRIVEWAY = "1457768-02-G--PGT00000000072"
SCRIPT_NAME = "<script>alert(1)</script> \"Blue\" & 'co'"
FORMULA_NAME = "=HYPERLINK(\"http://evil.example/\",\"x\")\nline two \\ end"
NAMES = {VIN_BLUE: SCRIPT_NAME, VIN_RED: FORMULA_NAME}
STOP_PRICE = 50.0                      # the simulator's price during the whole run, cents per kWh

SCENARIO = {
    "start": "now",
    "seed": 7,
    "site": {"energy_site_id": 1689500000123771, "site_name": "Home"},
    "chargers": [{"name": "garage", "serial": "PGT00000000071", "part_number": "1457768-02-G", "role": "standalone"},
                 {"name": "driveway", "serial": "PGT00000000072", "part_number": "1457768-02-G",
                  "role": "standalone"}],
    "vehicles": [{"vin": VIN_BLUE, "name": "blue", "display_name": "Blue", "battery_kwh": 60, "soc": 30,
                  "charge_limit": 90, "max_power_kw": 7.7, "ramp": 0, "taper_pct": 0,
                  "target_id": "0b6c3f8e-6a51-4b6e-9d3a-6f1f2c9a0a71"},
                 {"vin": VIN_RED, "name": "red", "display_name": "Red", "battery_kwh": 60, "soc": 30,
                  "charge_limit": 90, "max_power_kw": 7.7, "ramp": 0, "taper_pct": 0,
                  "target_id": "0b6c3f8e-6a51-4b6e-9d3a-6f1f2c9a0a72"}],
    "prices": {"seed": 3, "history_days": 2, "spikes": [{"from": "-2d", "to": "1d", "price": STOP_PRICE}]},
    "events": [{"at": "1s", "vehicle": "blue", "plug_in": "garage"},
               {"at": "1s", "vehicle": "red", "plug_in": "driveway"}],
    "telemetry": {"delay": "1h"},
}
MODULES = {"twc": "exporters.twc", "fleet": "exporters.fleet", "vehicle": "exporters.vehicle",
           "price": "exporters.price", "store": "session_store", "meter": "meter"}
METER_LOGIN = "demo@example.com\ndemo-password\n123456\n"   # the simulator's portal user, password and MFA code


@dataclass
class SecurityStack:
    tmp: Path
    sim: Simulator
    prometheus: RunningPrometheus
    urls: dict[str, str]                      # component -> base URL (twc, fleet, vehicle, price, store)
    processes: dict[str, ManagedProcess]
    database: Path
    config: Path
    meter_login: Path
    provoked: list[tuple[str, int, bytes]] = field(default_factory=list)   # (what, status, body)

    @property
    def store(self) -> str:
        return self.urls["store"]

    def logs(self) -> dict[str, bytes]:
        return {name: process.log_path.read_bytes() for name, process in self.processes.items()}


@contextmanager
def security_stack(tmp: Path) -> Iterator[SecurityStack]:
    """The stack above in `tmp`, every process stopped on leaving."""
    with Stack(tmp) as stack:
        sim = stack.simulator(SCENARIO, token=TESSIE_TOKEN, name="sim")
        ports = {name: free_port() for name in (*MODULES, "prometheus")}
        # A day of low prices under the price exporter's own labels: one series, so the thresholds
        # are those of the history and the simulator's live price sits above the stop threshold.
        end = (time.time() // 300) * 300 - 600
        data = price_blocks(tmp / "tsdb", f'instance="127.0.0.1:{ports["price"]}",job="price",provider="comed",site="home"',
                            [1.0 + i % 10 for i in range(300)], end)
        database = tmp / "store.sqlite3"
        config = tmp / "config.yaml"
        config.write_text(yaml.safe_dump({
            "general": {"log_level": "debug"},
            "wall_connectors": {"chargers": [{"name": name, "address": sim.charger_address(name)}
                                             for name in sim.charger_urls], "vitals_interval": 1},
            "tessie": {"base_url": sim.url, "timeout": 2},
            "energy_site": {"live_status_interval": 1, "charge_history_interval": 1,
                            "unit_names": {DIN_GARAGE: "garage", DIN_DRIVEWAY: "driveway"}},
            "vehicles": {"poll_interval": 1, "names": NAMES},
            "price": {"base_url": sim.url, "poll_interval": 1, "timeout": 2},
            "sessions": {"evaluation_interval": 1, "catch_up": "10m", "database": str(database)},
            "smart_charging": {"control_enabled": True, "evaluation_interval": 1, "lookback_days": 1,
                               "min_history_days": 0.5},
            "meter": {"base_url": sim.url, "credential_file": str(tmp / "meter_login.json"),
                      "prometheus_data_dir": str(data), "poll_interval": 1},
            "prometheus": {"url": f"http://127.0.0.1:{ports['prometheus']}"},
        }, allow_unicode=True))
        # Tessie's 401 for the red car's first stop command, before anything can send it.
        sim.add_fault({"target": f"tessie/{VIN_RED}/command/stop_charging", "kind": "status", "status": 401,
                       "count": 1})
        (tmp / ".secrets").write_text(f"TESSIE_ACCESS_TOKEN={TESSIE_TOKEN}\nSMART_CHARGING_API_TOKEN={API_TOKEN}\n")
        setup = subprocess.run([sys.executable, "-m", "meter", "--setup", "--config", str(config), "--secrets",
                                str(tmp / ".secrets")], input=METER_LOGIN, capture_output=True, text=True, timeout=60,
                               env=clean_env())
        assert setup.returncode == 0, setup.stderr
        components = {}
        for name, module in MODULES.items():
            # the store reads its secrets from a file, the exporters from the environment
            secrets = str(tmp / ".secrets") if name == "store" else "/dev/null"
            components[name] = stack.component(
                name, module, port=ports[name], config=config, args=["--secrets", secrets], wait=False,
                env={} if name == "store" else {"TESSIE_ACCESS_TOKEN": TESSIE_TOKEN})
        jobs = {"twc": "twc", "fleet": "fleet", "vehicle": "vehicle", "price": "price", "session_store": "store",
                "meter": "meter"}
        prometheus = stack.prometheus({job: [components[name].address] for job, name in jobs.items()},
                                      data_dir=data, port=ports["prometheus"], wait=False)
        for component in components.values():
            component.process.wait_ready(30)
        prometheus.process.wait_ready(30)
        processes = {"sim": sim.process, **{name: c.process for name, c in components.items()},
                     "prometheus": prometheus.process}
        yield SecurityStack(tmp, sim, prometheus, {name: c.url for name, c in components.items()}, processes,
                            database, config, tmp / "meter_login.json")


def wait_for_commands(stack: SecurityStack, timeout: float = 40) -> list[dict[str, Any]]:
    """Until the store has sent the blue car's stop and failed the red car's (Tessie's 401)."""
    found: list[dict[str, Any]] = []

    def done() -> bool:
        found[:] = get_json(f"{stack.store}/api/smart-charging/actions?limit=100")["actions"]
        outcomes = {(a["vin"], a["action"], a["outcome"]) for a in found}
        return {(VIN_BLUE, "stop", "sent"), (VIN_RED, "stop", "failed")} <= outcomes
    wait_until(done, timeout, 0.2, "the live stop commands (one sent, one refused by Tessie)")
    return found
