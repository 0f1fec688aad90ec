"""Closing the terminal (SIGHUP) stops the suite cleanly like SIGTERM; a suite killed outright (SIGKILL)
leaves no component behind on its port; a second `make up` meanwhile names the running suite."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from suite.processes import listener, port_in_use, wait_until
from testkit.suite import SuiteRun, distinct_ports

pytestmark = pytest.mark.e2e


class Suites:
    """`charging-suite up` processes in one working directory holding config.yaml."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.ports = distinct_ports()
        (tmp_path / "config.yaml").write_text(yaml.safe_dump({
            "wall_connectors": {"listen": f"127.0.0.1:{self.ports['twc']}"},
            "energy_site": {"listen": f"127.0.0.1:{self.ports['fleet']}"},
            "vehicles": {"listen": f"127.0.0.1:{self.ports['vehicle']}"},
            "price": {"listen": f"127.0.0.1:{self.ports['price']}"},
            "sessions": {"listen": f"127.0.0.1:{self.ports['sessions']}"},
            "meter": {"listen": f"127.0.0.1:{self.ports['meter']}"},
        "prometheus": {"listen": f"127.0.0.1:{self.ports['prom']}", "scrape_interval": 1},
            "alertmanager": {"listen": f"127.0.0.1:{self.ports['am']}"},
            "simulator": {"listen": f"127.0.0.1:{self.ports['sim']}", "charger_port_base": 0},
        }))
        self.started: list[SuiteRun] = []

    def log(self, index: int) -> str:
        return self.started[index].output()

    def start(self) -> tuple[int, subprocess.Popen]:
        index = len(self.started)
        self.started.append(SuiteRun(self.tmp, self.tmp / f"suite-{index}.log"))
        return index, self.started[index].process

    def start_up(self) -> subprocess.Popen:
        index, _ = self.start()
        return self.started[index].wait_up(90).process

    def busy(self) -> list[int]:
        return [port for port in self.ports.values() if port_in_use("127.0.0.1", port)]

    def cleanup(self) -> None:
        for suite in self.started:
            suite.stop(30)
        for port in self.busy():     # components orphaned by a suite that died without stopping them
            found = listener("127.0.0.1", port)
            if found:
                os.kill(found[0], signal.SIGKILL)


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
