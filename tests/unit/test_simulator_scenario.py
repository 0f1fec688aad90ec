"""Scenario loading: bundled files, durations, and one-line validation errors naming the key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from simulator import scenarios
from simulator.scenario import Scenario, ScenarioError, load_scenario
from simulator.schema import parse_duration

BASE = {
    "start": "2025-07-14T12:00:00-05:00",
    "chargers": [{"name": "garage"}],
    "vehicles": [{"vin": "5YJ3E1EA7KF000001", "name": "red"}],
}


def with_changes(**changes: object) -> dict:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


@pytest.mark.parametrize("name", ["demo", "constant", "outage"])
def test_bundled_scenarios_load(name: str) -> None:
    scenario = load_scenario(scenarios.path(name))
    assert isinstance(scenario, Scenario)
    assert scenario.chargers


def test_demo_has_power_sharing_and_a_price_spike() -> None:
    demo = load_scenario(scenarios.path("demo"))
    roles = {c.name: c.role for c in demo.chargers}
    assert roles == {"garage": "leader", "driveway": "follower"}
    assert [c.name for c in demo.chargers if c.reachable] == ["garage"]
    assert len(demo.vehicles) == 2 and demo.prices.overrides
    assert {e.kind for e in demo.events} >= {"plug_in", "unplug", "dip"}


def test_unknown_bundled_scenario_names_the_choices() -> None:
    with pytest.raises(FileNotFoundError, match="demo"):
        scenarios.path("nope")


@pytest.mark.parametrize("text, seconds", [
    (90, 90.0), ("90", 90.0), ("90s", 90.0), ("10m", 600.0), ("2h", 7200.0), ("1d", 86400.0),
    ("2h30m", 9000.0), ("1.5h", 5400.0), ("250ms", 0.25),
])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text, "x") == seconds


def test_negative_durations_only_where_signed() -> None:
    assert parse_duration("-2d", "x", signed=True) == -172800.0
    with pytest.raises(ScenarioError, match=r"^x: got negative"):
        parse_duration("-2d", "x")


def test_defaults_and_derived_identity() -> None:
    scenario = load_scenario(BASE)
    charger, vehicle = scenario.chargers[0], scenario.vehicles[0]
    assert charger.din == f"{charger.part_number}--{charger.serial}"
    assert charger.role == "standalone" and charger.max_current_a == 48 and charger.grid_v == 240
    assert vehicle.target_id != vehicle.vin and len(vehicle.target_id) == 36
    assert vehicle.efficiency == 0.92 and vehicle.sleep_after_s == 600
    assert scenario.telemetry.delay_s == 6 * 3600 and scenario.telemetry.meter_error == 0.0
    assert scenario.prices.history_days == 35


@pytest.mark.parametrize("data, message", [
    (with_changes(colour="red"), "colour: unknown key; use one of"),
    (with_changes(chargers=[{"name": "g", "wirring": "split_phase"}]), "chargers[0].wirring: unknown key"),
    (with_changes(chargers=[{"name": "g", "wiring": "single"}]), "chargers[0].wiring: got 'single'; use one of split_phase, three_phase"),
    (with_changes(chargers=[{"serial": "X"}]), "chargers[0].name: missing; add this required key"),
    (with_changes(chargers=[]), "chargers: missing or empty"),
    (with_changes(chargers=[{"name": "f", "role": "follower"}]), "chargers[0].leader: missing for a follower"),
    (with_changes(chargers=[{"name": "a"}, {"name": "a"}]), "chargers[1].name: duplicate 'a'"),
    (with_changes(vehicles=[{"vin": "SHORT"}]), "vehicles[0].vin: 'SHORT' is not 17 characters"),
    (with_changes(vehicles=[{"vin": "5YJ3E1EA7KF000001", "soc": "half"}]), "vehicles[0].soc: got 'half'; use a number"),
    (with_changes(vehicles=[{"vin": "5YJ3E1EA7KF000001", "charge_limit": 120}]), "vehicles[0].charge_limit: got 120; use a value <= 100"),
    (with_changes(vehicles=[{"vin": "5YJ3E1EA7KF000001", "sleep_after": "10 minutes"}]), "vehicles[0].sleep_after: got '10 minutes'"),
    (with_changes(events=[{"at": "1m", "vehicle": "blue", "plug_in": "garage"}]), "events[0].vehicle: unknown vehicle 'blue'"),
    (with_changes(events=[{"at": "1m", "vehicle": "red", "plug_in": "shed"}]), "events[0].plug_in: unknown charger 'shed'"),
    (with_changes(events=[{"vehicle": "red", "unplug": True}]), "events[0].at: missing"),
    (with_changes(events=[{"at": 5, "vehicle": "red"}]), "events[0]: found no event kind"),
    (with_changes(events=[{"at": 5, "charger": "garage", "dip": {"power_kw": 2}}]), "events[0].dip.duration: missing"),
    (with_changes(faults=[{"target": "charger:garage", "kind": "hang"}]), "faults[0].target: got 'charger:garage'"),
    (with_changes(faults=[{"target": "wall_connector:shed", "kind": "hang"}]), "faults[0].target: unknown charger 'shed'"),
    (with_changes(faults=[{"target": "tessie", "kind": "explode"}]), "faults[0].kind: got 'explode'; use one of hang"),
    (with_changes(faults=[{"target": "tessie", "kind": "status"}]), "faults[0].status: missing"),
    (with_changes(faults=[{"target": "tessie", "kind": "hang", "size_mb": 3}]), "faults[0].size_mb: unknown key"),
    (with_changes(prices={"spikes": [{"from": "2h", "to": "1h", "price": 9}]}), "prices.spikes[0].to: not after from"),
    (with_changes(site={"time_zone": "Mars/Olympus"}), "site.time_zone: unknown time zone 'Mars/Olympus'"),
    (with_changes(start="2025-07-14T12:00:00"), "start: got '2025-07-14T12:00:00' without a UTC offset"),
    (with_changes(telemetry={"delay": "soon"}), "telemetry.delay: got 'soon'"),
])
def test_validation_errors_are_one_line_and_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(data)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(message), text
    assert "; " in text  # says how to fix it


def test_scenario_error_is_a_value_error() -> None:
    assert issubclass(ScenarioError, ValueError)


def test_yaml_file_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("chargers: [\n  {name: a\n")
    with pytest.raises(ScenarioError, match=r"bad\.yaml: invalid YAML at line \d+") as info:
        load_scenario(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")


def test_events_are_sorted_and_resolve_vehicle_names_to_vins() -> None:
    scenario = load_scenario(with_changes(events=[
        {"at": "2h", "vehicle": "red", "unplug": True},
        {"at": "1m", "vehicle": "5YJ3E1EA7KF000001", "plug_in": "garage"},
    ]))
    assert [e.kind for e in scenario.events] == ["plug_in", "unplug"]
    assert {e.vehicle for e in scenario.events} == {"5YJ3E1EA7KF000001"}
