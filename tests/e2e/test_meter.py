"""The utility's meter end to end: `charging-meter --setup` logs in to the simulator's portal (MFA) through
the real `opower` library, the running component pulls 40 days of half-hour reads and the last bill,
reconciles them with the session store's sessions (Fleet charge history, priced from the backfilled
prices), and writes them into Prometheus's TSDB at their real time. Then:

- each day's `sum_over_time` of the home's and the EV's energy in Prometheus equals the simulator's truth
  of the meter (base load plus the true EV energy, billed by ComEd's rule without the suite's code);
- the session store's /api/meter gives the EV share within 1 % of the truth, and the tariff's wrong
  delivery rate (5 ¢ where the utility bills 7.5 ¢) comes back as a hint naming the right one;
- every query of the Meter & Bills dashboard returns data from that Prometheus and session store;
- a late correction replaces the day's values in Prometheus too: the day sums to the corrected truth,
  neither the first estimate nor both;
- a revoked login says what to run, once, and the data stays.
"""
from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from suite.processes import wait_until
from testkit import ROOT
from testkit.backfill import price_backfill
from testkit.http import get, get_json
from testkit.ports import free_port
from testkit.simulator import SIM_TOKEN
from testkit.grafana import Window, panels, resolve, run_infinity, run_prometheus
from tests.security.test_secrets_never_leak import forms

pytestmark = pytest.mark.e2e

CHICAGO = ZoneInfo("America/Chicago")
J_PER_KWH = 3.6e6
BLUE = "5YJ3E1EA7KF000071"
DIN = "1457768-02-G--PGT00000000071"
WRONG_DELIVERY_CENTS = 5.0      # the suite's tariff; the simulated utility bills 7.5 (its default)
DASHBOARD = ROOT / "grafana" / "dashboards" / "meter-bills.json"
# Today's reads exist only once the 12-hour publication delay has passed midnight.
MAY_BE_EMPTY = {"Today", "Today's cost"}
LOADED = "count_over_time(utility_meter_read_energy_joules[3d])"   # the reads' blocks are open (they are 12 h old)


def midnight(day: date) -> float:
    return datetime.combine(day, datetime.min.time(), CHICAGO).timestamp()


def plan(now: float) -> dict:
    """The last bill period ends at local midnight a day or a few before now (its cycle day), and the car
    charged three times in the days before it; one of those days is published first as an estimate (x 0.9)
    and corrected half an hour after the test's first pull would see it."""
    today = datetime.fromtimestamp(now, CHICAGO).date()
    yesterday = today - timedelta(days=1)
    boundary = yesterday if yesterday.day <= 28 else yesterday.replace(day=28)
    cycle_end = midnight(boundary)
    corrected = boundary - timedelta(days=2)
    after = now - midnight(corrected + timedelta(days=1)) + 1800
    history = [{"charger": "garage", "vehicle": "blue", "start": f"{cycle_end - now - days * 86400 + 20 * 3600:.0f}s",
                "duration": "3h", "energy_wh": energy} for days, energy in ((3, 30000), (2, 22000), (1, 14000))]
    return {"cycle_day": boundary.day, "cycle_end": cycle_end, "corrected": corrected.isoformat(), "after": after,
            "history": history}


def scenario(p: dict) -> dict:
    return {
        "start": "now", "seed": 3,
        "site": {"energy_site_id": 1689500000123456, "site_name": "Home"},
        "chargers": [{"name": "garage", "serial": "PGT00000000071", "part_number": "1457768-02-G"}],
        "vehicles": [{"vin": BLUE, "name": "blue", "display_name": "Blue",
                      "target_id": "0b6c3f8e-6a51-4b6e-9d3a-6f1f2c9a0a71", "battery_kwh": 75, "soc": 40}],
        "prices": {"seed": 7, "history_days": 9},
        "telemetry": {"delay": "1s", "history": p["history"]},
        "meter": {"history": "40d", "delay": "12h", "bill_cycle_day": p["cycle_day"], "bill_delay": "1h",
                  "corrections": [{"day": p["corrected"], "factor": 0.9, "after": f"{p['after']:.0f}s"}]},
    }


def metric(url: str, name: str) -> float | None:
    status, _, body = get(f"{url}/metrics", timeout=5)
    match = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", body.decode(), re.M)
    return float(match.group(1)) if match else None


def day_sum(prometheus, series: str, day: date) -> float | None:
    """What the Meter & Bills day bars show: the day's increments summed, at its local midnight."""
    return prometheus.value(f"sum(sum_over_time({series}[1d]))", at=midnight(day + timedelta(days=1)))


