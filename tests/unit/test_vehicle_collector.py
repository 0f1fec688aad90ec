"""Vehicle collector: recorded Tessie `/{vin}/state` payloads in, exposition text out (golden), plus the quirks."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from testkit.exposition import parse
from testkit.golden import check_golden, promtool_problems, render
from prometheus_client import CollectorRegistry, generate_latest

from servicekit.location import Home
from upstreams.tessie import METERS_PER_MILE, Tessie, VehicleNames, parse_vehicle_list, parse_vehicle_state
from servicekit.config import Secret
from servicekit.errors import BadPayload
from servicekit.upstream import Upstream, UpstreamMetrics, decode_json
from exporters.vehicle import make_collect, target_name

FIXTURES = Path(__file__).parent / "fixtures" / "tessie"
GOLDEN = Path(__file__).parent / "golden" / "vehicle.txt"

NAMES = {"5YJ3E1EA7KF000001": "Blue"}  # VEHICLE_NAMES; the others fall back to Tessie's names, then the VIN
STATES = {  # fixture -> the VIN the poller asked for
    "state_online_charging.json": "5YJ3E1EA7KF000001",
    "state_asleep_cached.json": "7SAYGDEE1PA000002",
    "state_missing_and_wrong_types.json": "5YJSA1E26MF000003",
    "state_offline_minimal.json": "5YJYGDEE5LF000004",
    "state_asleep_live.json": "5YJ3E1EA7KF000005",
    "state_supercharging.json": "5YJ3E1EA7KF000006",
}
# 0.0009 degrees (100.1 m) due south of Blue's position (41.8781, -87.6298): see test_vehicle_location (servicekit.location)
HOME = Home(41.8772, -87.6298, 150.0)


def body(name: str):
    return decode_json((FIXTURES / name).read_bytes(), name)


def state(name: str):
    return parse_vehicle_state(body(name), STATES[name])


def learned(configured: dict[str, str] = NAMES, *records) -> VehicleNames:
    """Names as the exporter has them once Tessie's vehicle list (here: these states) was read."""
    names = VehicleNames(configured)
    names.learn(records or [state(name) for name in STATES])
    return names


def vehicle_name(configured: dict[str, str], record) -> str:
    return learned(configured, record).name(record.vin)


def sample_data() -> dict:
    """Keyed by target name exactly as the exporter names its targets."""
    names, data = learned(), {}
    for name in STATES:
        record = state(name)
        data[target_name(names, record.vin, data)] = {"state": record}
    return data


def exposition(data: dict, names: VehicleNames | None = None, home: Home | None = HOME) -> str:
    return render(lambda: make_collect(names or learned(), home)(data))


BLUE = '{vehicle="Blue",vin="5YJ3E1EA7KF000001"}'
RED = '{vehicle="Red",vin="7SAYGDEE1PA000002"}'
GRAY = '{vehicle="Gray",vin="5YJSA1E26MF000003"}'
GREEN = '{vehicle="Green",vin="5YJ3E1EA7KF000006"}'


def test_exposition_matches_golden() -> None:
    check_golden(GOLDEN, exposition(sample_data()))


def test_promtool_check_metrics_is_clean() -> None:
    assert promtool_problems(exposition(sample_data())) == ""


def test_miles_converted_to_metres() -> None:
    found = parse(exposition(sample_data()))
    assert found[f"tesla_vehicle_battery_range_meters{BLUE}"] == pytest.approx(192.45 * 1609.344)
    assert found[f"tesla_vehicle_estimated_battery_range_meters{BLUE}"] == pytest.approx(171.04 * 1609.344)
    assert found[f"tesla_vehicle_odometer_meters{BLUE}"] == pytest.approx(40512.913 * 1609.344)
    assert METERS_PER_MILE == 1609.344


def test_kilowatts_kilowatt_hours_and_hours_converted_to_base_units() -> None:
    found = parse(exposition(sample_data()))
    assert found[f"tesla_vehicle_charger_power_watts{BLUE}"] == 7000.0
    assert found[f"tesla_vehicle_charge_energy_added_joules{BLUE}"] == pytest.approx(18.47 * 3.6e6)
    assert found[f"tesla_vehicle_time_to_full_charge_seconds{BLUE}"] == 4500.0
    assert found[f"tesla_vehicle_data_timestamp_seconds{BLUE}"] == pytest.approx(1752546211.461)  # ms -> s


