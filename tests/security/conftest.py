"""Shared pieces of the security tests: distinctive tokens, hostile vehicle names, a clean child
environment, price backfill, and one running stack (session scope, so every module that needs it
shares one set of processes).

The stack: the simulator (speaking Tessie with our own distinctive token), the four exporters,
the session store in live mode (commands are sent), and a real Prometheus scraping all five every
second, its TSDB seeded with a day of low 5-minute prices so the simulator's 50 c/kWh price is
above the stop threshold and the session store stops both cars within seconds. Every component
reads the same YAML file, whose `vehicles.names` hold HTML, quotes, newlines and formulas.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest
import yaml

from servicekit.config import SECRET_NAMES, reference_rows
from suite.processes import ManagedProcess, free_port, prometheus_process, wait_until
from suite.prometheus_config import render_prometheus_config
from tests.support import RunningPrometheus, get_json, read_port_file

# Hypothesis keeps caches in ./.hypothesis by default: keep them out of the checkout.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "twc-tests-hypothesis"))

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

# Every environment variable our configuration reads: children must not inherit the developer's.
CONFIG_ENV = {env for _, env, _, _ in reference_rows() if env} | set(SECRET_NAMES) | {"CHARGING_CONFIG"}


def child_env(**extra: str) -> dict[str, str]:
    base = {key: value for key, value in os.environ.items() if key not in CONFIG_ENV}
    return {**base, **extra}


def python_process(name: str, module: str, args: list[str], log: Path, env: Mapping[str, str],
                   ready_url: str | None = None) -> ManagedProcess:
    return ManagedProcess(name, [sys.executable, "-m", module, *args], log, env, ready_url)


def backfill_prices(directory: Path, labels: str, values: list[float], end: float, extra: str = "") -> Path:
    """A TSDB block of `electricity_price_5m_cents_per_kwh{labels}` (values[i] ends 300 s apart, the
    last one at `end`) and of the billed hourly prices they make (`electricity_price_billed_cents_per_kwh`,
    the mean of each complete clock hour, stamped with its end); `extra` appends more OpenMetrics lines
    (with their own # TYPE)."""
    name = "electricity_price_5m_cents_per_kwh"
    lines = [f"# TYPE {name} gauge"]
    start = end - (len(values) - 1) * 300
    lines += [f"{name}{{{labels}}} {value} {start + i * 300:.0f}" for i, value in enumerate(values)]
    hours: dict[float, list[float]] = {}
    for i, value in enumerate(values):
        hours.setdefault(-(-(start + i * 300) // 3600) * 3600, []).append(value)
    billed = "electricity_price_billed_cents_per_kwh"
    lines += [f"# TYPE {billed} gauge"] + [f"{billed}{{{labels}}} {sum(v) / 12!r} {hour:.0f}"
                                          for hour, v in sorted(hours.items()) if len(v) == 12]
    source = directory.with_suffix(".om")
    source.write_text("\n".join(lines) + "\n" + extra + "# EOF\n")
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", "--max-block-duration=240h",
                    str(source), str(directory)], check=True, timeout=60, capture_output=True)
    return directory


def start_prometheus(tmp: Path, targets: Mapping[str, list[str]], data: Path, name: str = "prometheus",
                     port: int | None = None) -> RunningPrometheus:
    """Prometheus scraping `targets` every second over `data`; started, not yet waited for."""
    config = tmp / f"{name}.yml"
    config.write_text(render_prometheus_config(targets, scrape_interval=1, evaluation_interval=1))
    port = port or free_port()
    process = prometheus_process(config, data, "127.0.0.1", port, log_path=tmp / f"{name}.log").start()
    return RunningPrometheus(f"http://127.0.0.1:{port}", process, data)


def call(url: str, body: Any = None, method: str = "POST", headers: Mapping[str, str] | None = None,
         data: bytes | None = None, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Any HTTP request; returns (status, headers, body) for error statuses too."""
    payload = data if data is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=payload, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@dataclass
class Stack:
    tmp: Path
    sim_url: str
    charger_urls: dict[str, str]
    prometheus: RunningPrometheus
    urls: dict[str, str]                      # component -> base URL (twc, fleet, vehicle, price, store)
    processes: dict[str, ManagedProcess]
    database: Path
    config: Path
    provoked: list[tuple[str, int, bytes]] = field(default_factory=list)   # (what, status, body)

    @property
    def store(self) -> str:
        return self.urls["store"]

    def sim(self, path: str, body: Any = None, method: str = "POST") -> Any:
        status, _, data = call(self.sim_url + path, body, method)
        assert status < 300, (path, status, data[:200])
        return json.loads(data or b"null")

    def logs(self) -> dict[str, bytes]:
        return {name: process.log_path.read_bytes() for name, process in self.processes.items()}


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("security-stack")
    processes: dict[str, ManagedProcess] = {}
    try:
        (tmp / "scenario.yaml").write_text(yaml.safe_dump(SCENARIO))
        port_file = tmp / "sim-ports.json"
        processes["sim"] = python_process(
            "charging-sim", "simulator",
            ["--scenario", str(tmp / "scenario.yaml"), "--listen", "127.0.0.1:0", "--charger-port-base", "0",
             "--port-file", str(port_file)], tmp / "sim.log", child_env(TESSIE_ACCESS_TOKEN=TESSIE_TOKEN)).start()
        ports = {name: free_port() for name in ("twc", "fleet", "vehicle", "price", "store", "prometheus")}
        # A day of low prices under the price exporter's own labels: one series, so the thresholds
        # are those of the history and the simulator's live price sits above the stop threshold.
        end = (time.time() // 300) * 300 - 600
        data = backfill_prices(tmp / "tsdb", f'instance="127.0.0.1:{ports["price"]}",job="price",provider="comed"',
                               [1.0 + i % 10 for i in range(300)], end)
        sim_ports = read_port_file(port_file)
        sim_url, chargers = sim_ports["url"], sim_ports["chargers"]
        database = tmp / "store.sqlite3"
        config = tmp / "config.yaml"
        config.write_text(yaml.safe_dump({
            "general": {"log_level": "debug"},
            "wall_connectors": {"chargers": [{"name": name, "address": url.split("://", 1)[1]}
                                             for name, url in chargers.items()], "vitals_interval": 1},
            "tessie": {"base_url": sim_url, "timeout": 2},
            "energy_site": {"live_status_interval": 1, "charge_history_interval": 1,
                            "unit_names": {DIN_GARAGE: "garage", DIN_DRIVEWAY: "driveway"}},
            "vehicles": {"poll_interval": 1, "names": NAMES},
            "price": {"base_url": sim_url, "poll_interval": 1, "timeout": 2},
            "sessions": {"evaluation_interval": 1, "catch_up": "10m", "database": str(database)},
            "smart_charging": {"control_enabled": True, "evaluation_interval": 1, "lookback_days": 1,
                               "min_history_days": 0.5},
            "prometheus": {"url": f"http://127.0.0.1:{ports['prometheus']}"},
        }, allow_unicode=True))
        # Tessie's 401 for the red car's first stop command, before anything can send it.
        call(sim_url + "/sim/faults", {"target": f"tessie/{VIN_RED}/command/stop_charging", "kind": "status",
                                       "status": 401, "count": 1})
        (tmp / ".secrets").write_text(f"TESSIE_ACCESS_TOKEN={TESSIE_TOKEN}\nSMART_CHARGING_API_TOKEN={API_TOKEN}\n")
        modules = {"twc": "exporters.twc", "fleet": "exporters.fleet", "vehicle": "exporters.vehicle",
                   "price": "exporters.price", "store": "session_store"}
        for name, module in modules.items():
            url = f"http://127.0.0.1:{ports[name]}"
            # the store reads its secrets from a file, the exporters from the environment
            secrets = ["--secrets", str(tmp / ".secrets") if name == "store" else os.devnull]
            env = child_env() if name == "store" else child_env(TESSIE_ACCESS_TOKEN=TESSIE_TOKEN)
            processes[name] = python_process(
                name, module, ["--config", str(config), *secrets, "--listen", f"127.0.0.1:{ports[name]}"],
                tmp / f"{name}.log", env, f"{url}/-/healthy").start()
        prometheus = start_prometheus(tmp, {"twc": [f"127.0.0.1:{ports['twc']}"],
                                            "fleet": [f"127.0.0.1:{ports['fleet']}"],
                                            "vehicle": [f"127.0.0.1:{ports['vehicle']}"],
                                            "price": [f"127.0.0.1:{ports['price']}"],
                                            "session_store": [f"127.0.0.1:{ports['store']}"]},
                                      data, port=ports["prometheus"])
        processes["prometheus"] = prometheus.process
        for process in processes.values():
            if process.ready_url:
                process.wait_ready(30)
        prometheus.process.wait_ready(30)
        urls = {name: f"http://127.0.0.1:{ports[name]}" for name in modules}
        yield Stack(tmp, sim_url, chargers, prometheus, urls, processes, database, config)
    finally:
        for process in reversed(list(processes.values())):
            process.stop()


def wait_for_commands(stack: Stack, timeout: float = 40) -> list[dict]:
    """Until the store has sent the blue car's stop and failed the red car's (Tessie's 401)."""
    found: list[dict] = []

    def done() -> bool:
        found[:] = get_json(f"{stack.store}/api/smart-charging/actions?limit=100")["actions"]
        outcomes = {(a["vin"], a["action"], a["outcome"]) for a in found}
        return {(VIN_BLUE, "stop", "sent"), (VIN_RED, "stop", "failed")} <= outcomes
    wait_until(done, timeout, 0.2, "the live stop commands (one sent, one refused by Tessie)")
    return found

