"""Every query of every committed dashboard returns data from the real suite, and the session panels
return the true energy and cost of the sessions.

The simulator, the four exporters and the session store run; nine days of prices are
backfilled; Prometheus runs with the repository's rules; one car comes back from a Supercharger stop and
completes a session at home (and a blip is discarded), then another plugs in and keeps charging into a
price spike, so smart charging pauses it (dry run) and alerts fire; Fleet charge history brings
yesterday's 14 kWh session and Tessie's charge history the first car's away and home charges. Then a
departure is set for the charging car through the session store's API (PUT /api/plans/<vin>), so the
departure planner plans it over the price exporter's forecast and the Departure plan panels have a plan
to show. Then every panel query and query variable of grafana/dashboards/*.json is resolved the way
Grafana resolves it ($__range, $__interval, $__rate_interval, All as the variable's allValue `.*`, one value
picked, ${x:csv}, the date formats of $__from and $__to in the browser's zone, relative time overrides,
step alignment, each option of the °C/°F and time-format choices) and run against Prometheus; every
Infinity query is sent to the session store's API and must return the fields its columns select, and
only rows of the unit or vehicle picked.

Every session counter series of this new installation first appears inside the 2-hour range (issue 13:
`increase()` showed 0 kWh for a series that appeared with its first session in it, and extrapolates the
others: 14.47 kWh for 14.04 here). The energy, cost, savings and session-count panels must equal the sums
of the session store's API (/api/sessions) to its rounding, per unit too, and the simulator's truth
(/sim/truth): each live session's true energy, the charge history's energies, and the bill of the final
ones at the true prices. The unit table's power and state and the counts of units charging and vehicles
connected must match the simulator's state, the best charging hours its true billed prices by local
hour, the away energy its away charge, and °F the °C values converted.

The same on VictoriaMetrics (issue 18): Prometheus remote-writes every sample it scrapes or records to a
VictoriaMetrics, the same price history is imported into it, and a second session store queries it. Every
panel query must give the same answer on both engines (ENGINE_DIFFERENCES lists the panels whose values
differ by design, and why), and the second store the same sessions, smart-charging thresholds and
departure plan.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from simulator.bill import bill_lines
from simulator.config import TariffConfig
from suite.processes import wait_until
from testkit import ROOT
from testkit.backfill import price_backfill
from testkit.grafana import (
    BROWSER, DASHBOARDS, INFINITY, SCRAPE_INTERVAL, TEST_RANGE, Window, fetch_infinity, filter_values, panels,
    prometheus_api, query_panels, query_variables, resolve, run_infinity, run_prometheus,
)
from testkit.http import call, get_json
from testkit.ports import free_port
from testkit.simulator import SIM_TOKEN, Simulator

pytestmark = pytest.mark.e2e

# Panels (or one query of a panel, by refId) that may legitimately be empty in this scenario (their queries
# must still parse and run, and an API table's route answer JSON).
NEW_INSTALLATION = "a new installation: the session store recorded nothing a week or a year ago"
ALLOWED_EMPTY = {
    ("vehicle-status", "Fail-safe decisions", None): "the market is trusted throughout: fresh price, 9 days of history",
    **{("wall-connectors", f"{what} this week and last", "B"): NEW_INSTALLATION
       for what in ("Energy", "Cost", "Sessions")},
    **{("energy-costs", title, "B"): NEW_INSTALLATION
       for title in ("Energy: this year against last", "Charging cost: this year against last")},
}
# One home, as `make up` runs it: Prometheus labels every target with the site (general.site's default, "home"),
# the label price-backfill gives the price history, so the live series and their history are one site's and
# the site-aware rules join power with that site's prices. The `site` variable lists it; every query is checked
# with All (`.*`) and with the site picked. Series without the label (a Prometheus of your own, history from
# before sites): tests/integration/test_dashboard_counters.py. What the matcher does with two sites:
# tests/integration/test_promql_matcher.py; what the panels show with two sites at once:
# tests/integration/test_dashboard_sites.py.
SITE = "home"
BLUE, RED = "5YJ3E1EA7KF000021", "7SAYGDEE1PA000022"
API_TOKEN = "dashboard-test-token-0123456789"   # SMART_CHARGING_API_TOKEN: writes of /api/plans need it
NAMES = {BLUE: "Blue", RED: "Red"}
GARAGE_DIN, DRIVEWAY_DIN = "1457768-01-G--PGT00000000021", "1457768-02-G--PGT00000000022"
SCENARIO = {
    "start": "now", "seed": 3,
    "site": {"energy_site_id": 1689500000123456, "site_name": "Home"},
    "chargers": [
        {"name": "garage", "serial": "PGT00000000021", "part_number": "1457768-01-G", "role": "leader",
         "wiring": "split_phase", "vitals_layout": "new"},
        {"name": "driveway", "serial": "PGT00000000022", "part_number": "1457768-02-G", "role": "follower",
         "leader": "garage"}],
    "vehicles": [
        {"vin": BLUE, "name": "blue", "display_name": "Blue", "target_id": "0b6c3f8e-6a51-4b6e-9d3a-6f1f2c9a0a21",
         "battery_kwh": 60, "soc": 40, "charge_limit": 90, "max_power_kw": 11.5, "ramp": "2s"},
        {"vin": RED, "name": "red", "display_name": "Red", "target_id": "0b6c3f8e-6a51-4b6e-9d3a-6f1f2c9a0a22",
         "battery_kwh": 75, "soc": 30, "charge_limit": 90, "max_power_kw": 7.7, "ramp": "2s"}],
    # 16 c/kWh since 40 minutes ago: above the stop percentile (smart charging pauses Red) and a spike alert.
    "prices": {"seed": 7, "history_days": 12, "spikes": [{"from": "-40m", "to": "3h", "price": 16.0}]},
    "telemetry": {"delay": "3s", "history": [{"charger": "garage", "vehicle": "blue", "start": "-1d",
                                              "duration": "2h", "energy_wh": 14000}]},
}


# ------------------------------------------------------------------------------- the running suite

@dataclass
class Suite:
    prometheus: Any
    store_url: str
    sim: Simulator
    started: float
    vm: Any                  # VictoriaMetrics, fed by Prometheus's remote write
    vm_store_url: str        # a second session store, on VictoriaMetrics
    notes: list[str] = field(default_factory=list)


@pytest.fixture
def suite(tmp_path: Path, processes, start_simulator, start_component, start_prometheus) -> Suite:
    started = time.time()
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO))
    sim = start_simulator(scenario)
    ports = {name: free_port() for name in ("twc", "fleet", "vehicle", "price", "session_store")}
    data_dir = tmp_path / "tsdb"
    price_backfill(data_dir, sim.url, days=9, instance=f"127.0.0.1:{ports['price']}")
    names = ",".join(f"{vin}:{name}" for vin, name in NAMES.items())
    tessie = {"TESSIE_ACCESS_TOKEN": SIM_TOKEN, "TESSIE_BASE_URL": sim.url, "VEHICLE_NAMES": names,
              "WALL_CONNECTOR_NAMES": f"{GARAGE_DIN}:garage,{DRIVEWAY_DIN}:driveway"}
    start_component("twc-exporter", "exporters.twc", ports["twc"],
                    env={"TWC_CHARGERS": f"garage:{sim.charger_address('garage')}",
                         "TWC_POLL_VITALS_INTERVAL": "1"})
    start_component("fleet-exporter", "exporters.fleet", ports["fleet"],
                    env={**tessie, "FLEET_LIVE_STATUS_INTERVAL": "1"})
    start_component("vehicle-exporter", "exporters.vehicle", ports["vehicle"],
                    env={**tessie, "TESSIE_POLL_INTERVAL": "1"})
    start_component("price-exporter", "exporters.price", ports["price"],
                    env={"COMED_BASE_URL": sim.url, "COMED_POLL_INTERVAL": "1"})
    targets = {job: [f"127.0.0.1:{port}"] for job, port in ports.items()}
    # VictoriaMetrics receives every sample Prometheus scrapes or records, through remote write (the other
    # way to feed it, docs/victoriametrics.md): both engines hold the same samples at the same timestamps, so
    # whatever differs between their answers is the query engine's. The history is imported.
    vm = processes.victoria_metrics()
    price_backfill(None, sim.url, days=9, instance=f"127.0.0.1:{ports['price']}", import_url=vm.url)
    # imported series become searchable seconds later on a new store: the store on it must find yesterday's prices
    vm.wait_for("count_over_time(electricity_price_billed_cents_per_kwh[10d]) > 150", 30)
    prometheus = start_prometheus(targets, rule_files=[str(p) for p in sorted((ROOT / "rules").glob("*.yml"))],
                                  data_dir=data_dir, remote_write=[f"{vm.url}/api/v1/write"],
                                  sites={address: SITE for addresses in targets.values() for address in addresses})

    def store_config(name: str, query_url: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({
            # source fleet: the Fleet data the panels filter by, whichever exporter Prometheus sees first.
            "sessions": {"source": "fleet", "evaluation_interval": 1, "catch_up": "10m", "min_energy_kwh": 0.02,
                         "min_duration": 5, "database": str(tmp_path / f"{name}.db")},
            "prometheus": {"url": query_url}}))
        return path
    config = store_config("sessions", prometheus.url)
    start_component("session-store", "session_store", ports["session_store"], config=config,
                    env={**tessie, "FLEET_CHARGE_HISTORY_INTERVAL": "1", "SMART_CHARGING_EVALUATION_INTERVAL": "1",
                         "VEHICLE_CHARGES_INTERVAL": "1", "SMART_CHARGING_API_TOKEN": API_TOKEN})
    store = f"http://127.0.0.1:{ports['session_store']}"
    # Remote write sends each series in its own shard's batches (every 5 s), so the power and the link series of
    # one scrape can reach VictoriaMetrics seconds apart: the store holds a unit's newer power back until its
    # link series has caught up (sessions.known_alike), or it would run past an unplug it cannot see yet (a
    # busy machine once made the blip part of the session). No `settle` here: this is where that is tested.
    vm_store = processes.component("session-store-vm", "session_store", config=store_config("sessions-vm", vm.url),
                                   env={**tessie, "FLEET_CHARGE_HISTORY_INTERVAL": "1",
                                        "SMART_CHARGING_EVALUATION_INTERVAL": "1", "VEHICLE_CHARGES_INTERVAL": "1",
                                        "SMART_CHARGING_API_TOKEN": API_TOKEN})

    def current(unit: str) -> list[dict]:
        return [s for s in get_json(f"{store}/api/sessions/current")["sessions"] if s["unit"] == unit]

    prometheus.wait_for("tesla_wall_connector_power_watts", 30)
    # Blue comes back from a Supercharger stop (an away charge ending now), then charges at home: Tessie's charge
    # history lists both. The session store decides a charge once no session open before its end is still
    # open (the wall may yet explain it), so Red plugs in after Blue's sessions.
    sim.event(vehicle="blue", away_charge={"soc": 70, "duration": "30m"})
    sim.event(vehicle="blue", plug_in="garage")
    wait_until(lambda: current("garage") and current("garage")[0]["energy_wh"] > 30, 60, 0.2, "30 Wh into Blue")
    sim.event(vehicle="blue", unplug=True)
    wait_until(lambda: any(s["source"] == "live_status" for s in get_json(f"{store}/api/sessions")["sessions"]),
               60, 0.2, "the completed live session")
    # Unplugged as soon as the session store sees the next session open: discarded (under 20 Wh, 5 s).
    sim.event(vehicle="blue", plug_in="garage")
    wait_until(lambda: current("garage"), 30, 0.1, "Blue's second session to open")
    sim.event(vehicle="blue", unplug=True)
    wait_until(lambda: {c["away"] for c in get_json(f"{store}/api/charges")["charges"]} >= {True, False}, 60, 0.5,
               "Blue's home and away charges in /api/charges")
    sim.event(vehicle="red", plug_in="driveway")
    # increase() needs two samples of the new counter.
    prometheus.wait_for("count_over_time(charging_sessions_discarded_total[1m]) >= 2", 30)
    prometheus.wait_for('ALERTS{alertname="ChargingSessionCompleted",alertstate="firing"}', 20)
    prometheus.wait_for('smart_charging_status{state="paused_simulated"} == 1', 20)
    # Red leaves in 10 hours at 80 %: from its 30 % that is about 42 kWh at the wall, planned in the cheapest
    # hours of the forecast (the planner takes Red over from the threshold rule, still in dry run).
    departure = {"target_percent": 80, "departure": time.time() + 10 * 3600}
    for url in (store, vm_store.url):   # the same departure on both engines' stores
        status, _, answer = call(f"{url}/api/plans/{RED}", departure, "PUT",
                                 headers={"Authorization": f"Bearer {API_TOKEN}"})
        assert status == 200, answer
    prometheus.wait_for("smart_charging_plan_hour_energy_joules > 0", 30)
    prometheus.wait_for("smart_charging_plan_hour_price_cents_per_kwh", 10)
    # Charging time and the energy by hour of the day sample the power at whole minutes: one of them must have
    # passed with Red charging (this Prometheus holds about a minute of data).
    prometheus.wait_for("count_over_time((sum(charging:unit_power_watts) > 100)[5m:1m])", 70)
    # Range queries end on a step boundary (Grafana aligns them): let one pass, so the newest series are in.
    ready = time.time()
    time.sleep(SCRAPE_INTERVAL - ready % SCRAPE_INTERVAL + 1)
    return Suite(prometheus, store, sim, started, vm, vm_store.url)


def test_every_dashboard_query_returns_data_and_the_session_panels_the_true_totals(suite: Suite) -> None:
    failures = every_query_returns_data(suite)
    failures += session_panels_show_the_true_energy_and_cost(suite)
    failures += live_panels_show_the_truth(suite)
    failures += same_panels_on_victoria_metrics(suite)
    failures += same_sessions_and_thresholds_on_victoria_metrics(suite)
    assert not failures, "\n".join(failures)
    if KNOWN_STORE_BUG in suite.notes:
        pytest.xfail(KNOWN_STORE_BUG)


def selections_of(dashboard: dict, listed: dict[str, list[str]]) -> list[dict[str, list[str] | None]]:
    """All and the default choices first; then each filter with each value picked alone (with allValue
    empty, picking every value resolves as All does); then each other option of every choice variable."""
    found: list[dict[str, list[str] | None]] = [{}]
    for variable in dashboard["templating"]["list"]:
        name = variable["name"]
        if variable["type"] == "query":
            found += [{name: [value]} for value in listed.get(name, [])]
        elif variable["type"] == "custom":
            found += [{name: [o["value"]]} for o in variable["options"] if o["value"] != variable["current"]["value"]]
    return found


def allowed_empty(dashboard: dict, panel: dict, target: dict) -> str | None:
    return (ALLOWED_EMPTY.get((dashboard["uid"], panel["title"], None))
            or ALLOWED_EMPTY.get((dashboard["uid"], panel["title"], target["refId"])))


def every_query_returns_data(suite: Suite) -> list[str]:
    started = time.monotonic()
    url, now = suite.prometheus.url, time.time()
    failures: list[str] = []
    values: dict[tuple[str, str], list[str]] = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        variables = {v["name"]: v for v in dashboard["templating"]["list"] if v["type"] in ("query", "custom")}
        for variable in query_variables(dashboard):
            found, error = filter_values(url, variable, Window(now - TEST_RANGE, now, SCRAPE_INTERVAL), variables)
            values[dashboard["uid"], variable["name"]] = found
            if error or not found:
                failures.append(f"{dashboard['title']} / variable ${variable['name']} / {variable['query']}: "
                                f"{error or 'no values'}")
    counts = {"prometheus": 0, INFINITY: 0}
    for dashboard, panel in query_panels():
        variables = {v["name"]: v for v in dashboard["templating"]["list"] if v["type"] in ("query", "custom")}
        listed = {name: values.get((dashboard["uid"], name), []) for name in variables}
        window = Window.of(panel, now)
        selections = selections_of(dashboard, listed)
        for target in panel["targets"]:
            kind = target["datasource"]["type"]
            allowed = allowed_empty(dashboard, panel, target)
            text = target["expr"] if kind == "prometheus" else json.dumps(target["url_options"])
            resolved = [resolve(text, window, selection, variables, listed) for selection in selections]
            for selection, expr in zip(selections, resolved):
                if selection is not selections[0] and expr == resolved[0]:
                    continue                            # this variable is not in this query: All said it all
                counts[kind] += 1
                if kind == "prometheus":
                    problem = run_prometheus(url, window, target.get("instant", False), expr)
                else:
                    expr = target["url"]
                    problem = run_infinity(suite.store_url, target, window, selection, variables, listed)
                # one unit or vehicle alone may have nothing (Red has no completed session, Blue no plan)
                alone = any(variables[name]["type"] == "query" for name in selection)
                if problem and not ((allowed or alone) and problem.startswith(("no data", "no rows"))):
                    failures.append(f"{dashboard['title']} / {panel['title']} / {selection} / {expr}: {problem}")
    print(f"\n{counts['prometheus']} PromQL queries, {counts[INFINITY]} session-store API queries and {len(values)} "
          f"variables checked in {time.monotonic() - started:.1f} s")
    return [f"{len(failures)} dashboard queries failed:"] + failures if failures else []


# ------------------------------------------------------------------------------ the session totals

# Panels that show a total of the session store's counters -> the total they must equal (money: final
# sessions only, as the counters hold them). "today" panels are bars of a day: their newest bar.
TOTALS = {
    ("charging-overview", "Energy today"): "energy_kwh", ("charging-overview", "Cost today"): "cost",
    ("charging-overview", "Savings today"): "savings",
    ("session-history", "Sessions"): "sessions", ("session-history", "Energy"): "energy_kwh",
    ("session-history", "Cost"): "cost", ("session-history", "Energy per day"): "energy_kwh",
    ("session-history", "Sessions per day"): "sessions",
    ("energy-costs", "Energy"): "energy_kwh", ("energy-costs", "Supply"): "supply",
    ("energy-costs", "Delivery"): "delivery", ("energy-costs", "Fixed-rate cost"): "reference",
    ("energy-costs", "Savings vs the fixed rate"): "savings", ("energy-costs", "Sessions"): "sessions",
    ("energy-costs", "Provisional sessions"): "provisional", ("energy-costs", "Energy per day"): "energy_kwh",
    ("energy-costs", "Cost per day"): "cost", ("energy-costs", "Savings per day"): "savings",
    ("wall-connectors", "Energy of completed sessions"): "energy_kwh",
    # the running total's last point; each unit's row (every target: energy, cost, sessions, price paid)
    ("energy-costs", "Cumulative energy"): "energy_kwh",
    ("wall-connectors", "All Wall Connectors"): None, ("energy-costs", "Energy and cost per unit"): None,
    ("wall-connectors", "Energy this week and last"): None, ("wall-connectors", "Cost this week and last"): None,
    ("wall-connectors", "Sessions this week and last"): None,
}
HISTORY_WH = SCENARIO["telemetry"]["history"][0]["energy_wh"]
# A live session is integrated from samples 1 s apart (Fleet polls and scrapes): each of its two edges may be
# off by a sample at its peak power (about 3 Wh at 11.5 kW: 10 % of a 30-Wh session).
EDGE_S = 2 * 1.0


def api_totals(sessions: list[dict]) -> dict[str, float]:
    final = [s for s in sessions if s["cost_final"]]
    return {"sessions": len(sessions), "provisional": len(sessions) - len(final),
            "energy_kwh": sum(s["energy_wh"] for s in sessions) / 1000,
            "supply": sum(s["supply_cost"] for s in final), "delivery": sum(s["delivery_cost"] for s in final),
            "cost": sum(s["full_cost"] for s in final), "reference": sum(s["reference_cost"] or 0 for s in final),
            "savings": sum(s["savings"] or 0 for s in final)}


def counter_totals(prometheus: Any) -> dict[str, float]:
    """The newest value of every session counter, summed: what the store last exposed."""
    def value(expr: str) -> float:
        return prometheus.value(f"sum({expr})") or 0.0
    cost = "charging_session_cost_dollars_total"
    return {"sessions": value("charging_sessions_completed_total"),
            "energy_kwh": value("charging_session_energy_joules_total") / 3.6e6,
            "cost": value(f'{cost}{{component!="supply_credit"}}') - value(f'{cost}{{component="supply_credit"}}')}


def listed_values(url: str, dashboard: dict, now: float) -> dict[str, list[str]]:
    """What each filter variable lists (All resolves to them)."""
    variables = {v["name"]: v for v in dashboard["templating"]["list"] if v["type"] in ("query", "custom")}
    return {v["name"]: filter_values(url, v, Window(now - TEST_RANGE, now, SCRAPE_INTERVAL), variables)[0]
            for v in query_variables(dashboard)}


def panel_values(url: str, dashboard: dict, panel: dict, now: float, daily: bool,
                 selection: dict[str, list[str] | None] | None = None) -> dict[str, float]:
    """The panel's value per series label text (instant; `site` left out: there is one), or of its newest bar (a
    day's, or a running total's last point), over every target; All and the default choices unless `selection`
    says otherwise."""
    variables = {v["name"]: v for v in dashboard["templating"]["list"] if v["type"] in ("query", "custom")}
    listed = listed_values(url, dashboard, now)
    window = Window.of(panel, now)
    values: dict[str, float] = {}
    for target in panel["targets"]:
        expr = resolve(target["expr"], window, selection or {}, variables, listed)
        if daily:
            start, end = window.aligned()
            data = prometheus_api(url, "/api/v1/query_range", {"query": expr, "start": start, "end": end,
                                                                "step": window.interval})
        else:
            data = prometheus_api(url, "/api/v1/query", {"query": expr, "time": f"{window.end:.3f}"})
        assert "error" not in data, f"{panel['title']}: {data}"
        for series in data["result"]:
            key = f"{target['refId']} " + ",".join(f"{k}={v}" for k, v in sorted(series["metric"].items())
                                                   if k != "site")     # the one site
            if daily:
                day = window.aligned()[1]
                sample = [value for t, value in series["values"] if t == day]
                if not sample:
                    continue
                values[key] = float(sample[0])
            else:
                values[key] = float(series["value"][1])
    return values


class Prices:
    """The simulator's true 5-minute prices, as simulator.bill reads them (cents/kWh by interval end)."""

    def __init__(self, rows: list[dict]) -> None:
        self.by_end = {int(row["t"]): row["price"] for row in rows}

    def price(self, end: int) -> float:
        return self.by_end[end]


