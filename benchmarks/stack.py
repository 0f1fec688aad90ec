"""The real processes the end-to-end benchmarks start, on free loopback ports in a temporary directory.

Same binaries and entry points as the tests (`python -m simulator`, `python -m exporters.fleet`, ...,
the installed Prometheus), started through `suite.processes`. `Stack.close()` stops every process
(SIGTERM, then SIGKILL) whatever happened; logs are kept and their directory printed only when the
benchmark failed.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from suite.processes import ManagedProcess, free_port, prometheus_process, wait_until
from suite.prometheus_config import render_prometheus_config
from tests.support import RunningPrometheus, get_json, read_port_file

TOKEN = "bench-token-0123456789abcdef"
# Settings the benchmarks choose themselves; nothing from the caller's environment may leak in.
ENV_PREFIXES = ("TWC_", "TESSIE_", "SMART_", "LOCAL_TWC", "FLEET_", "COMED_", "WALL_CONNECTOR", "VEHICLE_NAMES",
                "TARGET_ID", "ENERGY_SITE", "PRICE_", "SESSION_STORE", "PROMETHEUS_URL", "CHARGING_")


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIXES)}
    return {**env, **(extra or {})}


def post_json(url: str, body: Mapping[str, Any], timeout: float = 10.0) -> Any:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def rss_mib(pid: int) -> float | None:
    """Resident memory of a process (VmRSS in /proc/<pid>/status), MiB; None once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


class RssSampler:
    """Samples VmRSS of named processes every `interval` s in a thread; `mark()` starts a new phase."""

    def __init__(self, pids: Mapping[str, int], interval: float = 0.25) -> None:
        self.pids = dict(pids)
        self.interval = interval
        self.phase = "start"
        self.samples: dict[str, dict[str, list[float]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        phase = self.phase
        for name, pid in self.pids.items():
            value = rss_mib(pid)
            if value is not None:
                self.samples.setdefault(phase, {}).setdefault(name, []).append(value)

    def mark(self, phase: str) -> None:
        self.sample()
        self.phase = phase
        self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sample()

    def of(self, phase: str, name: str) -> list[float]:
        return self.samples.get(phase, {}).get(name, [])


@dataclass
class Simulator:
    url: str
    chargers: dict[str, str]
    process: ManagedProcess

    def clock(self) -> dict[str, Any]:
        return get_json(f"{self.url}/sim/clock")

    def now(self) -> float:
        return float(self.clock()["now"])

    def offset(self) -> float:
        """Wall clock minus simulated clock (constant between jumps), from the midpoint of one request."""
        before = time.time()
        now = self.now()
        return (before + time.time()) / 2 - now

    def truth(self, query: str = "") -> dict[str, Any]:
        return get_json(f"{self.url}/sim/truth{query}", timeout=30)

    def jump_to(self, when: float) -> None:
        post_json(f"{self.url}/sim/clock", {"advance": max(0.0, when - self.now())})


@dataclass
class Stack:
    """Processes of one benchmark; `close(ok)` stops them all and removes the directory if ok."""

    name: str
    log: Callable[[str], None]
    workdir: Path = field(init=False)
    processes: list[ManagedProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix=f"bench-{self.name}-"))

    def pid(self, name: str) -> int:
        process = next(p for p in self.processes if p.name == name)
        assert process.process is not None
        return process.process.pid

    def simulator(self, scenario: Mapping[str, Any] | Path) -> Simulator:
        path = scenario if isinstance(scenario, Path) else self.workdir / "scenario.yaml"
        if not isinstance(scenario, Path):
            path.write_text(yaml.safe_dump(dict(scenario), sort_keys=False))
        port_file = self.workdir / "sim-ports.json"
        process = ManagedProcess("simulator", [sys.executable, "-m", "simulator", "--scenario", str(path),
                                               "--listen", "127.0.0.1:0", "--charger-port-base", "0",
                                               "--port-file", str(port_file)],
                                 self.workdir / "simulator.log", clean_env({"TESSIE_ACCESS_TOKEN": TOKEN}))
        self.processes.append(process.start())
        ports = read_port_file(port_file, 30)
        return Simulator(ports["url"], ports["chargers"], process)

    def component(self, name: str, module: str, env: Mapping[str, str] | None = None,
                  config: Mapping[str, Any] | None = None, ready_timeout: float = 60.0,
                  port: int | None = None) -> tuple[ManagedProcess, str]:
        """One of our entry points (on a free port unless given), ready once /-/healthy answers; returns it
        and its base URL."""
        port = port or free_port()
        command = [sys.executable, "-m", module, "--listen", f"127.0.0.1:{port}"]
        if config is not None:
            path = self.workdir / f"{name}.yaml"
            path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
            command += ["--config", str(path)]
        process = ManagedProcess(name, command, self.workdir / f"{name}.log", clean_env(env),
                                 f"http://127.0.0.1:{port}/-/healthy")
        self.processes.append(process.start())
        process.wait_ready(ready_timeout)
        return process, f"http://127.0.0.1:{port}"

    def prometheus(self, targets: Mapping[str, Sequence[str]], *, scrape_interval: float = 15,
                   data_dir: Path | None = None, config_text: str | None = None,
                   name: str = "prometheus", port: int | None = None) -> RunningPrometheus:
        """The installed Prometheus; its configuration is `<workdir>/<name>.yml` (rewrite it and SIGHUP to reload)."""
        port = port or free_port()
        config = self.workdir / f"{name}.yml"
        config.write_text(config_text or render_prometheus_config(
            targets, scrape_interval=scrape_interval, evaluation_interval=scrape_interval))
        data = data_dir or self.workdir / f"{name}-data"
        process = prometheus_process(config, data, "127.0.0.1", port, log_path=self.workdir / f"{name}.log")
        process.name = name
        self.processes.append(process.start())
        process.wait_ready(60)
        return RunningPrometheus(f"http://127.0.0.1:{port}", process, data)

    def stop(self, process: ManagedProcess, timeout: float = 10.0) -> None:
        process.stop(timeout)
        if process in self.processes:
            self.processes.remove(process)

    def close(self, ok: bool) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        if ok:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            self.log(f"  logs kept in {self.workdir}")


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    wait_until(condition, timeout, interval, what)
