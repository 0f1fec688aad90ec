"""Fixtures that start real Prometheus, Alertmanager, the simulator and our components on free loopback
ports: thin wrappers over testkit.stack, one Stack per test in its tmp_path, stopped after it."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import pytest

from suite.processes import ManagedProcess
from testkit.env import ignore_user_files
from testkit.prometheus import RunningPrometheus
from testkit.receiver import Receiver
from testkit.simulator import Simulator
from testkit.stack import Stack


def pytest_configure(config: pytest.Config) -> None:
    """No test reads the user's own files: the token a user keeps in ./.secrets or the chargers in
    ./config.yaml would change what tests see, and could reach a real car or charger. Every loader in
    this process and in the processes tests start reads empty files instead; a test that wants a
    configuration or a secret passes it (or sets these variables itself)."""
    ignore_user_files(os.environ)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Stack]:
    """The processes one test starts (files in its tmp_path); every one stopped after the test."""
    stack = Stack(tmp_path)
    yield stack
    stack.close()


@pytest.fixture
def start_prometheus(processes: Stack) -> Callable[..., RunningPrometheus]:
    """Start a real Prometheus scraping the given jobs every second (testkit.stack.Stack.prometheus)."""
    return processes.prometheus


@pytest.fixture
def start_alertmanager(processes: Stack) -> Callable[[Path], str]:
    """Start a real Alertmanager with the given config; returns its URL."""
    return processes.alertmanager


@pytest.fixture
def start_simulator(processes: Stack) -> Callable[..., Simulator]:
    """Run `charging-sim` as a real process on free ports (a bundled scenario by name, or a file);
    returns its client once it listens."""
    def start(scenario: Path | str = "demo", speed: float = 1.0) -> Simulator:
        return processes.simulator(scenario, speed=speed)
    return start


@pytest.fixture
def start_component(processes: Stack) -> Callable[..., ManagedProcess]:
    """Run one of our entry points (python -m module) with a config file and env; waits for /-/healthy."""
    def start(name: str, module: str, listen_port: int, *, config: Path | None = None,
              env: Mapping[str, str] | None = None, args: Sequence[str] = ()) -> ManagedProcess:
        return processes.component(name, module, port=listen_port, config=config, env=env, args=args).process
    return start


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local HTTP server recording every POST (Alertmanager's webhooks), closed after the test."""
    server = Receiver()
    yield server
    server.close()
