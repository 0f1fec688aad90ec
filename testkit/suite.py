"""Running `charging-suite up` (what `make up` runs) as a user does: in a working directory of its own,
with a bare environment (PATH and HOME), on ports chosen so that no two components share one.

The suite reads ./config.yaml and ./.secrets of its working directory like a user's checkout; here
that directory is the test's, so the developer's own files are never read.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from suite.processes import wait_until
from testkit.ports import free_port

# What the suite listens on: one port per component (and Prometheus, Alertmanager, the simulator).
PORT_NAMES = ("twc", "fleet", "vehicle", "price", "sessions", "meter", "prom", "am", "sim")
UP = "charging suite is up"


def distinct_ports(names: Iterable[str] = PORT_NAMES) -> dict[str, int]:
    """A free port each, never one twice (testkit.ports hands them out in turn)."""
    return {name: free_port() for name in names}


def suite_env(home: Path) -> dict[str, str]:
    """A user's shell with nothing set: PATH and HOME (and PYTHONPATH, should the tests run with one)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


class SuiteRun:
    """One `python -m suite up [args]` in `workdir`, its output in `log_path`."""

    def __init__(self, workdir: Path, log_path: Path, args: Sequence[str] = (),
                 env: Mapping[str, str] | None = None) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "suite", "up", *args], stdout=log,
                                            stderr=subprocess.STDOUT, env={**suite_env(workdir), **(env or {})},
                                            cwd=workdir)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log_path.read_text()

    def wait_up(self, timeout: float = 90) -> "SuiteRun":
        """Until it reports that it is up; fails with its output if it exits first."""
        wait_until(lambda: UP in self.output() or self.process.poll() is not None, timeout, 0.2,
                   "the suite to report it is up")
        assert self.process.poll() is None, self.output()
        return self

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (as Ctrl-C in `make up` would) and its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)
