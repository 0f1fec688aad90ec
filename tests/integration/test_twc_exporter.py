"""twc-exporter against the simulator: a hung Wall Connector never slows a scrape, and it recovers."""
from __future__ import annotations

import time

import pytest

from suite.processes import wait_until
from testkit.exposition import value
from testkit.http import get, timed_get
from testkit.ports import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def twc_on_simulator(start_simulator, start_component):
    sim = start_simulator("demo")
    name = next(iter(sim.charger_urls))
    port = free_port()
    start_component("twc-exporter", "exporters.twc", port, env={
        "TWC_CHARGERS": f"{name}:{sim.charger_address(name)}", "TWC_POLL_VITALS_INTERVAL": "1",
        "LOG_LEVEL": "info"})
    return sim, name, f"http://127.0.0.1:{port}/metrics"


def test_scrape_stays_fast_while_the_charger_hangs_30s_then_recovers(twc_on_simulator) -> None:
    sim, name, metrics_url = twc_on_simulator
    up = f'twc_up{{target="{name}"}}'
    wait_until(lambda: value(get(metrics_url)[2].decode(), up) == 1.0, 20, 0.2, "exporter up")

    sim.add_fault({"target": f"wall_connector:{name}", "kind": "hang", "duration": 30})
    hang_started = time.monotonic()
    latencies, saw_down_at = [], None
    while time.monotonic() - hang_started < 30:
        seconds, status, body = timed_get(metrics_url)
        assert status == 200
        latencies.append(seconds)
        if value(body.decode(), up) == 0.0 and saw_down_at is None:
            saw_down_at = time.monotonic() - hang_started
        time.sleep(0.25)
    latencies.sort()
    print(f"\nscrapes during a 30 s hang: n={len(latencies)} p50={latencies[len(latencies) // 2] * 1000:.1f} ms "
          f"max={latencies[-1] * 1000:.1f} ms; up=0 after {saw_down_at:.1f} s")
    assert latencies[-1] < 0.5, f"a scrape took {latencies[-1]:.3f}s while the upstream hung"
    assert saw_down_at is not None, "twc_up never went to 0 while the charger hung"

    sim.clear_faults()
    started = time.monotonic()
    wait_until(lambda: value(get(metrics_url)[2].decode(), up) == 1.0, 40, 0.2, "recovery after the hang")
    print(f"recovered {time.monotonic() - started:.1f} s after the hang ended")
    text = get(metrics_url)[2].decode()
    assert value(text, 'twc_upstream_requests_total{endpoint="vitals",outcome="timeout"}') >= 1
    assert f'twc_power_watts{{charger="{name}"}}' in text


@pytest.mark.parametrize("fault, outcome", [
    ({"kind": "status", "status": 500}, "server_error"),
    ({"kind": "malformed"}, "bad_payload"),
    ({"kind": "reset"}, "unreachable"),
])
def test_upstream_faults_are_counted_by_outcome_and_up_tells_the_truth(twc_on_simulator, fault, outcome) -> None:
    sim, name, metrics_url = twc_on_simulator
    up = f'twc_up{{target="{name}"}}'
    wait_until(lambda: value(get(metrics_url)[2].decode(), up) == 1.0, 20, 0.2, "exporter up")
    sim.add_fault({"target": f"wall_connector:{name}/vitals", **fault})
    counter = f'twc_upstream_requests_total{{endpoint="vitals",outcome="{outcome}"}}'
    wait_until(lambda: (value(get(metrics_url)[2].decode(), counter) or 0) >= 1
               and value(get(metrics_url)[2].decode(), up) == 0.0, 20, 0.2, f"{outcome} counted and up=0")
    sim.clear_faults()
    wait_until(lambda: value(get(metrics_url)[2].decode(), up) == 1.0, 30, 0.2, "recovery")