def spread_evenly(start: float, end: float, energy_wh: float) -> dict[int, float]:
    """W*s per 5-minute interval end of energy drawn at constant power from start to end."""
    watts = energy_wh * 3600 / (end - start)
    first = math.floor(start / 300) * 300 + 300
    return {e: watts * (min(e, end) - max(e - 300, start)) for e in range(first, math.ceil(end / 300) * 300 + 1, 300)
            if min(e, end) > max(e - 300, start)}


# session_store/service.py reconcile() reads prices only up to 10 minutes after the last record's end
# (`+ 600`; _window reads `+ 3600`), and by then the session is older than GIVE_UP_S, so the last hour of a
# charge-history session is billed, final, at the mean of the prices published until 10 minutes after it
# ended instead of all twelve. The panels show what the store says; the truth says otherwise.
KNOWN_STORE_BUG = ("a charge-history session's last hour is billed at the prices up to 10 minutes after it ended "
                   "(session_store/service.py reconcile: prices until end + 600, not + 3600)")


def per_unit_and_week_panels(shown: dict, sessions: list[dict], expected: dict[str, float]) -> list[str]:
    """Each unit's row (today's energy and sessions; energy, final cost and sessions of the range) against the
    API's sessions of that unit, and this week's totals against all of them (every session is this week's)."""
    failures = []
    units = ("garage", "driveway")

    def of(unit: str, key: str) -> float:
        mine = [s for s in sessions if s["unit"] == unit]
        final = [s for s in mine if s["cost_final"]]
        return {"energy": sum(s["energy_wh"] for s in mine) / 1000, "sessions": len(mine),
                "cost": sum(s["full_cost"] for s in final)}[key]

    checks = [(("wall-connectors", "All Wall Connectors"), "D", "energy"),
              (("wall-connectors", "All Wall Connectors"), "E", "sessions"),
              (("energy-costs", "Energy and cost per unit"), "A", "energy"),
              (("energy-costs", "Energy and cost per unit"), "B", "cost"),
              (("energy-costs", "Energy and cost per unit"), "C", "sessions")]
    for panel, ref, key in checks:
        got = {unit: shown[panel].get(f"{ref} unit={unit}") for unit in units}
        want = {unit: of(unit, key) for unit in units}
        print(f"  {panel[0]} / {panel[1]} / {key}: {got} (API {want})")
        if got != pytest.approx(want, abs=1e-4):
            failures.append(f"{panel[0]} / {panel[1]} / {key} per unit: {got} != {want} (the API's sessions)")
    for title, key in (("Energy this week and last", "energy_kwh"), ("Cost this week and last", "cost"),
                       ("Sessions this week and last", "sessions")):
        this_week = sum(v for k, v in shown["wall-connectors", title].items() if k.startswith("A"))
        last_week = [k for k in shown["wall-connectors", title] if k.startswith("B")]
        if abs(this_week - expected[key]) > 1e-4 * len(sessions) or last_week:
            failures.append(f"wall-connectors / {title}: this week {this_week} != {expected[key]}, or last week "
                            f"shown for a new installation: {last_week}")
    return ["per-unit and weekly panels differ from the session store's API:"] + failures if failures else []


