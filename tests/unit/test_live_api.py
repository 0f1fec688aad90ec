"""The live API's pure middle: one Prometheus answer becomes the cars' state, the units' links and the
prices; a car's change becomes one WebSocket event naming what changed; a unit's state is what the session
state machine sees; whatever is missing is null with its reason."""
from __future__ import annotations

from servicekit.config import load
from servicekit.poller import Health
from session_store.live import parse, vehicle_events, vehicle_states, vehicles_now
from session_store.live_api import chargers_json, prices_json, unit_state, vehicle_errors
from session_store.smart_charging import Market
from session_store.views import OpenSessionView, SessionsView, SmartChargingView

NOW = 1_790_000_000.0
BLUE, RED = "5YJ3E1EA7KF000001", "5YJYGDEE5PF000002"
DIN = "1457768-02-G--PGT00000000007"


def sample(name: str, value: float | str, **labels: str) -> dict:
    return {"metric": {"__name__": name, "job": "vehicle", "instance": "127.0.0.1:9883", **labels},
            "value": [NOW, str(value)]}


def answer(blue_battery: float = 61, blue_state: int = 3, blue_unit: bool = True) -> list[dict]:
    """What Prometheus answers LIVE_QUERY with: two cars (Blue charging at the garage, Red asleep), Blue's
    series from an earlier exporter address still within the window, the units' links and the prices."""
    def car(name: str, value: float, vin: str, vehicle: str, **extra: str) -> dict:
        return sample(name, value, vin=vin, vehicle=vehicle, **extra)
    rows = [car("tesla_vehicle_battery_level_percent", blue_battery, BLUE, "Blue"),
            car("tesla_vehicle_charging_state_code", blue_state, BLUE, "Blue"),
            car("tesla_vehicle_connectivity_code", 2, BLUE, "Blue"),
            car("tesla_vehicle_charge_limit_percent", 90, BLUE, "Blue"),
            car("tesla_vehicle_data_timestamp_seconds", NOW - 20, BLUE, "Blue"),
            car("tesla_vehicle_battery_level_percent", 12, BLUE, "Blue", instance="127.0.0.1:1"),
            car("tesla_vehicle_data_timestamp_seconds", NOW - 90000, BLUE, "Blue", instance="127.0.0.1:1"),
            car("tesla_vehicle_battery_level_percent", 80, RED, "Red"),
            car("tesla_vehicle_charging_state_code", 0, RED, "Red"),
            car("tesla_vehicle_connectivity_code", 1, RED, "Red"),
            car("tesla_vehicle_data_timestamp_seconds", NOW - 3600, RED, "Red"),
            sample("tesla_vehicle_up", 1, target="Blue"), sample("tesla_vehicle_up", 0, target="Red"),
            sample("tesla_wall_connector_vehicle_connected", 1 if blue_unit else 0, unit="garage", din=DIN),
            sample("tesla_wall_connector_vehicle_connected", 0, unit="driveway", din="1457768-01-G--PGT1"),
            sample("twc_vehicle_connected", 0, charger="garage"),
            sample("electricity_price_cents_per_kwh", 3.2, provider="comed"),
            sample("electricity_price_hour_average_cents_per_kwh", "NaN", provider="comed"),
            sample("electricity_price_hour_projected_cents_per_kwh", 3.45, provider="comed"),
            sample("electricity_price_forecast_start_timestamp_seconds", NOW - 600, provider="comed"),
            sample("electricity_price_forecast_day_ahead_prices", 2, provider="comed"),
            sample("electricity_price_up", 1, target="comed")]
    if blue_unit:
        rows.append(sample("tesla_wall_connector_vehicle_info", 1, unit="garage", din=DIN, vin=BLUE, vehicle="Blue"))
    rows += [sample("electricity_price_forecast_cents_per_kwh", cents, provider="comed", hours_ahead=str(hour))
             for hour, cents in ((0, 3.0), (1, 4.0), (2, 2.5), (4, 9.0))]   # hour 3 missing: the forecast stops
    return rows


def test_one_answer_becomes_each_cars_state_the_links_and_the_prices() -> None:
    view = parse(answer(), NOW)
    states = vehicle_states(view, {RED: "Red car"})
    blue, red = states[BLUE], states[RED]
    assert blue == {"vin": BLUE, "vehicle": "Blue", "battery_level": 61.0, "charging_state": "Charging",
                    "connectivity": "online", "charge_limit": 90.0, "data_at": NOW - 20, "plugged_in": True,
                    "unit": "garage"}, "the exporter address with the newest data wins"
    assert red["vehicle"] == "Red car" and red["connectivity"] == "asleep" and red["charging_state"] == "Disconnected"
    assert red["plugged_in"] is False and red["unit"] is None and red["charge_limit"] is None
    assert {(link.unit, link.source, link.connected) for link in view.links} == {
        ("garage", "live_status", True), ("driveway", "live_status", False), ("garage", "local", False)}
    prices = view.prices
    assert (prices.five_minute, prices.hour_average, prices.hour_projected) == (3.2, None, 3.45)
    assert prices.forecast == (3.0, 4.0, 2.5) and prices.day_ahead == 2
    assert vehicle_errors(view, Health(up=True)) == [
        "vehicle-exporter target Red: its last poll failed or its data is stale (tesla_vehicle_up 0): values "
        "are the last known, see data_age_s"]
    assert [v["data_age_s"] for v in vehicles_now(view, {})] == [20.0, 3600.0]


