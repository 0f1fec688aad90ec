"""Fault injection: every kind behaves as specified, scheduled or injected live."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp
import pytest

from simulator import scenarios
from simulator.testing import Harness, simulate

RED = "5YJ3E1EA7KF000001"
SITE = 1689500000123456
SCENARIO = {
    "start": "2025-01-10T08:00:00-06:00",
    "site": {"energy_site_id": SITE},
    "chargers": [{"name": "garage", "serial": "PGT00000000001"}],
    "vehicles": [{"vin": RED, "name": "red"}],
    "events": [{"at": "1m", "vehicle": "red", "plug_in": "garage"}],
    "prices": {"history_days": 1},
}


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a condition (the server runs in this event loop) instead of sleeping a fixed time."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def inject(h: Harness, spec: dict) -> str:
    status, body = await h.post_json("/sim/faults", spec)
    assert status == 201, body
    return body["id"]


async def raw_get(url: str) -> bytes:
    """One HTTP/1.1 GET over a plain socket: no client-side retry can hide a dropped connection
    (aiohttp >= 3.13 silently retries idempotent requests once after a reset)."""
    parsed = urlsplit(url)
    reader, writer = await asyncio.open_connection(parsed.hostname, parsed.port)
    try:
        writer.write(f"GET {parsed.path}?{parsed.query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Authorization: Bearer test-token\r\n\r\n".encode())
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()


def vitals_url(h: Harness) -> str:
    return h.charger_urls["garage"] + "/api/1/vitals"


async def test_hang_is_released_when_the_fault_is_cleared() -> None:
    async with simulate(SCENARIO) as h:
        fault_id = await inject(h, {"target": "wall_connector:garage/vitals", "kind": "hang"})
        fault = h.sim.faults.get(fault_id)
        assert fault is not None
        pending = asyncio.create_task(h.request("GET", vitals_url(h), auth=False))
        await wait_until(lambda: fault.hits == 1)
        assert not pending.done()
        other = await h.request("GET", h.charger_urls["garage"] + "/api/1/lifetime", auth=False)
        assert other[0] == 200  # only the vitals endpoint is targeted
        assert not pending.done()
        cleared = await h.request("DELETE", f"/sim/faults/{fault_id}")
        status, body, _ = await asyncio.wait_for(pending, 5)
    assert cleared[0] == 200
    assert status == 200 and json.loads(body)["evse_state"] in (1, 4, 11)


async def test_hang_ends_with_its_window_and_can_drop_the_connection() -> None:
    async with simulate(SCENARIO) as h:
        await inject(h, {"target": "tessie", "kind": "hang", "duration": "30s", "then": "drop"})
        pending = asyncio.create_task(raw_get(h.url + "/vehicles"))
        await wait_until(lambda: h.sim.faults.all()[0].hits == 1)
        assert not pending.done()
        h.advance(31)
        try:
            answer = await asyncio.wait_for(pending, 5)
        except ConnectionResetError:
            answer = b""
        assert answer == b""  # dropped: no response at all
        assert (await h.request("GET", "/vehicles"))[0] == 200  # window over


async def test_hang_hold_cap_and_slow() -> None:
    async with simulate(SCENARIO) as h:
        await inject(h, {"target": "comed", "kind": "hang", "hold": 0.2, "count": 1})
        await inject(h, {"target": "fleet/products", "kind": "slow", "delay": 0.2})
        started = time.monotonic()
        held = await h.request("GET", "/api?type=5minutefeed", auth=False)
        slow = await h.request("GET", "/api/1/products")
        elapsed = time.monotonic() - started
    assert held[0] == 200 and slow[0] == 200
    assert elapsed >= 0.4


async def test_status_429_with_retry_after_for_the_next_n_requests() -> None:
    async with simulate(SCENARIO) as h:
        await inject(h, {"target": "tessie", "kind": "status", "status": 429, "retry_after": "30s", "count": 2})
        first = await h.request("GET", "/vehicles")
        second = await h.request("GET", f"/{RED}/state")
        third = await h.request("GET", "/vehicles")
        _, listed = await h.get_json("/sim/faults")
    assert first[0] == second[0] == 429
    assert first[2]["Retry-After"] == "30"
    assert json.loads(first[1]) == {"error": "Too Many Requests"}
    assert third[0] == 200
    assert listed["faults"][0]["remaining"] == 0 and listed["faults"][0]["active"] is False


async def test_fleet_status_error_uses_the_fleet_envelope() -> None:
    async with simulate(SCENARIO) as h:
        await inject(h, {"target": "fleet/energy_sites", "kind": "status", "status": 503})
        status, body, _ = await h.request("GET", f"/api/1/energy_sites/{SITE}/live_status")
        products = await h.request("GET", "/api/1/products")
    assert status == 503 and json.loads(body)["response"] is None and "error" in json.loads(body)
    assert products[0] == 200


async def test_malformed_and_truncated_bodies() -> None:
    async with simulate(SCENARIO) as h:
        _, good, _ = await h.request("GET", h.charger_urls["garage"] + "/api/1/lifetime", auth=False)
        await inject(h, {"target": "wall_connector:garage/vitals", "kind": "malformed", "count": 1})
        await inject(h, {"target": "wall_connector:garage/lifetime", "kind": "truncated", "count": 1})
        _, malformed, _ = await h.request("GET", vitals_url(h), auth=False)
        _, truncated, _ = await h.request("GET", h.charger_urls["garage"] + "/api/1/lifetime", auth=False)
    with pytest.raises(ValueError):
        json.loads(malformed)
    assert truncated == good[:-1] and not truncated.endswith(b"}")
    assert json.loads(truncated + b"}") == json.loads(good)  # the repair real clients apply


async def test_nan_in_lifetime() -> None:
    async with simulate(scenarios.path("outage")) as h:  # schedules a permanent nan on garage/lifetime
        _, body, _ = await h.request("GET", h.charger_urls["garage"] + "/api/1/lifetime", auth=False)
        _, barn, _ = await h.request("GET", h.charger_urls["barn"] + "/api/1/lifetime", auth=False)
    assert b'"avg_startup_temp":nan,' in body
    with pytest.raises(ValueError):
        json.loads(body)
    assert json.loads(body.replace(b":nan", b":null"))["avg_startup_temp"] is None
    assert b"nan" not in barn


async def test_wrong_types_and_missing_fields() -> None:
    async with simulate(SCENARIO) as h:
        h.advance(600)
        await inject(h, {"target": "tessie/*/state", "kind": "wrong_types", "fields": ["battery_level", "odometer"],
                         "count": 1})
        await inject(h, {"target": "wall_connector", "kind": "wrong_types", "style": "object", "count": 1})
        await inject(h, {"target": "fleet", "kind": "missing_fields", "fields": ["wall_connector_state"], "count": 1})
        await inject(h, {"target": "comed", "kind": "missing_fields", "random": 2, "count": 1})
        _, state = await h.get_json(f"/{RED}/state")
        _, vehicles = await h.get_json("/vehicles")  # not targeted by the glob
        _, vitals = await h.get_json(vitals_url(h), auth=False)
        _, live = await h.get_json(f"/api/1/energy_sites/{SITE}/live_status")
        _, feed = await h.get_json("/api?type=5minutefeed", auth=False)
    assert type(state["charge_state"]["battery_level"]) is str
    assert type(state["vehicle_state"]["odometer"]) is str
    assert type(state["charge_state"]["charge_limit_soc"]) is int
    assert type(vehicles["results"][0]["last_state"]["charge_state"]["battery_level"]) is int
    assert vitals["grid_v"] == {"value": pytest.approx(240, abs=2)} and vitals["contactor_closed"] is True
    entry = live["response"]["wall_connectors"][0]
    assert "wall_connector_state" not in entry and "din" in entry
    assert sum(len(e) for e in feed) == 2 * len(feed) - 2


async def test_big_body_reset_and_empty() -> None:
    async with simulate(SCENARIO) as h:
        await inject(h, {"target": "comed/5minutefeed", "kind": "big_body", "size_mb": 1, "count": 1})
        _, big, _ = await h.request("GET", "/api?type=5minutefeed", auth=False)
        await inject(h, {"target": "fleet", "kind": "big_body", "size_mb": 0.5, "count": 1})
        _, big_object, _ = await h.request("GET", "/api/1/products")
        reset_id = await inject(h, {"target": "wall_connector:garage", "kind": "reset"})
        with pytest.raises(aiohttp.ClientError):
            await h.request("GET", vitals_url(h), auth=False)
        with pytest.raises(ConnectionResetError):
            await raw_get(vitals_url(h))
        await h.request("DELETE", f"/sim/faults/{reset_id}")
        await inject(h, {"target": "comed", "kind": "empty", "duration": "5m"})
        status, empty, headers = await h.request("GET", "/api?type=currenthouraverage", auth=False)
        h.advance(301)
        _, after, _ = await h.request("GET", "/api?type=currenthouraverage", auth=False)
        recovered = await h.request("GET", vitals_url(h), auth=False)
    assert len(big) >= 1024 * 1024 and isinstance(json.loads(big), list)
    assert set(json.loads(big)[0]) == {"millisUTC", "price"}
    assert len(big_object) >= 512 * 1024 and "response" in json.loads(big_object)
    assert (status, empty) == (200, b"[]") and headers["Content-Type"].startswith("text/html")
    assert len(json.loads(after)) == 1
    assert recovered[0] == 200


async def test_scheduled_faults_follow_their_window() -> None:
    async with simulate(scenarios.path("outage")) as h:
        before = await h.request("GET", "/vehicles")
        h.advance(20 * 60)
        limited = [await h.request("GET", "/vehicles") for _ in range(4)]
        h.advance(10 * 60)
        _, empty, _ = await h.request("GET", "/api?type=5minutefeed", auth=False)
        h.advance(10 * 60)
        _, feed, _ = await h.request("GET", "/api?type=5minutefeed", auth=False)
    assert before[0] == 200
    assert [r[0] for r in limited] == [429, 429, 429, 200] and limited[0][2]["Retry-After"] == "30"
    assert empty == b"[]" and len(json.loads(feed)) == 288


async def test_fault_api_validation_listing_and_clear_all() -> None:
    async with simulate(SCENARIO) as h:
        bad = await h.post_json("/sim/faults", {"target": "tessie", "kind": "status", "status": 99})
        await inject(h, {"target": "comed", "kind": "empty"})
        await inject(h, {"target": "tessie", "kind": "slow", "delay": "1s"})
        _, listed = await h.get_json("/sim/faults")
        missing = await h.request("DELETE", "/sim/faults/f99")
        _, cleared = await h.request("DELETE", "/sim/faults") and await h.get_json("/sim/faults")
    assert bad[0] == 400 and bad[1]["error"].startswith("fault.status: got 99") and "\n" not in bad[1]["error"]
    assert [f["kind"] for f in listed["faults"]] == ["empty", "slow"]
    assert missing[0] == 404
    assert cleared == {"faults": []}