def live_panels_show_the_truth(suite: Suite) -> list[str]:
    """The unit table's power, state and vehicle and the counts against the simulator's state; the hours of
    the day against its true prices (in the browser's zone); °F against °C."""
    url, now = suite.prometheus.url, time.time()
    boards = {json.loads(p.read_text())["uid"]: json.loads(p.read_text()) for p in DASHBOARDS.glob("*.json")}

    def shown(uid: str, title: str, selection: dict | None = None) -> dict[str, float]:
        panel = next(p for p in panels(boards[uid]) if p.get("title") == title)
        return panel_values(url, boards[uid], panel, time.time(), daily=False, selection=selection)

    failures = []
    state = suite.sim.state()
    power = {unit: c["power_w"] for unit, c in state["chargers"].items()}
    table = shown("wall-connectors", "All Wall Connectors")
    got = {unit: table.get(f"B unit={unit}") for unit in power}
    print(f"  All Wall Connectors power {got}, simulator {power}")
    if got != pytest.approx(power, rel=0.05, abs=50):
        failures.append(f"All Wall Connectors / Power: {got}, simulator {power}")
    if (table.get("A unit=driveway"), table.get("A unit=garage")) != (1, 2) or \
            "C unit=driveway,vehicle=Red" not in table:
        failures.append(f"All Wall Connectors: Red charging on driveway, garage disconnected: {table}")
    charging = sum(1 for w in power.values() if w > 100)
    connected = sum(1 for v in state["vehicles"].values() if v["charger"])
    counts = (sum(shown("wall-connectors", "Units charging").values()),
              sum(shown("wall-connectors", "Vehicles connected").values()))
    if counts != (charging, connected):
        failures.append(f"units charging, vehicles connected: {counts}, simulator {(charging, connected)}")

    best = shown("energy-costs", "Best charging hours")
    truth = suite.sim.truth(prices_from=now - TEST_RANGE - 7200, prices_to=now + 300)
    prices = {int(row["t"]): row["price"] for row in truth["prices"]}
    billed = {}
    for end in range(math.ceil((now - TEST_RANGE) / 3600) * 3600, int(now) + 1, 3600):
        hour = datetime.fromtimestamp(end - 3600, BROWSER).hour
        billed.setdefault(hour, []).append(sum(prices[end - 300 * i] for i in range(12)) / 12)
    want = {f"A hour={hour}": sum(v) / len(v) for hour, v in billed.items()}
    got = {k: v for k, v in best.items() if k.startswith("A ")}
    newest = f"A hour={datetime.fromtimestamp(int(now) // 3600 * 3600 - 3600, BROWSER).hour}"
    print(f"  Best charging hours (Chicago): {got}, true billed {want}")
    if not got or not set(got) <= set(want) or set(want) - set(got) - {newest} or \
            any(abs(got[k] - want[k]) > 1e-3 for k in got):
        failures.append(f"Best charging hours: average billed price by local hour {got}, true {want}")
    shares = sum(v for k, v in best.items() if k.startswith("C "))
    if abs(shares - 1) > 1e-6:
        failures.append(f"Best charging hours: the shares of your energy add up to {shares}")
    by_hour = shown("energy-costs", "Price by hour of day")
    for key, average in got.items():
        hour = key.removeprefix("A ")
        low, mean, high = (by_hour.get(f"{ref} {hour}") for ref in "ABC")
        if mean is None or abs(mean - average) > 1e-9 or not low <= mean <= high:
            failures.append(f"Price by hour of day {hour}: {low}, {mean}, {high} against {average}")

    status = next(p for p in panels(boards["vehicle-status"]) if p.get("title") == "Energy added: home and away")
    variables = {v["name"]: v for v in boards["vehicle-status"]["templating"]["list"]}
    listed = listed_values(url, boards["vehicle-status"], now)
    added = {}
    for target in status["targets"]:                # Grafana's stat sums the column ("sum")
        _, rows = fetch_infinity(suite.store_url, target, Window.of(status, now), {}, variables, listed)
        added[target["columns"][0]["text"]] = sum(row["energy_added_wh"] for row in rows)
    away = sum(c["energy_added_kwh"] * 1000 for c in truth["vehicle_charges"]
               if c["away"] and c["end"] >= now - TEST_RANGE)
    print(f"  Energy added: {added} Wh, true away {away:.0f} Wh")
    if abs(added.get("away", 0) - away) > 10 or not added.get("home"):
        failures.append(f"Vehicle Status / Energy added: home and away: {added}, true away {away} Wh")

    for uid, title in (("wall-connector-diagnostics", "Average start-up temperature"),):
        celsius, fahrenheit = shown(uid, title), shown(uid, title, {"temperature_unit": ["1.8"]})
        want = {k: v * 1.8 + 32 for k, v in celsius.items()}
        print(f"  {title}: {celsius} °C, {fahrenheit} °F")
        if not celsius or fahrenheit != pytest.approx(want, abs=1e-9):
            failures.append(f"{uid} / {title}: {fahrenheit} °F, {celsius} °C")
    return ["panels differ from the simulator:"] + failures if failures else []