def test_unknown_charging_state_exported_as_minus_one_with_state_unknown() -> None:
    found = parse(exposition(sample_data()))
    assert found[f"tesla_vehicle_charging_state_code{GRAY}"] == -1.0  # "Waiting" is not a known state
    assert found['tesla_vehicle_charging_state{state="unknown",vehicle="Gray",vin="5YJSA1E26MF000003"}'] == 1.0
    assert found['tesla_vehicle_charging_state{state="Charging",vehicle="Gray",vin="5YJSA1E26MF000003"}'] == 0.0
    assert found[f"tesla_vehicle_charging_state_code{BLUE}"] == 3.0


def test_unknown_connectivity_exported_as_minus_one_with_state_unknown() -> None:
    found = parse(exposition(sample_data()))
    assert found[f"tesla_vehicle_connectivity_code{GRAY}"] == -1.0  # "driving"
    assert found['tesla_vehicle_connectivity{state="unknown",vehicle="Gray",vin="5YJSA1E26MF000003"}'] == 1.0


def test_vin_mapped_to_configured_vehicle_name() -> None:
    assert vehicle_name(NAMES, state("state_online_charging.json")) == "Blue"
    assert vehicle_name({"7SAYGDEE1PA000002": "Garage Y"}, state("state_asleep_cached.json")) == "Garage Y"


def test_unconfigured_vehicle_named_by_display_name_then_vehicle_name_then_vin() -> None:
    assert vehicle_name({}, state("state_missing_and_wrong_types.json")) == "Gray"
    assert vehicle_name({}, state("state_asleep_cached.json")) == "Red"  # display_name "" while asleep
    assert vehicle_name({}, state("state_offline_minimal.json")) == "5YJYGDEE5LF000004"


def test_asleep_car_keeps_its_cached_values_stamped_when_it_fell_asleep() -> None:
    found = parse(exposition(sample_data()))
    assert found[f"tesla_vehicle_connectivity_code{RED}"] == 1.0
    assert found[f"tesla_vehicle_battery_level_percent{RED}"] == 81.0
    assert found[f"tesla_vehicle_data_timestamp_seconds{RED}"] == pytest.approx(1752521407.032)
    assert found[f"tesla_vehicle_data_timestamp_seconds{BLUE}"] - found[
        f"tesla_vehicle_data_timestamp_seconds{RED}"] > 6 * 3600


def test_invalid_cable_means_no_cable_info() -> None:
    text = exposition(sample_data())
    assert 'tesla_vehicle_charge_cable_info{cable="SAE",vehicle="Blue"' in text
    assert "<invalid>" not in text
    assert not [line for line in text.splitlines()
                if line.startswith("tesla_vehicle_charge_cable_info") and 'vehicle="Red"' in line]
    assert state("state_asleep_cached.json").cable is None


def test_null_temperatures_yield_no_sample() -> None:
    text = exposition(sample_data())
    assert 'tesla_vehicle_temperature_celsius{location="inside",vehicle="Blue",vin="5YJ3E1EA7KF000001"} 24.6' in text
    assert 'tesla_vehicle_temperature_celsius{location="inside",vehicle="Red"' not in text


def test_missing_sub_objects_yield_no_samples_for_their_fields() -> None:
    # Gray: climate_state null, vehicle_state a string, drive_state absent.
    text = exposition(sample_data())
    for name in ("tesla_vehicle_temperature_celsius", "tesla_vehicle_odometer_meters", "tesla_vehicle_software_info",
                 "tesla_vehicle_locked", "tesla_vehicle_sentry_mode"):
        assert not [line for line in text.splitlines() if line.startswith(name) and 'vehicle="Gray"' in line], name


def test_wrongly_typed_fields_are_absent_not_zero() -> None:
    found = parse(exposition(sample_data()))
    for name in ("tesla_vehicle_battery_level_percent",          # "62"
                 "tesla_vehicle_battery_range_meters",           # null
                 "tesla_vehicle_estimated_battery_range_meters",  # "150.2"
                 "tesla_vehicle_charge_limit_percent",            # true
                 "tesla_vehicle_charger_power_watts",             # "7"
                 "tesla_vehicle_charger_voltage_volts",           # {"value": 240}
                 "tesla_vehicle_charge_energy_added_joules",      # NaN
                 "tesla_vehicle_time_to_full_charge_seconds",     # "1.5"
                 "tesla_vehicle_charge_port_door_open",           # "true"
                 "tesla_vehicle_data_timestamp_seconds"):         # "1752546211461"
        assert f"{name}{GRAY}" not in found, name
    assert found[f"tesla_vehicle_usable_battery_level_percent{GRAY}"] == 58.0
    assert found[f"tesla_vehicle_charger_current_amperes{GRAY}"] == 16.0


