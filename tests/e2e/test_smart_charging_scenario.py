"""Smart charging end to end, live mode: a 30-day price history backfilled into real Prometheus, the
simulator's car charging on the Fleet view, the session store sending real Tessie commands.

A price spike covering two 5-minute intervals stops the car within two evaluations of the spike
being scraped; the session store is killed and restarted mid-pause and sends nothing twice; the
spike's second interval holds the pause; a price below the resume threshold restarts the car; the
simulator's ground truth prices the energy moved out of the spike against a car that never paused.

ComEd publishes a price only when its 5-minute interval ends, so a real-time run would take 15
minutes. Instead the simulated clock runs 21 minutes behind the wall clock (as if ComEd's clock
were late) and the test jumps it to each 5-minute mark. Prices therefore look up to ~21 minutes old,
so this test allows 30 (`max_price_age`); everything else runs at its real speed.
"""
from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest
import yaml

from suite.processes import free_port, wait_until
from tests.conftest import SIM_TOKEN
from tests.support import get, get_json, schema_of

pytestmark = pytest.mark.e2e
VIN = "5YJYGDEE5PF000042"
DIN = "1457768-02-G--PGT00000000042"
POWER_W = 11500.0
SPIKE, LOW = 50.0, 1.0              # cents per kWh
EVALUATION_S = 2.0
BEHIND_S = 1260                     # the simulated clock's lag behind the wall clock at start
LEAD_S = 12                         # the car plugs in this long before the spike's first price is out


def scenario(origin: int, mark: int) -> dict:
    """Two spike intervals end at `mark` and `mark + 300`; everything after is cheap."""
    return {
        "start": datetime.fromtimestamp(origin, timezone.utc).isoformat(),
        "seed": 42,
        "site": {"energy_site_id": 1689500000123499, "site_name": "Home"},
        "chargers": [{"name": "garage", "serial": "PGT00000000042", "part_number": "1457768-02-G",
                      "role": "standalone"}],
        "vehicles": [{"vin": VIN, "name": "grey", "display_name": "Grey", "battery_kwh": 75, "soc": 30,
                      "charge_limit": 90, "max_power_kw": POWER_W / 1000, "ramp": 0, "taper_pct": 0,
                      "target_id": "0b6c3f8e-6a51-4b6e-9d3a-6f1f2c9a0a42"}],
        "prices": {"seed": 8, "history_days": 33, "spikes": [
            {"from": mark - 300 - origin, "to": mark + 300 - origin, "price": SPIKE},
            {"from": mark + 300 - origin, "to": mark + 1800 - origin, "price": LOW}]},
        "events": [{"at": mark - LEAD_S - origin, "vehicle": "grey", "plug_in": "garage"}],
        "telemetry": {"delay": "2h"},
    }


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


class Run:
    """The running pieces and the small vocabulary the scenario is told in."""

    def __init__(self, sim, prometheus, start_store) -> None:
        self.sim, self.prometheus, self.start_store = sim, prometheus, start_store
        self.store = start_store()

    @property
    def api(self) -> str:
        return self.store[1]

    def smart(self) -> dict:
        return get_json(f"{self.api}/api/smart-charging")

    def vehicle(self) -> dict:
        return next(v for v in self.smart()["vehicles"] if v["vin"] == VIN)

    def actions(self) -> list[dict]:
        return get_json(f"{self.api}/api/smart-charging/actions?vin={VIN}")["actions"][::-1]   # oldest first

    def commands(self) -> list[str]:
        return [c["command"] for c in get_json(f"{self.sim.url}/sim/truth")["commands"]]

    def sim_state(self) -> str:
        return get_json(f"{self.sim.url}/sim/state")["vehicles"][VIN]["charging_state"]

    def sim_now(self) -> float:
        return sim_now(self.sim)

    def jump_to(self, when: float) -> None:
        """Move the simulated clock forward to `when`; it must stay behind the wall clock."""
        post_json(f"{self.sim.url}/sim/clock", {"advance": max(0.0, when - self.sim_now())})
        assert self.sim_now() < time.time(), "the simulated clock must never run ahead of Prometheus"

    def evaluations(self, count: int) -> None:
        """Wait until `count` more evaluations have run."""
        for _ in range(count):
            last = self.smart()["last_evaluation"] or 0
            wait_until(lambda: (self.smart()["last_evaluation"] or 0) > last, 10 * EVALUATION_S, 0.1,
                       "the next evaluation")

    def first_scraped(self, price: float, since: float) -> float:
        """When Prometheus first scraped the current price at `price`."""
        samples = self.prometheus.query(f"electricity_price_cents_per_kwh[{int(time.time() - since) + 5}s]")
        return min(float(t) for t, v in samples[0]["values"] if float(t) >= since and float(v) == price)


