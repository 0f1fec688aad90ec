"""Alerting end to end: a price spike and a hot charger in the simulator, the real rules in real
Prometheus, real Alertmanager delivering to a local receiver; the message content (an icon per
severity, times in the configured zone, runbook links that open from a phone) and an inhibition.

Three waits that are not what this test is about are cut short, so it takes seconds, not minutes:
- Prometheus drops the alerts of its first evaluations (it knows no Alertmanager for its first 5 s)
  and sends a firing alert again only after --rules.alert.resend-delay (1 min): 1 s here;
- the digest route gathers for 60 s (rendered by suite.alertmanager_config, checked in
  tests/integration/test_alertmanager.py): 1 s here;
- WallConnectorHighTemperature's `for: 1m` (its edges are checked in rules/tests/chargers_test.yml)
  has already elapsed: a first Prometheus stores the live readings, and a second one starts on its
  data as after a restart, with the alert's pending state stored 10 minutes ago (ALERTS_FOR_STATE)
  and no grace period after the restart (--rules.alert.for-grace-period=0s). Prometheus restores
  that state only for an alert the live readings make active; with nothing hot, nothing fires."""
from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from servicekit.config import load
from suite.alertmanager_config import write_alertmanager_config
from suite.processes import wait_until
from testkit import ROOT
from suite.prometheus_config import one_home, render_prometheus_config
from testkit.backfill import price_backfill, write_blocks
from testkit.http import call, get_json
from testkit.ports import free_port
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
HOT = 'alertname="WallConnectorHighTemperature",charger="garage",sensor="handle",severity="warning"'


def alerts_named(bodies: list[dict], name: str) -> list[dict]:
    return [a for body in bodies for a in body["alerts"] if a["labels"]["alertname"] == name and a["status"] == "firing"]


def test_spike_and_hot_charger_reach_the_receiver_and_offline_inhibits_temperature(
        tmp_path: Path, receiver: Receiver, processes, start_simulator, start_component, start_prometheus,
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
    # A spike is information, not a page: the digest route gathers for 60 s before it sends; 1 s here.
    digest_wait = "      receiver: digest\n      group_wait: 60s\n"
    assert am_config.read_text().count(digest_wait) == 1
    am_config.write_text(am_config.read_text().replace(digest_wait, "      receiver: digest\n      group_wait: 1s\n"))
    alertmanager = start_alertmanager(am_config)

    # WallConnectorHighTemperature pending since 10 minutes ago, until a moment ago (the value is when
    # it became active); then a Prometheus without rules scrapes the exporters until the hot reading is stored.
    now = time.time()
    write_blocks(data_dir, "# TYPE ALERTS_FOR_STATE gauge\n" + "".join(
        f"ALERTS_FOR_STATE{{{HOT}}} {now - 600:.0f} {now - ago:.3f}\n" for ago in (60, 30, 1)) + "# EOF\n")
    targets = {"twc": [f"127.0.0.1:{twc_port}"], "price": [f"127.0.0.1:{price_port}"]}
    first = start_prometheus(targets, data_dir=data_dir)
    first.wait_for('twc_temperature_celsius{sensor="handle"} > 60', 60)
    processes.stop(first.process)
    prometheus = start_prometheus({}, data_dir=data_dir, config_text=render_prometheus_config(
        targets, scrape_interval=1, evaluation_interval=1, alertmanagers=[alertmanager.split("://")[1]],
        rule_files=[str(p) for p in sorted((ROOT / "rules").glob("*.yml"))], sites=one_home(targets)),
        extra=["--rules.alert.for-grace-period=0s", "--rules.alert.resend-delay=1s"])

    prometheus.wait_for('ALERTS{alertname="ElectricityPriceSpike",alertstate="firing"}', 60)
    wait_until(lambda: alerts_named(receiver.bodies("/hook"), "ElectricityPriceSpike"), 120, 0.1,
               "the spike notification")
    spike = alerts_named(receiver.bodies("/hook"), "ElectricityPriceSpike")[0]
    assert spike["labels"]["severity"] == "info" and spike["labels"]["provider"] == "comed"
    assert spike["annotations"]["summary"] == "Electricity price spike at home: at least 16.0 ¢/kWh for 30 minutes"
    assert "14 ¢/kWh (the utility's own alert level)" in spike["annotations"]["description"]

    wait_until(lambda: alerts_named(receiver.bodies("/hook"), "WallConnectorHighTemperature"), 120, 0.1,
               "the high-temperature notification")
    hot = alerts_named(receiver.bodies("/hook"), "WallConnectorHighTemperature")[0]
    assert hot["labels"]["charger"] == "garage" and hot["labels"]["sensor"] == "handle"
    assert hot["annotations"]["summary"] == "Wall Connector garage at home: handle at 65.0 °C"

    chat = [m["attachments"][0] for m in receiver.bodies("/chat")]
    texts = "\n".join(a["title"] + "\n" + a["text"] for a in chat)
    assert "[FIRING:1] ElectricityPriceSpike" in texts
    assert "🔵 Electricity price spike at home: at least 16.0 ¢/kWh for 30 minutes" in texts
    assert "🟠 Wall Connector garage at home: handle at 65.0 °C" in texts
    assert "Runbook: https://github.com/you/twc-charging-suite/blob/main/docs/alerts.md#wallconnectorhightemperature" in texts
    # Times in general.timezone (India: UTC+5:30 all year, unlike the machine's zone), to the minute.
    started = datetime.fromisoformat(hot["startsAt"].replace("Z", "+00:00")[:19] + "+00:00")
    local = started.astimezone(ZoneInfo("Asia/Kolkata")).strftime("%Y-%m-%d %H:%M")
    assert f"Severity: warning · since {local} IST" in texts, texts
    assert not re.search(r"since \S+ \S+ UTC", texts), texts

    offline = [{"labels": {"alertname": "WallConnectorOffline", "charger": "garage", "site": "home", "severity": "warning"},
                "annotations": {"summary": "Wall Connector garage is not answering"}}]
    status, _, body = call(f"{alertmanager}/api/v2/alerts", offline, timeout=5)
    assert status < 300, body

    def temperature_inhibited() -> bool:
        alerts = get_json(f"{alertmanager}/api/v2/alerts?filter=alertname%3D%22WallConnectorHighTemperature%22")
        return bool(alerts) and all(a["status"]["inhibitedBy"] for a in alerts)
    wait_until(temperature_inhibited, 30, 0.1, "the offline charger to inhibit its temperature alert")
    spike_state = get_json(f"{alertmanager}/api/v2/alerts?filter=alertname%3D%22ElectricityPriceSpike%22")
    assert spike_state and not spike_state[0]["status"]["inhibitedBy"], "other alerts stay active"