def truth_of(sessions: list[dict], truth: dict, started: float) -> dict[str, float]:
    """What the simulator says about the API's sessions: their energy and the cost of the final ones, each with
    its tolerance. Yesterday's session is the charge history's record (its energy spread over its duration, as
    the store does with a record no live data saw), billed at the true prices; the others are simulated
    sessions (a live one's energy within EDGE_S at its peak power, a charge-history one's the meter's)."""
    prices, tariff, zone = Prices(truth["prices"]), TariffConfig(), ZoneInfo("America/Chicago")
    energy = energy_tolerance = cost = cost_tolerance = bug = 0.0
    for session in sessions:
        if session["source"] == "telemetry_history" and session["start"] < started - 3600:
            wh, error_wh = HISTORY_WH, 0.0
            lines = bill_lines(spread_evenly(session["start"], session["end"], HISTORY_WH), prices, tariff, zone)
            full = sum(line["supply"] + line["delivery"] for line in lines)
            last = lines[-1]
            seen = [prices.price(e) for e in range(int(last["end"]) - 3300, int(last["end"]) + 1, 300)
                    if e <= session["end"] + 600]
            bug += last["energy_kwh"] * (sum(seen) / len(seen) - last["price_cents"]) / 100
        else:
            simulated = min((t for t in truth["sessions"] if t["charger"] == session["unit"] and t["first_power"]),
                            key=lambda t: abs(t["first_power"] - session["start"]))
            assert abs(simulated["first_power"] - session["start"]) <= 30, (session, simulated)
            live = session["source"] == "live_status"
            wh = simulated["energy_wh"] if live else simulated["metered_energy_wh"]   # a record's energy is the meter's
            error_wh = EDGE_S * session["peak_w"] / 3600 if live else 0.0
            full = simulated["bill"]["full"]
        energy += wh / 1000
        energy_tolerance += error_wh / 1000 + 1e-4
        if session["cost_final"]:
            cost += full
            cost_tolerance += full * error_wh / wh + 1e-4
    return {"energy_kwh": energy, "energy_tolerance": energy_tolerance, "cost": cost, "cost_tolerance": cost_tolerance,
            "cost_with_store_bug": cost + bug}


