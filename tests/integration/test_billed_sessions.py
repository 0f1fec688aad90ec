"""What a ComEd hourly-pricing customer is billed for charging, through a real Prometheus and the
session store, against the simulator's own bill.

ComEd bills supply per local clock hour: the hour's kWh x the mean of its twelve 5-minute prices. So
a price spike in the first minutes of an hour raises the price of a car charging later in that hour,
though no kWh flowed during the spike; pricing each 5-minute interval at its own price (the old rule)
bills a fraction of that. A session crossing midnight counts in both days, a month adds the fixed
and capacity charges, and the /metrics counters add up to what the API says. Until every price of an
hour is published a session touching it is provisional (estimated, kept out of the cost counters) and
is repriced when the prices come; if they never come, the hour is billed at the published ones an
hour after it ended.

The scenario is the bill-accuracy cases' (testkit/bill_cases.py), moved to three days ago (Prometheus keeps recent data):
14:00-14:10 a 60-cent spike, 14:20-15:20 an hour of charging, and 23:20-01:40 a session across local
midnight with a 4-minute dip. The simulator is stepped each second; Prometheus holds what the Fleet
and price exporters would have written (power, connected and vehicle info every 15 s; 5-minute and
billed-hour prices).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import numpy as np
import pytest
import yaml
from prometheus_client import CollectorRegistry

from servicekit.config import load
from servicekit.upstream import Upstream, UpstreamMetrics
from exporters.price_backfill import openmetrics as price_openmetrics
from exporters.price_history import PriceHistory
from session_store.prometheus import Prometheus
from session_store.service import SessionService
from session_store.records import Session
from session_store.storage import Storage
from simulator.bill import month_bill, session_bill
from simulator.clock import ManualClock
from simulator.model import Model
from simulator.scenario import load_scenario
from simulator.truth import SessionTruth
from suite.processes import wait_until
from testkit.backfill import write_blocks
from testkit.bill_cases import CAR, CHARGER, CHICAGO, TARIFF, ours_tariff
from testkit.exposition import samples
from testkit.http import get, get_json
from testkit.openapi import schema_of
from testkit.ports import free_port
from testkit.store import session_metrics_text

pytestmark = pytest.mark.integration

SCRAPE_S = 15
HOURS = 12.5                       # 14:00 to 02:30 the next day
DIN = f"{CHARGER['part_number']}--{CHARGER['serial']}"
UNIT = f'din="{DIN}",instance="127.0.0.1:9882",job="fleet",unit="{CHARGER["name"]}"'
PRICE_LABELS = {"provider": "comed", "job": "price", "instance": "127.0.0.1:9884"}
EVENTS = [
    {"at": "20m", "vehicle": "blue", "plug_in": "garage"},            # 14:20, after the spike
    {"at": "1h20m", "vehicle": "blue", "unplug": True},               # 15:20
    {"at": "9h20m", "vehicle": "blue", "plug_in": "garage"},          # 23:20
    {"at": "10h10m", "charger": "garage", "dip": {"duration": "4m", "power_kw": 0.0}},   # 00:10
    {"at": "11h40m", "vehicle": "blue", "unplug": True},              # 01:40
]
SPIKE = {"from": "0m", "to": "10m", "price": 60.0}                    # 14:00-14:10: two 5-minute prices


@dataclass
class Charged:
    """The simulated charging: the model (its truth and prices) and Prometheus's view of it."""

    model: Model
    start: float                                   # 14:00 local, three days ago
    samples: list[tuple[int, float, bool]]         # (t, watts, vehicle connected) every 15 s

    def at(self, minutes: float) -> float:
        """Minutes after 14:00 of the scenario's day."""
        return self.start + minutes * 60

    def price(self, end: float) -> float:
        return self.model.prices.price(int(end))

    def bill(self, truth: SessionTruth) -> dict[str, Any]:
        """The simulator's bill of one session."""
        return session_bill(truth, self.model.prices, self.model.scenario.tariff, CHICAGO, self.model.now)

    def old_rule_supply(self, truth: SessionTruth) -> float:
        """Every 5-minute interval's energy at its own price: what costing did before, in dollars."""
        return sum(ws / 3.6e6 * self.price(end) / 100 for end, ws in truth.by_interval.items())


