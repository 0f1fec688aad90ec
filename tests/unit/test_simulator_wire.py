"""Wire formats: field names, JSON types and quirks exactly as the upstream notes describe."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime

import pytest

from simulator.testing import simulate

START = "2025-07-14T12:00:00-05:00"  # 17:00Z
T0 = 1752512400
RED, BLUE = "5YJ3E1EA7KF000001", "5YJYGDEE1MF000002"
SITE = 1689500000123456

VITALS_OLD = [
    "contactor_closed", "vehicle_connected", "session_s", "grid_v", "grid_hz", "vehicle_current_a", "currentA_a",
    "currentB_a", "currentC_a", "currentN_a", "voltageA_v", "voltageB_v", "voltageC_v", "relay_coil_v",
    "pcba_temp_c", "handle_temp_c", "mcu_temp_c", "uptime_s", "input_thermopile_uv", "prox_v", "pilot_high_v",
    "pilot_low_v", "session_energy_wh", "config_status", "evse_state", "current_alerts",
]
VITALS_BOOL = {"contactor_closed", "vehicle_connected"}
VITALS_INT = {"session_s", "uptime_s", "input_thermopile_uv", "config_status", "evse_state"}
VITALS_LIST = {"current_alerts", "evse_not_ready_reasons"}
LIFETIME = ["contactor_cycles", "contactor_cycles_loaded", "alert_count", "thermal_foldbacks", "avg_startup_temp",
            "charge_starts", "energy_wh", "connector_cycles", "uptime_s", "charging_time_s"]


def scenario(**extra: object) -> dict:
    data = {
        "start": START,
        "site": {"energy_site_id": SITE, "site_name": "Home"},
        "chargers": [
            {"name": "garage", "serial": "PGT00000000001", "part_number": "1457768-01-G", "role": "leader",
             "vitals_layout": "old"},
            {"name": "driveway", "serial": "PGT00000000002", "role": "follower", "leader": "garage",
             "vitals_layout": "new"},
            {"name": "barn", "serial": "PGT00000000003", "wiring": "three_phase", "vitals_layout": "new",
             "wifi": {"ssid": "TestNetwork"}},
        ],
        "vehicles": [
            {"vin": RED, "name": "red", "display_name": "Red", "soc": 40, "ramp": 0, "taper_pct": 0,
             "odometer_miles": 5454.5},
            {"vin": BLUE, "name": "blue", "soc": 40, "ramp": 0, "max_power_kw": 11},
        ],
        "events": [
            {"at": "1m", "vehicle": "red", "plug_in": "garage"},
            {"at": "1m", "vehicle": "blue", "plug_in": "barn"},
        ],
        "prices": {"history_days": 3},
    }
    data.update(extra)
    return data


def check_vitals_types(vitals: dict) -> None:
    for key, value in vitals.items():
        if key in VITALS_BOOL:
            assert type(value) is bool, key
        elif key in VITALS_INT:
            assert type(value) is int, key
        elif key in VITALS_LIST:
            assert type(value) is list and all(type(x) is int for x in value), key
        else:
            assert type(value) is float, key


# --- Wall Connector ---------------------------------------------------------------------------


async def test_vitals_old_layout_split_phase_while_charging() -> None:
    async with simulate(scenario()) as h:
        h.advance(600)
        status, body, headers = await h.request("GET", h.charger_urls["garage"] + "/api/1/vitals", auth=False)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert b" " not in body and b"\n" not in body  # compact like real units
    vitals = json.loads(body)
    assert list(vitals) == VITALS_OLD and len(vitals) == 26
    check_vitals_types(vitals)
    assert re.search(rb'"session_energy_wh":\d+\.\d{3},', body) and re.search(rb'"grid_hz":\d+\.\d{3},', body)
    assert vitals["contactor_closed"] and vitals["vehicle_connected"] and vitals["evse_state"] == 11
    assert vitals["session_s"] == 540
    power = vitals["vehicle_current_a"] * vitals["grid_v"]
    assert power == pytest.approx(11500, abs=30)  # split phase: I x V, not the per-line sum
    assert abs(vitals["voltageC_v"] - vitals["grid_v"] / 2) < 25
    for line in ("currentA_a", "currentB_a", "currentC_a"):
        assert abs(vitals[line] - vitals["vehicle_current_a"]) > 10
    assert vitals["session_energy_wh"] == pytest.approx(11500 * 540 / 3600, abs=0.001)
    assert vitals["relay_coil_v"] == pytest.approx(6.1, abs=0.2)


async def test_vitals_new_layout_three_phase() -> None:
    async with simulate(scenario()) as h:
        h.advance(600)
        _, vitals = await h.get_json(h.charger_urls["barn"] + "/api/1/vitals", auth=False)
    assert "relay_coil_v" not in vitals
    assert {"relay_k1_v", "relay_k2_v", "evse_not_ready_reasons"} <= set(vitals) and len(vitals) == 28
    check_vitals_types(vitals)
    assert vitals["evse_not_ready_reasons"] == []
    per_phase = vitals["vehicle_current_a"]
    assert vitals["currentA_a"] == vitals["currentB_a"] == vitals["currentC_a"] == per_phase
    total = sum(vitals[f"voltage{p}_v"] * vitals[f"current{p}_a"] for p in "ABC")
    assert total == pytest.approx(11000, rel=0.005)
    assert vitals["grid_hz"] == pytest.approx(50, abs=0.1)


async def test_vitals_idle_and_plugged_not_charging() -> None:
    data = scenario()
    data["vehicles"][1]["autostart"] = False
    async with simulate(data) as h:
        _, idle = await h.get_json(h.charger_urls["garage"] + "/api/1/vitals", auth=False)
        h.advance(120)
        _, plugged = await h.get_json(h.charger_urls["barn"] + "/api/1/vitals", auth=False)
    assert (idle["contactor_closed"], idle["vehicle_connected"], idle["evse_state"]) == (False, False, 1)
    assert idle["session_s"] == 0 and idle["vehicle_current_a"] <= 0.5
    assert all(0 <= idle[f"voltage{p}_v"] <= 6 for p in "ABC")
    assert (plugged["contactor_closed"], plugged["vehicle_connected"], plugged["evse_state"]) == (False, True, 4)
    assert plugged["evse_not_ready_reasons"] == [1]
    assert all(plugged[f"voltage{p}_v"] <= 6 for p in "ABC")


async def test_lifetime_version_wifi_status() -> None:
    async with simulate(scenario()) as h:
        url = h.charger_urls["barn"]
        _, lifetime = await h.get_json(url + "/api/1/lifetime", auth=False)
        _, version = await h.get_json(url + "/api/1/version", auth=False)
        _, wifi = await h.get_json(url + "/api/1/wifi_status", auth=False)
    assert list(lifetime) == LIFETIME
    for key, value in lifetime.items():
        assert type(value) is (float if key == "avg_startup_temp" else int), key
    assert list(version) == ["firmware_version", "git_branch", "part_number", "serial_number", "web_service"]
    assert version["serial_number"] == "PGT00000000003" and version["part_number"] == "1529455-02-D"
    assert all(type(v) is str for v in version.values())
    assert base64.b64decode(wifi["wifi_ssid"]) == b"TestNetwork"
    assert type(wifi["wifi_rssi"]) is int and type(wifi["wifi_connected"]) is bool
    assert set(wifi) == {"wifi_ssid", "wifi_signal_strength", "wifi_rssi", "wifi_snr", "wifi_connected",
                         "wifi_infra_ip", "internet", "wifi_mac"}


async def test_only_leaders_and_standalone_units_listen_and_paths_behave_like_the_device() -> None:
    async with simulate(scenario()) as h:
        assert set(h.charger_urls) == {"garage", "barn"}  # the follower is not on the LAN
        url = h.charger_urls["garage"]
        assert (await h.request("GET", url + "/api/1/power_sharing", auth=False))[0] == 500
        assert (await h.request("GET", url + "/api/2/vitals", auth=False))[0] == 404
        h.advance(600)
        _, vitals = await h.get_json(url + "/api/1/vitals", auth=False)
        _, version = await h.get_json(url + "/api/1/version", auth=False)
    assert version["serial_number"] == "PGT00000000001"  # the leader reports only itself


async def test_session_energy_kept_after_unplug_and_reset_on_next_session() -> None:
    data = scenario(events=[
        {"at": "1m", "vehicle": "red", "plug_in": "garage"},
        {"at": "11m", "vehicle": "red", "unplug": True},
        {"at": "20m", "vehicle": "red", "plug_in": "garage"},
    ])
    data["vehicles"][0]["autostart"] = True
    async with simulate(data) as h:
        url = h.charger_urls["garage"] + "/api/1/vitals"
        h.advance(15 * 60)
        _, after_unplug = await h.get_json(url, auth=False)
        h.advance(5 * 60)
        _, next_session = await h.get_json(url, auth=False)
    assert not after_unplug["vehicle_connected"] and after_unplug["session_s"] == 0
    assert after_unplug["session_energy_wh"] == pytest.approx(11500 / 6, abs=0.001)
    assert next_session["session_energy_wh"] == 0.0 and next_session["session_s"] == 0


# --- Tessie -------------------------------------------------------------------------------------


async def test_tessie_auth() -> None:
    async with simulate(scenario()) as h:
        missing = await h.get_json("/vehicles", auth=False)
        wrong = await h.get_json("/vehicles", auth=False, headers={"Authorization": "Bearer nope"})
        wrong_query = await h.get_json("/vehicles?access_token=nope", auth=False)
        query = await h.get_json(f"/vehicles?access_token={h.token}", auth=False)
        fleet = await h.get_json("/api/1/products", auth=False)
    assert missing == (401, {"error": "Access token is required"})
    assert wrong == (401, {"error": "Invalid access token"}) == wrong_query
    assert query[0] == 200
    assert fleet == (401, {"error": "Access token is required"})


async def test_tessie_vehicles_state_status() -> None:
    async with simulate(scenario()) as h:
        h.advance(600)
        _, vehicles = await h.get_json("/vehicles?only_active=true")
        status, state = await h.get_json(f"/{RED}/state?use_cache=true")
        _, car_status = await h.get_json(f"/{RED}/status")
        missing = await h.get_json("/5YJ3E1EA7KF999999/state")
    assert [r["vin"] for r in vehicles["results"]] == [RED, BLUE]
    assert vehicles["results"][0]["is_active"] is True
    assert vehicles["results"][0]["last_state"]["vin"] == RED
    assert status == 200 and "response" not in state
    assert state["vin"] == RED and state["state"] == "online" and state["display_name"] == "Red"
    assert set(state) >= {"charge_state", "climate_state", "drive_state", "vehicle_state", "gui_settings",
                          "vehicle_config"}
    cs = state["charge_state"]
    assert cs["charging_state"] == "Charging"
    expected_types = {
        "battery_level": int, "usable_battery_level": int, "battery_range": float, "charge_limit_soc": int,
        "charger_power": int, "charger_voltage": int, "charger_actual_current": int, "charge_energy_added": float,
        "charge_rate": float, "time_to_full_charge": float, "minutes_to_full_charge": int, "timestamp": int,
        "conn_charge_cable": str, "charge_port_latch": str, "charger_phases": int,
    }
    for key, kind in expected_types.items():
        assert type(cs[key]) is kind, key
    assert cs["charger_power"] == 12 and cs["charger_actual_current"] == 48  # kW rounded, amps
    assert cs["charge_energy_added"] == pytest.approx(11.5 * 0.92 * 540 / 3600, abs=0.01)  # kWh into the battery
    assert cs["timestamp"] == (T0 + 600) * 1000  # ms
    assert state["drive_state"]["gps_as_of"] == T0 + 600  # seconds
    assert type(state["vehicle_state"]["odometer"]) is float and state["vehicle_state"]["odometer"] == 5454.5
    assert state["drive_state"]["power"] < 0  # negative while charging
    assert car_status == {"status": "awake"}
    assert missing[0] == 404


async def test_tessie_commands_change_charging_and_are_recorded() -> None:
    async with simulate(scenario()) as h:
        h.advance(600)
        stop = await h.post_json(f"/{RED}/command/stop_charging?wait_for_completion=true")
        h.advance(60)
        _, vitals = await h.get_json(h.charger_urls["garage"] + "/api/1/vitals", auth=False)
        _, state = await h.get_json(f"/{RED}/state")
        stop_again = await h.post_json(f"/{RED}/command/stop_charging")
        start = await h.post_json(f"/{RED}/command/start_charging")
        start_again = await h.post_json(f"/{RED}/command/start_charging")
        h.advance(60)
        _, charging = await h.get_json(f"/{RED}/state")
        unknown = await h.post_json(f"/{RED}/command/self_destruct")
        _, truth = await h.get_json("/sim/truth")
    assert stop == (200, {"result": True})
    assert not vitals["contactor_closed"] and vitals["vehicle_connected"] and vitals["evse_state"] == 4
    assert state["charge_state"]["charging_state"] == "Stopped" and state["charge_state"]["charger_power"] == 0
    assert stop_again == (200, {"result": False, "reason": "not_charging"})
    assert start == (200, {"result": True})
    assert start_again == (200, {"result": False, "reason": "is_charging"})
    assert charging["charge_state"]["charging_state"] == "Charging"
    assert unknown[0] == 404
    commands = [(c["vin"], c["command"], c["result"], c["reason"]) for c in truth["commands"]]
    assert commands == [
        (RED, "stop_charging", True, None), (RED, "stop_charging", False, "not_charging"),
        (RED, "start_charging", True, None), (RED, "start_charging", False, "is_charging"),
    ]
    assert truth["commands"][0]["t"] == T0 + 600


async def test_tessie_command_reasons_disconnected_and_complete() -> None:
    data = scenario(events=[{"at": "1m", "vehicle": "blue", "plug_in": "barn"}])
    data["vehicles"][1].update(soc=80, charge_limit=80)
    async with simulate(data) as h:
        h.advance(120)
        disconnected = await h.post_json(f"/{RED}/command/start_charging")
        complete = await h.post_json(f"/{BLUE}/command/start_charging")
        _, state = await h.get_json(f"/{BLUE}/state")
    assert disconnected[1] == {"result": False, "reason": "disconnected"}
    assert complete[1] == {"result": False, "reason": "complete"}
    assert state["charge_state"]["charging_state"] == "Complete"


# --- Fleet passthrough ---------------------------------------------------------------------------


async def test_fleet_products_live_status_site_info() -> None:
    async with simulate(scenario()) as h:
        h.advance(600)
        _, products = await h.get_json("/api/1/products")
        _, live = await h.get_json(f"/api/1/energy_sites/{SITE}/live_status")
        _, info = await h.get_json(f"/api/1/energy_sites/{SITE}/site_info")
        wrong = await h.get_json("/api/1/energy_sites/42/live_status")
    assert products["count"] == len(products["response"]) == 3
    vehicles = [p for p in products["response"] if "vin" in p]
    site = next(p for p in products["response"] if "energy_site_id" in p)
    assert [v["vin"] for v in vehicles] == [RED, BLUE] and vehicles[0]["state"] == "online"
    assert type(site["energy_site_id"]) is int and site["energy_site_id"] == SITE
    components = site["components"]
    assert (components["battery"], components["solar"], components["grid"]) == (False, False, True)
    assert [w["din"] for w in components["wall_connectors"]] == [
        "1457768-01-G--PGT00000000001", "1457768-02-G--PGT00000000002", "1529455-02-D--PGT00000000003"]
    assert all(set(w) == {"device_id", "din", "is_active"} for w in components["wall_connectors"])

    body = live["response"]
    assert datetime.fromisoformat(body["timestamp"]).utcoffset() is not None
    assert body["timestamp"] == "2025-07-14T12:10:00-05:00"
    assert "grid_power" not in body and "load_power" not in body  # WC-only site
    by_din = {w["din"]: w for w in body["wall_connectors"]}
    garage = by_din["1457768-01-G--PGT00000000001"]
    assert garage["wall_connector_state"] == 1 and garage["wall_connector_fault_state"] == 2
    assert type(garage["wall_connector_power"]) is float and garage["wall_connector_power"] == 11500.0
    assert garage["vin"] == RED
    follower = by_din["1457768-02-G--PGT00000000002"]
    assert follower["wall_connector_state"] == 2 and "vin" not in follower and follower["wall_connector_power"] == 0.0

    assert info["response"]["installation_time_zone"] == "America/Chicago"
    assert info["response"]["components"]["wall_connectors"] == components["wall_connectors"]
    assert wrong[0] == 404 and wrong[1]["response"] is None and wrong[1]["error"] == "not_found"


async def test_fleet_site_power_flows_only_when_configured() -> None:
    async with simulate(scenario(site={"energy_site_id": SITE, "power_flows": {"base_load_kw": 1.0}})) as h:
        h.advance(600)
        _, live = await h.get_json(f"/api/1/energy_sites/{SITE}/live_status")
    body = live["response"]
    assert body["load_power"] == pytest.approx(1000 + 11500 + 11000)
    assert body["grid_power"] == pytest.approx(body["load_power"] - body["solar_power"])


async def test_fleet_plugged_not_charging_state_is_4() -> None:
    data = scenario()
    data["vehicles"][0]["autostart"] = False
    async with simulate(data) as h:
        h.advance(120)
        _, live = await h.get_json(f"/api/1/energy_sites/{SITE}/live_status")
    garage = live["response"]["wall_connectors"][0]
    assert (garage["wall_connector_state"], garage["wall_connector_power"], garage["vin"]) == (4, 0.0, RED)


# --- ComEd ----------------------------------------------------------------------------------------


async def test_comed_five_minute_feed_last_24h() -> None:
    async with simulate(scenario()) as h:
        h.advance(10 * 60 + 17)
        status, body, headers = await h.request("GET", "/api?type=5minutefeed", auth=False)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    feed = json.loads(body)
    assert len(feed) == 288
    assert all(set(e) == {"millisUTC", "price"} and type(e["millisUTC"]) is str and type(e["price"]) is str
               for e in feed)
    assert all(re.fullmatch(r"-?\d+\.\d", e["price"]) for e in feed)
    stamps = [int(e["millisUTC"]) for e in feed]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    assert all(s % 300000 == 0 for s in stamps)
    assert stamps[0] == (T0 + 600) * 1000  # latest interval that has ended; never a future price
    assert stamps[0] - stamps[-1] == (288 - 1) * 300000


@pytest.mark.parametrize("day, first, last, count", [
    ("20250309", 1741500000, 1741582500, 23 * 12),  # spring forward: 23 h
    ("20241103", 1730610000, 1730699700, 25 * 12),  # fall back: 25 h
])
async def test_comed_date_range_is_central_time_inclusive_and_dst_safe(day: str, first: int, last: int,
                                                                       count: int) -> None:
    data = scenario(start="2025-03-20T12:00:00-05:00", prices={"history_days": 150})
    async with simulate(data) as h:
        _, feed = await h.get_json(f"/api?type=5minutefeed&datestart={day}0000&dateend={day}2355", auth=False)
    assert len(feed) == count
    assert int(feed[0]["millisUTC"]) == last * 1000 and int(feed[-1]["millisUTC"]) == first * 1000


async def test_comed_range_never_returns_future_prices() -> None:
    async with simulate(scenario()) as h:
        h.advance(600)
        _, feed = await h.get_json("/api?type=5minutefeed&datestart=202507141200&dateend=202507142355", auth=False)
    assert [int(e["millisUTC"]) // 1000 for e in feed] == [T0 + 600, T0 + 300, T0]


async def test_comed_current_hour_average() -> None:
    async with simulate(scenario()) as h:
        h.advance(3600 + 45)  # 13:00:45 local: the 13:00 price is the last of the hour ending 13:00
        status, body, headers = await h.request("GET", "/api?type=currenthouraverage", auth=False)
        _, feed = await h.get_json("/api?type=5minutefeed", auth=False)
        h.advance(600)  # 13:10:45 -> prices ending 13:05 and 13:10
        _, later = await h.get_json("/api?type=currenthouraverage", auth=False)
        _, feed_later = await h.get_json("/api?type=5minutefeed", auth=False)
    assert headers["Content-Type"].startswith("text/html")
    average = json.loads(body)
    assert len(average) == 1 and int(average[0]["millisUTC"]) == (T0 + 3600) * 1000
    hour = [float(e["price"]) for e in feed[:12]]
    assert float(average[0]["price"]) == pytest.approx(round(sum(hour) / 12, 1), abs=0.051)
    assert int(later[0]["millisUTC"]) == (T0 + 4200) * 1000
    two = [float(e["price"]) for e in feed_later[:2]]
    assert float(later[0]["price"]) == pytest.approx(sum(two) / 2, abs=0.051)


async def test_comed_unknown_type_and_publication_lag() -> None:
    async with simulate(scenario(prices={"history_days": 1, "lag": "10m"})) as h:
        h.advance(60 * 60)
        status, body, headers = await h.request("GET", "/api?type=dayahead", auth=False)
        _, feed = await h.get_json("/api?type=5minutefeed", auth=False)
    assert (status, body) == (200, b"Servlet Feed 2.95-SGalertsSync")
    assert int(feed[0]["millisUTC"]) == (T0 + 3000) * 1000
