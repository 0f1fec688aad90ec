"""The live API end to end: the simulator's two Wall Connectors and two cars (one asleep), the real Fleet,
vehicle and price exporters scraped by a real Prometheus, the session store. A car plugs in: /api/chargers
shows its unit charging with the car and the session's energy and cost so far while the other unit is idle,
/api/vehicles shows its battery as the car reports it, the WebSocket says it plugged in, /api/prices shows
Prometheus's prices and the forecast; it unplugs: its session is among its last sessions and Grafana-style
multi-value filters find it. Prometheus stops: the answers keep what was known and say why."""
from __future__ import annotations

import time

import jsonschema
import pytest
import yaml

from suite.processes import wait_until
from testkit.events import EventListener
from testkit.http import get, get_json
from testkit.openapi import schema_of
from testkit.ports import free_port
from testkit.simulator import SIM_TOKEN

pytestmark = pytest.mark.e2e
VIN, ASLEEP_VIN = "5YJ3E1EA7KF000017", "7SAYGDEE1PA000018"
GARAGE, DRIVEWAY = "1457768-01-G--PGT00000000017", "1457768-02-G--PGT00000000018"
SCENARIO = {
    "start": "now", "seed": 17,
    "site": {"energy_site_id": 1689500000123417, "site_name": "Home"},
    "chargers": [{"name": "garage", "serial": "PGT00000000017", "part_number": "1457768-01-G", "role": "leader",
                  "sharing_max_current_a": 80},
                 {"name": "driveway", "serial": "PGT00000000018", "part_number": "1457768-02-G", "role": "follower",
                  "leader": "garage"}],
    "vehicles": [{"vin": VIN, "name": "blue", "display_name": "Blue", "battery_kwh": 60, "soc": 40,
                  "charge_limit": 90, "max_power_kw": 7.7, "ramp": "2s",
                  "target_id": "0b6c3f8e-6a51-4b6e-9d3a-6f1f2c9a0a17"},
                 {"vin": ASLEEP_VIN, "name": "red", "display_name": "Red", "battery_kwh": 75, "soc": 66,
                  "charge_limit": 80, "max_power_kw": 11.5, "asleep": True,
                  "target_id": "0b6c3f8e-6a51-4b6e-9d3a-6f1f2c9a0a18"}],
    "prices": {"seed": 5, "history_days": 33, "forecast_error": 0.1},
}


