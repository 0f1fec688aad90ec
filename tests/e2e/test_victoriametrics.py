"""The suite on VictoriaMetrics (prometheus.engine: victoriametrics): vmagent scrapes, VictoriaMetrics
stores and answers the queries, vmalert evaluates the repository's rules and Alertmanager delivers.

Here: a price spike in the simulator, the price history imported by the product's price-backfill
through VictoriaMetrics's import API, and vmalert's spike notification at a local receiver with the
same summary and description Prometheus gives it (tests/e2e/test_alerting.py), its templates' `query`
calls answered by VictoriaMetrics. The same sessions, thresholds and panel results as on Prometheus:
tests/e2e/test_dashboard_queries.py, which runs both engines side by side on one scenario.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from servicekit.config import load
from suite.alertmanager_config import write_alertmanager_config
from suite.processes import wait_until
from testkit import ROOT
from testkit.backfill import price_backfill
from testkit.ports import free_port
from testkit.receiver import Receiver
from tests.e2e.test_alerting import SCENARIO as ALERTING_SCENARIO

pytestmark = pytest.mark.e2e

# test_alerting.py's price spike (16 c/kWh for the last 40 minutes), without its hot charger.
SCENARIO = {key: value for key, value in ALERTING_SCENARIO.items() if key != "events"}


def firing(receiver: Receiver, name: str) -> list[dict]:
    return [a for body in receiver.bodies("/hook") for a in body["alerts"]
            if a["labels"]["alertname"] == name and a["status"] == "firing"]


def test_vmalert_evaluates_the_rules_on_victoriametrics_and_the_spike_reaches_the_receiver(
        tmp_path: Path, receiver: Receiver, processes, start_simulator, start_component, start_alertmanager) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO))
    sim = start_simulator(scenario)
    price_port = free_port()
    start_component("price-exporter", "exporters.price", price_port,
                    env={"COMED_BASE_URL": sim.url, "COMED_POLL_INTERVAL": "1"})
    vm = processes.victoria_metrics({"price": [f"127.0.0.1:{price_port}"]})
    # The history goes in through the import API while VictoriaMetrics runs (no TSDB blocks).
    result = price_backfill(None, sim.url, days=3, instance=f"127.0.0.1:{price_port}", import_url=vm.url)
    assert "imported" in result.stderr, result.stderr
    am_config = write_alertmanager_config(
        load({"alertmanager": {"webhook_urls": [f"{receiver.url}/hook"], "group_wait": 1}}, {}, {}),
        tmp_path / "alertmanager.yml")
    # A spike is information, not a page: the digest route gathers for 60 s before it sends; 1 s here.
    digest_wait = "      receiver: digest\n      group_wait: 60s\n"
    assert am_config.read_text().count(digest_wait) == 1
    am_config.write_text(am_config.read_text().replace(digest_wait, "      receiver: digest\n      group_wait: 1s\n"))
    alertmanager = start_alertmanager(am_config)
    # Three days of imported 5-minute prices (searchable within a second or so of the import).
    vm.wait_for("count_over_time(electricity_price_5m_cents_per_kwh[4d]) > 800", 10)
    vmalert = processes.vmalert(vm.url, rule_files=[str(ROOT / "rules" / "*.yml")], alertmanagers=[alertmanager])

    # New series (the recording rules' results) become searchable some seconds after their first write.
    wait_until(lambda: firing(receiver, "ElectricityPriceSpike"), 90, 0.2, "vmalert's spike notification")
    spike = firing(receiver, "ElectricityPriceSpike")[0]
    assert spike["labels"]["severity"] == "info" and spike["labels"]["provider"] == "comed"
    assert spike["annotations"]["summary"] == "Electricity price spike at home: at least 16.0 ¢/kWh for 30 minutes"
    # The recording rule's value, read back from VictoriaMetrics by the template's `query`.
    assert "at or above 14 ¢/kWh (the utility's own alert level)" in spike["annotations"]["description"]
    assert spike["generatorURL"].startswith(vmalert), spike["generatorURL"]
    # The recording rules vmalert evaluates are written back and queryable like Prometheus's.
    assert vm.value("charging_threshold:price_spike_cents_per_kwh") == 14
