"""The ``charging-sim`` entry point: --help, --port-file, clean SIGTERM, one-line config errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from simulator import scenarios

CLI = [sys.executable, "-m", "simulator"]


def test_help_lists_the_options() -> None:
    result = subprocess.run([*CLI, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    for option in ("--scenario", "--listen", "--charger-port-base", "--speed", "--port-file", "--log-level"):
        assert option in result.stdout


def test_runs_writes_port_file_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    port_file = tmp_path / "ports.json"
    env = {**os.environ, "TESSIE_ACCESS_TOKEN": "cli-secret-token"}
    proc = subprocess.Popen(
        [*CLI, "--scenario", str(scenarios.path("demo")), "--listen", "127.0.0.1:0", "--charger-port-base", "0",
         "--speed", "60", "--port-file", str(port_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        deadline = time.monotonic() + 15
        while not port_file.exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "port file never appeared"
            time.sleep(0.05)
        ports = json.loads(port_file.read_text())
        assert set(ports["chargers"]) == {"garage"}  # the follower has no listener
        assert ports["home"] == [41.8781, -87.6298]   # where the demo's cars are parked: the suite's home
        with urllib.request.urlopen(ports["url"] + "/sim/clock", timeout=5) as response:
            clock = json.load(response)
        assert clock["speed"] == 60
        request = urllib.request.Request(ports["url"] + "/vehicles",
                                         headers={"Authorization": "Bearer cli-secret-token"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert len(json.load(response)["results"]) == 2
        with urllib.request.urlopen(ports["chargers"]["garage"] + "/api/1/version", timeout=5) as response:
            assert json.load(response)["serial_number"] == "PGT12345678901"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0, stderr
    assert "cli-secret-token" not in stderr
    assert "listening on" in stderr
    assert all(line.count("\n") == 0 for line in stderr.splitlines())


def test_bad_scenario_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("chargers:\n  - name: garage\n    wiring: single\n")
    result = subprocess.run([*CLI, "--scenario", str(bad)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "charging-sim: chargers[0].wiring: got 'single'; use one of split_phase, three_phase"]
