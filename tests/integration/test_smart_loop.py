"""Smart-charging loop against real Prometheus (prices and units backfilled with known values) and
the simulator's Tessie: thresholds from PromQL, dry run sends nothing, live mode stops the car,
a restart does not re-send, an unreachable Prometheus is fail-safe."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from upstreams.tessie import Tessie
from servicekit.config import Secret, load
from servicekit.upstream import Upstream, UpstreamMetrics
from session_store.prometheus import Prometheus
from session_store.smart_loop import SmartChargingDriver, TessieCommands
from session_store.storage import Storage
from testkit.backfill import write_blocks
from testkit.simulator import SIM_TOKEN

pytestmark = pytest.mark.integration
VIN = "7SAYGDEE1PA000001"          # the demo scenario's Model Y
DIN = "1457768-01-G--PGT12345678901"


FIVE_MINUTE = [i % 100 for i in range(2305)]       # 8 days of 5-minute prices, 0..99 repeating
HOURLY = [(7 * i) % 50 for i in range(193)]          # 8 days of billed hours: other values, other percentiles


def backfill(tmp_path: Path, price_now: float, power: float = 11000, name: str = "tsdb") -> Path:
    """8 days of 5-minute and billed hourly prices, the current price (5-minute and projected hour
    alike), and a unit (charging by default) with the demo's Model Y."""
    now = time.time()
    end = (now // 300) * 300 - 300
    hour = (now // 3600) * 3600
    price = 'instance="p:1",job="price",provider="comed"'
    lines = ["# TYPE electricity_price_5m_cents_per_kwh gauge", "# TYPE electricity_price_billed_cents_per_kwh gauge"]
    lines += [f"electricity_price_5m_cents_per_kwh{{{price}}} {cents} {end - (2304 - i) * 300:.0f}"
              for i, cents in enumerate(FIVE_MINUTE)]
    lines += [f"electricity_price_billed_cents_per_kwh{{{price}}} {cents} {hour - (192 - i) * 3600:.0f}"
              for i, cents in enumerate(HOURLY)]
    recent = [now - 240 + 15 * k for k in range(15)]
    for metric, labels, value in (
            ("electricity_price_cents_per_kwh", price, price_now),
            ("electricity_price_hour_projected_cents_per_kwh", price, price_now),
            ("electricity_price_interval_end_timestamp_seconds", 'instance="p:1",job="price",provider="comed"', end),
            ("tesla_wall_connector_power_watts", f'din="{DIN}",instance="f:1",job="fleet",unit="garage"', power),
            ("tesla_wall_connector_vehicle_info", f'din="{DIN}",instance="f:1",job="fleet",unit="garage",'
                                                  f'vehicle="Model Y",vin="{VIN}"', 1)):
        lines.insert(0, f"# TYPE {metric} gauge")
        lines += [f"{metric}{{{labels}}} {value} {t:.0f}" for t in recent]
    ordered = sorted(lines, key=lambda line: (not line.startswith("#"), line.split("{")[0]))
    return write_blocks(tmp_path / name, "\n".join(ordered) + "\n# EOF\n", max_block_duration="240h")


async def charger(config, storage, prometheus_url, session, commands=None, later: float = 0.0) -> SmartChargingDriver:
    prometheus = Prometheus(Upstream(session, UpstreamMetrics("t", CollectorRegistry(), ()), timeout=10),
                            prometheus_url)
    return SmartChargingDriver(config, storage, prometheus, commands, logging.getLogger("test"),
                        clock=lambda: time.time() + later)


async def test_thresholds_come_from_promql_and_dry_run_sends_nothing(tmp_path, start_prometheus) -> None:
    prometheus = start_prometheus({}, data_dir=backfill(tmp_path, price_now=95.0))
    storage = Storage(tmp_path / "s.db")
    config = load({}, {}, {})
    async with aiohttp.ClientSession() as session:
        smart = await charger(config, storage, prometheus.url, session)
        market = await smart.market()
        assert (market.signal, market.price, market.hour_projected, market.five_minute_price) == ("billed", 95, 95, 95)
        assert market.stop_threshold == pytest.approx(np.quantile(HOURLY, 0.9))
        assert market.resume_threshold == pytest.approx(np.quantile(HOURLY, 0.75))
        assert market.history_days == pytest.approx(193 / 24)
        five = await (await charger(load({"smart_charging": {"signal": "five_minute"}}, {}, {}), storage,
                                    prometheus.url, session)).market()
        assert five.stop_threshold == pytest.approx(np.quantile(FIVE_MINUTE, 0.9))
        assert five.resume_threshold == pytest.approx(np.quantile(FIVE_MINUTE, 0.75))
        assert five.history_days == pytest.approx(2305 * 300 / 86400) and five.price == 95.0
        [record] = await smart.evaluate()
        assert (record.vin, record.action, record.reason, record.outcome) == (VIN, "stop_simulated",
                                                                             "price_above_stop", "simulated")
        again = await smart.evaluate()
        assert [(r.action, r.reason) for r in again] == [(None, "holding")], "the change is logged, nothing re-sent"
        assert await smart.evaluate() == [], "nothing new: nothing logged"
        restarted = await charger(config, storage, prometheus.url, session)
        assert [r.action for r in await restarted.evaluate()] == [None], "a restart remembers the simulated pause"
        # past the minimum interval since the (simulated) stop, Prometheus goes away
        unreachable = await charger(config, storage, "http://127.0.0.1:1", session, later=config.smart_charging.min_interval)
        [safe] = await unreachable.evaluate()
        assert (safe.action, safe.reason) == ("start_simulated", "fail_safe_prometheus_unreachable")


async def test_live_mode_stops_the_car_through_tessie(tmp_path, start_prometheus, start_simulator) -> None:
    sim = start_simulator("demo")
    prometheus = start_prometheus({}, data_dir=backfill(tmp_path, price_now=95.0))
    storage = Storage(tmp_path / "s.db")
    config = load({"smart_charging": {"control_enabled": True}}, {}, {"TESSIE_ACCESS_TOKEN": SIM_TOKEN})
    async with aiohttp.ClientSession() as session:
        sim.clock()  # the simulator is up
        await session.post(f"{sim.url}/sim/events", json={"vehicle": "model_y", "plug_in": "garage"})
        await session.post(f"{sim.url}/sim/clock", json={"advance": 120})
        tessie = Tessie(Upstream(session, UpstreamMetrics("t2", CollectorRegistry(), ()), timeout=30), sim.url,
                        Secret(SIM_TOKEN))
        smart = await charger(config, storage, prometheus.url, session, TessieCommands(tessie))
        [record] = await smart.evaluate()
        assert (record.action, record.outcome) == ("stop", "sent"), record
    truth = sim.truth()
    assert [(c["vin"], c["command"]) for c in truth["commands"]] == [(VIN, "stop_charging")]
    assert sim.state()["vehicles"][VIN]["charging_state"] == "Stopped"


async def test_failing_commands_are_retried_with_backoff_and_never_crash_the_loop(
        tmp_path, start_prometheus, start_simulator) -> None:
    """429, 5xx, 408, a timeout and malformed JSON from Tessie: logged as failed, retried after the
    backoff (never before), and the command goes through once Tessie answers."""
    sim = start_simulator("demo")
    prometheus = start_prometheus({}, data_dir=backfill(tmp_path, price_now=95.0))
    config = load({"smart_charging": {"control_enabled": True}}, {}, {"TESSIE_ACCESS_TOKEN": SIM_TOKEN})
    offset = [0.0]
    async with aiohttp.ClientSession() as session:
        sim.clock()
        await session.post(f"{sim.url}/sim/events", json={"vehicle": "model_y", "plug_in": "garage"})
        await session.post(f"{sim.url}/sim/clock", json={"advance": 120})
        tessie = Tessie(Upstream(session, UpstreamMetrics("t3", CollectorRegistry(), ()), timeout=2), sim.url,
                        Secret(SIM_TOKEN))
        smart = SmartChargingDriver(config, Storage(tmp_path / "s.db"),
                             Prometheus(Upstream(session, UpstreamMetrics("t4", CollectorRegistry(), ()), timeout=10),
                                        prometheus.url),
                             TessieCommands(tessie), logging.getLogger("test"), clock=lambda: time.time() + offset[0])

        async def evaluate_with(fault: dict | None, at: float) -> tuple:
            if fault:
                await session.post(f"{sim.url}/sim/faults", json={"count": 1, **fault})
            offset[0] = at
            [record] = await smart.evaluate()
            return record.action, record.outcome, record.detail or record.reason

        stop = "tessie/*/command/stop_charging"
        action, outcome, detail = await evaluate_with({"target": stop, "kind": "status", "status": 429,
                                                       "retry_after": 1}, 0)
        assert (action, outcome) == ("stop", "failed") and detail.startswith("rate_limited"), detail
        assert await evaluate_with(None, 59) == (None, "skipped", "retry_backoff (price_above_stop)")
        action, outcome, detail = await evaluate_with({"target": stop, "kind": "status", "status": 503}, 61)
        assert (action, outcome) == ("stop", "failed") and detail.startswith("server_error"), detail
        assert await evaluate_with(None, 61 + 119) == (None, "skipped", "retry_backoff (price_above_stop)")
        assert (await evaluate_with(None, 61 + 121))[:2] == ("stop", "sent")
        assert sim.commands() == ["stop_charging"]

        # The car has stopped (the unit reports no power) and, much later, the price is stale: the
        # fail-safe resumes it, through timeouts and malformed answers.
        stopped = start_prometheus({}, data_dir=backfill(tmp_path, price_now=95.0, power=0, name="stopped"))
        smart.prometheus = Prometheus(Upstream(session, UpstreamMetrics("t5", CollectorRegistry(), ()), timeout=10),
                                      stopped.url)
        start = "tessie/*/command/start_charging"
        later = 61 + 121 + 1000
        failures = [({"kind": "status", "status": 408}, "unavailable"),
                    ({"kind": "hang", "hold": "5s", "then": "drop"}, "timeout"),
                    ({"kind": "malformed"}, "bad_payload")]
        for fault, expected in failures:
            action, outcome, detail = await evaluate_with({"target": start, **fault}, later)
            assert (action, outcome) == ("start", "failed") and detail.startswith(expected), (fault, detail)
            later += 901   # past the longest backoff
        assert (await evaluate_with(None, later))[:2] == ("start", "sent")
    # A timed-out or garbled answer may hide a command the car did execute: the retry then meets
    # "is_charging", which counts as done.
    commands = [(c["command"], c["reason"]) for c in sim.truth()["commands"]]
    assert commands[0] == ("stop_charging", None) and {c for c, _ in commands[1:]} == {"start_charging"}, commands
    assert sim.state()["vehicles"][VIN]["charging_state"] == "Charging"