@pytest.fixture(scope="module")
def charged() -> Charged:
    day = datetime.now(CHICAGO).date() - timedelta(days=3)
    start = datetime(day.year, day.month, day.day, 14, tzinfo=CHICAGO)
    scenario = load_scenario({
        "start": start.isoformat(), "seed": 5, "chargers": [CHARGER], "vehicles": [CAR], "events": EVENTS,
        "prices": {"seed": 17, "history_days": 1, "spikes": [SPIKE]}, "tariff": TARIFF})
    clock = ManualClock(scenario.start)
    model = Model(scenario, clock)
    samples = []
    for second in range(int(HOURS * 3600)):
        model.sync()
        if second % SCRAPE_S == 7:
            samples.append((model.t, round(model.current_power("garage"), 1),
                            model.chargers["garage"].vin is not None))
        clock.advance(1.0)
    model.sync()
    assert len(model.truth.sessions) == 2
    return Charged(model, start.timestamp(), samples)


def tsdb(directory: Path, charged: Charged, prices_until: float = float("inf")) -> Path:
    """Blocks holding the Fleet exporter's series and the prices published up to `prices_until`
    (from two hours before the scenario to two hours after it), as the exporters write them."""
    ends = np.arange(charged.at(-120), charged.at(HOURS * 60 + 120) + 1, 300.0)
    history = PriceHistory(ends, np.array([charged.price(end) for end in ends]))
    prices = price_openmetrics(history, PRICE_LABELS, ours_tariff(), until=prices_until)
    lines = ["# TYPE tesla_wall_connector_power_watts gauge"]
    lines += [f"tesla_wall_connector_power_watts{{{UNIT}}} {watts:.1f} {t}" for t, watts, _ in charged.samples]
    lines.append("# TYPE tesla_wall_connector_vehicle_connected gauge")
    lines += [f"tesla_wall_connector_vehicle_connected{{{UNIT}}} {int(linked)} {t}" for t, _, linked in charged.samples]
    lines.append("# TYPE tesla_wall_connector_vehicle_info gauge")
    lines += [f'tesla_wall_connector_vehicle_info{{{UNIT},vehicle="{CAR["name"]}",vin="{CAR["vin"]}"}} 1 {t}'
              for t, _, linked in charged.samples if linked]
    return write_blocks(directory, prices.removesuffix("# EOF\n") + "\n".join(lines) + "\n# EOF\n", timeout=60)


def counters(exposition: str) -> dict[str, float]:
    """The cost counters summed over their labels: supply, supply_credit, delivery, reference, provisional."""
    sums = {"supply": 0.0, "supply_credit": 0.0, "delivery": 0.0, "reference": 0.0, "provisional": 0.0}
    for sample in samples(exposition):
        if sample.name == "charging_session_cost_dollars_total":
            sums[sample.labels["component"]] += sample.value
        elif sample.name == "charging_session_reference_cost_dollars_total":
            sums["reference"] += sample.value
        elif sample.name == "charging_sessions_provisional":
            sums["provisional"] += sample.value
    return sums


def net_cost(sums: dict[str, float]) -> float:
    return sums["supply"] - sums["supply_credit"] + sums["delivery"]


def same_lines(ours: list[dict[str, Any]], truth: list[dict[str, Any]]) -> None:
    """The same billed hours at the same hourly prices."""
    assert [line["end"] for line in ours] == [line["end"] for line in truth]
    assert [line["price_cents"] for line in ours] == pytest.approx([line["price_cents"] for line in truth],
                                                                  abs=5e-5)   # the API serves 1e-4 cent


# --- 1. the designed case, end to end --------------------------------------------------------------

