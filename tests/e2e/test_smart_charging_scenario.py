"""Smart charging end to end, live mode: a 30-day price history backfilled into real Prometheus, the
simulator's car charging on the Fleet view, the session store sending real Tessie commands, deciding
on the billed price (ComEd bills each clock hour at the mean of its twelve 5-minute prices).

A spike over the 9th and 10th 5-minute intervals of a clock hour stops the car within two
evaluations of the spike being scraped; the session store is killed and restarted mid-pause and
sends nothing twice; the spike's second interval holds the pause; the 11th interval is cheap, but
the rest of the hour still pays the spike's share of the mean, so the pause holds (the 5-minute rule
would resume here); once the hour is over the cheap next hour restarts the car. The simulator's own
bill prices what was saved against a car that never paused.

ComEd publishes a price only when its 5-minute interval ends, so a real-time run would take most of
an hour. Instead the simulated clock runs behind the wall clock (as if ComEd's clock were late),
placed so that the spike falls on the 9th interval of a clock hour, and the test jumps it to each
5-minute mark. Prices therefore look up to ~85 minutes old, so this test allows two hours
(`max_price_age`); the sample-stamped price series of the live exporter may be too old for
Prometheus's head then, which the decisions do not read (they read the gauges and the backfilled
history). Everything else runs at its real speed.
"""
from __future__ import annotations

import signal
import time
from datetime import datetime, timezone
from pathlib import Path

from zoneinfo import ZoneInfo

import jsonschema
import pytest
import yaml

from simulator.bill import session_bill
from simulator.config import TariffConfig

from suite.processes import wait_until
from testkit.backfill import price_backfill
from testkit.exposition import parse
from testkit.http import get, get_json
from testkit.openapi import schema_of
from testkit.ports import free_port
from testkit.simulator import SIM_TOKEN

pytestmark = pytest.mark.e2e
VIN = "5YJYGDEE5PF000042"
DIN = "1457768-02-G--PGT00000000042"
POWER_W = 11500.0
SPIKE, LOW = 50.0, 1.0              # cents per kWh
# The spike's hour before the spike, and the hour before it: a middling price, so the hour the car starts in
# is below the stop threshold whatever the time of day (the seeded daily shape peaks in the evening, when
# an ordinary hour was above the 30-day 90th percentile).
ORDINARY = 3.0
EVALUATION_S = 2.0
SPIKE_AT = 2700                     # the spike's first price ends the 9th 5-minute interval of its hour
SET_UP_S = 150                      # simulated seconds from the scenario's start to the spike's first price
LEAD_S = 12                         # the car plugs in this long before the spike's first price is out