def test_a_vehicle_event_names_what_changed_and_only_when_something_did() -> None:
    first = parse(answer(), NOW)
    events = vehicle_events(None, first, {})
    assert [(e["vin"], e["changed"]) for e in events] == [
        (BLUE, ["battery_level", "charging_state", "connectivity", "plugged_in", "unit"]),
        (RED, ["battery_level", "charging_state", "connectivity"])], "the first read: everything known"
    assert vehicle_events(first, parse(answer(), NOW + 15), {}) == [], "nothing changed, no event"
    charged = parse(answer(blue_battery=62), NOW + 30)
    [event] = vehicle_events(first, charged, {})
    assert event == {"type": "vehicle", "t": NOW + 30, "changed": ["battery_level"], "vin": BLUE, "vehicle": "Blue",
                     "battery_level": 62.0, "charging_state": "Charging", "connectivity": "online",
                     "charge_limit": 90.0, "plugged_in": True, "unit": "garage", "data_age_s": 50.0}
    unplugged = parse(answer(blue_battery=62, blue_state=0, blue_unit=False), NOW + 45)
    [event] = vehicle_events(charged, unplugged, {})
    assert event["changed"] == ["charging_state", "plugged_in", "unit"] and event["plugged_in"] is False


def test_each_unit_is_charging_plugged_in_idle_or_unknown_as_the_state_machine_sees_it() -> None:
    open_ = OpenSessionView(key=DIN, unit="garage", start=NOW - 1800, vin=BLUE, vehicle="Blue", energy_wh=5400.0,
                            peak_w=11500.0, power_w=11000.0, estimated_cost=0.6123456789,
                            estimated_supply_cost=0.2, estimated_delivery_cost=0.41)
    sessions = SessionsView(evaluated_at=NOW, watermark=NOW, units=frozenset({"garage", "driveway", "shed", "barn"}),
                            in_progress=(open_,), power=(("garage", NOW - 5, 11000.0), ("driveway", NOW - 5, 0.0),
                                                         ("shed", NOW - 3600, 0.0)))
    rows = {row["unit"]: row for row in chargers_json(sessions, parse(answer(), NOW), "live_status", {}, 100.0,
                                                      300.0, NOW)}
    assert list(rows) == ["barn", "driveway", "garage", "shed"], "configured and idle units too, by name"
    assert rows["garage"] == {"unit": "garage", "din": DIN, "state": "charging", "power_w": 11000.0, "vin": BLUE,
                              "vehicle": "Blue", "session": {"start": NOW - 1800, "duration_s": 1800.0,
                                                             "energy_wh": 5400.0, "cost": 0.612346}}
    assert rows["driveway"]["state"] == "idle" and rows["driveway"]["session"] is None
    assert rows["shed"]["state"] == "unknown" and rows["shed"]["power_w"] is None, "an hour-old sample is no state"
    assert rows["barn"]["state"] == "unknown"
    assert unit_state(20.0, True, None, 100.0) == "plugged_in", "a session in its grace period"
    assert unit_state(0.0, False, True, 100.0) == "plugged_in" and unit_state(0.0, False, None, 100.0) == "idle"


def test_missing_prices_are_null_with_their_reason() -> None:
    config = load({}, {}, {})
    market = Market(3.45, 30.0, 8.1, 5.2, 30.0, price_rank=40.0)
    smart = SmartChargingView(dry_run=True, signal="billed", evaluated_at=NOW, market=market)
    answer_ = prices_json(parse(answer(), NOW), Health(up=True), smart, config, NOW)
    assert answer_["price_5m_cents"] == 3.2 and answer_["projected_hour_cents"] == 3.45
    assert answer_["hour_average_cents"] is None
    assert answer_["errors"] == ["no electricity_price_hour_average_cents_per_kwh in Prometheus: the provider's "
                                 "current-hour average is unavailable"]
    assert answer_["thresholds"] == {"stop_cents": 8.1, "resume_cents": 5.2}
    assert answer_["percentiles"] == {"stop": 90, "resume": 75, "lookback_days": 30, "signal": "billed",
                                      "price_rank": 40.0}
    assert answer_["forecast"] == [{"start": NOW - 600, "cents": 3.0, "source": "day_ahead"},
                                   {"start": NOW + 3000, "cents": 4.0, "source": "day_ahead"},
                                   {"start": NOW + 6600, "cents": 2.5, "source": "profile"}]
    down = Health(up=False, failures=3, last_outcome="unreachable")
    nothing = prices_json(None, down, None, config, NOW)
    assert {k: nothing[k] for k in ("price_5m_cents", "percentiles", "thresholds", "forecast")} == dict.fromkeys(
        ("price_5m_cents", "percentiles", "thresholds", "forecast"))
    assert nothing["errors"] == ["Prometheus unreachable (unreachable): prices as of the last good read, never",
                                 "smart charging is off (smart_charging.enabled): no percentiles or thresholds"]