def test_sessions_are_billed_per_clock_hour_like_the_utility_bill(tmp_path: Path, charged: Charged,
                                                                   start_prometheus, start_component) -> None:
    prometheus = start_prometheus({}, data_dir=tsdb(tmp_path / "tsdb", charged))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "tariff": TARIFF, "prometheus": {"url": prometheus.url}, "smart_charging": {"enabled": False},
        "sessions": {"source": "fleet", "catch_up": "100h", "evaluation_interval": 1,
                     "database": str(tmp_path / "sessions.db")}}))
    port = free_port()
    start_component("session-store", "session_store", port, config=config)
    store = f"http://127.0.0.1:{port}"

    def listing() -> dict[str, Any]:
        return get_json(f"{store}/api/sessions?limit=10")
    wait_until(lambda: listing()["total"] == 2, 30, 0.1, "both sessions from the catch-up")
    sessions = listing()
    jsonschema.validate(sessions, schema_of("/api/sessions"))
    spike_truth, midnight_truth = charged.model.truth.sessions

    # each session as billed: the same hours at the same prices, costs within 0.5 %
    details = []
    for truth in (spike_truth, midnight_truth):
        [listed] = [s for s in sessions["sessions"] if s["start"] < truth.unplug and s["end"] > truth.plug_in]
        ours = get_json(f"{store}/api/sessions/{listed['id']}")
        jsonschema.validate(ours, schema_of("/api/sessions/{id}"))
        bill = charged.bill(truth)
        assert ours["cost_final"] is True
        for field, line in (("supply_cost", "supply"), ("delivery_cost", "delivery"), ("full_cost", "full"),
                            ("reference_cost", "reference")):
            assert ours[field] == pytest.approx(bill[line], rel=5e-3), field
        # savings are a difference of two near-equal costs (cents here): 0.5 % of the cost, not of them
        assert ours["savings"] == pytest.approx(bill["savings"], abs=5e-3 * bill["full"])
        same_lines(ours["bill_lines"], bill["lines"])
        details.append(ours)
        print(f"\n{datetime.fromtimestamp(ours['start'], CHICAGO):%a %H:%M} {ours['energy_wh'] / 1000:.2f} kWh: "
              f"supply ${ours['supply_cost']:.4f} vs bill ${bill['supply']:.4f}, full ${ours['full_cost']:.4f} vs "
              f"${bill['full']:.4f}, savings ${ours['savings']:.4f} vs ${bill['savings']:.4f}; old rule supply "
              f"${charged.old_rule_supply(truth):.4f}")
    spike, midnight = details

    # The spike (14:05 and 14:10 at 60 cents) was over before the car plugged in at 14:20, yet it is in
    # the 14:00-15:00 hour's mean price, so it is billed. Each interval at its own price would bill less
    # than half: were costing to regress to that rule, this fails.
    assert charged.old_rule_supply(spike_truth) < 0.5 * spike["supply_cost"]

    # a month is a bill: charging plus the fixed and capacity charges of the configuration
    months = get_json(f"{store}/api/summary?period=month")
    jsonschema.validate(months, schema_of("/api/summary"))
    for row in months["summaries"]:
        year, month = int(row["period_start"][:4]), int(row["period_start"][5:7])
        bill = month_bill(charged.model.truth.sessions, year, month, charged.model.prices,
                          charged.model.scenario.tariff, CHICAGO, charged.model.now)
        assert (row["fixed_charge"], row["capacity_charge"]) == (TARIFF["monthly_fixed_dollars"], TARIFF["capacity_dollars_per_month"])
        assert row["total_cost"] == pytest.approx(row["charging_cost"] + row["fixed_charge"] + row["capacity_charge"],
                                                  rel=1e-12)
        assert row["charging_cost"] == pytest.approx(bill["supply"] + bill["delivery"], rel=5e-3)
        assert row["total_cost"] == pytest.approx(bill["total"], rel=5e-3)
        print(f"{row['period_start'][:7]}: total ${row['total_cost']:.4f} vs bill ${bill['total']:.4f} "
              f"(charging ${row['charging_cost']:.4f} vs ${bill['supply'] + bill['delivery']:.4f})")

    # the session across midnight counts in both days, as the bill's hours fall
    days = get_json(f"{store}/api/summary?period=day")
    jsonschema.validate(days, schema_of("/api/summary"))
    expected: dict[str, float] = {}
    for truth in (spike_truth, midnight_truth):
        for line in charged.bill(truth)["lines"]:
            day = datetime.fromtimestamp(line["end"] - 1, CHICAGO).date().isoformat()
            expected[day] = expected.get(day, 0.0) + line["energy_kwh"]
    by_day = {row["period_start"]: row for row in days["summaries"]}
    assert {day: row["energy_kwh"] for day, row in by_day.items()} == pytest.approx(expected, rel=5e-3)
    first_day, second_day = sorted(by_day)
    assert (by_day[first_day]["sessions"], by_day[second_day]["sessions"]) == (2, 0)   # both started the first day
    assert by_day[second_day]["energy_kwh"] > 1 and by_day[first_day]["energy_kwh"] > spike["energy_wh"] / 1000 + 1
    print(f"days: {({day: round(row['energy_kwh'], 3) for day, row in by_day.items()})} vs "
          f"{({day: round(kwh, 3) for day, kwh in expected.items()})}")

    # the counters add up to the API
    sums = counters(get(f"{store}/metrics")[2].decode())
    assert net_cost(sums) == pytest.approx(spike["full_cost"] + midnight["full_cost"], rel=1e-6)
    assert sums["reference"] == pytest.approx(spike["reference_cost"] + midnight["reference_cost"], rel=1e-6)
    assert sums["provisional"] == 0


# --- 2. provisional until the hour closes, then repriced --------------------------------------------

class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def prometheus_client(http: aiohttp.ClientSession, url: str) -> Prometheus:
    return Prometheus(Upstream(http, UpstreamMetrics("test", CollectorRegistry(), ()), timeout=10), url)


def rendered(storage: Storage, service: SessionService) -> dict[str, float]:
    return counters(session_metrics_text(storage, service))


def only_session(storage: Storage) -> Session:
    [session] = storage.sessions()
    return session


