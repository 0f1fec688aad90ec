"""From the demo to real equipment exactly as the README says: run `make up` (no charger, no token: the
demo), stop it, add your Wall Connector to config.yaml, run `make up` again. The "real" equipment is a
second simulator started on its own (one Wall Connector, a car, a constant 77.7 c/kWh price history), named
in config.yaml by its address, with no Tessie token.

After the switch nothing of the demo is used: no demo session is in progress, no demo series or prices are
in the Prometheus the live suite queries (thresholds and backfill come from the real provider), smart
charging shows no demo car, and a real charge is recorded as a session from the local Wall Connector API."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from suite.processes import port_in_use, wait_until
from testkit.http import get_json
from testkit.prometheus import PrometheusAPI
from testkit.suite import SuiteRun, distinct_ports

pytestmark = pytest.mark.e2e

REAL_PRICE = 77.7
REAL_VIN = "5YJ3E1EA7KF000099"
REAL_SCENARIO = {
    "start": "now",
    "seed": 5,
    "site": {"energy_site_id": 1689500000999999, "site_name": "Real"},
    "chargers": [{"name": "garage", "serial": "PGT99999999999", "part_number": "1457768-02-G",
                  "role": "standalone"}],
    "vehicles": [{"vin": REAL_VIN, "name": "real_car", "battery_kwh": 100, "soc": 20, "charge_limit": 100,
                  "max_power_kw": 11.5, "ramp": 0, "taper_pct": 0}],
    "prices": {"seed": 9, "history_days": 35, "spikes": [{"from": "-36d", "to": "2d", "price": REAL_PRICE}]},
}


def test_switching_from_the_demo_to_real_equipment_keeps_nothing_of_the_demo(tmp_path: Path,
                                                                              start_simulator) -> None:
    ports = distinct_ports()
    config = {   # what a user's config.yaml holds besides their equipment (here: free ports, fast polling)
        "wall_connectors": {"listen": f"127.0.0.1:{ports['twc']}", "vitals_interval": 1},
        "energy_site": {"listen": f"127.0.0.1:{ports['fleet']}", "live_status_interval": 1},
        "vehicles": {"listen": f"127.0.0.1:{ports['vehicle']}", "poll_interval": 2},
        "price": {"listen": f"127.0.0.1:{ports['price']}", "poll_interval": 2},
        "sessions": {"listen": f"127.0.0.1:{ports['sessions']}", "evaluation_interval": 1, "catch_up": "10m",
                     "min_duration": 5, "min_energy_kwh": 0.005},
        "smart_charging": {"evaluation_interval": 1},
        "meter": {"listen": f"127.0.0.1:{ports['meter']}"},
        "prometheus": {"listen": f"127.0.0.1:{ports['prom']}", "scrape_interval": 1},
        "alertmanager": {"listen": f"127.0.0.1:{ports['am']}"},
        "simulator": {"listen": f"127.0.0.1:{ports['sim']}", "charger_port_base": 0, "speed": 30},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    prometheus, store = PrometheusAPI(f"http://127.0.0.1:{ports['prom']}"), f"http://127.0.0.1:{ports['sessions']}"
    var = tmp_path / "var"

    def run_suite(name: str) -> tuple[SuiteRun, Path]:
        log_path = tmp_path / f"{name}.log"
        return SuiteRun(tmp_path, log_path).wait_up(90), log_path

    def stop(suite: SuiteRun, log_path: Path) -> None:
        if suite.process.poll() is None:
            assert suite.stop(30) == 0, log_path.read_text()

    # 1. `make up` without equipment: the demo, a car charging on the simulated garage unit
    demo, demo_log = run_suite("demo")
    try:
        assert "the demo: simulated upstreams" in demo_log.read_text()
        wait_until(lambda: get_json(f"{store}/api/sessions/current")["sessions"], 30, 0.3, "a demo session")
        # the demo's Fleet units are called by the scenario's charger names, like its twc_* series
        wait_until(lambda: {r["metric"]["unit"] for r in prometheus.query("tesla_wall_connector_power_watts")}
                   == {"garage", "driveway"}, 20, 0.3, "the demo's Fleet units, by name")
        demo_thresholds = get_json(f"{store}/api/smart-charging")
    finally:
        stop(demo, demo_log)
    assert (var / "demo" / "MODE").read_text() == "demo\n"   # it stopped with a session in progress

    # 2. the real equipment: its Wall Connector's address in config.yaml (its price provider too: the
    # "real" ComEd is the second simulator), no Tessie token; `make up` again
    (tmp_path / "real.yaml").write_text(yaml.safe_dump(REAL_SCENARIO))
    real = start_simulator(tmp_path / "real.yaml")
    address = real.charger_address("garage")
    config["wall_connectors"]["chargers"] = [{"name": "garage", "address": address}]
    config["price"]["base_url"] = real.url
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    started = time.time()
    live, live_log = run_suite("live")
    try:
        output = live_log.read_text()
        assert "with live upstreams" in output and "logs and data in var/live/" in output, output
        assert "not starting fleet-exporter: no TESSIE_ACCESS_TOKEN" in output
        assert (var / "live" / "MODE").read_text() == "live\n"
        assert (var / "live" / "session_store.sqlite3").is_file()

        # no demo session in progress, no demo car in smart charging
        assert get_json(f"{store}/api/sessions/current")["sessions"] == []
        assert get_json(f"{store}/api/sessions")["sessions"] == []
        # no demo series in this Prometheus: no Fleet units or vehicles, no twc_* sample before this start
        # (the demo's charger was called garage too), no demo prices (below)
        assert prometheus.query('count(last_over_time({__name__=~"tesla_.*"}[1h]))') == []
        wait_until(lambda: prometheus.query("twc_power_watts"), 20, 0.3, "the real Wall Connector's power")
        samples = prometheus.query("max(count_over_time(twc_power_watts[1h]))")   # one a second since the start
        assert float(samples[0]["value"][1]) <= time.time() - started + 2, samples
        span = "40d"
        wait_until(lambda: prometheus.query(f"count_over_time(electricity_price_5m_cents_per_kwh[{span}])"),
                   20, 0.3, "the backfilled prices")
        low = float(prometheus.query(f"min(min_over_time(electricity_price_5m_cents_per_kwh[{span}]))")[0]["value"][1])
        high = float(prometheus.query(f"max(max_over_time(electricity_price_5m_cents_per_kwh[{span}]))")[0]["value"][1])
        count = float(prometheus.query(f"sum(count_over_time(electricity_price_5m_cents_per_kwh[{span}]))")[0]["value"][1])
        assert (low, high) == (REAL_PRICE, REAL_PRICE), "only the real provider's prices"
        assert count >= 31 * 288, count
        state = json.loads((var / "live" / "run" / "price-backfill.json").read_text())
        assert (state["provider"], state["base_url"], state["mode"]) == ("comed", real.url, "live")

        def real_thresholds() -> bool:
            market = get_json(f"{store}/api/smart-charging")["market"]
            return bool(market) and all(abs((market[key] or 0) - REAL_PRICE) < 1e-6
                                        for key in ("stop_threshold", "resume_threshold"))
        wait_until(real_thresholds, 20, 0.3, "smart charging's thresholds from the real prices")
        assert get_json(f"{store}/api/smart-charging")["vehicles"] == []
        demo_market = demo_thresholds["market"] or {}
        assert abs((demo_market.get("stop_threshold") or 0) - REAL_PRICE) > 1, "the demo's prices differ"

        # 3. a real charge becomes a session from the local Wall Connector API
        real.event(vehicle="real_car", plug_in="garage")
        wait_until(lambda: get_json(f"{store}/api/sessions/current")["sessions"], 20, 0.3, "the real charge")
        time.sleep(8)
        real.event(vehicle="real_car", unplug=True)
        wait_until(lambda: get_json(f"{store}/api/sessions")["sessions"], 30, 0.3, "the real session")
        [session] = get_json(f"{store}/api/sessions")["sessions"]
        assert (session["unit"], session["source"]) == ("garage", "local")
        assert session["start"] >= started
        assert get_json(f"{store}/api/sessions/current")["sessions"] == []

        store_log = (var / "live" / "logs" / "session-store.log").read_text()
        assert ("deriving sessions from twc_power_watts (local): Wall Connectors are configured; Fleet: no "
                "TESSIE_ACCESS_TOKEN") in store_log
        assert "level=warning" not in store_log and "level=error" not in store_log, store_log
        backfill_log = (var / "live" / "logs" / "price-backfill.log").read_text()
        assert f"from comed at {real.url}, live mode" in backfill_log
    finally:
        stop(live, live_log)
    for port in ports.values():
        assert not port_in_use("127.0.0.1", port)
