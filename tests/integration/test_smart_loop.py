"""Smart-charging loop against real Prometheus (prices and units backfilled with known values) and
the simulator's Tessie: thresholds from PromQL, dry run sends nothing, live mode stops the car,
a restart does not re-send, an unreachable Prometheus is fail-safe."""
from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from exporters.clients.tessie import Tessie
from exporters.core.config import Secret, load
from exporters.core.upstream import Upstream, UpstreamMetrics
from session_store.prometheus import Prometheus
from session_store.smart_loop import SmartCharger, TessieCommands
from session_store.storage import Storage
from tests.conftest import SIM_TOKEN
from tests.support import get_json

pytestmark = pytest.mark.integration
VIN = "7SAYGDEE1PA000001"          # the demo scenario's Model Y
DIN = "1457768-01-G--PGT12345678901"


def backfill(tmp_path: Path, price_now: float) -> Path:
    """8 days of prices 0..99 repeating, the current price, and a charging unit with the demo's Model Y."""
    now = time.time()
    end = (now // 300) * 300 - 300
    lines = ["# TYPE electricity_price_5m_cents_per_kwh gauge"]
    lines += [f'electricity_price_5m_cents_per_kwh{{instance="p:1",job="price",provider="comed"}} {i % 100} '
              f"{end - (2304 - i) * 300:.0f}" for i in range(2305)]
    recent = [now - 240 + 15 * k for k in range(15)]
    for name, labels, value in (
            ("electricity_price_cents_per_kwh", 'instance="p:1",job="price",provider="comed"', price_now),
            ("electricity_price_interval_end_timestamp_seconds", 'instance="p:1",job="price",provider="comed"', end),
            ("tesla_wall_connector_power_watts", f'din="{DIN}",instance="f:1",job="fleet",unit="garage"', 11000),
            ("tesla_wall_connector_vehicle_info", f'din="{DIN}",instance="f:1",job="fleet",unit="garage",'
                                                  f'vehicle="Model Y",vin="{VIN}"', 1)):
        lines.insert(0, f"# TYPE {name} gauge")
        lines += [f"{name}{{{labels}}} {value} {t:.0f}" for t in recent]
    ordered = sorted(lines, key=lambda line: (not line.startswith("#"), line.split("{")[0]))
    (tmp_path / "in.om").write_text("\n".join(ordered) + "\n# EOF\n")
    data = tmp_path / "tsdb"
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", "--max-block-duration=240h",
                    str(tmp_path / "in.om"), str(data)], check=True, timeout=120)
    return data


async def charger(config, storage, prometheus_url, session, commands=None, later: float = 0.0) -> SmartCharger:
    prometheus = Prometheus(Upstream(session, UpstreamMetrics("t", CollectorRegistry(), ()), timeout=10),
                            prometheus_url)
    return SmartCharger(config, storage, prometheus, commands, logging.getLogger("test"),
                        clock=lambda: time.time() + later)


async def test_thresholds_come_from_promql_and_dry_run_sends_nothing(tmp_path, start_prometheus) -> None:
    prometheus = start_prometheus({}, data_dir=backfill(tmp_path, price_now=95.0))
    storage = Storage(tmp_path / "s.db")
    config = load({}, {}, {})
    async with aiohttp.ClientSession() as session:
        smart = await charger(config, storage, prometheus.url, session)
        market = await smart.market()
        prices = [i % 100 for i in range(2305)]
        assert market.stop_threshold == pytest.approx(np.quantile(prices, 0.9))
        assert market.resume_threshold == pytest.approx(np.quantile(prices, 0.75))
        assert market.history_days == pytest.approx(2305 * 300 / 86400) and market.price == 95.0
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
        get_json(f"{sim.url}/sim/clock")  # the simulator is up
        await session.post(f"{sim.url}/sim/events", json={"vehicle": "model_y", "plug_in": "garage"})
        await session.post(f"{sim.url}/sim/clock", json={"advance": 120})
        tessie = Tessie(Upstream(session, UpstreamMetrics("t2", CollectorRegistry(), ()), timeout=30), sim.url,
                        Secret(SIM_TOKEN))
        smart = await charger(config, storage, prometheus.url, session, TessieCommands(tessie))
        [record] = await smart.evaluate()
        assert (record.action, record.outcome) == ("stop", "sent"), record
    truth = get_json(f"{sim.url}/sim/truth")
    assert [(c["vin"], c["command"]) for c in truth["commands"]] == [(VIN, "stop_charging")]
    assert get_json(f"{sim.url}/sim/state")["vehicles"][VIN]["charging_state"] == "Stopped"
