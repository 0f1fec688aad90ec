"""The whole loop: simulator -> twc-exporter on the core -> real Prometheus -> PromQL answers."""
from __future__ import annotations

import json

import pytest

from testkit.http import get
from testkit.ports import free_port

pytestmark = pytest.mark.e2e


def test_promql_returns_the_simulated_chargers_values(start_simulator, start_component, start_prometheus) -> None:
    sim = start_simulator("demo")
    name, url = next(iter(sim.charger_urls.items()))
    port = free_port()
    start_component("twc-exporter", "exporters.twc", port, env={
        "TWC_CHARGERS": f"{name}:{sim.charger_address(name)}", "TWC_POLL_VITALS_INTERVAL": "1"})
    prometheus = start_prometheus({"twc": [f"127.0.0.1:{port}"]}, scrape_interval=1)

    version = json.loads(get(f"{url}/api/1/version")[2])
    info = prometheus.wait_for(f'twc_version_info{{charger="{name}",job="twc"}}')
    assert info[0]["metric"]["serial_number"] == version["serial_number"]
    assert info[0]["metric"]["firmware_version"] == version["firmware_version"]

    vitals = json.loads(get(f"{url}/api/1/vitals")[2])
    grid = prometheus.wait_for(f'twc_grid_voltage_volts{{charger="{name}"}}')
    assert float(grid[0]["value"][1]) == pytest.approx(vitals["grid_v"], abs=5.0)
    assert prometheus.value(f'twc_up{{target="{name}",job="twc"}}') == 1.0
    assert prometheus.value('up{job="twc"}') == 1.0
