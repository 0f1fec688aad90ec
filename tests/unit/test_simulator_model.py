"""Physics, ground truth, sleep, telemetry delay, prices and the /sim control API."""

from __future__ import annotations

import math

import pytest

from simulator import scenarios
from simulator.clock import ManualClock, RealClock
from simulator.model import Model
from simulator.prices import PriceSeries, interval_of_step
from simulator.scenario import PriceConfig, load_scenario
from simulator.testing import simulate

START = "2025-07-14T12:00:00-05:00"
T0 = 1752512400
RED, BLUE = "5YJ3E1EA7KF000001", "5YJYGDEE1MF000002"
SITE = 1689500000123456


def scenario(*, vehicle: dict | None = None, events: list | None = None, **extra: object) -> dict:
    data = {
        "start": START,
        "site": {"energy_site_id": SITE},
        "chargers": [{"name": "garage", "serial": "PGT00000000001"}],
        "vehicles": [{"vin": RED, "name": "red", "soc": 40, "charge_limit": 90, **(vehicle or {})}],
        "events": events if events is not None else [{"at": "5m", "vehicle": "red", "plug_in": "garage"}],
        "prices": {"history_days": 2},
    }
    data.update(extra)
    return data


def model_for(data: dict) -> tuple[Model, ManualClock]:
    scn = load_scenario(data)
    clock = ManualClock(scn.start)  # type: ignore[arg-type]
    return Model(scn, clock), clock


# --- clocks ---------------------------------------------------------------------------------------


def test_real_clock_speed_and_offset() -> None:
    ticks = iter([100.0, 110.0, 110.0])
    clock = RealClock(origin=1000.0, speed=60.0, monotonic=lambda: next(ticks))
    assert clock.now() == 1000.0 + 10 * 60
    clock.advance(5)
    assert clock.now() == 1000.0 + 600 + 5
    with pytest.raises(ValueError):
        clock.advance(-1)


# --- energy and cost truth --------------------------------------------------------------------------


async def test_constant_power_energy_and_interval_ending_cost() -> None:
    async with simulate(scenarios.path("constant")) as h:
        h.advance(3 * 3600)
        _, truth = await h.get_json("/sim/truth", params={"prices_from": T0 - 3600, "prices_to": T0 + 3 * 3600})
    (session,) = truth["sessions"]
    plug = T0 + 300
    assert (session["plug_in"], session["unplug"]) == (plug, plug + 3600)
    assert (session["first_power"], session["last_power"]) == (plug, plug + 3600)
    assert session["energy_wh"] == 11500.0  # 11.5 kW x exactly 1 h, exact
    assert session["intervals"] == [{"start": plug, "end": plug + 3600, "energy_wh": 11500.0}]
    price = {p["t"]: p["price"] for p in truth["prices"]}
    # a price stamped T covers (T - 300, T]: the hour [plug, plug + 3600) uses T = plug + 300 ... plug + 3600
    ending = sum(11.5 / 12 * price[plug + 300 * k] for k in range(1, 13))
    starting = sum(11.5 / 12 * price[plug + 300 * k] for k in range(0, 12))
    assert price[plug] != price[plug + 3600]  # the conventions differ for this data
    assert session["supply_cost_cents"] == pytest.approx(ending, rel=1e-12)
    assert session["supply_cost_cents"] != pytest.approx(starting, rel=1e-6)
    assert price[T0 + 35 * 60] == price[T0 + 40 * 60] == 15.0  # the scenario spike (30m, 40m]
    assert price[T0 + 30 * 60] != 15.0 and price[T0 + 45 * 60] != 15.0