def session_panels_show_the_true_energy_and_cost(suite: Suite) -> list[str]:
    """The panels of TOTALS against the API's sessions, then the energy and cost against the truth."""
    url, store = suite.prometheus.url, suite.store_url
    for _ in range(5):
        sessions = get_json(f"{store}/api/sessions")["sessions"]
        expected = api_totals(sessions)
        try:   # Prometheus holds the counters of exactly these sessions (renders follow writes within a second)
            wait_until(lambda: counter_totals(suite.prometheus) == pytest.approx(
                {k: expected[k] for k in ("sessions", "energy_kwh", "cost")}, abs=1e-4), 20, 0.5,
                "the counters of the API's sessions in Prometheus")
        except TimeoutError:
            continue
        time.sleep(1.5)
        now = time.time()
        shown = {(d["uid"], p["title"]): panel_values(url, d, p, now, daily=p["type"] == "timeseries")
                 for d, p in query_panels()
                 if (d["uid"], p["title"]) in TOTALS and p["datasource"]["type"] == "prometheus"}
        if get_json(f"{store}/api/sessions")["sessions"] == sessions:
            break                                   # nothing changed meanwhile: what the panels showed is theirs
    else:
        return ["the session store kept changing its sessions"]
    assert len(shown) == len(TOTALS), sorted(set(TOTALS) - set(shown))
    today = now // 86400 * 86400
    print(f"\n{len(sessions)} sessions: {expected['energy_kwh']:.4f} kWh, final cost ${expected['cost']:.6f}, "
          f"{expected['provisional']} provisional")
    failures = []
    for (uid, title), key in sorted(TOTALS.items()):
        if key is None:
            continue                                # a row per unit, or this week's and last: checked below
        if "per day" in title and suite.started < today:
            continue                                # the suite started yesterday (UTC): today's bar holds part
        values = shown[uid, title]
        total = sum(values.values())
        tolerance = 1e-4 * len(sessions)            # the API rounds Wh to 0.1 and dollars to 1e-6
        print(f"  {uid} / {title}: {total:.6f} (API {expected[key]:.6f})")
        if abs(total - expected[key]) > tolerance:
            failures.append(f"{uid} / {title}: {total} != {expected[key]} ({key} of the API's sessions): {values}")
    if failures:
        return ["session panels differ from the session store's API:"] + failures

    # every session of this new installation counts, the first of each unit and vehicle included
    assert expected["sessions"] >= 2 and expected["energy_kwh"] > HISTORY_WH / 1000
    by_unit = shown["wall-connectors", "Energy of completed sessions"]
    assert by_unit == pytest.approx({f"A unit={unit}": sum(s["energy_wh"] for s in sessions if s["unit"] == unit) / 1000
                                     for unit in ("garage", "driveway")}, abs=1e-4), "driveway: its zero series"
    assert expected["cost"] > 0 and expected["provisional"] >= 1, "yesterday's session is final, today's not yet"
    failures = per_unit_and_week_panels(shown, sessions, expected)
    if failures:
        return failures

    truth = suite.sim.truth(prices_from=min(s["start"] for s in sessions) - 7200, prices_to=now + 300)
    true = truth_of(sessions, truth, suite.started)
    energy_shown = sum(shown["session-history", "Energy"].values())
    cost_shown = sum(shown["session-history", "Cost"].values())
    print(f"  truth: {true['energy_kwh']:.4f} kWh (+-{true['energy_tolerance']:.4f}), shown {energy_shown:.4f}; "
          f"final cost ${true['cost']:.6f} (+-{true['cost_tolerance']:.6f}), shown ${cost_shown:.6f}")
    assert energy_shown == pytest.approx(true["energy_kwh"], abs=true["energy_tolerance"])
    if cost_shown != pytest.approx(true["cost"], abs=true["cost_tolerance"]):
        if cost_shown == pytest.approx(true["cost_with_store_bug"], abs=true["cost_tolerance"]):
            suite.notes.append(KNOWN_STORE_BUG)
        else:
            return [f"final cost shown ${cost_shown:.6f}, true ${true['cost']:.6f}"]
    return []