def test_meter_reads_land_at_their_real_time_and_match_the_truth(tmp_path: Path, processes, start_simulator,
                                                                   start_component, start_prometheus) -> None:
    p = plan(time.time())
    scenario_file = tmp_path / "scenario.yaml"
    scenario_file.write_text(yaml.safe_dump(scenario(p)))
    sim = start_simulator(scenario_file)
    tsdb = tmp_path / "tsdb"
    ports = {name: free_port() for name in ("price", "session_store", "meter", "prometheus")}
    price_backfill(tsdb, sim.url, days=8, instance=f"127.0.0.1:{ports['price']}")
    targets = {"session_store": [f"127.0.0.1:{ports['session_store']}"], "meter": [f"127.0.0.1:{ports['meter']}"]}
    rules = [str(path) for path in sorted((ROOT / "rules").glob("*.yml"))]
    prometheus = start_prometheus(targets, rule_files=rules, data_dir=tsdb, port=ports["prometheus"])
    database = tmp_path / "sessions.db"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "general": {"timezone": "America/Chicago"},
        "tariff": {"delivery_cents_per_kwh": WRONG_DELIVERY_CENTS},
        "sessions": {"source": "fleet", "database": str(database)},
        "prometheus": {"url": prometheus.url},
        "meter": {"credential_file": str(tmp_path / "meter_login.json"), "base_url": sim.url,
                  "prometheus_data_dir": str(tsdb), "poll_interval": 2, "history_days": 40}}))
    tessie = {"TESSIE_ACCESS_TOKEN": SIM_TOKEN, "TESSIE_BASE_URL": sim.url, "WALL_CONNECTOR_NAMES": f"{DIN}:garage"}
    start_component("session-store", "session_store", ports["session_store"], config=config, env=tessie)
    store = f"http://127.0.0.1:{ports['session_store']}"

    def imported() -> bool:
        sessions = get_json(f"{store}/api/sessions?limit=10")["sessions"]
        return len(sessions) == 3 and all(s["cost_final"] for s in sessions)
    wait_until(imported, 60, 0.5, "the charge history's 3 sessions, priced")

    # --- the one-time set-up, as a user types it --------------------------------------------------------
    def meter_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "meter", *args, "--config", str(config)], input=stdin,
                              capture_output=True, text=True, timeout=60, cwd=ROOT)
    setup = meter_cli("--setup", stdin="demo@example.com\ndemo-password\n123456\n")
    assert setup.returncode == 0, setup.stderr
    login_file = tmp_path / "meter_login.json"
    tokens = {json.loads(login_file.read_text())["login_data"]["token"]}
    assert stat.S_IMODE(login_file.stat().st_mode) == 0o600
    assert "demo-password" not in login_file.read_text() + setup.stdout + setup.stderr
    status = meter_cli("--status")
    assert status.returncode == 0 and str(login_file) in status.stdout
    check = meter_cli("--test")
    assert check.returncode == 0 and "login ok" in check.stdout, check.stderr
    tokens.add(json.loads(login_file.read_text())["login_data"]["token"])   # --test rotated it

    # --- the running component: a pull, then Prometheus opens the blocks it wrote ----------------------
    # at debug level: whatever the library or we log below INFO must not carry a token either
    meter = start_component("charging-meter", "meter", ports["meter"], config=config, args=["--log-level", "debug"])
    meter_url = f"http://127.0.0.1:{ports['meter']}"
    wait_until(lambda: (metric(meter_url, "utility_meter_reads") or 0) > 40 * 48 - 48
               and metric(meter_url, "utility_meter_publication_pending") == 0, 60, 0.5, "the first pull, published")
    # a later pull (every 2 s) finds nothing new to publish: the blocks stay as written
    published = metric(meter_url, "utility_meter_last_success_timestamp_seconds")
    wait_until(lambda: metric(meter_url, "utility_meter_last_success_timestamp_seconds") >= published + 2
               and metric(meter_url, "utility_meter_publication_pending") == 0, 30, 0.5, "a later pull")
    processes.stop(prometheus.process)
    prometheus = start_prometheus(targets, rule_files=rules, data_dir=tsdb, port=ports["prometheus"])
    prometheus.wait_for(LOADED)
    prometheus.wait_for("utility_meter_login_ok == 1")

    truth = {d["day"]: d for d in sim.call(f"/sim/meter?start={date.fromtimestamp(p['cycle_end'] - 35 * 86400)}",
                                           method="GET")["days"]}
    corrected = date.fromisoformat(p["corrected"])
    boundary = datetime.fromtimestamp(p["cycle_end"], CHICAGO).date()
    checked = [boundary - timedelta(days=k) for k in range(1, 5)]
    for day in checked:
        home = day_sum(prometheus, "utility_meter_read_energy_joules", day) / J_PER_KWH
        factor = 0.9 if day == corrected else 1.0
        assert home == pytest.approx(truth[day.isoformat()]["home_kwh"] * factor, rel=1e-6), day
        ev = day_sum(prometheus, "utility_meter_read_ev_energy_joules", day) / J_PER_KWH
        assert ev == pytest.approx(truth[day.isoformat()]["ev_kwh"], rel=0.01, abs=0.01), day

    # --- the session store's reconciliation and its hint ------------------------------------------------
    answer = get_json(f"{store}/api/meter?from={p['cycle_end'] - 35 * 86400:.0f}&to={time.time():.0f}")
    days = {d["day"]: d for d in answer["days"]}
    charged = [day for day in checked if truth[day.isoformat()]["ev_kwh"] > 1 and day != corrected]
    assert charged
    for day in charged:
        ours, real = days[day.isoformat()], truth[day.isoformat()]
        assert ours["ev_share"] == pytest.approx(real["ev_share"], rel=0.01), day
        assert ours["ev_cost_utility"] == pytest.approx(real["ev_cost"], rel=0.01), day
        assert ours["discrepancy"] < -0.05                          # 5 ¢ delivery where the bill has 7.5 ¢
    assert any("tariff.delivery_cents_per_kwh" in hint and "set it to 7.50" in hint for hint in answer["hints"])
    [issued] = [b for b in answer["bills"] if not b["estimated"] and b["end"] == p["cycle_end"]]
    assert issued["ev_kwh"] == pytest.approx(sum(h["energy_wh"] for h in p["history"]) / 1000, rel=0.01)

    # --- every Meter & Bills query against this Prometheus and session store ----------------------------
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"] if v["type"] in ("query", "custom")}
    now = time.time()
    failures = []
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        window = Window(now - 10 * 86400, now, max(3600, Window.of(panel, now).interval))
        for target in panel["targets"]:
            if "expr" in target:
                expr = resolve(target["expr"], window, {}, variables)      # $site: All
                problem = run_prometheus(prometheus.url, window, bool(target.get("instant")), expr)
            else:
                problem = run_infinity(store, target, Window(now - 60 * 86400, now, 3600), {}, {})
            if problem and not (panel["title"] in MAY_BE_EMPTY and problem == "no data"):
                failures.append(f"{panel['title']}: {problem}")
    assert not failures, "\n".join(failures)

    # --- a late correction replaces the day, in SQLite and in Prometheus ---------------------------------
    sim.call("/sim/clock", {"advance": 3600})
    wait_until(lambda: (metric(meter_url, "utility_meter_corrections_total") or 0) >= 48
               and metric(meter_url, "utility_meter_publication_pending") == 0, 30, 0.5, "the correction pulled")
    processes.stop(prometheus.process)
    prometheus = start_prometheus(targets, rule_files=rules, data_dir=tsdb, port=ports["prometheus"])
    prometheus.wait_for(LOADED)
    home = day_sum(prometheus, "utility_meter_read_energy_joules", corrected) / J_PER_KWH
    assert home == pytest.approx(truth[corrected.isoformat()]["home_kwh"], rel=1e-6)
    assert get_json(f"{store}/api/meter?from={midnight(corrected):.0f}&to={midnight(corrected) + 86400:.0f}")[
        "days"][0]["corrected_reads"] == 48

    # --- the login revoked (a password change): one line saying what to run, the data kept --------------
    reads = metric(meter_url, "utility_meter_reads")
    sim.call("/sim/meter/revoke")
    wait_until(lambda: metric(meter_url, "utility_meter_login_ok") == 0, 30, 0.5, "the refused login")
    assert metric(meter_url, "utility_meter_reads") == reads
    log = (processes.workdir / "charging-meter.log").read_text()
    assert log.count("run: charging-meter --setup") == 1, log
    assert meter.running

    # --- the refresh tokens (every one the login file held) and the password stay in the login file -----
    tokens.add(json.loads(login_file.read_text())["login_data"]["token"])
    assert len(tokens) >= 3
    places = {"setup output": (setup.stdout + setup.stderr + status.stdout + check.stdout + check.stderr).encode(),
              "meter log": log.encode(), "store log": (processes.workdir / "session-store.log").read_bytes(),
              "meter /metrics": get(f"{meter_url}/metrics")[2], "store /metrics": get(f"{store}/metrics")[2],
              "/api/meter": get(f"{store}/api/meter")[2], "meter landing page": get(f"{meter_url}/")[2],
              "prometheus series": get(f"{prometheus.url}/api/v1/series?match[]=%7Bjob%3D%22meter%22%7D")[2]}
    for suffix in ("", "-wal"):
        if Path(f"{database}{suffix}").exists():
            places[f"SQLite{suffix}"] = Path(f"{database}{suffix}").read_bytes()
    shapes = [shape for token in tokens for shape in forms(token)] + [b"demo-password"]
    leaked = {where: [s.decode() for s in shapes if s in data] for where, data in places.items()}
    assert not any(leaked.values()), leaked
