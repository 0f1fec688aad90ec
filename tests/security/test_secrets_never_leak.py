"""No secret (TESSIE_ACCESS_TOKEN, SMART_CHARGING_API_TOKEN, the utility login's refresh tokens and password)
ever leaves its place: not in a
log line, a /metrics exposition, a page, an error body, Prometheus's labels or stored series, the
SQLite files or the OpenAPI description, even while upstreams fail and clients misbehave.

The shared stack runs every component at debug log level with distinctive tokens (testkit/security.py);
the test first provokes failures that put text in logs and error pages, proves they happened, then
searches every place for the tokens: raw, URL-encoded, as a `Bearer` header, and by fragment (so a
truncated echo is caught too).
"""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
import yaml

from servicekit.config import ConfigError, load_files
from suite.processes import wait_until
from testkit.env import clean_env
from testkit.http import call, get
from testkit.security import API_TOKEN, TESSIE_TOKEN, VIN_BLUE, VIN_RED, SecurityStack, wait_for_commands

pytestmark = pytest.mark.integration
COMPONENTS = ("twc", "fleet", "vehicle", "price", "store", "meter")


def forms(token: str) -> list[bytes]:
    """Every shape a token could leak in."""
    shapes = {token, urllib.parse.quote(token, safe=""), urllib.parse.quote(token), urllib.parse.quote_plus(token),
              f"Bearer {token}", token[:16], token[-12:], json.dumps(token)[1:-1]}
    return sorted(shape.encode() for shape in shapes)


SECRETS = {"TESSIE_ACCESS_TOKEN": forms(TESSIE_TOKEN), "SMART_CHARGING_API_TOKEN": forms(API_TOKEN)}


def leaks(blob: bytes | str) -> list[str]:
    data = blob.encode() if isinstance(blob, str) else blob
    return [f"{name} as {shape.decode()!r}" for name, shapes in SECRETS.items() for shape in shapes if shape in data]


def test_the_search_finds_every_form_of_both_tokens() -> None:
    """The searcher itself: each encoded or truncated form is found, so a clean result means something."""
    for token in (TESSIE_TOKEN, API_TOKEN):
        encoded = urllib.parse.quote(token, safe="")
        assert encoded != token, "the token must contain characters URL-encoding changes"
        for blob in (f"x={encoded}&y", f"Authorization: Bearer {token}\r\n", f"got {token[:20]}...",
                     f"msg=\"...{token[-14:]}\"", urllib.parse.urlencode({"t": token})):
            assert leaks(blob), blob
    assert leaks("nothing to see, Bearer *** and Secret('***')") == []


def provoke(stack: SecurityStack) -> None:
    """Upstream faults for every exporter and the store, and bad requests to every component."""
    faults = [
        {"target": f"tessie/{VIN_RED}/state", "kind": "status", "status": 401, "count": 2},
        {"target": f"tessie/{VIN_BLUE}/state", "kind": "malformed", "count": 2},
        {"target": "fleet/energy_sites/*/live_status", "kind": "status", "status": 500, "count": 2},
        {"target": "fleet/energy_sites/*/telemetry_history", "kind": "status", "status": 401, "count": 1},
        {"target": "comed", "kind": "malformed", "count": 2},
        {"target": "wall_connector:garage/vitals", "kind": "status", "status": 500, "count": 2},
        {"target": "opower/customers", "kind": "status", "status": 500, "count": 2},
    ]
    ids = [stack.sim.add_fault(fault) for fault in faults]

    def all_hit() -> bool:
        hits = stack.sim.hits()
        return all(hits.get(i, 0) >= 1 for i in ids)
    wait_until(all_hit, 20, 0.2, "every injected fault to be hit")
    store = stack.store
    requests = [
        ("override, wrong bearer", f"{store}/api/smart-charging/override", "POST",
         {"Authorization": f"Bearer {API_TOKEN}-wrong"}, json.dumps({"vin": VIN_BLUE, "until": 1}).encode()),
        ("override, token in the wrong scheme", f"{store}/api/smart-charging/override", "POST",
         {"Authorization": f"Basic {API_TOKEN}"}, b"{}"),
        ("override, no header", f"{store}/api/smart-charging/override", "POST", {}, b"{}"),
        ("override, malformed JSON", f"{store}/api/smart-charging/override", "POST",
         {"Authorization": f"Bearer {API_TOKEN}"}, b"{not json"),
        ("override, bad VIN", f"{store}/api/smart-charging/override", "POST",
         {"Authorization": f"Bearer {API_TOKEN}"}, b'{"vin": "nope", "until": 1}'),
        ("bad query parameter", f"{store}/api/sessions?limit=abc&from=yesterday", "GET",
         {"Authorization": f"Bearer {API_TOKEN}"}, None),
        ("bad query parameter (actions)", f"{store}/api/smart-charging/actions?limit=-5", "GET", {}, None),
        ("unknown session", f"{store}/api/sessions/999999", "GET", {}, None),
        ("wrong method", f"{store}/api/sessions", "DELETE", {"Authorization": f"Bearer {API_TOKEN}"}, None),
    ]
    requests += [(f"404 on {name}", f"{stack.urls[name]}/no/such/page", "GET",
                  {"Authorization": f"Bearer {API_TOKEN}"}, None) for name in COMPONENTS]
    for what, url, method, headers, data in requests:
        status, response_headers, body = call(url, method=method, headers=headers, data=data)
        assert status >= 400, (what, status, body[:200])
        stack.provoked.append((what, status, json.dumps(response_headers).encode() + b"\n" + body))


