"""`charging-suite up` (what `make up` runs): everything starts on loopback, every target is up, SIGTERM stops all."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from suite.processes import free_port, port_in_use, wait_until
from tests.support import get_json

pytestmark = pytest.mark.e2e


def test_suite_comes_up_with_every_target_up_and_stops_cleanly(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("twc", "fleet", "vehicle", "price", "sessions", "prom", "am", "sim")}
    config = {
        "general": {"data_dir": str(tmp_path / "var")},
        "wall_connectors": {"listen": f"127.0.0.1:{ports['twc']}", "vitals_interval": 2},
        "energy_site": {"listen": f"127.0.0.1:{ports['fleet']}", "live_status_interval": 2},
        "vehicles": {"listen": f"127.0.0.1:{ports['vehicle']}", "poll_interval": 2},
        "price": {"listen": f"127.0.0.1:{ports['price']}"},
        "sessions": {"listen": f"127.0.0.1:{ports['sessions']}", "database": str(tmp_path / "var" / "s.db")},
        "prometheus": {"listen": f"127.0.0.1:{ports['prom']}", "scrape_interval": 1},
        "alertmanager": {"listen": f"127.0.0.1:{ports['am']}"},
        "simulator": {"listen": f"127.0.0.1:{ports['sim']}", "charger_port_base": 0},
    }
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    log = (tmp_path / "suite.log").open("wb")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    suite = subprocess.Popen([sys.executable, "-m", "suite", "up", "--config", str(config_path)],
                             stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        prometheus = f"http://127.0.0.1:{ports['prom']}"
        wait_until(lambda: "charging suite is up" in (tmp_path / "suite.log").read_text(), 90, 0.2,
                   "the suite to report it is up")
        output = (tmp_path / "suite.log").read_text()
        for port in ports.values():
            assert f"127.0.0.1:{port}" in output, f"port {port} not announced:\n{output}"

        def all_up() -> bool:
            targets = get_json(f"{prometheus}/api/v1/targets")["data"]["activeTargets"]
            return len(targets) == 7 and all(t["health"] == "up" for t in targets)
        wait_until(all_up, 30, 0.5, "every Prometheus target up")
        jobs = {t["labels"]["job"] for t in get_json(f"{prometheus}/api/v1/targets")["data"]["activeTargets"]}
        assert jobs == {"twc", "fleet", "vehicle", "price", "session_store", "prometheus", "alertmanager"}
        assert get_json(f"{prometheus}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]

        def rules_evaluated() -> bool:
            groups = get_json(f"{prometheus}/api/v1/rules")["data"]["groups"]
            return bool(groups) and any(g["lastEvaluation"] > "2000" for g in groups)
        wait_until(rules_evaluated, 30, 0.5, "a rule group to evaluate")
        wait_until(lambda: get_json(f"{prometheus}/api/v1/query?query=charging_session_store_up")["data"]["result"],
                   30, 0.5, "the session store to be scraped")
    finally:
        suite.send_signal(signal.SIGTERM)
        status = suite.wait(30)
        log.close()
    assert status == 0, (tmp_path / "suite.log").read_text()
    for port in ports.values():
        assert not port_in_use("127.0.0.1", port), f"something still listens on {port} after stopping"
