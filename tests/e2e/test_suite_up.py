"""`charging-suite up` (what `make up` runs): everything starts on loopback, every target is up, SIGTERM stops all."""
from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest
import yaml

from suite.processes import port_in_use, wait_until
from testkit.http import get_json
from testkit.suite import PORT_NAMES, SuiteRun, distinct_ports

pytestmark = pytest.mark.e2e


# What the suite's query engine scrapes, besides the components: itself and Alertmanager (Prometheus), or
# VictoriaMetrics, vmagent, vmalert and Alertmanager.
ENGINE_JOBS = {"prometheus": {"prometheus", "alertmanager"},
               "victoriametrics": {"victoriametrics", "vmagent", "vmalert", "alertmanager"}}
COMPONENT_JOBS = {"twc", "fleet", "vehicle", "price", "session_store", "meter"}


@pytest.mark.parametrize("engine", ["prometheus", "victoriametrics"])
def test_suite_comes_up_with_every_target_up_and_stops_cleanly(tmp_path: Path, engine: str) -> None:
    ports = distinct_ports((*PORT_NAMES, "vmagent", "vmalert"))
    config = {
        "general": {"data_dir": str(tmp_path / "var")},
        "wall_connectors": {"listen": f"127.0.0.1:{ports['twc']}", "vitals_interval": 2},
        "energy_site": {"listen": f"127.0.0.1:{ports['fleet']}", "live_status_interval": 2},
        "vehicles": {"listen": f"127.0.0.1:{ports['vehicle']}", "poll_interval": 2},
        "price": {"listen": f"127.0.0.1:{ports['price']}"},
        "sessions": {"listen": f"127.0.0.1:{ports['sessions']}", "database": str(tmp_path / "var" / "s.db")},
        "meter": {"listen": f"127.0.0.1:{ports['meter']}"},
        "prometheus": {"listen": f"127.0.0.1:{ports['prom']}", "scrape_interval": 1},
        "victoriametrics": {"listen": f"127.0.0.1:{ports['prom']}", "vmagent_listen": f"127.0.0.1:{ports['vmagent']}",
                            "vmalert_listen": f"127.0.0.1:{ports['vmalert']}"},
        "alertmanager": {"listen": f"127.0.0.1:{ports['am']}"},
        "simulator": {"listen": f"127.0.0.1:{ports['sim']}", "charger_port_base": 0},
    }
    if engine == "prometheus":   # the default: no VictoriaMetrics process, nothing on its ports
        del ports["vmagent"], ports["vmalert"]
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    # the one documented switch (`make up METRICS_ENGINE=victoriametrics`), as the environment passes it
    suite = SuiteRun(tmp_path, tmp_path / "suite.log", ["--config", str(config_path)],
                     env={"METRICS_ENGINE": engine} if engine != "prometheus" else None)
    query_api = f"http://127.0.0.1:{ports['prom']}"
    scraper = f"http://127.0.0.1:{ports['vmagent']}" if engine == "victoriametrics" else query_api
    try:
        suite.wait_up(90)
        output = suite.output()
        for port in ports.values():
            assert f"127.0.0.1:{port}" in output, f"port {port} not announced:\n{output}"

        def targets() -> list[dict]:
            return get_json(f"{scraper}/api/v1/targets")["data"]["activeTargets"]
        expected_jobs = COMPONENT_JOBS | ENGINE_JOBS[engine]
        wait_until(lambda: len(targets()) == len(expected_jobs) and all(t["health"] == "up" for t in targets()), 30,
                   0.5, "every scrape target up")
        assert {t["labels"]["job"] for t in targets()} == expected_jobs

        def query(expr: str) -> list:
            return get_json(f"{query_api}/api/v1/query?query={urllib.parse.quote(expr)}")["data"]["result"]
        if engine == "prometheus":
            assert get_json(f"{query_api}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
        # Prometheus evaluates the rules, or vmalert (writing the recording rules back): every rule healthy
        rules_api = query_api if engine == "prometheus" else f"http://127.0.0.1:{ports['vmalert']}"

        def rules_evaluated() -> bool:
            groups = get_json(f"{rules_api}/api/v1/rules")["data"]["groups"]
            return len(groups) > 5 and all(g["lastEvaluation"] > "2000" for g in groups)
        wait_until(rules_evaluated, 30, 0.5, "every rule group to evaluate")
        failing = [r["name"] for g in get_json(f"{rules_api}/api/v1/rules")["data"]["groups"] for r in g["rules"]
                   if r["health"] != "ok"]
        assert not failing, failing
        wait_until(lambda: query("charging_threshold:price_spike_cents_per_kwh"), 30, 0.5, "a recording rule's result")
        wait_until(lambda: query("charging_session_store_up == 1"), 30, 0.5, "the session store to query and be scraped")
        # the price backfill wrote the simulator's history (blocks for Prometheus, the import API for
        # VictoriaMetrics): days of 5-minute prices, not only what was scraped since the start
        assert query("count_over_time(electricity_price_5m_cents_per_kwh[40d]) > 8000"), "no price history"
        # the demo logged in to the simulator's utility portal by itself, and the first pull brought reads
        wait_until(lambda: query("utility_meter_reads > 0 and on() utility_meter_login_ok == 1"), 30, 0.5,
                   "the demo's meter data")
        if engine == "victoriametrics":   # imported at their real time, days ago, searchable at once (on
            # Prometheus they arrive as blocks at its next compaction, within minutes: tests/e2e/test_meter.py)
            wait_until(lambda: query("count_over_time(utility_meter_read_energy_joules[40d]) > 100"), 30, 0.5,
                       "the meter reads in VictoriaMetrics")
        # the demo's home is where its cars are parked: both are at home, 0 m away
        wait_until(lambda: len(query("tesla_vehicle_at_home == 1 and tesla_vehicle_home_distance_meters == 0")) == 2,
                   30, 0.5, "the demo's cars at home")
    finally:
        status = suite.stop(30)
    assert status == 0, suite.output()
    for port in ports.values():
        assert not port_in_use("127.0.0.1", port), f"something still listens on {port} after stopping"