def prometheus_everything(stack: SecurityStack) -> dict[str, bytes]:
    url = stack.prometheus.url
    found = {"labels": get(f"{url}/api/v1/labels")[2]}
    for label in json.loads(found["labels"])["data"]:
        found[f"values of {label}"] = get(f"{url}/api/v1/label/{urllib.parse.quote(label)}/values")[2]
    everything = urllib.parse.quote('{__name__=~".+"}')
    found["every series now"] = get(f"{url}/api/v1/query?query={everything}")[2]
    found["every sample, last minute"] = get(f"{url}/api/v1/query?query={everything}%5B1m%5D", timeout=20)[2]
    found["series API"] = get(f"{url}/api/v1/series?match[]={everything}")[2]
    found["targets"] = get(f"{url}/api/v1/targets")[2]
    return found


def test_no_token_in_logs_metrics_prometheus_errors_database_or_openapi(stack: SecurityStack) -> None:
    actions = wait_for_commands(stack)
    provoke(stack)
    logs = stack.logs()
    # the failures really produced text where a careless component would print its token
    expectations = {"vehicle": b"auth_failed", "fleet": b"HTTP 500", "price": b"bad_payload", "twc": b"HTTP 500",
                    "store": b"credentials rejected", "meter": b"server_error"}
    for name, text in expectations.items():
        assert text in logs[name] and b"level=warning" in logs[name], f"{name} did not log the provoked failure"
    assert any(a["outcome"] == "failed" and "auth_failed" in (a["detail"] or "") for a in actions)
    assert {status for _, status, _ in stack.provoked} >= {400, 401, 404, 405}

    places: dict[str, bytes] = {f"log of {name}": text for name, text in logs.items()}
    for name in COMPONENTS:
        base = stack.urls[name]
        places[f"/metrics of {name}"] = get(f"{base}/metrics")[2]
        places[f"OpenMetrics of {name}"] = get(f"{base}/metrics", headers={
            "Accept": "application/openmetrics-text; version=1.0.0"})[2]
        places[f"landing page of {name}"] = get(f"{base}/")[2]
    for path in ("/api/openapi.json", "/api/smart-charging", "/api/smart-charging/actions?limit=1000",
                 "/api/sessions", "/api/sessions/current", "/api/export"):
        places[f"store {path}"] = get(stack.store + path)[2]
    places.update({f"prometheus {what}": body for what, body in prometheus_everything(stack).items()})
    places.update({f"error body: {what}": body for what, _, body in stack.provoked})
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{stack.database}{suffix}")
        if path.exists():
            places[f"SQLite {path.name}"] = path.read_bytes()
    assert places["SQLite store.sqlite3"] and "SQLite store.sqlite3-wal" in places, "the database was searched"
    assert b"charging_sessions" in places["/metrics of store"] and b'"openapi"' in places["store /api/openapi.json"]

    found = {where: hits for where, data in places.items() if (hits := leaks(data))}
    assert found == {}, f"secrets leaked: {found}"
    # the utility login: the refresh token the file holds now (rotated at every pull) and the password
    login = json.loads(stack.meter_login.read_text())
    assert b"utility_meter_reads" in places["/metrics of meter"] and login["login_data"]["token"]
    utility = forms(login["login_data"]["token"]) + [b"demo-password"]
    found = {where: [shape.decode() for shape in utility if shape in data] for where, data in places.items()}
    assert not any(found.values()), f"the utility login leaked: {found}"


@pytest.mark.parametrize("placement", [
    {"tessie": {"access_token": TESSIE_TOKEN}},
    {"TESSIE_ACCESS_TOKEN": TESSIE_TOKEN},
    {"tessie": {"token": TESSIE_TOKEN}},
    {"smart_charging": {"api_token": API_TOKEN}},
    {"SMART_CHARGING_API_TOKEN": API_TOKEN},
    {"alertmanager": {"smtp_password": TESSIE_TOKEN}},
    {"vehicles": {"token": {"nested": [TESSIE_TOKEN]}}},
], ids=["tessie.access_token", "top-level", "tessie.token", "smart_charging.api_token", "top-level api token",
        "smtp_password", "nested"])
def test_a_token_written_into_the_yaml_is_refused_without_echoing_it(tmp_path: Path, placement: dict) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(placement))
    with pytest.raises(ConfigError) as error:
        load_files(str(config), None, {})
    assert leaks(str(error.value)) == [], str(error.value)
    assert str(error.value).split(":")[0] in {".".join(_path(placement)[:2]), _path(placement)[0]}


def _path(mapping: dict) -> list[str]:
    key = next(iter(mapping))
    value = mapping[key]
    return [key, *(_path(value) if isinstance(value, dict) else [])]


def test_a_component_started_with_the_token_in_its_yaml_stops_without_printing_it(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"tessie": {"access_token": TESSIE_TOKEN},
                                      "smart_charging": {"control_enabled": True}}))
    result = subprocess.run([sys.executable, "-m", "exporters.vehicle", "--config", str(config), "--secrets",
                             "/dev/null", "--listen", "127.0.0.1:0"], capture_output=True, timeout=30,
                            env=clean_env(), cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert output.decode().strip() == ("vehicle-exporter: configuration error: tessie.access_token: secrets are not "
                                       "read from the YAML file, got key 'access_token'; remove it and put "
                                       "TESSIE_ACCESS_TOKEN=<value> in .secrets or the environment")
    assert leaks(output) == []
