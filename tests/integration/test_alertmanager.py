"""Alertmanager configuration rendered from settings: valid, routed by severity, secrets kept private;
notifications with an icon per severity, times in the configured zone and runbook links that open."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from servicekit.config import ConfigError, load
from suite.alertmanager_config import ROOT, render_alertmanager_config, runbook_base, write_alertmanager_config
from suite.processes import wait_until
from testkit.receiver import Receiver

pytestmark = pytest.mark.integration
FULL = {"alertmanager": {"webhook_urls": ["http://127.0.0.1:5001/hook"], "email_to": "owner@example.com",
                         "smtp_smarthost": "smtp.example.com:587", "smtp_from": "charging@example.com",
                         "smtp_username": "charging"}}
SECRETS = {"SMTP_PASSWORD": "smtp-pass-'\"-secret", "CHAT_WEBHOOK_URL": "https://hooks.example.com/services/T0/B0/x"}


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    # TZ=UTC: what the notifications show must come from the settings, not from the process's zone.
    return subprocess.run(["amtool", *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "TZ": "UTC"})


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
    (["alertname=ExporterDown", "severity=critical", "job=price"], "page"),
    (["alertname=WallConnectorHighTemperature", "severity=warning", "charger=garage"], "notify"),
    (["alertname=ElectricityPriceOptimal", "severity=info"], "digest"),
    (["alertname=SomethingElse"], "notify"),
])
def test_routes_send_each_severity_to_its_receiver(tmp_path: Path, labels: list[str], receiver: str) -> None:
    path = write_alertmanager_config(load(FULL, {}, SECRETS), tmp_path / "alertmanager.yml")
    result = amtool("config", "routes", "test", f"--config.file={path}", f"--verify.receivers={receiver}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def rule_alerts() -> list[dict]:
    return [rule for path in sorted((ROOT / "rules").glob("*.yml"))
            for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"] if "alert" in rule]


def test_only_a_broken_suite_pages_and_price_alerts_are_information(tmp_path: Path) -> None:
    """A price spike at 3 a.m. is news for the morning, not a page repeated hourly like an exporter
    outage: every price alert goes to the digest (repeated daily at most); only the suite's own
    failures go to `page`."""
    path = write_alertmanager_config(load(FULL, {}, SECRETS), tmp_path / "alertmanager.yml")
    receivers = {}
    for rule in rule_alerts():
        result = amtool("config", "routes", "test", f"--config.file={path}", f"alertname={rule['alert']}",
                        *(f"{key}={value}" for key, value in rule["labels"].items()))
        assert result.returncode == 0, result.stdout + result.stderr
        receivers[rule["alert"]] = result.stdout.strip()
    assert {name for name, receiver in receivers.items() if receiver == "page"} == {"ExporterDown", "UpstreamAuthFailing"}
    prices = [name for name in receivers if name.startswith("ElectricityPrice") and name != "ElectricityPriceStale"]
    assert len(prices) == 5
    assert {name: receivers[name] for name in prices} == {name: "digest" for name in prices}
    routes = {tuple(route["matchers"]): route for route in yaml.safe_load(path.read_text())["route"]["routes"]}
    assert routes[('severity="info"',)]["receiver"] == "digest"
    assert routes[('severity="info"',)]["repeat_interval"] == "24h"
    # The digest gathers for a minute at least, however short the general group_wait (the e2e test
    # tests/e2e/test_alerting.py shortens it in its own copy).
    assert routes[('severity="info"',)]["group_wait"] == "60s"
    quick = yaml.safe_load(render_alertmanager_config(load({"alertmanager": {"group_wait": 1}}, {}, {})))
    assert {tuple(r["matchers"]): r.get("group_wait") for r in quick["route"]["routes"]}[('severity="info"',)] == "60s"


NOTIFICATION = {
    "receiver": "page", "status": "firing", "externalURL": "http://127.0.0.1:9093", "groupLabels": {},
    "commonLabels": {"alertname": "Mixed"}, "commonAnnotations": {},
    "alerts": [
        {"status": "firing", "labels": {"alertname": "ExporterDown", "severity": "critical", "job": "price"},
         "annotations": {"summary": "price exporter is down", "description": "d", "runbook_url": "docs/alerts.md#exporterdown"},
         "startsAt": "2026-01-15T09:00:00Z", "endsAt": "0001-01-01T00:00:00Z"},
        {"status": "firing", "labels": {"alertname": "WallConnectorFault", "severity": "warning"},
         "annotations": {"summary": "garage reports a fault", "description": "d",
                         "runbook_url": "https://wiki.example.com/fault"},
         "startsAt": "2026-07-15T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z"},
        {"status": "firing", "labels": {"alertname": "ElectricityPriceLow", "severity": "info"},
         "annotations": {"summary": "Electricity is cheap", "description": "d"},
         "startsAt": "2026-07-15T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z"},
        # Resolved across the spring-forward change of 8 March 2026 (2:00 CST -> 3:00 CDT, 08:00 UTC).
        {"status": "resolved", "labels": {"alertname": "ElectricityPriceSpike", "severity": "info"},
         "annotations": {"summary": "spike over", "description": "d"},
         "startsAt": "2026-03-08T07:30:00Z", "endsAt": "2026-03-08T08:30:00Z"},
    ],
}


def notification(tmp_path: Path, settings: dict) -> str:
    """The chat message Alertmanager's own template engine makes of NOTIFICATION with the rendered
    configuration (amtool renders a receiver's text as Alertmanager does: the templates, then the text)."""
    config = yaml.safe_load(render_alertmanager_config(load(settings, {}, SECRETS)))
    text = config["receivers"][0]["slack_configs"][0]["text"]
    assert all(c["text"] == text for r in config["receivers"] for c in r["slack_configs"] + r["email_configs"])
    data = tmp_path / "data.json"
    data.write_text(json.dumps(NOTIFICATION))
    result = amtool("template", "render", f"--template.glob={ROOT / 'alertmanager' / 'templates' / '*.tmpl'}",
                    f"--template.data={data}", "--template.text", text)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def lines_of(text: str, summary: str) -> list[str]:
    """The lines of one alert in a notification, from its summary line to the blank line after it."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith(" " + summary))
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def test_each_severity_has_its_own_icon(tmp_path: Path) -> None:
    text = notification(tmp_path, FULL)
    icons = {summary: lines_of(text, summary)[0].split(" ", 1)[0]
             for summary in ("price exporter is down", "garage reports a fault", "Electricity is cheap", "spike over")}
    assert icons == {"price exporter is down": "🔴", "garage reports a fault": "🟠", "Electricity is cheap": "🔵",
                     "spike over": "✅"}


@pytest.mark.parametrize("zone, expected", [
    ("America/Chicago", ["since 2026-01-15 03:00 CST", "since 2026-07-15 03:00 CDT",
                         "since 2026-03-08 01:30 CST · resolved 2026-03-08 03:30 CDT"]),
    ("Europe/Berlin", ["since 2026-01-15 10:00 CET", "since 2026-07-15 10:00 CEST",
                       "since 2026-03-08 08:30 CET · resolved 2026-03-08 09:30 CET"]),
    ("UTC", ["since 2026-01-15 09:00 UTC", "since 2026-07-15 08:00 UTC"]),
])
def test_notification_times_are_in_the_configured_time_zone(tmp_path: Path, zone: str, expected: list[str]) -> None:
    text = notification(tmp_path, {**FULL, "general": {"timezone": zone}})
    for fragment in expected:
        assert fragment in text, text


def test_relative_runbook_links_resolve_against_the_runbook_base_url(tmp_path: Path) -> None:
    """The rules' runbook links are docs/alerts.md#alertname, relative to the repository root: the
    base is the repository (…/blob/main), a file at its root (its folder) or the runbook page itself."""
    relative = notification(tmp_path, FULL)
    assert "Runbook: docs/alerts.md#exporterdown" in relative
    repository = "https://github.com/you/twc-charging-suite/blob/main"
    for base in (repository, repository + "/", repository + "/README.md", repository + "/docs/alerts.md"):
        text = notification(tmp_path, {"alertmanager": {**FULL["alertmanager"], "runbook_base_url": base}})
        assert f"Runbook: {repository}/docs/alerts.md#exporterdown" in text, (base, text)
        assert "Runbook: https://wiki.example.com/fault" in text, "an absolute runbook link is kept as it is"


def test_every_rule_runbook_link_resolves_to_the_runbook_page() -> None:
    """What the rules really carry, resolved as notifications resolve it, names docs/alerts.md at the
    repository's address and an anchor that page has."""
    rules = [rule for path in sorted((ROOT / "rules").glob("*.yml"))
             for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"] if "alert" in rule]
    base = runbook_base("https://github.com/you/twc-charging-suite/blob/main/README.md")
    page = (ROOT / "docs" / "alerts.md").read_text()
    for rule in rules:
        link = base + rule["annotations"]["runbook_url"]
        assert link == f"https://github.com/you/twc-charging-suite/blob/main/docs/alerts.md#{rule['alert'].lower()}"
        assert f"\n### {rule['alert']}\n" in page, rule["alert"]


def test_runbook_base_url_must_be_a_web_address() -> None:
    with pytest.raises(ConfigError, match="alertmanager.runbook_base_url"):
        load({"alertmanager": {"runbook_base_url": "README.md"}}, {}, {})
    assert load({}, {"ALERT_RUNBOOK_BASE_URL": "https://example.com/docs/"}, {}).alertmanager.runbook_base_url \
        == "https://example.com/docs"   # URLs are kept without their trailing slash; links resolve either way
    with pytest.raises(ConfigError, match="^ALERT_RUNBOOK_BASE_URL: must be an http:// or https:// URL"):
        load({}, {"ALERT_RUNBOOK_BASE_URL": "0"}, {})


def test_real_alertmanager_sends_local_times_icons_and_runbook_links(
        tmp_path: Path, start_alertmanager) -> None:
    """The same through a running Alertmanager: its chat message, not only amtool's rendering."""
    receiver = Receiver()
    try:
        settings = {"general": {"timezone": "America/Chicago"},
                    "alertmanager": {"group_wait": 1, "runbook_base_url": "https://example.com/suite/README.md"}}
        path = write_alertmanager_config(load(settings, {}, {"CHAT_WEBHOOK_URL": f"{receiver.url}/chat"}),
                                         tmp_path / "alertmanager.yml")
        alertmanager = start_alertmanager(path)
        alert = {"labels": {"alertname": "ExporterDown", "severity": "critical", "job": "price"},
                 "annotations": {"summary": "price exporter is down", "description": "d",
                                 "runbook_url": "docs/alerts.md#exporterdown"},
                 "startsAt": "2026-01-15T09:00:00Z"}
        request = urllib.request.Request(f"{alertmanager}/api/v2/alerts", data=json.dumps([alert]).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(request, timeout=5).read()
        wait_until(lambda: receiver.bodies("/chat"), 30, 0.2, "the chat notification")
        text = receiver.bodies("/chat")[0]["attachments"][0]["text"]
        assert "🔴 price exporter is down" in text
        assert "since 2026-01-15 03:00 CST" in text
        assert "Runbook: https://example.com/suite/docs/alerts.md#exporterdown" in text
    finally:
        receiver.close()


def test_notification_templates_parse() -> None:
    result = amtool("template", "render", f"--template.glob={ROOT / 'alertmanager' / 'templates' / '*.tmpl'}",
                    "--template.text", '{{ template "charging.text" . }}')
    assert result.returncode == 0, result.stdout + result.stderr


def subject(tmp_path: Path, common_labels: dict[str, str]) -> str:
    """The subject line "charging.subject" makes of a notification whose alerts share `common_labels`."""
    data = tmp_path / "subject.json"
    data.write_text(json.dumps({**NOTIFICATION, "status": "firing", "commonLabels": common_labels,
                                "alerts": NOTIFICATION["alerts"][:1]}))
    result = amtool("template", "render", f"--template.glob={ROOT / 'alertmanager' / 'templates' / '*.tmpl'}",
                    f"--template.data={data}", "--template.text", '{{ template "charging.subject" . }}')
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def test_subject_names_the_home_before_the_unit_when_alerts_carry_a_site(tmp_path: Path) -> None:
    assert subject(tmp_path, {"alertname": "WallConnectorOffline", "site": "cabin", "charger": "garage"}) \
        == "[FIRING:1] WallConnectorOffline · cabin · garage"
    assert subject(tmp_path, {"alertname": "WallConnectorOffline", "charger": "garage"}) \
        == "[FIRING:1] WallConnectorOffline · garage"
    assert subject(tmp_path, {"alertname": "ElectricityPriceHigh", "site": "home"}) == "[FIRING:1] ElectricityPriceHigh · home"


def test_the_route_groups_by_home_and_every_inhibition_stays_within_one() -> None:
    """Several homes (the `site` target label of each home's jobs): a notification never mixes two
    homes, and one home's offline charger or down exporter silences nothing at another."""
    config = yaml.safe_load(render_alertmanager_config(load({}, {}, {})))
    assert "site" in config["route"]["group_by"]
    assert all("site" in rule.get("equal", []) for rule in config["inhibit_rules"]), config["inhibit_rules"]


def test_real_alertmanager_keeps_two_homes_apart(tmp_path: Path, start_alertmanager, receiver: Receiver) -> None:
    """Two homes, each with a Wall Connector named garage and one named barn: the same alert at both
    homes makes two notifications, each naming its home; an offline charger or a down price exporter
    inhibits its own home's alerts only; without a site label (a single home) inhibition is as before."""
    settings = {"alertmanager": {"group_wait": 1, "webhook_urls": [f"{receiver.url}/hook"]}}
    path = write_alertmanager_config(load(settings, {}, {"CHAT_WEBHOOK_URL": f"{receiver.url}/chat"}),
                                     tmp_path / "alertmanager.yml")
    alertmanager = start_alertmanager(path)

    def alert(key: str, name: str, severity: str, **labels: str) -> dict:
        # No startsAt: starting now, each waits its route's group_wait (an older one is sent at once).
        return {"labels": {"alertname": name, "severity": severity, **labels},
                "annotations": {"summary": key, "description": "d"}}

    alerts = [
        alert("home garage offline", "WallConnectorOffline", "warning", charger="garage", site="home"),
        alert("home garage fault", "WallConnectorFault", "warning", charger="garage", site="home"),
        alert("cabin garage fault", "WallConnectorFault", "warning", charger="garage", site="cabin"),
        alert("home barn hot", "WallConnectorHighTemperature", "warning", charger="barn", sensor="handle", site="home"),
        alert("cabin barn hot", "WallConnectorHighTemperature", "warning", charger="barn", sensor="handle", site="cabin"),
        alert("shed offline", "WallConnectorOffline", "warning", charger="shed"),
        alert("shed fault", "WallConnectorFault", "warning", charger="shed"),
        alert("cabin price exporter down", "ExporterDown", "critical", job="price", instance="p:9884", site="cabin"),
        alert("cabin price high", "ElectricityPriceHigh", "info", provider="comed", site="cabin"),
        alert("home price high", "ElectricityPriceHigh", "info", provider="comed", site="home"),
    ]
    request = urllib.request.Request(f"{alertmanager}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(request, timeout=5).read()

    def states() -> dict[str, bool]:
        with urllib.request.urlopen(f"{alertmanager}/api/v2/alerts", timeout=5) as response:
            return {a["annotations"]["summary"]: bool(a["status"]["inhibitedBy"]) for a in json.load(response)}
    inhibited = {"home garage fault", "shed fault", "cabin price high"}
    wait_until(lambda: {key for key, muted in states().items() if muted} == inhibited, 30, 0.2,
               f"exactly {sorted(inhibited)} to be inhibited")
    assert set(states()) == {a["annotations"]["summary"] for a in alerts}

    # Every alert of the warning and critical routes that is not inhibited, one notification each
    # (the digest of info alerts gathers for a minute: not waited for here).
    notified = {"home garage offline", "cabin garage fault", "home barn hot", "cabin barn hot", "shed offline",
                "cabin price exporter down"}
    def summaries(path: str) -> list[str]:
        return sorted(a["annotations"]["summary"] for body in receiver.bodies(path) for a in body.get("alerts", []))
    wait_until(lambda: set(summaries("/hook")) >= notified, 30, 0.2, "a notification per alert")
    hooks = receiver.bodies("/hook")
    assert summaries("/hook") == sorted(notified)
    assert all(len(body["alerts"]) == 1 for body in hooks), "two homes' alerts share no notification"
    groups = {body["alerts"][0]["annotations"]["summary"]: body["groupLabels"] for body in hooks}
    assert groups["home barn hot"] == {"alertname": "WallConnectorHighTemperature", "site": "home", "charger": "barn"}
    assert groups["cabin barn hot"] == {"alertname": "WallConnectorHighTemperature", "site": "cabin", "charger": "barn"}
    assert groups["shed offline"] == {"alertname": "WallConnectorOffline", "charger": "shed"}
    wait_until(lambda: len(receiver.bodies("/chat")) >= len(notified), 30, 0.2, "a chat message per alert")
    titles = {body["attachments"][0]["title"] for body in receiver.bodies("/chat")}
    assert {"[FIRING:1] WallConnectorHighTemperature · home · barn", "[FIRING:1] WallConnectorHighTemperature · cabin · barn",
            "[FIRING:1] WallConnectorOffline · home · garage", "[FIRING:1] WallConnectorFault · cabin · garage",
            "[FIRING:1] WallConnectorOffline · shed", "[FIRING:1] ExporterDown · cabin"} == titles