def test_timestamp_falls_back_to_the_newest_sub_object_when_charge_state_has_none() -> None:
    assert state("state_offline_minimal.json").data_timestamp == 1752460000.0


def test_live_asleep_answer_yields_only_connectivity_under_the_requested_vin() -> None:
    text = exposition(sample_data())
    lines = [line for line in text.splitlines() if 'vin="5YJ3E1EA7KF000005"' in line]
    assert lines and all(line.startswith("tesla_vehicle_connectivity") for line in lines)


# --- the fields of issue 17 (values converted by hand) ---------------------------------------------

def test_charging_details_in_base_units() -> None:
    found = parse(exposition(sample_data()))
    assert found[f"tesla_vehicle_charge_amps_setting_amperes{BLUE}"] == 32.0
    assert found[f"tesla_vehicle_charger_phases{BLUE}"] == 1.0
    # charge_rate 30.6 mi/h of range: 30.6 x 1609.344 m / 3600 s = 30.6 x 0.44704 = 13.679424 m/s
    assert found[f"tesla_vehicle_charge_rate_meters_per_second{BLUE}"] == 13.679424
    # charge_miles_added_rated 84 mi: 84 x 1609.344 = 135184.896 m
    assert found[f"tesla_vehicle_charge_range_added_meters{BLUE}"] == 135184.896
    # ideal_battery_range 202.57 mi: 202.57 x 1609.344 = 326004.81408 m
    assert found[f"tesla_vehicle_ideal_battery_range_meters{BLUE}"] == 326004.81408
    assert found[f"tesla_vehicle_charge_port_latch_engaged{BLUE}"] == 1.0
    assert found[f"tesla_vehicle_charge_port_latch_engaged{RED}"] == 0.0      # "Disengaged"
    assert f"tesla_vehicle_charger_phases{RED}" not in found                   # null while unplugged


def test_ideal_range_placeholder_999_is_absent_not_1600_km() -> None:
    found = parse(exposition(sample_data()))
    assert f"tesla_vehicle_ideal_battery_range_meters{RED}" not in found      # Red sends 999
    assert state("state_asleep_cached.json").ideal_battery_range_m is None
    assert found[f"tesla_vehicle_battery_range_meters{RED}"] == pytest.approx(250.12 * METERS_PER_MILE)


@pytest.mark.parametrize("miles, metres", [(999, None), (700.5, None), (-1, None), (700, 700 * 1609.344), (0, 0.0)])
def test_an_implausible_range_is_absent(miles, metres) -> None:
    record = parse_vehicle_state({"vin": "5YJ3E1EA7KF000001", "charge_state": {
        "ideal_battery_range": miles, "battery_range": miles, "est_battery_range": miles}})
    assert record.ideal_battery_range_m == record.battery_range_m == record.est_battery_range_m == metres


def test_scheduled_charging_pending_and_its_start_time() -> None:
    found = parse(exposition(sample_data()))
    assert found[f"tesla_vehicle_scheduled_charging_pending{RED}"] == 1.0
    assert found[f"tesla_vehicle_scheduled_charging_start_timestamp_seconds{RED}"] == 1752562800.0
    assert found[f"tesla_vehicle_scheduled_charging_pending{BLUE}"] == 0.0
    assert f"tesla_vehicle_scheduled_charging_start_timestamp_seconds{BLUE}" not in found   # null
    # Tessie's schema types it as a string: "1752600000" is the same instant
    assert found[f"tesla_vehicle_scheduled_charging_start_timestamp_seconds{GREEN}"] == 1752600000.0


def test_battery_heater_from_either_object_and_preconditioning() -> None:
    found = parse(exposition(sample_data()))
    assert found[f"tesla_vehicle_battery_heater_on{BLUE}"] == 0.0
    assert found[f"tesla_vehicle_battery_heater_on{RED}"] == 1.0     # climate_state.battery_heater only
    assert found[f"tesla_vehicle_battery_heater_on{GREEN}"] == 1.0   # charge_state.battery_heater_on only
    assert found[f"tesla_vehicle_preconditioning{GREEN}"] == 1.0
    assert found[f"tesla_vehicle_preconditioning{BLUE}"] == 0.0
    assert f"tesla_vehicle_battery_heater_on{GRAY}" not in found     # neither reported