def test_energy_equals_sum_of_per_step_power_through_ramp_taper_and_dip() -> None:
    model, clock = model_for(scenario(
        vehicle={"soc": 86.0, "battery_kwh": 10, "ramp": "30s", "taper_pct": 3},
        events=[{"at": "5s", "vehicle": "red", "plug_in": "garage"},
                {"at": "100s", "charger": "garage", "dip": {"duration": "20s", "power_kw": 2.0}}]))
    powers = []
    for _ in range(3600):
        model.sync()
        powers.append(model.current_power("garage"))
        clock.advance(1)
    model.sync()
    (session,) = model.truth.sessions
    assert session.energy_wh == pytest.approx(math.fsum(powers) / 3600, rel=1e-12)
    assert powers[5] == pytest.approx(11500 / 30)  # linear ramp, first step
    assert powers[34] == pytest.approx(11500)
    assert powers[100:120] == [2000.0] * 20  # dip forces the level without ending the session
    positive = [p for p in powers if p > 0]
    assert 1000 <= positive[-2] < 1100 and positive[-1] < 1100 and powers[-1] == 0.0  # tapered to ~1 kW, done
    vehicle = model.vehicles[RED]
    assert vehicle.charging_state == "Complete" and vehicle.soc == pytest.approx(90)
    assert vehicle.soc - 86 == pytest.approx(session.energy_wh * 0.92 / 10000 * 100)
    assert len(model.truth.sessions) == 1 and session.unplug is None


def test_clock_jump_steps_through_skipped_time() -> None:
    stepped, clock_a = model_for(scenario(vehicle={"soc": 60, "battery_kwh": 20}))
    jumped, clock_b = model_for(scenario(vehicle={"soc": 60, "battery_kwh": 20}))
    for _ in range(300):
        clock_a.advance(13)
        stepped.sync()
    clock_b.advance(3900)
    jumped.sync()
    assert stepped.truth.sessions[0].energy_wh == jumped.truth.sessions[0].energy_wh > 0
    assert stepped.vehicles[RED].soc == jumped.vehicles[RED].soc


def test_power_sharing_splits_the_group_limit() -> None:
    data = scenario(events=[{"at": "1m", "vehicle": "red", "plug_in": "garage"},
                            {"at": "1m", "vehicle": "blue", "plug_in": "driveway"}])
    data["chargers"] = [{"name": "garage", "role": "leader", "sharing_max_current_a": 48},
                        {"name": "driveway", "role": "follower", "leader": "garage"}]
    data["vehicles"].append({"vin": BLUE, "name": "blue", "soc": 30, "ramp": 0})
    data["vehicles"][0]["ramp"] = 0
    model, clock = model_for(data)
    clock.advance(600)
    model.sync()
    assert model.current_power("garage") == model.current_power("driveway") == 24 * 240


def test_lifetime_counters_and_energy_update_at_session_end() -> None:
    model, clock = model_for(scenario(
        vehicle={"ramp": 0}, events=[{"at": "1m", "vehicle": "red", "plug_in": "garage"},
                                     {"at": "31m", "vehicle": "red", "unplug": True}]))
    before = model.charger_snapshot("garage").lifetime
    clock.advance(20 * 60)
    model.sync()
    during = model.charger_snapshot("garage").lifetime
    clock.advance(20 * 60)
    model.sync()
    after = model.charger_snapshot("garage").lifetime
    assert during.connector_cycles == before.connector_cycles + 1
    assert during.charge_starts == before.charge_starts + 1
    assert during.contactor_cycles == before.contactor_cycles + 1
    assert during.energy_wh == before.energy_wh  # quirk: only updated when the session ends
    assert after.energy_wh == before.energy_wh + 5750
    assert after.contactor_cycles_loaded == before.contactor_cycles_loaded + 1  # unplugged under load
    assert after.charging_time_s == before.charging_time_s + 1800


def test_lifetime_energy_live_mode() -> None:
    data = scenario(vehicle={"ramp": 0}, events=[{"at": "1m", "vehicle": "red", "plug_in": "garage"}])
    data["chargers"][0]["lifetime_energy"] = "live"
    model, clock = model_for(data)
    base = model.charger_snapshot("garage").lifetime.energy_wh
    clock.advance(60 + 1800)
    model.sync()
    assert model.charger_snapshot("garage").lifetime.energy_wh == base + 5750