# ------------------------------------------------------------------------ the same on VictoriaMetrics

# Where VictoriaMetrics answers otherwise than Prometheus (2.42 here) from the same samples, and why
# (docs/victoriametrics.md, "Where the answers differ"). Those panels must show the same series; their values
# are not compared. Every other panel must give the same values, to VictoriaMetrics's 12 significant digits
# (and time() to its rounding).
ENGINE_DIFFERENCES = {
    ("Suite health", "Upstream requests"): "rate()/increase(): Prometheus extrapolates to the range's edges and "
        "ignores a counter's first sample; VictoriaMetrics never extrapolates and counts a series that starts "
        "inside the range from zero (a new installation's counters: up to 4x here)",
    ("Suite health", "Upstream request duration (p95)"): "histogram_quantile over rate(): as above; and where "
        "every bucket's rate is 0, Prometheus answers NaN, VictoriaMetrics nothing",
    ("Vehicle Status", "Actions"): "increase(): as for Upstream requests",
    ("Electricity Prices", "Price history (30 days)"): "avg_over_time(...[1d]) at whole hours: Prometheus 2 "
        "includes a sample exactly at the window's start (the billed price of the hour 24 h before), "
        "VictoriaMetrics and Prometheus 3 do not",
    ("Energy & Costs", "Energy per hour"): "the current hour's subquery reaches past the newest sample: "
        "Prometheus repeats it for its 5-minute lookback, VictoriaMetrics stops after about two scrape "
        "intervals (completed hours agree)",
}
TIME_ROUNDING = 1e-3      # seconds: time() - x, where each engine's time() rounds differently
VALUE_DIGITS = 1e-11      # VictoriaMetrics keeps 12 significant digits of a float (11.986144304275513 -> ...275)