def test_supercharger_shows_as_fast_charger_with_type_and_brand() -> None:
    text = exposition(sample_data())
    found = parse(text)
    assert found[f"tesla_vehicle_fast_charger_present{GREEN}"] == 1.0
    assert found[f"tesla_vehicle_fast_charger_present{BLUE}"] == 0.0
    assert found['tesla_vehicle_fast_charger_info{brand="Tesla",type="Tesla",vehicle="Green",'
                 'vin="5YJ3E1EA7KF000006"}'] == 1.0
    # a Wall Connector: type ACSingleWireCAN, brand "<invalid>" -> no brand label
    assert found['tesla_vehicle_fast_charger_info{type="ACSingleWireCAN",vehicle="Blue",'
                 'vin="5YJ3E1EA7KF000001"}'] == 1.0


def test_invalid_and_empty_strings_mean_absent() -> None:
    text = exposition(sample_data())
    assert "<invalid>" not in text
    assert not [line for line in text.splitlines()
                if line.startswith("tesla_vehicle_fast_charger_info") and 'vehicle="Red"' in line]
    record = parse_vehicle_state({"vin": "5YJ3E1EA7KF000001", "vehicle_config": {"car_type": "<invalid>"},
                                  "charge_state": {"fast_charger_type": "", "fast_charger_brand": " <invalid> ",
                                                   "charge_port_latch": "<invalid>"}})
    assert (record.car_type, record.fast_charger_type, record.fast_charger_brand) == (None, None, None)
    assert record.charge_port_latch_engaged is None


def test_model_info_from_vehicle_config() -> None:
    found = parse(exposition(sample_data()))
    assert found['tesla_vehicle_model_info{car_type="model3",vehicle="Blue",vin="5YJ3E1EA7KF000001"}'] == 1.0
    assert found['tesla_vehicle_model_info{car_type="modely",vehicle="Red",vin="7SAYGDEE1PA000002"}'] == 1.0


def test_battery_health_in_joules_volts_amperes_and_celsius() -> None:
    found = parse(exposition(sample_data()))
    assert found[f"tesla_vehicle_battery_energy_remaining_joules{BLUE}"] == 46.5 * 3.6e6       # 167.4 MJ
    assert found[f"tesla_vehicle_lifetime_energy_used_joules_total{BLUE}"] == 4567.8 * 3.6e6  # 16.44408 GJ
    assert found[f"tesla_vehicle_battery_pack_voltage_volts{BLUE}"] == 360.0
    assert found[f"tesla_vehicle_battery_pack_current_amperes{BLUE}"] == -19.4
    assert found['tesla_vehicle_battery_module_temperature_celsius{stat="min",vehicle="Blue",'
                 'vin="5YJ3E1EA7KF000001"}'] == 27.0
    assert found['tesla_vehicle_battery_module_temperature_celsius{stat="max",vehicle="Blue",'
                 'vin="5YJ3E1EA7KF000001"}'] == 29.0
    assert f"tesla_vehicle_battery_energy_remaining_joules{RED}" not in found   # not in Red's cached state


def test_capacity_estimate_only_where_the_battery_level_makes_it_meaningful() -> None:
    found = parse(exposition(sample_data()))
    # 46.5 kWh remaining at 62 %: 46.5 / 0.62 = 75 kWh = 270 MJ
    assert found[f"tesla_vehicle_battery_capacity_estimate_joules{BLUE}"] == 75 * 3.6e6
    # 18.4 kWh at 25 %: the whole-percent level could move it by 2 %; not exported
    assert f"tesla_vehicle_battery_capacity_estimate_joules{GREEN}" not in found
    assert found[f"tesla_vehicle_battery_energy_remaining_joules{GREEN}"] == 66_240_000.0   # 18.4 kWh x 3.6 MJ


def test_location_series_hold_no_coordinates() -> None:
    text = exposition(sample_data())
    samples = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    for coordinate in ("41.8781", "87.6298", "41.525", "88.0817", "latitude", "longitude", "41.8772"):
        assert coordinate not in samples, coordinate
    assert "41.8781" not in repr(state("state_online_charging.json"))