def test_temperatures_rise_with_power_and_can_be_forced() -> None:
    model, clock = model_for(scenario(events=[
        {"at": "1m", "vehicle": "red", "plug_in": "garage"},
        {"at": "2h", "charger": "garage", "temperature": {"handle_c": 65, "duration": "20m"}}]))
    idle = model.charger_snapshot("garage").handle_c
    clock.advance(3600)
    model.sync()
    warm = model.charger_snapshot("garage").handle_c
    clock.advance(3600 + 60)
    model.sync()
    forced = model.charger_snapshot("garage").handle_c
    clock.advance(30 * 60)
    model.sync()
    assert idle < warm < 60
    assert forced == 65
    assert model.charger_snapshot("garage").handle_c < 60


# --- sleep ---------------------------------------------------------------------------------------


async def test_sleeping_car_is_never_woken_by_reads() -> None:
    async with simulate(scenario(vehicle={"sleep_after": "10m"}, events=[])) as h:
        h.advance(11 * 60)
        _, status = await h.get_json(f"/{RED}/status")
        _, cached = await h.get_json(f"/{RED}/state?use_cache=true")
        h.advance(30 * 60)
        for path in (f"/{RED}/state", f"/{RED}/status", "/vehicles", "/api/1/products",
                     f"/api/1/energy_sites/{SITE}/live_status"):
            assert (await h.get_json(path))[0] == 200
        _, later = await h.get_json(f"/{RED}/state")
        _, live = await h.get_json(f"/{RED}/state?use_cache=false")
        _, products = await h.get_json("/api/1/products")
        _, still = await h.get_json(f"/{RED}/status")
        woke = await h.post_json(f"/{RED}/wake")
        _, awake = await h.get_json(f"/{RED}/state")
    assert status == {"status": "asleep"} and still == {"status": "asleep"}
    assert cached["state"] == "asleep" and later == cached  # frozen at the moment it fell asleep
    assert cached["charge_state"]["timestamp"] == (T0 + 600) * 1000
    assert live == {"state": "asleep"}
    assert products["response"][0]["state"] == "asleep"
    assert woke == (200, {"result": True})
    assert awake["state"] == "online" and awake["charge_state"]["timestamp"] == (T0 + 41 * 60) * 1000


async def test_commands_wake_the_car_and_charging_keeps_it_awake() -> None:
    async with simulate(scenario(vehicle={"sleep_after": "10m", "autostart": False})) as h:
        h.advance(20 * 60)
        _, asleep = await h.get_json(f"/{RED}/status")
        result = await h.post_json(f"/{RED}/command/start_charging")
        h.advance(2 * 3600)
        _, charging = await h.get_json(f"/{RED}/status")
    assert asleep == {"status": "asleep"}  # plugged in at 5m without charging, idle for 10 min
    assert result == (200, {"result": True})
    assert charging == {"status": "awake"}


async def test_stale_cache_while_charging_quirk() -> None:
    data = scenario(vehicle={"asleep": True}, quirks={"stale_cache_while_charging": True})
    async with simulate(data) as h:
        h.advance(3600)
        _, state = await h.get_json(f"/{RED}/state")
        _, live = await h.get_json(f"/api/1/energy_sites/{SITE}/live_status")
    assert state["state"] == "asleep"
    assert state["charge_state"]["charging_state"] == "Disconnected" and state["charge_state"]["charger_power"] == 0
    assert live["response"]["wall_connectors"][0]["wall_connector_power"] > 11000


# --- telemetry history -----------------------------------------------------------------------------