def results_by_series(data: dict) -> dict[str, dict[float, float]]:
    """Each series (its labels as text) -> timestamp -> value, NaN-only series left out."""
    out: dict[str, dict[float, float]] = {}
    for series in data["result"]:
        points = {float(t): float(v) for t, v in ([series["value"]] if "value" in series else series["values"])}
        if not all(math.isnan(v) for v in points.values()):
            out[json.dumps(series["metric"], sort_keys=True)] = points
    return out


def engine_query(url: str, window: Window, instant: bool, expr: str) -> dict:
    if instant:
        return prometheus_api(url, "/api/v1/query", {"query": expr, "time": f"{window.end:.3f}"})
    start, end = window.aligned()
    return prometheus_api(url, "/api/v1/query_range", {"query": expr, "start": start, "end": end,
                                                        "step": window.interval})


def compare_series(where: str, ours: dict[str, dict[float, float]], theirs: dict[str, dict[float, float]],
                   values: bool) -> list[str]:
    problems = []
    if set(ours) != set(theirs):
        problems.append(f"{where}: series only on Prometheus {sorted(set(ours) - set(theirs))[:3]}, only on "
                        f"VictoriaMetrics {sorted(set(theirs) - set(ours))[:3]}")
    for key in sorted(set(ours) & set(theirs)) if values else ():
        a, b = ours[key], theirs[key]
        if set(a) != set(b):
            problems.append(f"{where} {key}: points at {sorted(set(a) ^ set(b))[:4]} on one engine only")
        for t in sorted(set(a) & set(b)):
            x, y = a[t], b[t]
            tolerance = max(VALUE_DIGITS * abs(x), TIME_ROUNDING if "time()" in where else 0.0)
            if not (x == y or math.isnan(x) and math.isnan(y) or abs(x - y) <= tolerance):
                problems.append(f"{where} {key}: {x!r} on Prometheus, {y!r} on VictoriaMetrics at {t:.0f}")
                break
    return problems