async def test_a_session_is_provisional_until_its_hour_closes_then_repriced(tmp_path: Path, charged: Charged,
                                                                            start_prometheus) -> None:
    """At 15:45 the 15:00-16:00 hour of the 14:20-15:20 session has nine of its twelve prices: the
    session is stored at an estimate and kept out of the cost counters. Once the other three are
    published it is repriced to the bill. If they never come, an hour after the hour ended it is
    billed at the mean of the nine."""
    published_until = charged.at(105)                 # 15:45
    hour_end = charged.at(120)                        # 16:00
    partial = start_prometheus({}, data_dir=tsdb(tmp_path / "partial", charged, published_until))
    complete = start_prometheus({}, data_dir=tsdb(tmp_path / "complete", charged))
    config = load({"tariff": TARIFF, "sessions": {"source": "fleet", "catch_up": "3h"}}, {}, {})
    truth = charged.model.truth.sessions[0]
    bill = charged.bill(truth)
    spike_hour = [charged.price(charged.at(5 * k)) for k in range(1, 13)]           # 14:05 ... 15:00
    published = [charged.price(charged.at(60 + 5 * k)) for k in range(1, 10)]       # 15:05 ... 15:45
    log = logging.getLogger("test_billed_sessions")

    async with aiohttp.ClientSession() as http:
        def service_on(database: str, clock: Clock) -> tuple[Storage, SessionService]:
            storage = Storage(tmp_path / database, CHICAGO)
            return storage, SessionService(config, storage, prometheus_client(http, partial.url), log, clock=clock)

        # 15:45: stored, estimated (the three missing prices at the latest one, 15:45's), provisional
        clock = Clock(published_until)
        storage, service = service_on("repriced.db", clock)
        await service.evaluate()
        session = only_session(storage)
        first, last = session.bill_lines
        estimate = (sum(published) + 3 * published[-1]) / 12
        assert (first.final, last.final, session.cost_final) == (True, False, False)
        assert last.end == hour_end
        assert first.price_cents == pytest.approx(sum(spike_hour) / 12, abs=1e-9)
        assert last.price_cents == pytest.approx(estimate, abs=1e-9)
        assert session.supply_cost == pytest.approx(
            first.energy_wh / 1000 * sum(spike_hour) / 12 / 100 + last.energy_wh / 1000 * estimate / 100, rel=1e-12)
        sums = rendered(storage, service)
        assert (net_cost(sums), sums["reference"], sums["provisional"]) == (0, 0, 1)
        provisional_supply = session.supply_cost

        # 16:10, the hour's last three prices published: repriced to the bill, final, counted
        service.prometheus = prometheus_client(http, complete.url)
        clock.now = hour_end + 600
        await service.evaluate()
        session = only_session(storage)
        assert session.cost_final is True
        for field, line in (("supply_cost", "supply"), ("delivery_cost", "delivery"), ("full_cost", "full"),
                            ("reference_cost", "reference")):
            assert getattr(session, field) == pytest.approx(bill[line], rel=5e-3), field
        same_lines([vars(line) for line in session.bill_lines], bill["lines"])
        sums = rendered(storage, service)
        assert net_cost(sums) == pytest.approx(session.full_cost, rel=1e-9)
        assert sums["reference"] == pytest.approx(session.reference_cost, rel=1e-9)
        assert sums["provisional"] == 0
        print(f"\nprovisional at 15:45: supply ${provisional_supply:.4f} (15:00-16:00 at {estimate:.3f} c); "
              f"repriced at 16:10: ${session.supply_cost:.4f} ({session.bill_lines[-1].price_cents:.3f} c) vs bill "
              f"${bill['supply']:.4f}")

        # the prices never come: still provisional at 16:59, final at 17:01 at the mean of the nine published
        clock = Clock(published_until)
        storage, service = service_on("given_up.db", clock)
        await service.evaluate()
        clock.now = hour_end + 3540
        await service.evaluate()
        assert only_session(storage).cost_final is False
        clock.now = hour_end + 3660
        await service.evaluate()
        session = only_session(storage)
        last = session.bill_lines[-1]
        assert session.cost_final is True and last.final is True
        assert last.price_cents == pytest.approx(sum(published) / len(published), abs=1e-9)
        assert session.supply_cost == pytest.approx(sum(line.energy_wh / 1000 * line.price_cents / 100
                                                        for line in session.bill_lines), rel=1e-12)
        sums = rendered(storage, service)
        assert net_cost(sums) == pytest.approx(session.full_cost, rel=1e-9) and sums["provisional"] == 0
        print(f"given up at 17:01: 15:00-16:00 at {last.price_cents:.3f} c (mean of 9), supply "
              f"${session.supply_cost:.4f}")