async def test_telemetry_history_appears_only_after_the_delay() -> None:
    data = scenario(vehicle={"ramp": 0}, events=[{"at": "5m", "vehicle": "red", "plug_in": "garage"},
                                                 {"at": "35m", "vehicle": "red", "unplug": True}],
                    telemetry={"delay": "2h", "meter_error": 0.02,
                               "history": [{"charger": "garage", "vehicle": "red", "start": "-2d",
                                            "duration": "1h", "energy_wh": 9000}]})
    url = (f"/api/1/energy_sites/{SITE}/telemetry_history?kind=charge&time_zone=America/Chicago"
           "&start_date=2025-07-14T00:00:00-05:00&end_date=2025-07-15T00:00:00-05:00")
    async with simulate(data) as h:
        h.advance(2 * 3600)
        _, early = await h.get_json(url)
        h.advance(40 * 60)
        _, late = await h.get_json(url)
        _, bare = await h.get_json(url.split("&start_date")[0] + "&start_date=2025-07-14&end_date=2025-07-14")
        _, older = await h.get_json(url.split("&start_date")[0] + "&start_date=2025-07-10&end_date=2025-07-13")
        missing = await h.get_json(url.split("&start_date")[0])
    assert early == {"response": None}
    (record,) = late["response"]["charge_history"]
    assert record == {"charge_start_time": {"seconds": T0 + 300}, "charge_duration": {"seconds": 1800},
                      "energy_added_wh": round(5750 * 1.02), "target_id": {"text": record["target_id"]["text"]},
                      "din": "1457768-02-G--PGT00000000001"}
    assert record["target_id"]["text"] != RED and len(record["target_id"]["text"]) == 36
    assert bare == late
    assert older["response"]["charge_history"][0]["energy_added_wh"] == 9000
    assert missing[0] == 400


async def test_empty_telemetry_history_can_be_an_empty_list() -> None:
    async with simulate(scenario(telemetry={"empty_as_null": False})) as h:
        _, body = await h.get_json(f"/api/1/energy_sites/{SITE}/telemetry_history?kind=charge"
                                   "&start_date=2025-07-14T00:00:00Z&end_date=2025-07-15T00:00:00Z")
    assert body == {"response": {"charge_history": []}}


# --- prices ----------------------------------------------------------------------------------------


def test_prices_are_deterministic_rounded_and_sometimes_negative_overnight() -> None:
    a = PriceSeries(PriceConfig(seed=1), T0, "America/Chicago")
    b = PriceSeries(PriceConfig(seed=1), T0, "America/Chicago")
    c = PriceSeries(PriceConfig(seed=2), T0, "America/Chicago")
    ends = range(T0 - 35 * 86400, T0, 300)
    series = [a.price(t) for t in ends]
    assert series == [b.price(t) for t in ends]
    assert series != [c.price(t) for t in ends]
    assert all(p == round(p, 1) for p in series)
    assert any(p < 0 for p in series) and max(series) > 4
    assert a.history_start == T0 - 35 * 86400
    assert a.published(T0 + 299, 0, T0 + 86400)[0][0] == T0  # never a future price


def test_interval_of_step_uses_the_interval_ending_convention() -> None:
    assert interval_of_step(T0) == T0 + 300
    assert interval_of_step(T0 + 299) == T0 + 300
    assert interval_of_step(T0 - 1) == T0


def test_explicit_price_list() -> None:
    model, _ = model_for(scenario(prices={"history_days": 1, "explicit": {"start": "-10m", "values": [1.0, 2.0, -0.5]}}))
    assert [model.prices.price(T0 + k * 300) for k in (-1, 0, 1)] == [1.0, 2.0, -0.5]


# --- control API -----------------------------------------------------------------------------------


