"""Closing the terminal (SIGHUP) stops the suite cleanly like SIGTERM; a suite killed outright (SIGKILL)
leaves no component behind on its port; a second `make up` meanwhile names the running suite."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from suite.processes import free_port, port_in_use, wait_until

pytestmark = pytest.mark.e2e


def holder(port: int) -> int | None:
    """The pid listening on a loopback port (this user's processes), from /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                    return int(proc.name)
            except OSError:
                continue
    return None


def distinct_ports(names) -> dict[str, int]:
    """A free port each, never one twice (free_port may hand out a port it just gave)."""
    ports: dict[str, int] = {}
    for name in names:
        port = free_port()
        while port in ports.values():
            port = free_port()
        ports[name] = port
    return ports


def suite_env(tmp_path: Path) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


class Suites:
    """`charging-suite up` processes in one working directory holding config.yaml."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.ports = distinct_ports(("twc", "fleet", "vehicle", "price", "sessions", "prom", "am", "sim"))
        (tmp_path / "config.yaml").write_text(yaml.safe_dump({
            "wall_connectors": {"listen": f"127.0.0.1:{self.ports['twc']}"},
            "energy_site": {"listen": f"127.0.0.1:{self.ports['fleet']}"},
            "vehicles": {"listen": f"127.0.0.1:{self.ports['vehicle']}"},
            "price": {"listen": f"127.0.0.1:{self.ports['price']}"},
            "sessions": {"listen": f"127.0.0.1:{self.ports['sessions']}"},
            "prometheus": {"listen": f"127.0.0.1:{self.ports['prom']}", "scrape_interval": 1},
            "alertmanager": {"listen": f"127.0.0.1:{self.ports['am']}"},
            "simulator": {"listen": f"127.0.0.1:{self.ports['sim']}", "charger_port_base": 0},
        }))
        self.started: list[subprocess.Popen] = []

    def log(self, index: int) -> str:
        return (self.tmp / f"suite-{index}.log").read_text()

    def start(self) -> tuple[int, subprocess.Popen]:
        index = len(self.started)
        with (self.tmp / f"suite-{index}.log").open("wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "suite", "up"], stdout=log, stderr=subprocess.STDOUT,
                                       env=suite_env(self.tmp), cwd=self.tmp)
        self.started.append(process)
        return index, process

    def start_up(self) -> subprocess.Popen:
        index, process = self.start()
        wait_until(lambda: "charging suite is up" in self.log(index) or process.poll() is not None, 90, 0.2,
                   "the suite to report it is up")
        assert process.poll() is None, self.log(index)
        return process

    def busy(self) -> list[int]:
        return [port for port in self.ports.values() if port_in_use("127.0.0.1", port)]

    def cleanup(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
        for port in self.busy():     # components orphaned by a suite that died without stopping them
            pid = holder(port)
            if pid:
                os.kill(pid, signal.SIGKILL)


def test_sighup_stops_everything_and_sigkill_leaves_nothing_behind(tmp_path: Path) -> None:
    suites = Suites(tmp_path)
    try:
        first = suites.start_up()
        assert (tmp_path / "var" / "charging-suite.pid").read_text().strip() == str(first.pid)

        index, second = suites.start()
        assert second.wait(30) == 1, suites.log(index)
        assert f"charging-suite: cannot start: a charging suite is already running (pid {first.pid})" \
            in suites.log(index)
        assert "configuration error" not in suites.log(index)

        first.send_signal(signal.SIGHUP)           # the terminal running `make up` was closed
        assert first.wait(30) == 0, suites.log(0)
        assert "charging-suite: stopping" in suites.log(0)
        assert suites.busy() == [], "every component stopped with the suite"
        assert not (tmp_path / "var" / "charging-suite.pid").exists()

        third = suites.start_up()
        third.kill()                                # no chance to stop anything: the children must notice
        third.wait(10)
        wait_until(lambda: suites.busy() == [], 20, 0.2, "every component to die with the suite")
        fourth = suites.start_up()                  # a stale pid file does not stop the next start
        fourth.send_signal(signal.SIGTERM)
        assert fourth.wait(30) == 0, suites.log(len(suites.started) - 1)
    finally:
        suites.cleanup()
