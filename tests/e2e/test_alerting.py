"""Alerting end to end: a price spike and a hot charger in the simulator, the real rules in real
Prometheus, real Alertmanager delivering to a local receiver; the message content (an icon per
severity, times in the configured zone, runbook links that open from a phone) and an inhibition."""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from servicekit.config import load
from suite.alertmanager_config import write_alertmanager_config
from suite.processes import free_port, wait_until
from testkit import ROOT
from testkit.backfill import price_backfill
from testkit.http import call, get_json
from testkit.receiver import Receiver

pytestmark = pytest.mark.e2e

SCENARIO = {
    "start": "now",
    "chargers": [{"name": "garage", "serial": "PGT00000000001", "part_number": "1457768-01-G", "role": "standalone"}],
    "vehicles": [{"vin": "5YJ3E1EA7KF000009", "name": "blue", "battery_kwh": 60, "soc": 40, "charge_limit": 90}],
    # 16 c/kWh since 40 minutes ago: the last 30 minutes of 5-minute prices are all above the spike level.
    "prices": {"seed": 5, "history_days": 4, "spikes": [{"from": "-40m", "to": "3h", "price": 16.0}]},
    "events": [{"at": 0, "charger": "garage", "temperature": {"handle_c": 65, "duration": "3h"}}],
}


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def alerts_named(bodies: list[dict], name: str) -> list[dict]:
    return [a for body in bodies for a in body["alerts"] if a["labels"]["alertname"] == name and a["status"] == "firing"]


def test_spike_and_hot_charger_reach_the_receiver_and_offline_inhibits_temperature(
        tmp_path: Path, receiver: Receiver, start_simulator, start_component, start_prometheus,
        start_alertmanager) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO))
    sim = start_simulator(scenario)
    twc_port, price_port = free_port(), free_port()
    data_dir = tmp_path / "tsdb"
    price_backfill(data_dir, sim.url, days=3, instance=f"127.0.0.1:{price_port}")
    start_component("twc-exporter", "exporters.twc", twc_port,
                    env={"TWC_CHARGERS": f"garage:{sim.charger_address('garage')}",
                         "TWC_POLL_VITALS_INTERVAL": "1"})
    start_component("price-exporter", "exporters.price", price_port,
                    env={"COMED_BASE_URL": sim.url, "COMED_POLL_INTERVAL": "1"})
    am_config = write_alertmanager_config(
        load({"general": {"timezone": "Asia/Kolkata"},
              "alertmanager": {"webhook_urls": [f"{receiver.url}/hook"], "group_wait": 1,
                               "runbook_base_url": "https://github.com/you/twc-charging-suite/blob/main"}}, {},
             {"CHAT_WEBHOOK_URL": f"{receiver.url}/chat"}), tmp_path / "alertmanager.yml")
    alertmanager = start_alertmanager(am_config)
    prometheus = start_prometheus({"twc": [f"127.0.0.1:{twc_port}"], "price": [f"127.0.0.1:{price_port}"]},
                                  rule_files=[str(p) for p in sorted((ROOT / "rules").glob("*.yml"))],
                                  alertmanagers=[alertmanager.split("://")[1]], data_dir=data_dir)

    prometheus.wait_for('ALERTS{alertname="ElectricityPriceSpike",alertstate="firing"}', 60)
    # A spike is information, not a page: the digest route gathers for 60 s before it sends.
    wait_until(lambda: alerts_named(receiver.bodies("/hook"), "ElectricityPriceSpike"), 120, 0.5,
               "the spike notification")
    spike = alerts_named(receiver.bodies("/hook"), "ElectricityPriceSpike")[0]
    assert spike["labels"]["severity"] == "info" and spike["labels"]["provider"] == "comed"
    assert spike["annotations"]["summary"] == "Electricity price spike: at least 16.0 ¢/kWh for 30 minutes"
    assert "14 ¢/kWh (the utility's own alert level)" in spike["annotations"]["description"]

    wait_until(lambda: alerts_named(receiver.bodies("/hook"), "WallConnectorHighTemperature"), 120, 0.5,
               "the high-temperature notification")
    hot = alerts_named(receiver.bodies("/hook"), "WallConnectorHighTemperature")[0]
    assert hot["labels"]["charger"] == "garage" and hot["labels"]["sensor"] == "handle"
    assert hot["annotations"]["summary"] == "Wall Connector garage handle at 65.0 °C"

    chat = [m["attachments"][0] for m in receiver.bodies("/chat")]
    texts = "\n".join(a["title"] + "\n" + a["text"] for a in chat)
    assert "[FIRING:1] ElectricityPriceSpike" in texts
    assert "🔵 Electricity price spike: at least 16.0 ¢/kWh for 30 minutes" in texts
    assert "🟠 Wall Connector garage handle at 65.0 °C" in texts
    assert "Runbook: https://github.com/you/twc-charging-suite/blob/main/docs/alerts.md#wallconnectorhightemperature" in texts
    # Times in general.timezone (India: UTC+5:30 all year, unlike the machine's zone), to the minute.
    started = datetime.fromisoformat(hot["startsAt"].replace("Z", "+00:00")[:19] + "+00:00")
    local = started.astimezone(ZoneInfo("Asia/Kolkata")).strftime("%Y-%m-%d %H:%M")
    assert f"Severity: warning · since {local} IST" in texts, texts
    assert not re.search(r"since \S+ \S+ UTC", texts), texts

    offline = [{"labels": {"alertname": "WallConnectorOffline", "charger": "garage", "severity": "warning"},
                "annotations": {"summary": "Wall Connector garage is not answering"}}]
    status, _, body = call(f"{alertmanager}/api/v2/alerts", offline, timeout=5)
    assert status < 300, body

    def temperature_inhibited() -> bool:
        alerts = get_json(f"{alertmanager}/api/v2/alerts?filter=alertname%3D%22WallConnectorHighTemperature%22")
        return bool(alerts) and all(a["status"]["inhibitedBy"] for a in alerts)
    wait_until(temperature_inhibited, 30, 0.5, "the offline charger to inhibit its temperature alert")
    spike_state = get_json(f"{alertmanager}/api/v2/alerts?filter=alertname%3D%22ElectricityPriceSpike%22")
    assert spike_state and not spike_state[0]["status"]["inhibitedBy"], "other alerts stay active"
