"""Two homes in one suite (`sites:`), as `make up` runs them: each site's exporters and session store with its
own simulator (its chargers, car, energy site and price zone), one Prometheus labelling every target with its
site. Each session store keeps its own site's sessions, costs them with its own tariff and decides smart
charging on its own zone's prices; nothing of one home shows at the other."""
from __future__ import annotations

import time
import urllib.parse
from pathlib import Path

import pytest
import yaml

from suite.processes import wait_until
from testkit.http import get_json
from testkit.simulator import Simulator
from testkit.suite import SuiteRun, distinct_ports

pytestmark = pytest.mark.e2e

SITE_PORTS = ("twc", "fleet", "vehicle", "price", "sessions", "sim")
JOBS = ("twc", "fleet", "vehicle", "price", "session_store")
# Each home: one Wall Connector, one car, yesterday's charge in Fleet's history (3 s late), and its own price
# zone: the cabin's prices are another seed around a lower level.
HOMES = {
    "home": {"charger": "garage", "serial": "PGT00000000011", "vin": "5YJ3E1EA7KF000011", "kw": 7.7,
             "history_wh": 14000, "prices": {"seed": 2024}, "delivery_cents": 7.5},
    "cabin": {"charger": "carport", "serial": "PGT00000000012", "vin": "5YJSA1E26MF000012", "kw": 11.5,
              "history_wh": 9000, "prices": {"seed": 4242, "base": 2.0, "amplitude": 1.2}, "delivery_cents": 4.2},
}
CHARGE_SECONDS = 30


def scenario(home: dict) -> dict:
    return {
        "start": "now",
        "site": {"energy_site_id": 1689500000000000 + int(home["serial"][-2:]), "site_name": home["charger"]},
        "chargers": [{"name": home["charger"], "serial": home["serial"], "part_number": "1457768-02-G",
                      "role": "standalone"}],
        "vehicles": [{"vin": home["vin"], "name": "car", "battery_kwh": 75, "soc": 30, "charge_limit": 90,
                      "max_power_kw": home["kw"], "ramp": "5s"}],
        "prices": {**home["prices"], "history_days": 35},
        "telemetry": {"delay": "3s", "history": [{"charger": home["charger"], "vehicle": "car", "start": "-1d",
                                                  "duration": "2h", "energy_wh": home["history_wh"]}]},
        "meter": {"enabled": False},
    }


