"""Fixtures that start real Prometheus, Alertmanager and the simulator on free loopback ports."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import pytest

from suite.processes import (
    ManagedProcess, alertmanager_process, component_process, free_port, prometheus_process,
)
from suite.prometheus_config import render_prometheus_config
from tests.support import RunningPrometheus, read_port_file

ROOT = Path(__file__).resolve().parent.parent
SIM_TOKEN = "test-token-0123456789abcdef"


def pytest_configure(config: pytest.Config) -> None:
    """No test reads the user's own files: the token a user keeps in ./.secrets or the chargers in
    ./config.yaml would change what tests see, and could reach a real car or charger. Every loader in
    this process and in the processes tests start reads empty files instead; a test that wants a
    configuration or a secret passes it (or sets these variables itself)."""
    os.environ["CHARGING_SECRETS"] = os.devnull
    os.environ["CHARGING_CONFIG"] = os.devnull


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Callable[..., RunningPrometheus]]:
    """Start a real Prometheus scraping the given jobs every second; stopped after the test."""
    started: list[ManagedProcess] = []

    def start(targets: Mapping[str, Sequence[str]], *, scrape_interval: float = 1, rule_files: Sequence[str] = (),
              alertmanagers: Sequence[str] = (), extra: Sequence[str] = (), data_dir: Path | None = None,
              config_text: str | None = None) -> RunningPrometheus:
        index = len(started)
        config = tmp_path / f"prometheus-{index}.yml"
        config.write_text(config_text or render_prometheus_config(
            targets, scrape_interval=scrape_interval, evaluation_interval=scrape_interval, rule_files=rule_files,
            alertmanagers=alertmanagers))
        port = free_port()
        data = data_dir or tmp_path / f"prometheus-data-{index}"
        process = prometheus_process(config, data, "127.0.0.1", port, log_path=tmp_path / f"prometheus-{index}.log",
                                     extra=extra).start()
        started.append(process)
        process.wait_ready(30)
        return RunningPrometheus(f"http://127.0.0.1:{port}", process, data)

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def start_alertmanager(tmp_path: Path) -> Iterator[Callable[[Path], str]]:
    """Start a real Alertmanager with the given config; returns its URL."""
    started: list[ManagedProcess] = []

    def start(config: Path) -> str:
        port = free_port()
        process = alertmanager_process(config, tmp_path / f"alertmanager-data-{len(started)}", "127.0.0.1", port,
                                       log_path=tmp_path / f"alertmanager-{len(started)}.log").start()
        started.append(process)
        process.wait_ready(30)
        return f"http://127.0.0.1:{port}"

    yield start
    for process in started:
        process.stop()


class RunningSimulator:
    def __init__(self, process: ManagedProcess, ports: dict) -> None:
        self.process = process
        self.url: str = ports["url"]
        self.charger_urls: dict[str, str] = ports["chargers"]


@pytest.fixture
def start_simulator(tmp_path: Path) -> Iterator[Callable[..., RunningSimulator]]:
    """Run `charging-sim` as a real process on free ports; returns its URLs once it listens."""
    started: list[ManagedProcess] = []

    def start(scenario: Path | str = "demo", speed: float = 1.0) -> RunningSimulator:
        if isinstance(scenario, str) and "/" not in scenario and not scenario.endswith(".yaml"):
            scenario = ROOT / "simulator" / "scenarios" / f"{scenario}.yaml"
        port_file = tmp_path / f"sim-ports-{len(started)}.json"
        process = component_process(
            "charging-sim", "simulator",
            ["--scenario", str(scenario), "--listen", "127.0.0.1:0", "--charger-port-base", "0",
             "--speed", str(speed), "--port-file", str(port_file)],
            log_path=tmp_path / f"sim-{len(started)}.log", env={"TESSIE_ACCESS_TOKEN": SIM_TOKEN}).start()
        started.append(process)
        return RunningSimulator(process, read_port_file(port_file))

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def start_component(tmp_path: Path) -> Iterator[Callable[..., ManagedProcess]]:
    """Run one of our entry points (python -m module) with a config file and env; waits for /-/healthy."""
    started: list[ManagedProcess] = []

    def start(name: str, module: str, listen_port: int, *, config: Path | None = None,
              env: Mapping[str, str] | None = None, args: Sequence[str] = ()) -> ManagedProcess:
        command = ["--listen", f"127.0.0.1:{listen_port}", *args]
        if config:
            command = ["--config", str(config), *command]
        base_env = {key: value for key, value in os.environ.items() if not key.startswith(("TWC_", "TESSIE_", "SMART_"))}
        process = ManagedProcess(name, [sys.executable, "-m", module, *command], tmp_path / f"{name}.log",
                                 {**base_env, **(env or {})}, f"http://127.0.0.1:{listen_port}/-/healthy").start()
        started.append(process)
        process.wait_ready(20)
        return process

    yield start
    for process in started:
        process.stop()
