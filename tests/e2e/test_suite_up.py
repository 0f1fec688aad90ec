"""`charging-suite up` (what `make up` runs): everything starts on loopback, every target is up, SIGTERM stops all."""
from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest
import yaml

from suite.processes import port_in_use, wait_until
from testkit.http import get_json
from testkit.suite import SuiteRun, distinct_ports

pytestmark = pytest.mark.e2e


def test_suite_comes_up_with_every_target_up_and_stops_cleanly(tmp_path: Path) -> None:
    ports = distinct_ports()
    config = {
        "general": {"data_dir": str(tmp_path / "var")},
        "wall_connectors": {"listen": f"127.0.0.1:{ports['twc']}", "vitals_interval": 2},
        "energy_site": {"listen": f"127.0.0.1:{ports['fleet']}", "live_status_interval": 2},
        "vehicles": {"listen": f"127.0.0.1:{ports['vehicle']}", "poll_interval": 2},
        "price": {"listen": f"127.0.0.1:{ports['price']}"},
        "sessions": {"listen": f"127.0.0.1:{ports['sessions']}", "database": str(tmp_path / "var" / "s.db")},
        "meter": {"listen": f"127.0.0.1:{ports['meter']}"},
        "prometheus": {"listen": f"127.0.0.1:{ports['prom']}", "scrape_interval": 1},
        "alertmanager": {"listen": f"127.0.0.1:{ports['am']}"},
        "simulator": {"listen": f"127.0.0.1:{ports['sim']}", "charger_port_base": 0},
    }
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    suite = SuiteRun(tmp_path, tmp_path / "suite.log", ["--config", str(config_path)])
    try:
        prometheus = f"http://127.0.0.1:{ports['prom']}"
        suite.wait_up(90)
        output = suite.output()
        for port in ports.values():
            assert f"127.0.0.1:{port}" in output, f"port {port} not announced:\n{output}"

        def all_up() -> bool:
            targets = get_json(f"{prometheus}/api/v1/targets")["data"]["activeTargets"]
            return len(targets) == 8 and all(t["health"] == "up" for t in targets)
        wait_until(all_up, 30, 0.5, "every Prometheus target up")
        jobs = {t["labels"]["job"] for t in get_json(f"{prometheus}/api/v1/targets")["data"]["activeTargets"]}
        assert jobs == {"twc", "fleet", "vehicle", "price", "session_store", "meter", "prometheus", "alertmanager"}
        assert get_json(f"{prometheus}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]

        def rules_evaluated() -> bool:
            groups = get_json(f"{prometheus}/api/v1/rules")["data"]["groups"]
            return bool(groups) and any(g["lastEvaluation"] > "2000" for g in groups)
        wait_until(rules_evaluated, 30, 0.5, "a rule group to evaluate")
        wait_until(lambda: get_json(f"{prometheus}/api/v1/query?query=charging_session_store_up")["data"]["result"],
                   30, 0.5, "the session store to be scraped")
        # the demo logged in to the simulator's utility portal by itself, and the first pull brought reads
        demo_meter = urllib.parse.quote("utility_meter_reads > 0 and on() utility_meter_login_ok == 1")
        wait_until(lambda: get_json(f"{prometheus}/api/v1/query?query={demo_meter}")["data"]["result"], 30, 0.5,
                   "the demo's meter data")
        # the demo's home is where its cars are parked: both are at home, 0 m away
        home = urllib.parse.quote("tesla_vehicle_at_home == 1 and tesla_vehicle_home_distance_meters == 0")
        wait_until(lambda: len(get_json(f"{prometheus}/api/v1/query?query={home}")["data"]["result"]) == 2, 30, 0.5,
                   "the demo's cars at home")
    finally:
        status = suite.stop(30)
    assert status == 0, suite.output()
    for port in ports.values():
        assert not port_in_use("127.0.0.1", port), f"something still listens on {port} after stopping"