async def test_control_clock_events_state_and_price_override() -> None:
    async with simulate(scenario(vehicle={"ramp": 0}, events=[])) as h:
        _, clock = await h.get_json("/sim/clock")
        assert clock["now"] == T0 and clock["origin"] == T0
        _, plugged = await h.post_json("/sim/events", {"vehicle": "red", "plug_in": "garage"})
        status, advanced = await h.post_json("/sim/clock", {"advance": 600})
        _, state = await h.get_json("/sim/state")
        _, override = await h.post_json("/sim/events", {"price": {"price": 42.0, "duration": "10m"}})
        _, feed = await h.get_json("/api?type=5minutefeed", auth=False)
        h.advance(600)
        _, feed_after = await h.get_json("/api?type=5minutefeed", auth=False)
        _, unplugged = await h.post_json("/sim/events", {"vehicle": "red", "unplug": True})
        _, truth = await h.get_json("/sim/truth")
        bad_event = await h.post_json("/sim/events", {"at": "1m", "vehicle": "red", "unplug": True})
        bad_clock = await h.post_json("/sim/clock", {"advance": -5})
    assert plugged["applied"] and plugged["t"] == T0
    assert status == 200 and advanced["now"] == T0 + 600 and advanced["model_time"] == T0 + 600
    assert state["chargers"]["garage"]["power_w"] == 11500 and state["vehicles"][RED]["charging_state"] == "Charging"
    assert override["applied"]
    assert feed[0]["price"] != "42.0"  # the current interval ends in the future: not published yet
    assert [e["price"] for e in feed_after[:2]] == ["42.0", "42.0"]
    assert unplugged["applied"]
    (session,) = truth["sessions"]
    assert session["energy_wh"] == 11500 * 1200 / 3600
    price = {p["t"]: p["price"] for p in truth["prices"]}
    expected = sum(11500 * 300 / 3.6e6 * price[T0 + 300 * k] for k in range(1, 5))
    assert session["supply_cost_cents"] == pytest.approx(expected)
    assert bad_event[0] == 400 and bad_event[1]["error"].startswith("event.at: not allowed")
    assert bad_clock[0] == 400


async def test_alert_event_sets_current_alerts_and_fleet_fault_state() -> None:
    events = [{"at": "1m", "charger": "garage", "alert": {"codes": [27], "fault_state": 8, "duration": "5m"}}]
    async with simulate(scenario(events=events)) as h:
        h.advance(120)
        _, vitals = await h.get_json(h.charger_urls["garage"] + "/api/1/vitals", auth=False)
        _, live = await h.get_json(f"/api/1/energy_sites/{SITE}/live_status")
        h.advance(600)
        _, cleared = await h.get_json(h.charger_urls["garage"] + "/api/1/vitals", auth=False)
        _, lifetime = await h.get_json(h.charger_urls["garage"] + "/api/1/lifetime", auth=False)
    assert vitals["current_alerts"] == [27] and cleared["current_alerts"] == []
    assert live["response"]["wall_connectors"][0]["wall_connector_fault_state"] == 8
    assert lifetime["alert_count"] == 121


def test_demo_story_runs_end_to_end() -> None:
    demo = load_scenario(scenarios.path("demo"))
    clock = ManualClock(T0)
    model = Model(demo, clock)
    peak = 0.0
    for _ in range(9 * 12):
        clock.advance(300)
        model.sync()
        peak = max(peak, model.current_power("garage"))
    sessions = model.truth.sessions
    assert [s.charger for s in sessions] == ["garage", "driveway", "garage", "garage"]
    assert all(s.unplug is not None for s in sessions)
    assert peak == pytest.approx(11500)
    assert sessions[0].unplug - T0 == 12 * 60 and sessions[0].energy_wh > 1500   # done within a quarter hour
    assert len(sessions[1].intervals) == 2  # paused by its owner
    assert sessions[3].energy_wh == 0  # plugged in at its limit: a zero-energy record, as seen in real data
    assert model.prices.price(T0 + 10 * 60) == 40.0   # the spike, while both cars charge
    records = model.charge_records()
    assert len(records) == 7 and [r.energy_wh for r in records[:3]] == [21508, 18870, 9650]
    # the cars' own charge history: every home session that charged, and the Model Y's Supercharger stop
    charges = model.truth.vehicle_charges
    assert [(c.location, c.supercharger) for c in charges] == [
        ("Home", False), ("Tesla Supercharger, Naperville, IL", True), ("Home", False), ("Home", False)]
    assert [c.session_index for c in charges] == [0, None, 1, 2]
