"""Prometheus configuration: the committed file, retention, and remote write to a second Prometheus."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from servicekit.config import ConfigError, load
from suite.__main__ import reference_prometheus_config
from suite.prometheus_config import render_prometheus_config

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_committed_prometheus_yml_is_the_reference_rendering_and_valid() -> None:
    committed = ROOT / "prometheus" / "prometheus.yml"
    assert committed.read_text() == reference_prometheus_config(load({}, {}, {})), \
        "regenerate with: charging-suite prometheus-config > prometheus/prometheus.yml"
    result = subprocess.run(["promtool", "check", "config", str(committed)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(list((ROOT / 'rules').glob('*.yml')))} rule files found" in result.stdout
    text = committed.read_text()
    for job in ("twc", "fleet", "vehicle", "price", "session_store", "prometheus", "alertmanager"):
        assert f"job_name: {job}\n" in text
    assert "# remote_write:" in text, "the commented remote_write example is part of the reference"


def test_retention_must_cover_the_lookback() -> None:
    assert load({}, {}, {}).prometheus.retention >= 35 * 86400
    with pytest.raises(ConfigError, match=r"^prometheus.retention: must cover smart_charging.lookback_days \(30 d\)"):
        load({"prometheus": {"retention": "15d"}}, {}, {})


def test_samples_arrive_at_a_second_prometheus_through_remote_write(start_prometheus) -> None:
    receiver = start_prometheus({}, extra=["--web.enable-remote-write-receiver"])
    placeholder = "127.0.0.1:1"
    sender = start_prometheus({"prometheus": [placeholder]}, config_text=render_prometheus_config(
        {"prometheus": [placeholder]}, scrape_interval=1, remote_write=[f"{receiver.url}/api/v1/write"]))
    sender_address = sender.url.split("://")[1]
    # The sender scrapes an address that does not answer: up == 0 is still a sample to forward.
    found = receiver.wait_for(f'up{{job="prometheus",instance="{placeholder}"}}', 60)
    assert found[0]["value"][1] == "0"
    assert sender_address not in str(receiver.targets()), "the receiver scrapes nothing itself"