@pytest.mark.parametrize("engine", ["prometheus", "victoriametrics"])
def test_two_homes_each_keep_their_own_sessions_costs_and_thresholds(tmp_path: Path, engine: str) -> None:
    shared = distinct_ports(("prom", "am", "meter", "vmagent", "vmalert"))
    ports = {name: distinct_ports(SITE_PORTS) for name in HOMES}
    sites = []
    for name, home in HOMES.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(scenario(home)))
        p = ports[name]
        sites.append({
            "name": name,
            "wall_connectors": {"listen": f"127.0.0.1:{p['twc']}", "vitals_interval": 1},
            "energy_site": {"listen": f"127.0.0.1:{p['fleet']}", "live_status_interval": 1,
                            "charge_history_interval": 2},
            "vehicles": {"listen": f"127.0.0.1:{p['vehicle']}", "poll_interval": 2},
            "price": {"listen": f"127.0.0.1:{p['price']}"},
            "tariff": {"delivery_cents_per_kwh": home["delivery_cents"]},
            "sessions": {"listen": f"127.0.0.1:{p['sessions']}"},
            "simulator": {"listen": f"127.0.0.1:{p['sim']}", "charger_port_base": 0, "scenario": str(path)},
        })
    config = {
        "general": {"data_dir": str(tmp_path / "var")},
        "sessions": {"evaluation_interval": 1, "min_duration": 10, "min_energy_kwh": 0.01},
        "smart_charging": {"evaluation_interval": 2},
        "meter": {"enabled": False, "listen": f"127.0.0.1:{shared['meter']}"},
        "prometheus": {"listen": f"127.0.0.1:{shared['prom']}", "scrape_interval": 1, "engine": engine},
        "victoriametrics": {"listen": f"127.0.0.1:{shared['prom']}", "vmagent_listen": f"127.0.0.1:{shared['vmagent']}",
                            "vmalert_listen": f"127.0.0.1:{shared['vmalert']}"},
        "alertmanager": {"listen": f"127.0.0.1:{shared['am']}"},
        "sites": sites,
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    suite = SuiteRun(tmp_path, tmp_path / "suite.log", ["--config", str(tmp_path / "config.yaml")])
    prometheus = f"http://127.0.0.1:{shared['prom']}"       # Prometheus's query API, or VictoriaMetrics's
    scraper = f"http://127.0.0.1:{shared['vmagent']}" if engine == "victoriametrics" else prometheus
    engine_jobs = {"prometheus", "alertmanager"} if engine == "prometheus" else {"victoriametrics", "vmagent", "vmalert",
                                                                                   "alertmanager"}
    store = {name: f"http://127.0.0.1:{ports[name]['sessions']}" for name in HOMES}
    sim = {name: Simulator(f"http://127.0.0.1:{ports[name]['sim']}", {}) for name in HOMES}

    def query(expr: str) -> list:
        return get_json(f"{prometheus}/api/v1/query?query={urllib.parse.quote(expr)}")["data"]["result"]

    def sessions(name: str) -> list[dict]:
        return get_json(f"{store[name]}/api/sessions")["sessions"]
    try:
        suite.wait_up(120)
        assert "session-store-cabin" in suite.output() and "charging-sim-cabin" in suite.output()

        # every component of every site is scraped, labelled with its site
        def targets() -> list[dict]:
            return get_json(f"{scraper}/api/v1/targets")["data"]["activeTargets"]
        wait_until(lambda: len(targets()) == 2 * len(JOBS) + len(engine_jobs) and all(t["health"] == "up"
                                                                                      for t in targets()), 60,
                   0.5, "every target of both sites up")
        labelled = {(t["labels"]["job"], t["labels"].get("site")) for t in targets()}
        assert labelled == {(job, site) for job in JOBS for site in HOMES} | {(job, None) for job in engine_jobs}
        # each site's price backfill is its own zone's history, labelled with the site
        for name in HOMES:   # (VictoriaMetrics makes imported series searchable seconds late)
            wait_until(lambda: query(f'count_over_time(electricity_price_5m_cents_per_kwh{{site="{name}"}}[40d])'
                                     ' > 8000'), 30, 0.5, f"{name}'s price history")

        # yesterday's charge of each home, from its own Fleet history, is in its own store only
        def inserted(name: str) -> list[dict]:
            return [s for s in sessions(name) if s["source"] == "telemetry_history"]
        for name, home in HOMES.items():
            wait_until(lambda: inserted(name), 90, 0.5, f"{name}'s charge history in its store")
            [session] = inserted(name)
            assert (session["unit"], session["energy_wh"]) == (home["charger"], home["history_wh"])
            # its delivery billed at its own tariff's rate
            assert session["delivery_cost"] == pytest.approx(home["history_wh"] / 1000 * home["delivery_cents"] / 100,
                                                              abs=1e-5)

        # both cars charge at once, each at its home; each store makes one session of its own car alone
        for name in HOMES:
            sim[name].event(vehicle="car", plug_in=HOMES[name]["charger"])
        time.sleep(CHARGE_SECONDS)   # the charges themselves, not a wait for a condition
        for name in HOMES:
            sim[name].event(vehicle="car", unplug=True)

        def live(name: str) -> list[dict]:
            return [s for s in sessions(name) if s["source"] == "live_status"]
        for name, home in HOMES.items():
            wait_until(lambda: live(name), 90, 0.5, f"{name}'s live session")
            [session] = live(name)
            [truth] = sim[name].truth()["sessions"]
            assert (session["unit"], session["vin"]) == (home["charger"], home["vin"])
            assert session["energy_wh"] == pytest.approx(truth["energy_wh"], rel=0.15), (name, session, truth)
            assert session["delivery_cost"] == pytest.approx(session["energy_wh"] / 1000 * home["delivery_cents"] / 100,
                                                              abs=1e-5)
        assert {u["unit"] for u in get_json(f"{store['cabin']}/api/chargers")["chargers"]} == {"carport"}
        assert [v["vin"] for v in get_json(f"{store['cabin']}/api/vehicles")["vehicles"]] == [HOMES["cabin"]["vin"]]

        # smart charging decides on its own zone's prices: each store's thresholds are the percentiles of
        # its own site's billed hours, and the two zones differ
        def thresholds(name: str) -> tuple[float, float] | None:
            market = get_json(f"{store[name]}/api/smart-charging")["market"]
            return None if not market or market["stop_threshold"] is None else (market["stop_threshold"],
                                                                                  market["resume_threshold"])
        def percentiles(name: str) -> tuple[float, ...]:
            return tuple(float(query(f"max(quantile_over_time({q}, electricity_price_billed_cents_per_kwh"
                                     f'{{site="{name}"}}[30d]))')[0]["value"][1]) for q in (0.9, 0.75))
        for name in HOMES:   # polled: a new billed hour may land between the store's query and ours
            wait_until(lambda: thresholds(name) == pytest.approx(percentiles(name), rel=1e-9), 60, 0.5,
                       f"{name}'s smart-charging thresholds from its own prices")
        assert thresholds("home") != pytest.approx(thresholds("cabin"), rel=0.01)

        # the recording rules keep each home apart: power and the billed-price percentiles per site
        for rule in ("charging:power_watts:sum",
                     'electricity_price:billed_lookback_percentile_cents_per_kwh{percentile="90"}'):
            wait_until(lambda: sorted(r["metric"].get("site") for r in query(rule)) == sorted(HOMES), 60, 0.5,
                       f"{rule} per site")

        # each store's counters carry its own site only
        counted = query("sum by (site, unit) (charging_sessions_completed_total)")
        assert {(r["metric"]["site"], r["metric"]["unit"]) for r in counted} == {("home", "garage"),
                                                                                 ("cabin", "carport")}
    finally:
        status = suite.stop(30)
    assert status == 0, suite.output()
    assert (tmp_path / "var" / "demo" / "sites" / "cabin" / "session_store.sqlite3").exists()
    assert (tmp_path / "var" / "demo" / "session_store.sqlite3").exists()
