"""Alertmanager configuration rendered from settings: valid, routed by severity, secrets kept private."""
from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from exporters.core.config import load
from suite.alertmanager_config import ROOT, render_alertmanager_config, write_alertmanager_config

pytestmark = pytest.mark.integration
FULL = {"alertmanager": {"webhook_urls": ["http://127.0.0.1:5001/hook"], "email_to": "owner@example.com",
                         "smtp_smarthost": "smtp.example.com:587", "smtp_from": "charging@example.com",
                         "smtp_username": "charging"}}
SECRETS = {"SMTP_PASSWORD": "smtp-pass-'\"-secret", "CHAT_WEBHOOK_URL": "https://hooks.example.com/services/T0/B0/x"}


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["amtool", *args], capture_output=True, text=True, timeout=30)


def test_committed_configuration_is_the_rendering_of_the_defaults() -> None:
    committed = (ROOT / "alertmanager" / "alertmanager.yml").read_text()
    assert committed == render_alertmanager_config(load({}, {}, {})), \
        "regenerate with: charging-suite alertmanager-config > alertmanager/alertmanager.yml"


@pytest.mark.parametrize("settings, secrets", [({}, {}), (FULL, SECRETS)], ids=["defaults", "all-receivers"])
def test_amtool_accepts_the_rendered_configuration(tmp_path: Path, settings: dict, secrets: dict) -> None:
    path = write_alertmanager_config(load(settings, {}, secrets), tmp_path / "alertmanager.yml")
    result = amtool("check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout


def test_rendered_file_holding_secrets_is_private(tmp_path: Path) -> None:
    path = write_alertmanager_config(load(FULL, {}, SECRETS), tmp_path / "alertmanager.yml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "email_configs" in text and "slack_configs" in text and "webhook_configs" in text


@pytest.mark.parametrize("labels, receiver", [
    (["alertname=ElectricityPriceSpike", "severity=critical"], "page"),
    (["alertname=WallConnectorHighTemperature", "severity=warning", "charger=garage"], "notify"),
    (["alertname=ElectricityPriceOptimal", "severity=info"], "digest"),
    (["alertname=SomethingElse"], "notify"),
])
def test_routes_send_each_severity_to_its_receiver(tmp_path: Path, labels: list[str], receiver: str) -> None:
    path = write_alertmanager_config(load(FULL, {}, SECRETS), tmp_path / "alertmanager.yml")
    result = amtool("config", "routes", "test", f"--config.file={path}", f"--verify.receivers={receiver}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_notification_templates_parse() -> None:
    result = amtool("template", "render", f"--template.glob={ROOT / 'alertmanager' / 'templates' / '*.tmpl'}",
                    "--template.text", '{{ template "charging.text" . }}')
    assert result.returncode == 0, result.stdout + result.stderr