@pytest.mark.parametrize("payload", [[], "asleep", None, {"state": "online"}])
def test_body_that_is_not_a_vehicle_is_a_bad_payload(payload) -> None:
    with pytest.raises(BadPayload):
        parse_vehicle_state(payload)  # no VIN to fall back on either


async def tessie_answering(payload, path: str, run):
    """The real Tessie client and Upstream against a local server that answers `payload` at `path`
    and records what it was asked (path, query, Authorization)."""
    import json

    import aiohttp
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    seen: list[tuple[str, dict, str]] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append((request.path, dict(request.query), request.headers.get("Authorization", "")))
        return web.Response(text=json.dumps(payload), content_type="application/json")

    app = web.Application()
    app.router.add_get(path, answer)
    async with TestServer(app) as server, aiohttp.ClientSession() as session:
        metrics = UpstreamMetrics("test", CollectorRegistry())
        tessie = Tessie(Upstream(session, metrics, timeout=5), str(server.make_url("/")), Secret("tkn"))
        return await run(tessie), seen, metrics


async def test_vehicle_list_asks_for_every_car_skips_archived_ones_and_entries_without_vin() -> None:
    states, seen, _ = await tessie_answering(body("vehicles.json"), "/vehicles", lambda t: t.vehicles())
    assert [(s.vin, s.display_name, s.state, s.battery_level) for s in states] == [
        ("5YJ3E1EA7KF000001", "Blue", "online", 62.0),
        ("7SAYGDEE1PA000002", None, None, None),            # last_state: null, still listed by its VIN
        ("5YJ3E1EA7KF000008", "Silver", "asleep", 54.0)]     # inactive and asleep; "Sold" is archived
    assert seen == [("/vehicles", {"only_active": "false"}, "Bearer tkn")]


async def test_state_is_read_from_the_cache_so_a_sleeping_car_is_not_woken() -> None:
    record, seen, _ = await tessie_answering(body("state_asleep_cached.json"), "/7SAYGDEE1PA000002/state",
                                             lambda t: t.vehicle_state("7SAYGDEE1PA000002"))
    assert record.state == "asleep"
    assert seen == [("/7SAYGDEE1PA000002/state", {"use_cache": "true"}, "Bearer tkn")]


@pytest.mark.parametrize("payload", [{"error": "x"}, {"results": None}, [], None])
async def test_vehicle_list_without_results_is_a_bad_payload_and_counted_so(payload) -> None:
    metrics_of: list[UpstreamMetrics] = []

    async def run(tessie: Tessie):
        metrics_of.append(tessie.upstream.metrics)
        with pytest.raises(BadPayload):
            await tessie.vehicles()

    await tessie_answering(payload, "/vehicles", run)
    counted = metrics_of[0].requests
    assert counted.labels("vehicles", "bad_payload")._value.get() == 1
    assert counted.labels("vehicles", "success")._value.get() == 0


def test_collector_does_not_mutate_its_input() -> None:
    data = sample_data()
    before = repr(data)
    exposition(data)
    assert repr(data) == before


def test_vehicles_sharing_a_display_name_keep_their_own_samples() -> None:
    from servicekit.collector import SnapshotCollector, Target
    from servicekit.poller import Health, Poller, Snapshot

    async def never():
        raise AssertionError("not polled")

    twin = {**body("state_online_charging.json"), "vin": "5YJ3E1EA7KF000009", "display_name": "Blue"}
    records = (state("state_online_charging.json"), parse_vehicle_state(twin))
    names = learned({}, *records)
    targets = []
    for record in records:
        target = Target(target_name(names, record.vin, (t.name for t in targets)))
        poller = target.add(Poller(target.name, "state", never, 60, timeout=1))
        poller.latest, poller.health = Snapshot(record, time.time()), Health(up=True, last_success=time.time())
        targets.append(target)
    registry = CollectorRegistry()
    registry.register(SnapshotCollector("tesla_vehicle", targets, 300, make_collect(names)))
    text = generate_latest(registry).decode()
    assert 'vin="5YJ3E1EA7KF000001"' in text and 'vin="5YJ3E1EA7KF000009"' in text
    assert len([line for line in text.splitlines() if line.startswith("tesla_vehicle_up{")]) == len(
        {line.rsplit(" ", 1)[0] for line in text.splitlines() if line.startswith("tesla_vehicle_up{")})