def timetable(now: float) -> tuple[int, int]:
    """(origin, mark): the latest clock hour whose end (plus five cheap minutes) the simulated clock can
    reach before the wall clock does, the spike's first price at its 9th interval."""
    hour = int((now - 3600 - 300 - 90) // 3600 * 3600)
    mark = hour + SPIKE_AT
    return mark - SET_UP_S, mark


def scenario(origin: int, mark: int) -> dict:
    """Two spike intervals end at `mark` and `mark + 300`; everything after is cheap, for hours."""
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
            {"from": mark - SPIKE_AT - 3600 - origin, "to": mark - 300 - origin, "price": ORDINARY},
            {"from": mark - 300 - origin, "to": mark + 300 - origin, "price": SPIKE},
            {"from": mark + 300 - origin, "to": mark + 7500 - origin, "price": LOW}]},
        "events": [{"at": mark - LEAD_S - origin, "vehicle": "grey", "plug_in": "garage"}],
        "telemetry": {"delay": "2h"},
    }


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
        return self.sim.commands()

    def sim_state(self) -> str:
        return self.sim.state()["vehicles"][VIN]["charging_state"]

    def sim_now(self) -> float:
        return self.sim.now()

    def jump_to(self, when: float) -> None:
        """Move the simulated clock forward to `when`; it must stay behind the wall clock."""
        self.sim.jump_to(when)
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
    origin, mark = timetable(time.time())
    hour_end = mark - SPIKE_AT + 3600
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario(origin, mark)))
    sim = start_simulator(tmp_path / "scenario.yaml")
    fleet, price, store = free_port(), free_port(), free_port()
    comed = {"COMED_BASE_URL": sim.url, "COMED_POLL_INTERVAL": "1"}
    price_backfill(tmp_path / "tsdb", sim.url, days=32, instance=f"127.0.0.1:{price}", until=sim.now() - 240)
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
                           "max_price_age": "2h"}}))

    def start_store() -> tuple:
        return (start_component("session-store", "session_store", store, config=config,
                                env={**tessie, **names, "FLEET_CHARGE_HISTORY_INTERVAL": "3600"}),
                f"http://127.0.0.1:{store}")
    run = Run(sim, prometheus, start_store)

    # 30 days of billed hours behind the thresholds; the cheap price must be below the resume threshold.
    wait_until(lambda: (run.smart()["market"] or {}).get("stop_threshold") is not None, 30, 0.2, "thresholds")
    market = run.smart()["market"]
    assert market["signal"] == "billed" and market["history_days"] >= 29.5   # 30 days less the clock's lag
    assert LOW < market["resume_threshold"] < market["stop_threshold"] < SPIKE
    assert run.sim_now() < mark - LEAD_S - 2, "set-up took too long for the scenario's timetable"
    hour = {p["t"]: p["price"] for p in sim.truth(prices_from=hour_end - 3300, prices_to=hour_end)["prices"]}
    ordinary = [hour[hour_end - 3600 + 300 * i] for i in range(1, 9)]     # the hour's eight prices before it

    # The car plugs in and charges while the price is ordinary.
    run.jump_to(mark - LEAD_S - 2)
    wait_until(lambda: run.vehicle()["charging"], 30, 0.2, "the session store to see the car charging")
    assert run.vehicle()["last_decision"] == "price_ok" and run.commands() == []

    # The spike's first price is published at the mark: the hour's projection (eight ordinary prices,
    # the spike, three more at the latest price) is far above the stop threshold: stopped within two
    # evaluations of its scrape.
    wait_until(lambda: any(a["action"] == "stop" for a in run.actions()), 60, 0.1, "the stop")
    stop = next(a for a in run.actions() if a["action"] == "stop")
    scraped = run.first_scraped(SPIKE, since=stop["t"] - 30)
    latency = stop["t"] - scraped
    print(f"\nspike scraped -> stop command sent: {latency:.2f} s (evaluations every {EVALUATION_S:g} s)")
    assert 0 <= latency <= 2 * EVALUATION_S + 0.5
    assert (stop["reason"], stop["outcome"]) == ("price_above_stop", "sent")
    assert stop["price"] == pytest.approx((sum(ordinary) + 4 * SPIKE) / 12, abs=1e-4), "decided on the projected hour"
    assert run.commands() == ["stop_charging"]
    wait_until(lambda: run.sim_state() == "Stopped", 10, 0.1, "the car to stop")
    wait_until(lambda: not run.vehicle()["charging"], 30, 0.2, "the unit's power to fall")
    jsonschema.validate(run.smart(), schema_of("/api/smart-charging"))
    jsonschema.validate(get_json(f"{run.api}/api/smart-charging/actions"), schema_of("/api/smart-charging/actions"))
    assert run.vehicle()["unit"] == "garage"
    metrics = get(f"{run.api}/metrics")[2].decode()
    for line in ('smart_charging_actions_total{action="stop",outcome="sent"} 1.0', "smart_charging_dry_run 0.0",
                 f'smart_charging_status{{state="paused",vehicle="Grey",vin="{VIN}"}} 1.0',   # its Tessie name
                 f'smart_charging_status_code{{vehicle="Grey",vin="{VIN}"}} 2.0',
                 "smart_charging_five_minute_price_cents_per_kwh 50.0", 'smart_charging_signal_info{signal="billed"} 1.0'):
        assert line in metrics, line
    rank = parse(metrics)["smart_charging_price_percentile_rank_percent"]
    assert rank > 99, "the spike makes this hour one of the month's most expensive"

    # Killed mid-pause and restarted: it remembers the pause and sends nothing again.
    run.store[0].process.send_signal(signal.SIGKILL)
    run.store[0].process.wait(10)
    run.store = start_store()
    run.evaluations(3)
    assert run.vehicle()["paused_by_us"] and run.commands() == ["stop_charging"]

    # The spike's second interval: still expensive, the pause holds (nothing sent).
    run.jump_to(mark + 301)
    wait_until(lambda: run.smart()["market"]["five_minute_price"] == SPIKE
               and run.smart()["market"]["price_age_s"] < 7000, 20, 0.2, "the second spike price")
    run.evaluations(2)
    assert run.vehicle()["last_decision"] == "holding" and run.commands() == ["stop_charging"]

    # The 11th interval is cheap, but every kWh of the rest of this hour pays its mean, spike included:
    # the projection stays above the resume threshold and the pause holds.
    run.jump_to(mark + 601)
    wait_until(lambda: run.smart()["market"]["five_minute_price"] == LOW, 20, 0.2, "the first cheap price")
    run.evaluations(2)
    market = run.smart()["market"]
    assert market["price"] == pytest.approx((sum(ordinary) + 2 * SPIKE + 2 * LOW) / 12, abs=1e-4)   # served to 1e-4
    assert market["price"] > market["resume_threshold"] > LOW
    assert run.vehicle()["last_decision"] == "holding" and run.commands() == ["stop_charging"]

    # The hour's last price is in: the hour in progress is the next one, cheap throughout. The car charges.
    run.jump_to(hour_end + 1)
    wait_until(lambda: run.commands() == ["stop_charging", "start_charging"], 30, 0.1, "the start")
    start = next(a for a in run.actions() if a["action"] == "start")
    assert (start["reason"], start["outcome"], start["price"]) == ("price_below_resume", "sent", LOW)
    wait_until(lambda: run.sim_state() == "Charging", 10, 0.1, "the car to charge")
    wait_until(lambda: run.vehicle()["charging"], 30, 0.2, "the unit's power to return")

    # Five cheap minutes of charging, then the car leaves. The simulator's bill of what happened against
    # the same energy charged without a pause, all of it inside the expensive hour.
    run.jump_to(hour_end + 300)
    sim.event(vehicle="grey", unplug=True)
    truth = sim.truth(prices_from=hour_end - 3600, prices_to=hour_end + 3600)
    [session] = truth["sessions"]
    prices = {p["t"]: p["price"] for p in truth["prices"]}
    never_paused = bill_of(constant_power(session["first_power"], session["energy_wh"]), prices)
    moved_wh = sum(overlap(i["start"], i["end"], hour_end, hour_end + 3600) for i in session["intervals"]) \
        * POWER_W / 3600
    spike_hour = sum(prices[hour_end - 3600 + 300 * i] for i in range(1, 13)) / 12
    saved = never_paused["supply"] - session["bill"]["supply"]
    print(f"energy moved out of the spike's hour: {moved_wh:.0f} Wh of {session['energy_wh']:.0f} Wh; billed "
          f"supply ${session['bill']['supply']:.3f} vs ${never_paused['supply']:.3f} never paused: saved "
          f"{saved * 100:.1f} ¢ ({saved / never_paused['supply']:.0%})")
    assert moved_wh >= 0.9 * POWER_W * 300 / 3600, "the five minutes after the hour were charged"
    assert saved == pytest.approx(moved_wh / 1e5 * (spike_hour - LOW), rel=0.02)



def overlap(start: float, end: float, lo: float, hi: float) -> float:
    return max(0.0, min(end, hi) - max(start, lo))


def constant_power(start: float, energy_wh: float) -> dict[int, float]:
    """W·s per 5-minute interval end of `energy_wh` charged at constant power from `start` without a pause."""
    end, energy, t = start + energy_wh * 3600 / POWER_W, {}, start
    while t < end:
        interval_end = (int(t) // 300 + 1) * 300
        step = min(end, interval_end) - t
        energy[interval_end] = energy.get(interval_end, 0.0) + step * POWER_W
        t += step
    return energy


class TruePrices:
    def __init__(self, table: dict[int, float]) -> None:
        self.table = table

    def price(self, end: int) -> float:
        return self.table[end]


def bill_of(energy: dict[int, float], prices: dict[int, float]) -> dict:
    """The simulator's own bill (not the suite's) of energy charged at the scenario's default tariff."""
    return session_bill(energy, TruePrices(prices), TariffConfig(), ZoneInfo("America/Chicago"), float("inf"))
