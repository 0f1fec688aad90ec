"""The smart-charging override endpoint: token required, input validated, override persisted and logged."""
from __future__ import annotations

import logging
import time
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from servicekit.config import Secret, load
from session_store.api import add_smart_charging_routes
from session_store.smart_loop import SmartChargingDriver
from session_store.storage import Storage

VIN = "5YJ3E1EA7KF000001"
TOKEN = "override-token-secret"


def app_with(storage: Storage, token: Secret | None) -> tuple[web.Application, SmartChargingDriver]:
    driver = SmartChargingDriver(load({}, {}, {}), storage, None, None, logging.getLogger("test"))  # type: ignore[arg-type]
    app = web.Application()
    add_smart_charging_routes(app, driver, storage, token, ZoneInfo("America/Chicago"))
    return app, driver


async def test_override_needs_the_token_and_is_kept(tmp_path) -> None:
    storage = Storage(tmp_path / "s.db")
    app, driver = app_with(storage, Secret(TOKEN))
    until = time.time() + 3600
    async with TestClient(TestServer(app)) as client:
        missing = await client.post("/api/smart-charging/override", json={"vin": VIN, "until": until})
        wrong = await client.post("/api/smart-charging/override", json={"vin": VIN, "until": until},
                                  headers={"Authorization": "Bearer nope"})
        assert (missing.status, wrong.status) == (401, 401)
        assert TOKEN not in await wrong.text()
        assert storage.load_memories() == {}, "nothing changes without the token"
        good = await client.post("/api/smart-charging/override", json={"vin": VIN, "until": until},
                                 headers={"Authorization": f"Bearer {TOKEN}"})
        assert good.status == 200 and (await good.json())["override_until"] == until
    assert Storage(tmp_path / "s.db").load_memories()[VIN].override_until == until
    assert storage.actions()[0].reason == "manual_override_set"


@pytest.mark.parametrize("body, message", [
    ({"vin": "BLUE", "until": "2099-01-01"}, "vin: expected a 17-character VIN"),
    ({"vin": VIN, "until": "tomorrow"}, "until: expected a moment within the next 30 days"),
    ({"vin": VIN, "until": 1.0}, "until: expected a moment within the next 30 days"),
    ([1, 2], "body: expected a JSON object"),
])
async def test_bad_override_requests_are_rejected_with_the_field_named(tmp_path, body, message) -> None:
    app, _ = app_with(Storage(tmp_path / "s.db"), Secret(TOKEN))
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/api/smart-charging/override", json=body,
                                     headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status == 400 and (await response.json())["error"].startswith(message)


async def test_overrides_are_refused_when_no_token_is_configured(tmp_path) -> None:
    app, _ = app_with(Storage(tmp_path / "s.db"), None)
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/api/smart-charging/override", json={"vin": VIN, "until": time.time() + 60})
        assert response.status == 403 and "SMART_CHARGING_API_TOKEN" in (await response.json())["error"]
