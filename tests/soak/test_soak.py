"""Soak: the whole suite (`charging-suite up`) for SOAK_MINUTES (default 5) with a car plugging in and
out every 90 seconds on each of two Wall Connectors and price spikes every half hour of scenario
time. Afterwards: no error line in any of our logs, every session the simulator drove is stored
once, and no process's memory grew by more than the stated bound after warm-up.

Run with `make soak` (not part of `make test`: it takes minutes by design).

Why not a sped-up simulator day: the simulated clock would run ahead of Prometheus's, and prices
stamped in the future are not what real ComEd sends; a day's worth of plug-ins compressed into
minutes at real speed exercises the same paths.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
import yaml

from suite.processes import wait_until
from testkit import ROOT
from testkit.http import get_json
from testkit.rss import rss_mib
from testkit.simulator import Simulator
from testkit.suite import SuiteRun, distinct_ports

pytestmark = [pytest.mark.soak, pytest.mark.timeout(int(float(os.environ.get("SOAK_MINUTES", "5")) * 60) + 300)]
MINUTES = float(os.environ.get("SOAK_MINUTES", "5"))
CYCLE_S, CHARGE_S = 90, 50
GROWTH_BOUND_MB = 15.0              # per process, between the end of warm-up and the end of the run
OURS = ("charging-sim", "twc-exporter", "fleet-exporter", "vehicle-exporter", "price-exporter", "session-store")


def scenario(seconds: float) -> dict:
    demo = yaml.safe_load((ROOT / "simulator" / "scenarios" / "demo.yaml").read_text())
    events = []
    for k in range(int(seconds // CYCLE_S) + 1):
        for vehicle, charger, offset in (("model_y", "garage", 20), ("model_3", "driveway", 35)):
            at = offset + k * CYCLE_S
            events += [{"at": at, "vehicle": vehicle, "plug_in": charger},
                       {"at": at + CHARGE_S, "vehicle": vehicle, "unplug": True}]
    demo["events"] = events
    demo["vehicles"] = [{**v, "soc": 20, "charge_limit": 100} for v in demo["vehicles"]]
    demo["prices"]["spikes"] = [{"from": f"{m}m", "to": f"{m + 5}m", "price": 15.0} for m in range(0, 600, 30)]
    return demo


def children(parent: int) -> dict[int, str]:
    """pid -> the component's name, for the suite's direct children."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = stat.with_name("cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if int(fields[1]) != parent:
            continue
        words = [w.decode() for w in cmdline if w]
        module = words[words.index("-m") + 1] if "-m" in words else Path(words[0]).name
        found[int(stat.parent.name)] = module
    return found


def test_the_suite_runs_for_minutes_without_errors_lost_sessions_or_memory_growth(tmp_path: Path) -> None:
    seconds = MINUTES * 60
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario(seconds)))
    ports = distinct_ports()
    config = {
        "general": {"data_dir": str(tmp_path / "var")},
        "wall_connectors": {"listen": f"127.0.0.1:{ports['twc']}", "vitals_interval": 2},
        "energy_site": {"listen": f"127.0.0.1:{ports['fleet']}", "live_status_interval": 2},
        "vehicles": {"listen": f"127.0.0.1:{ports['vehicle']}", "poll_interval": 5},
        "price": {"listen": f"127.0.0.1:{ports['price']}", "poll_interval": 5},
        "sessions": {"listen": f"127.0.0.1:{ports['sessions']}", "evaluation_interval": 2, "grace_period": 10,
                     "min_duration": 10, "min_energy_kwh": 0.01},
        "smart_charging": {"evaluation_interval": 5},
        "prometheus": {"listen": f"127.0.0.1:{ports['prom']}", "scrape_interval": 2},
        "alertmanager": {"listen": f"127.0.0.1:{ports['am']}"},
        "simulator": {"listen": f"127.0.0.1:{ports['sim']}", "charger_port_base": 0,
                      "scenario": str(tmp_path / "scenario.yaml")},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    suite = SuiteRun(tmp_path, tmp_path / "suite.log", ["--config", str(tmp_path / "config.yaml")])
    samples: dict[str, list[tuple[float, float]]] = {}
    try:
        suite.wait_up(120)
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            for pid, name in children(suite.pid).items():
                if (value := rss_mib(pid)) is not None:
                    samples.setdefault(name, []).append((time.monotonic() - started, value))
            time.sleep(5)   # the sampling period of a run that lasts minutes by design
        truth = Simulator(f"http://127.0.0.1:{ports['sim']}", {}).truth()
        store = f"http://127.0.0.1:{ports['sessions']}"
        completed = [s for s in truth["sessions"] if not s["open"] and s["unplug"] < time.time() - 30]
        wait_until(lambda: get_json(f"{store}/api/sessions?limit=1000")["total"] >= len(completed), 60, 1,
                   "the store to serve every completed session")
        stored = get_json(f"{store}/api/sessions?limit=1000")["sessions"]
    finally:
        status = suite.stop(60)
    assert status == 0, suite.output()[-2000:]

    live = [s for s in stored if s["source"] == "live_status"]
    starts = sorted(s["start"] for s in live)
    print(f"\n{MINUTES:g} min: {len(completed)} sessions driven, {len(live)} stored from live data")
    assert len(completed) >= 2 * int((seconds - 60) // CYCLE_S), "the scenario drove too few sessions"
    assert len(starts) == len(set(starts)) and len(live) >= len(completed), "sessions lost or duplicated"

    errors = []
    for path in sorted((tmp_path / "var" / "logs").glob("*.log")):
        if path.stem in OURS:
            errors += [f"{path.name}: {line}" for line in path.read_text(errors="replace").splitlines()
                       if re.search(r"level=(error|critical)|Traceback", line)]
    assert not errors, "\n".join(errors[:20])

    print(f"{'process':<34} {'after warm-up':>14} {'end':>8} {'max':>8}  (RSS, MB)")
    grown = {}
    for name, series in sorted(samples.items()):
        warm = [v for t, v in series if t >= seconds * 0.25]
        if len(warm) < 2:
            continue
        print(f"{name:<34} {warm[0]:>14.1f} {warm[-1]:>8.1f} {max(v for _, v in series):>8.1f}")
        if warm[-1] - warm[0] > GROWTH_BOUND_MB:
            grown[name] = warm[-1] - warm[0]
    assert not grown, f"memory grew by more than {GROWTH_BOUND_MB} MB after warm-up: {grown}"