def test_spike_stops_the_car_restart_keeps_the_pause_cheap_price_resumes_it_and_money_is_saved(
        tmp_path: Path, start_simulator, start_component, start_prometheus) -> None:
    origin = int(time.time()) - BEHIND_S
    mark = math.ceil((origin + 60) / 300) * 300          # the spike's first price is published here
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario(origin, mark)))
    sim = start_simulator(tmp_path / "scenario.yaml")
    fleet, price, store = free_port(), free_port(), free_port()
    comed = {"COMED_BASE_URL": sim.url, "COMED_POLL_INTERVAL": "1"}
    backfill = subprocess.run(
        [sys.executable, "-m", "exporters.price_backfill", "--data-dir", str(tmp_path / "tsdb"), "--days", "32",
         "--instance", f"127.0.0.1:{price}", "--until", str(sim_now(sim) - 240)],
        capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", **comed})
    assert backfill.returncode == 0, backfill.stderr
    names = {"WALL_CONNECTOR_NAMES": f"{DIN}:garage"}
    tessie = {"TESSIE_ACCESS_TOKEN": SIM_TOKEN, "TESSIE_BASE_URL": sim.url, "FLEET_LIVE_STATUS_INTERVAL": "1"}
    start_component("fleet-exporter", "exporters.fleet", fleet, env={**tessie, **names})
    start_component("price-exporter", "exporters.price", price, env=comed)
    prometheus = start_prometheus({"fleet": [f"127.0.0.1:{fleet}"], "price": [f"127.0.0.1:{price}"]},
                                  data_dir=tmp_path / "tsdb")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "sessions": {"database": str(tmp_path / "s.db"), "evaluation_interval": 1},
        "prometheus": {"url": prometheus.url, "scrape_interval": 1},
        "smart_charging": {"control_enabled": True, "evaluation_interval": EVALUATION_S, "min_interval": 5,
                           "max_price_age": "30m"}}))

    def start_store() -> tuple:
        return (start_component("session-store", "session_store", store, config=config,
                                env={**tessie, **names, "FLEET_CHARGE_HISTORY_INTERVAL": "3600"}),
                f"http://127.0.0.1:{store}")
    run = Run(sim, prometheus, start_store)

    # 30 days of history behind the thresholds; the cheap price must be below the resume threshold.
    wait_until(lambda: (run.smart()["market"] or {}).get("stop_threshold") is not None, 30, 0.2, "thresholds")
    market = run.smart()["market"]
    assert market["history_days"] >= 29.9 and LOW < market["resume_threshold"] < market["stop_threshold"] < SPIKE
    assert run.sim_now() < mark - LEAD_S - 2, "set-up took too long for the scenario's timetable"

    # The car plugs in and charges while the price is ordinary.
    run.jump_to(mark - LEAD_S - 2)
    wait_until(lambda: run.vehicle()["charging"], 30, 0.2, "the session store to see the car charging")
    assert run.vehicle()["last_decision"] == "price_ok" and run.commands() == []

    # The spike's first price is published at the mark: stopped within two evaluations of its scrape.
    wait_until(lambda: any(a["action"] == "stop" for a in run.actions()), 60, 0.1, "the stop")
    stop = next(a for a in run.actions() if a["action"] == "stop")
    scraped = run.first_scraped(SPIKE, since=stop["t"] - 30)
    latency = stop["t"] - scraped
    print(f"\nspike scraped -> stop command sent: {latency:.2f} s (evaluations every {EVALUATION_S:g} s)")
    assert 0 <= latency <= 2 * EVALUATION_S + 0.5
    assert (stop["reason"], stop["outcome"], stop["price"]) == ("price_above_stop", "sent", SPIKE)
    assert run.commands() == ["stop_charging"]
    wait_until(lambda: run.sim_state() == "Stopped", 10, 0.1, "the car to stop")
    wait_until(lambda: not run.vehicle()["charging"], 30, 0.2, "the unit's power to fall")
    jsonschema.validate(run.smart(), schema_of("/api/smart-charging"))
    jsonschema.validate(get_json(f"{run.api}/api/smart-charging/actions"), schema_of("/api/smart-charging/actions"))
    assert run.vehicle()["unit"] == "garage"
    metrics = get(f"{run.api}/metrics")[2].decode()
    for line in ('smart_charging_actions_total{action="stop",outcome="sent"} 1.0', "smart_charging_dry_run 0.0",
                 f'smart_charging_status{{state="paused",vehicle="{VIN}",vin="{VIN}"}} 1.0',
                 f'smart_charging_status_code{{vehicle="{VIN}",vin="{VIN}"}} 2.0',
                 "smart_charging_price_cents_per_kwh 50.0"):
        assert line in metrics, line
    [rank] = [float(m.split()[1]) for m in metrics.splitlines()
              if m.startswith("smart_charging_price_percentile_rank_percent ")]
    assert rank > 99.9, "the spike is the month's highest price"

    # Killed mid-pause and restarted: it remembers the pause and sends nothing again.
    run.store[0].process.send_signal(signal.SIGKILL)
    run.store[0].process.wait(10)
    run.store = start_store()
    run.evaluations(3)
    assert run.vehicle()["paused_by_us"] and run.commands() == ["stop_charging"]

    # The spike's second interval: still expensive, the pause holds (nothing sent).
    run.jump_to(mark + 301)
    wait_until(lambda: run.smart()["market"]["price"] == SPIKE and run.smart()["market"]["price_age_s"] < 1500,
               20, 0.2, "the second spike price")
    run.evaluations(2)
    assert run.vehicle()["last_decision"] == "holding" and run.commands() == ["stop_charging"]

    # The price falls below the resume threshold: the car charges again.
    run.jump_to(mark + 601)
    wait_until(lambda: run.commands() == ["stop_charging", "start_charging"], 30, 0.1, "the start")
    start = next(a for a in run.actions() if a["action"] == "start")
    assert (start["reason"], start["outcome"], start["price"]) == ("price_below_resume", "sent", LOW)
    wait_until(lambda: run.sim_state() == "Charging", 10, 0.1, "the car to charge")
    wait_until(lambda: run.vehicle()["charging"], 30, 0.2, "the unit's power to return")

    # Five cheap minutes of charging, then the car leaves; the ground truth prices what happened.
    run.jump_to(mark + 900)
    post_json(f"{sim.url}/sim/events", {"vehicle": "grey", "unplug": True})
    truth = get_json(f"{sim.url}/sim/truth?prices_from={mark - 600}&prices_to={mark + 3600}")
    [session] = truth["sessions"]
    prices = {p["t"]: p["price"] for p in truth["prices"]}
    never_paused = cost_of_charging(session["first_power"], session["energy_wh"], prices)
    in_spike = sum(overlap(i["start"], i["end"], mark - 300, mark + 300) for i in session["intervals"]) * POWER_W / 3600
    would_have = overlap(session["first_power"], session["first_power"] + session["energy_wh"] * 3600 / POWER_W,
                         mark - 300, mark + 300) * POWER_W / 3600
    moved_wh, saved = would_have - in_spike, never_paused - session["supply_cost_cents"]
    print(f"energy moved out of the spike: {moved_wh:.0f} Wh of {session['energy_wh']:.0f} Wh; supply cost "
          f"{session['supply_cost_cents']:.1f} ¢ vs {never_paused:.1f} ¢ never paused: saved {saved:.1f} ¢ "
          f"({saved / never_paused:.0%})")
    assert moved_wh >= 0.9 * POWER_W * 300 / 3600, "at least 90 % of the spike's second interval moved"
    assert saved == pytest.approx(moved_wh / 1000 * (SPIKE - LOW), rel=0.02)



def sim_now(sim) -> float:
    return get_json(f"{sim.url}/sim/clock")["now"]


def overlap(start: float, end: float, lo: float, hi: float) -> float:
    return max(0.0, min(end, hi) - max(start, lo))


def cost_of_charging(start: float, energy_wh: float, prices: dict[int, float]) -> float:
    """Supply cost (cents) of `energy_wh` charged at constant power from `start` without a pause."""
    end, cents, t = start + energy_wh * 3600 / POWER_W, 0.0, start
    while t < end:
        interval_end = (int(t) // 300 + 1) * 300
        step = min(end, interval_end) - t
        cents += step * POWER_W / 3.6e6 * prices[interval_end]
        t += step
    return cents