def test_units_cars_and_prices_live_and_after_prometheus_stops(tmp_path, start_simulator, start_component,
                                                               start_prometheus, processes) -> None:
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(SCENARIO))
    sim = start_simulator(tmp_path / "scenario.yaml")
    ports = {name: free_port() for name in ("fleet", "vehicle", "price", "store")}
    tessie = {"TESSIE_ACCESS_TOKEN": SIM_TOKEN, "TESSIE_BASE_URL": sim.url,
              "WALL_CONNECTOR_NAMES": f"{GARAGE}:garage,{DRIVEWAY}:driveway"}
    start_component("fleet-exporter", "exporters.fleet", ports["fleet"],
                    env={**tessie, "FLEET_LIVE_STATUS_INTERVAL": "1"})
    start_component("vehicle-exporter", "exporters.vehicle", ports["vehicle"],
                    env={**tessie, "TESSIE_POLL_INTERVAL": "1"})
    start_component("price-exporter", "exporters.price", ports["price"],
                    env={"COMED_BASE_URL": sim.url, "COMED_POLL_INTERVAL": "1"})
    prometheus = start_prometheus({job: [f"127.0.0.1:{ports[job]}"] for job in ("fleet", "vehicle", "price")})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "sessions": {"database": str(tmp_path / "s.db"), "evaluation_interval": 1, "catch_up": "10m",
                     "min_energy_kwh": 0.01, "min_duration": 5},
        "prometheus": {"url": prometheus.url, "scrape_interval": 1},
        "smart_charging": {"evaluation_interval": 1}}))
    start_component("session-store", "session_store", ports["store"], config=config,
                    env={**tessie, "FLEET_CHARGE_HISTORY_INTERVAL": "3600"})
    api = f"http://127.0.0.1:{ports['store']}"
    events = EventListener(f"ws://127.0.0.1:{ports['store']}/api/events")
    assert events.connected.wait(10)
    prometheus.wait_for("electricity_price_forecast_cents_per_kwh", 60)
    prometheus.wait_for(f'tesla_vehicle_battery_level_percent{{vin="{ASLEEP_VIN}"}}', 30)

    def units() -> dict[str, dict]:
        return {c["unit"]: c for c in get_json(f"{api}/api/chargers")["chargers"]}
    wait_until(lambda: {u["state"] for u in units().values()} == {"idle"} and len(units()) == 2, 30, 0.2,
               "both units known and idle")

    sim.event(vehicle="blue", plug_in="garage")
    wait_until(lambda: (units()["garage"]["session"] or {}).get("energy_wh", 0) > 0, 30, 0.2, "garage charging")
    answer = get_json(f"{api}/api/chargers")
    jsonschema.validate(answer, schema_of("/api/chargers"))
    garage, driveway = (next(c for c in answer["chargers"] if c["unit"] == unit) for unit in ("garage", "driveway"))
    assert garage["state"] == "charging" and garage["din"] == GARAGE and garage["power_w"] > 1000
    assert garage["vin"] == VIN and garage["vehicle"] == "Blue"
    assert garage["session"]["cost"] > 0 and 0 < garage["session"]["duration_s"] < 60
    assert driveway["state"] == "idle" and driveway["session"] is None and driveway["vin"] is None
    assert [c["unit"] for c in get_json(f"{api}/api/chargers?unit=driveway,nowhere")["chargers"]] == ["driveway"]

    # The car's own state, as the vehicle exporter reports it, and the event that it plugged in.
    def blue() -> dict:
        return next(v for v in get_json(f"{api}/api/vehicles")["vehicles"] if v["vin"] == VIN)
    wait_until(lambda: blue()["charging_state"] == "Charging" and blue()["unit"] == "garage", 30, 0.2, "Blue charging")
    cars = get_json(f"{api}/api/vehicles")
    jsonschema.validate(cars, schema_of("/api/vehicles"))
    assert cars["errors"] == []
    car = next(v for v in cars["vehicles"] if v["vin"] == VIN)
    reported = prometheus.value(f'tesla_vehicle_battery_level_percent{{vin="{VIN}"}}')
    assert abs(car["battery_level"] - reported) <= 1 and 40 <= car["battery_level"] < 90
    assert car["vehicle"] == "Blue" and car["connectivity"] == "online" and car["charge_limit"] == 90
    assert car["plugged_in"] is True and 0 <= car["data_age_s"] < 30
    red = next(v for v in cars["vehicles"] if v["vin"] == ASLEEP_VIN)
    assert red["connectivity"] == "asleep" and red["plugged_in"] is False and red["battery_level"] == 66
    def plugged_in_event() -> bool:   # the car's state and the unit's report may arrive one read apart
        seen = events.vehicle_events(VIN)
        return any(e["plugged_in"] and "plugged_in" in e["changed"] for e in seen) and seen[-1]["unit"] == "garage"
    wait_until(plugged_in_event, 20, 0.2, "the WebSocket's plug-in event")
    assert events.vehicle_events(VIN)[-1]["charging_state"] == "Charging"
    hello = events.messages[0]
    assert hello["type"] == "hello" and isinstance(hello["vehicles"], list)

    # Prices as Prometheus has them, the forecast hour by hour.
    prices = get_json(f"{api}/api/prices")
    jsonschema.validate(prices, schema_of("/api/prices"))
    assert prices["price_5m_cents"] == pytest.approx(prometheus.value("electricity_price_cents_per_kwh"), abs=1e-3)
    assert prices["projected_hour_cents"] is not None and prices["forecast"]
    starts = [hour["start"] for hour in prices["forecast"]]
    assert starts == [starts[0] + 3600 * i for i in range(len(starts))], "clock hours from the hour in progress"
    assert starts[0] <= time.time() < starts[0] + 3600 + 120, "(the exporter moves to a new hour within a poll)"
    assert {hour["source"] for hour in prices["forecast"]} <= {"day_ahead", "profile"}
    assert prices["percentiles"]["stop"] == 90 and prices["percentiles"]["resume"] == 75
    assert prices["thresholds"] is not None or any(e.startswith(("no thresholds", "smart charging has not"))
                                                   for e in prices["errors"]), prices

    # Unplugged: the session is the car's last one, and Grafana's multi-value filters find it.
    wait_until(lambda: (units()["garage"]["session"] or {}).get("duration_s", 0) >= 15, 30, 0.2,
               "a session long enough to keep (sessions.min_duration is 5 s)")
    sim.event(vehicle="blue", unplug=True)
    wait_until(lambda: blue()["sessions"], 120, 0.2, "the session among the car's last sessions")
    [session] = blue()["sessions"]
    assert session["unit"] == "garage" and session["vin"] == VIN and session["energy_wh"] > 10
    assert blue()["away_charges"] == []
    assert get_json(f"{api}/api/sessions?unit=garage,driveway&vehicle=Blue")["total"] == 1
    assert get_json(f"{api}/api/sessions?unit=driveway&unit=nowhere")["total"] == 0
    assert get_json(f"{api}/api/sessions?unit=&vehicle=%24__all")["total"] == 1
    assert get_json(f"{api}/api/vehicles?vehicle=Red&limit=0")["vehicles"][0]["vin"] == ASLEEP_VIN
    wait_until(lambda: units()["garage"]["state"] == "idle", 30, 0.2, "garage idle again")

    # Prometheus gone: what was known is still served, and the answers say why it may be old.
    processes.stop(prometheus.process)
    wait_until(lambda: get_json(f"{api}/api/vehicles")["errors"], 30, 0.2, "the vehicles' errors")
    cars = get_json(f"{api}/api/vehicles")
    jsonschema.validate(cars, schema_of("/api/vehicles"))
    assert cars["errors"][0].startswith("Prometheus unreachable")
    assert next(v for v in cars["vehicles"] if v["vin"] == ASLEEP_VIN)["battery_level"] == 66
    prices = get_json(f"{api}/api/prices")
    jsonschema.validate(prices, schema_of("/api/prices"))
    assert prices["errors"][0].startswith("Prometheus unreachable") and prices["price_5m_cents"] is not None
    status, _, _ = get(f"{api}/api/chargers")
    assert status == 200