def same_panels_on_victoria_metrics(suite: Suite) -> list[str]:
    """Every PromQL panel query (All, default choices) answered by VictoriaMetrics as by Prometheus, from the
    same samples (remote write), at a time both hold every sample of (remote write sends within 5 s)."""
    at = time.time() - 15
    failures: list[str] = []
    compared = with_data = 0
    for dashboard, panel in query_panels():
        variables = {v["name"]: v for v in dashboard["templating"]["list"] if v["type"] in ("query", "custom")}
        listed = listed_values(suite.prometheus.url, dashboard, at)
        window = Window.of(panel, at)
        explained = (dashboard["title"], panel["title"]) in ENGINE_DIFFERENCES
        for target in panel["targets"]:
            if target["datasource"]["type"] != "prometheus":
                continue
            expr = resolve(target["expr"], window, {}, variables, listed)
            instant = target.get("instant", False)
            ours = engine_query(suite.prometheus.url, window, instant, expr)
            theirs = engine_query(suite.vm.url, window, instant, expr)
            where = f"{dashboard['title']} / {panel['title']} / {target['refId']}" + (" time()" * ("time()" in expr))
            compared += 1
            if "error" in ours or "error" in theirs:
                failures.append(f"{where}: Prometheus {ours.get('error')}, VictoriaMetrics {theirs.get('error')}")
                continue
            a, b = results_by_series(ours), results_by_series(theirs)
            with_data += bool(a)
            failures += compare_series(where, a, b, values=not explained)
    print(f"\n{compared} panel queries compared on VictoriaMetrics, {with_data} with data; "
          f"{len(ENGINE_DIFFERENCES)} panels' values differ by design")
    if with_data < 150:
        failures.append(f"only {with_data} of {compared} panel queries had data to compare")
    return [f"{len(failures)} panel queries differ on VictoriaMetrics:"] + failures if failures else []


def same_sessions_and_thresholds_on_victoria_metrics(suite: Suite) -> list[str]:
    """The session store on VictoriaMetrics finds the same sessions, to the millisecond and the watt-hour,
    computes the same smart-charging thresholds from the same history, and plans the same departure in the
    same hours, as the one on Prometheus."""
    def sessions(url: str) -> list[tuple]:
        return sorted((s["unit"], s["source"], s["start"], s["end"], s["energy_wh"], s["full_cost"], s["cost_final"])
                      for s in get_json(f"{url}/api/sessions")["sessions"])
    ours = sessions(suite.store_url)
    try:   # remote write delivers in batches (every 5 s): the second store may be an evaluation behind
        wait_until(lambda: sessions(suite.vm_store_url) == ours, 30, 0.5, "the same sessions on VictoriaMetrics")
    except TimeoutError:
        return [f"sessions differ: Prometheus {ours}, VictoriaMetrics {sessions(suite.vm_store_url)}"]
    failures = []
    thresholds = [get_json(f"{url}/api/prices")["thresholds"] for url in (suite.store_url, suite.vm_store_url)]
    if thresholds[0] != thresholds[1] or None in thresholds[0].values():
        failures.append(f"thresholds differ: Prometheus {thresholds[0]}, VictoriaMetrics {thresholds[1]}")
    # The departure planner: the same hourly prices (forecast and billed), and Red's plan in the same hours.
    plans = [get_json(f"{url}/api/plans") for url in (suite.store_url, suite.vm_store_url)]
    if plans[0]["hours"] != plans[1]["hours"] or not plans[0]["hours"]:
        failures.append(f"the planner's hours differ: {plans[0]['hours'][:3]} vs {plans[1]['hours'][:3]}")
    red = [next(c for c in plan["cars"] if c["vin"] == RED) for plan in plans]
    chosen = [sorted(h["start"] for h in car["plan"]["hours"]) if car["plan"] else None for car in red]
    if chosen[0] != chosen[1] or not chosen[0] or red[0]["decision"] != red[1]["decision"]:
        failures.append(f"Red's plan differs: {chosen[0]} ({red[0]['decision']}) vs {chosen[1]} ({red[1]['decision']})")
    print(f"\nsessions on both engines: {len(ours)} identical; thresholds {thresholds[0]} on both; Red planned in "
          f"{len(chosen[0] or [])} hours on both")
    return failures
