"""Departure planning end to end: the simulator's car plugged in, real exporters (Fleet, vehicle, price
with the day-ahead forecast) scraped by a real Prometheus, the session store in live mode. A departure
set through the API gets a plan in the cheapest billed hours, with the energy and cost it says; the car
is stopped or left charging as the plan says; the what-if prices the alternatives; then a user sets a
new target on the /plans page in a real browser (Debian's chromium) and sees the plan change, and the
page's chart is checked in the screenshot's pixels.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jsonschema
import pytest
import yaml

from session_store.openapi import OPENAPI
from suite.processes import wait_until
from testkit.browser import element_screenshot, pixels_near, start_browser, wait_for
from testkit.exposition import parse
from testkit.http import call, get, get_json
from testkit.openapi import schema_of
from testkit.ports import free_port
from testkit.simulator import SIM_TOKEN

pytestmark = pytest.mark.e2e
VIN = "5YJYGDEE5PF000077"
DIN = "1457768-02-G--PGT00000000077"
CHICAGO = ZoneInfo("America/Chicago")
API_TOKEN = "plan-test-token-0123456789"
BATTERY_KWH = 75.0
SCENARIO = {
    "start": "now", "seed": 77,
    "site": {"energy_site_id": 1689500000123477, "site_name": "Home"},
    "chargers": [{"name": "garage", "serial": "PGT00000000077", "part_number": "1457768-02-G", "role": "standalone"}],
    "vehicles": [{"vin": VIN, "name": "grey", "display_name": "Grey", "battery_kwh": BATTERY_KWH, "soc": 30,
                  "charge_limit": 90, "max_power_kw": 11.5, "ramp": "2s",
                  "target_id": "0b6c3f8e-6a51-4b6e-9d3a-6f1f2c9a0a77"}],
    "prices": {"seed": 9, "history_days": 33, "forecast_error": 0.1},
    "events": [{"at": 0, "vehicle": "grey", "plug_in": "garage"}],
}


def auth(token: str = API_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def schema(path: str, method: str = "get") -> dict:
    return OPENAPI["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]


def test_a_departure_is_planned_in_the_cheapest_hours_executed_and_changed_from_the_page(
        tmp_path: Path, start_simulator, start_component, start_prometheus) -> None:
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(SCENARIO))
    sim = start_simulator(tmp_path / "scenario.yaml")
    ports = {name: free_port() for name in ("fleet", "vehicle", "price", "store")}
    tessie = {"TESSIE_ACCESS_TOKEN": SIM_TOKEN, "TESSIE_BASE_URL": sim.url, "WALL_CONNECTOR_NAMES": f"{DIN}:garage"}
    start_component("fleet-exporter", "exporters.fleet", ports["fleet"], env={**tessie, "FLEET_LIVE_STATUS_INTERVAL": "1"})
    start_component("vehicle-exporter", "exporters.vehicle", ports["vehicle"], env={**tessie, "TESSIE_POLL_INTERVAL": "1"})
    start_component("price-exporter", "exporters.price", ports["price"],
                    env={"COMED_BASE_URL": sim.url, "COMED_POLL_INTERVAL": "1"})
    prometheus = start_prometheus({job: [f"127.0.0.1:{ports[job]}"] for job in ("fleet", "vehicle", "price")})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "sessions": {"database": str(tmp_path / "s.db"), "evaluation_interval": 1},
        "prometheus": {"url": prometheus.url, "scrape_interval": 1},
        "smart_charging": {"control_enabled": True, "evaluation_interval": 1, "min_interval": 1}}))
    start_component("session-store", "session_store", ports["store"], config=config,
                    env={**tessie, "SMART_CHARGING_API_TOKEN": API_TOKEN, "FLEET_CHARGE_HISTORY_INTERVAL": "3600"})
    api = f"http://127.0.0.1:{ports['store']}"
    prometheus.wait_for("electricity_price_forecast_cents_per_kwh", 60)
    prometheus.wait_for("tesla_vehicle_battery_level_percent", 30)

    # Writes need the token; a bad body is refused naming the field.
    tomorrow = datetime.fromtimestamp(sim.now(), CHICAGO).date() + timedelta(days=1)
    departure = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 7, 0, tzinfo=CHICAGO)
    body = {"target_percent": 80, "departure": departure.isoformat()}
    assert call(f"{api}/api/plans/{VIN}", body, "PUT")[0] == 401
    assert call(f"{api}/api/plans/{VIN}", body, "PUT", headers=auth("wrong"))[0] == 401
    status, _, answer = call(f"{api}/api/plans/{VIN}", {"target_percent": 180, "departure": departure.isoformat()},
                             "PUT", headers=auth())
    assert status == 400 and b"target_percent" in answer
    assert call(f"{api}/api/plans/{VIN}", body, "PUT", headers=auth())[0] == 200

    def car() -> dict:
        return next((c for c in get_json(f"{api}/api/plans")["cars"] if c["vin"] == VIN), {})

    wait_until(lambda: (car().get("plan") or {}).get("hours"), 60, 0.2, "the plan")
    overview = get_json(f"{api}/api/plans")
    jsonschema.validate(overview, schema("/api/plans"))
    status_ = car()
    assert status_["next_departure"] == departure.timestamp() and status_["plugged_in"]
    assert overview["trusted"] and overview["day_ahead_hours"] >= 1
    plan = status_["plan"]
    soc = status_["state_of_charge"]["percent"]
    efficiency = status_["efficiency"]
    need = (80 - soc) / 100 * BATTERY_KWH * 1000 / efficiency
    assert plan["feasible"] and plan["need_wh"] == pytest.approx(need, rel=1e-3)
    assert plan["energy_wh"] == pytest.approx(need, rel=1e-3)
    assert plan["cost"] == pytest.approx(sum(h["energy_wh"] / 1000 * h["price_cents"] / 100 for h in plan["hours"]),
                                         abs=1e-4)

    # The planned hours are the cheapest the departure allows (the hour in progress within the stickiness
    # that keeps a charging car from flapping), peak-risk hours aside.
    hours = {h["start"]: h for h in overview["hours"]}
    usable = [h for h in overview["hours"] if h["start"] + 3600 <= departure.timestamp() - 1800 and not h["peak_risk"]]
    planned = {h["start"] for h in plan["hours"]}
    full = [hours[s]["price_cents"] for s in planned if plan["hours"][0]["start"] != s
            and next(h for h in plan["hours"] if h["start"] == s)["energy_wh"] > 10_000]
    unplanned = [h["price_cents"] for h in usable if h["start"] not in planned]
    assert full and unplanned and max(full) <= min(unplanned) + 0.31, "the planner used a dearer hour than needed"

    # Executed: a planned hour in progress leaves the car charging, otherwise it is stopped (live mode).
    first_hour = overview["hours"][0]["start"]
    if first_hour in planned:
        wait_until(lambda: car()["decision"] == "plan_charge", 20, 0.2, "the plan's decision")
        assert "stop_charging" not in sim.commands()
    else:
        wait_until(lambda: "stop_charging" in sim.commands(), 20, 0.2, "the stop")
        actions = get_json(f"{api}/api/smart-charging/actions?vin={VIN}")["actions"]
        assert any(a["action"] == "stop" and a["reason"] == "plan_wait" for a in actions)

    cost_series = f'smart_charging_plan_expected_cost_dollars{{vehicle="Grey",vin="{VIN}"}}'
    wait_until(lambda: cost_series in parse(get(f"{api}/metrics")[2].decode()), 10, 0.1, "the plan's metrics")
    metrics = parse(get(f"{api}/metrics")[2].decode())
    assert metrics[cost_series] == pytest.approx(car()["plan"]["cost"], abs=0.05)
    assert metrics[f'smart_charging_plan_deadline_at_risk{{vehicle="Grey",vin="{VIN}"}}'] == 0
    energy_series = {k: v for k, v in metrics.items() if k.startswith("smart_charging_plan_hour_energy_joules")}
    assert sum(energy_series.values()) == pytest.approx(plan["energy_wh"] * 3600, rel=0.01)

    # The what-if: charging now costs at least what the plan costs for the same target.
    what_if = get_json(f"{api}/api/plans/{VIN}/what-if?target_percent=80&departure={quote(departure.isoformat())}")
    jsonschema.validate(what_if, schema("/api/plans/{vin}/what-if"))
    options = what_if["options"]
    assert options["charge_now"]["cost"] >= options["planned"]["cost"] - 1e-6
    assert options["planned"]["energy_wh"] == pytest.approx(options["charge_now"]["energy_wh"], rel=1e-3)
    detail = get_json(f"{api}/api/plans/{VIN}")
    jsonschema.validate(detail, schema("/api/plans/{vin}"))
    assert detail["revisions"] and detail["revisions"][0]["reason"] in ("new", "hours", "cost", "feasibility")

    # The page, in a real browser: set a lower target through the form and see the plan shrink.
    browser = start_browser(1200, 1600)
    try:
        browser.get(f"{api}/plans")
        def planned_section(driver):
            driver.get(f"{api}/plans")
            found = driver.find_element("id", VIN)
            return found if found.find_elements("css selector", ".plan-energy") else None
        section = wait_for(browser, planned_section, interval=0.5, what="the car's section with its plan")
        assert "80 %" in section.find_element("css selector", ".target").text
        energy_before = section.find_element("css selector", ".plan-energy").text
        form = section.find_element("css selector", "form.plan-form")
        target = form.find_element("name", "target_percent")
        target.clear()
        target.send_keys("55")
        form.find_element("name", "token").send_keys(API_TOKEN)
        form.find_element("css selector", "button[value=save]").click()
        wait_for(browser, lambda d: "Saved" in d.find_element("id", "message").text, what="the saved message")

        def replanned(driver) -> bool:
            driver.get(f"{api}/plans")
            found = driver.find_element("id", VIN)
            return "55 %" in found.find_element("css selector", ".target").text and \
                found.find_element("css selector", ".plan-energy").text != energy_before
        wait_for(browser, replanned, timeout=20, interval=0.5, what="the new plan on the page")
        assert car()["setting"]["target_percent"] == 55
        chart = browser.find_element("id", VIN).find_element("css selector", "svg.chart")
        png = element_screenshot(browser, chart)
        forecast_pixels = pixels_near(png, "#1f77b4") + pixels_near(png, "#9ecae1")
        planned_pixels = pixels_near(png, "#2ca02c")
        print(f"\nchart pixels: forecast {forecast_pixels}, planned {planned_pixels}")
        assert forecast_pixels > 2000, "the price bars are drawn"
        assert planned_pixels > 200, "the planned hours are drawn over them"
    finally:
        browser.quit()

    # Clearing the departure ends the plan's pause: the car goes back to the threshold rule, charging.
    last = (sim.commands() or [None])[-1]
    assert call(f"{api}/api/plans/{VIN}", None, "DELETE", headers=auth())[0] == 200
    if last == "stop_charging":
        wait_until(lambda: sim.commands()[-1] == "start_charging", 20, 0.2, "the car to be resumed")
        actions = get_json(f"{api}/api/smart-charging/actions?vin={VIN}")["actions"]
        assert actions[0]["action"] == "start" and actions[0]["reason"] == "plan_ended"
    wait_until(lambda: get_json(f"{api}/api/plans")["cars"] == [], 10, 0.2, "the plan to be gone")
