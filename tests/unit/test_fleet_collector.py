"""Fleet energy-site collector: recorded live_status/site_info payloads in, exposition text out (golden).

The golden holds one exposition per scenario (a site is either wall-connector-only or has Powerwalls,
so they cannot share one render); each section starts with a `# scenario: <name>` line.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from testkit.exposition import parse
from testkit.golden import check_golden, promtool_problems, render
from upstreams.tessie import unit_roles

from upstreams.tessie import parse_live_status, parse_products, parse_site_info, unwrap
from servicekit.errors import BadPayload
from servicekit.upstream import decode_json
from exporters.fleet import Units, make_collect

FIXTURES = Path(__file__).parent / "fixtures" / "tessie"
GOLDEN = Path(__file__).parent / "golden" / "fleet.txt"

GARAGE, DRIVEWAY = "1457768-01-G--PGT12345678901", "1457768-02-G--PGT12345678902"
BLUE_VIN = "5YJ3E1EA7KF000001"
NAMES = Units({GARAGE: "garage", DRIVEWAY: "driveway"}, {BLUE_VIN: "Blue"})
SCENARIOS = {
    "wall_connector_only_site": ("live_status_wc_only.json", "site_info_wc_only.json"),
    "powerwall_site": ("live_status_powerwall.json", "site_info.json"),
    "response_null": ("live_status_null.json", "site_info_null.json"),
}


def body(name: str):
    """A recorded body decoded the way the client decodes it."""
    return decode_json((FIXTURES / name).read_bytes(), name)


def snapshot(live_status: str, site_info: str) -> dict:
    return {"energy_site": {"live_status": parse_live_status(unwrap(body(live_status), "live_status")),
                            "site_info": parse_site_info(unwrap(body(site_info), "site_info"))}}


def exposition(data: dict, names: Units = NAMES, site: str = "Home") -> str:
    return render(lambda: make_collect(names, [site])(data))


def scenario(name: str) -> str:
    return exposition(snapshot(*SCENARIOS[name]))


def test_exposition_matches_golden() -> None:
    check_golden(GOLDEN, "".join(f"# scenario: {name}\n{scenario(name)}" for name in SCENARIOS))


@pytest.mark.parametrize("name", SCENARIOS)
def test_promtool_check_metrics_is_clean(name: str) -> None:
    assert promtool_problems(scenario(name)) == ""


def test_absent_field_yields_no_sample() -> None:
    # The driveway entry carries only din, wall_connector_state and wall_connector_power.
    found = parse(scenario("wall_connector_only_site"))
    unit = f'din="{DRIVEWAY}",unit="driveway"'
    assert found[f"tesla_wall_connector_power_watts{{{unit}}}"] == 0.0
    assert found[f"tesla_wall_connector_state_code{{{unit}}}"] == 2.0
    assert f"tesla_wall_connector_fault_state_code{{{unit}}}" not in found


def test_negative_unit_power_is_exported_as_negative() -> None:
    # Powershare: the vehicle feeds the home through the unit.
    found = parse(scenario("wall_connector_only_site"))
    unit = '{din="1457768-02-G--PGT12345678903",unit="PGT12345678903"}'
    assert found[f"tesla_wall_connector_power_watts{unit}"] == -3412.5


def test_wrongly_typed_fields_are_absent_not_zero() -> None:
    # powerwall_site: the driveway unit reports state "1" and power "7680.0" as strings.
    text = scenario("powerwall_site")
    unit = f'{{din="{DRIVEWAY}",unit="driveway"}}'
    assert f"tesla_wall_connector_power_watts{unit}" not in text
    assert f"tesla_wall_connector_state_code{unit}" not in text
    assert f'tesla_wall_connector_state{{din="{DRIVEWAY}",state=' not in text
    assert f"tesla_wall_connector_fault_state_code{unit} 2.0" in text


def test_unknown_state_code_is_exported_as_number_with_state_unknown() -> None:
    found = parse(scenario("wall_connector_only_site"))
    unit = 'din="1457768-02-G--PGT12345678904"'
    assert found[f'tesla_wall_connector_state_code{{{unit},unit="PGT12345678904"}}'] == 9.0
    assert found[f'tesla_wall_connector_state{{{unit},state="unknown",unit="PGT12345678904"}}'] == 1.0
    assert found[f'tesla_wall_connector_state{{{unit},state="charging",unit="PGT12345678904"}}'] == 0.0


def test_unit_is_named_by_configured_din_else_by_serial_from_the_din() -> None:
    text = scenario("wall_connector_only_site")
    assert f'din="{GARAGE}",unit="garage"' in text
    assert 'din="1457768-02-G--PGT12345678903",unit="PGT12345678903"' in text


def test_vin_is_mapped_to_configured_vehicle_name_else_left_as_vin() -> None:
    text = scenario("wall_connector_only_site")
    assert (f'tesla_wall_connector_vehicle_info{{din="{GARAGE}",unit="garage",vehicle="Blue",vin="{BLUE_VIN}"}} 1.0'
            in text)
    assert 'vehicle="7SAYGDEE1PA000002",vin="7SAYGDEE1PA000002"' in text


def test_null_or_empty_vin_means_no_vehicle_and_no_vehicle_info() -> None:
    found = parse(scenario("wall_connector_only_site") + scenario("powerwall_site"))
    unplugged = '{din="1457768-02-G--PGT12345678904",unit="PGT12345678904"}'  # "vin": null
    assert found[f"tesla_wall_connector_vehicle_connected{unplugged}"] == 0
    assert found[f'tesla_wall_connector_vehicle_connected{{din="{DRIVEWAY}",unit="driveway"}}'] == 0  # "vin": ""
    assert not [s for s in found if s.startswith("tesla_wall_connector_vehicle_info") and "PGT12345678904" in s]


def test_entry_without_din_is_dropped() -> None:
    live = parse_live_status(unwrap(body("live_status_wc_only.json"), "live_status"))
    assert len(body("live_status_wc_only.json")["response"]["wall_connectors"]) == 5
    assert [u.din for u in live.wall_connectors] == [GARAGE, DRIVEWAY, "1457768-02-G--PGT12345678903",
                                                     "1457768-02-G--PGT12345678904"]


def test_wall_connector_only_site_exports_no_powerwall_or_flow_samples() -> None:
    text = scenario("wall_connector_only_site")
    for name in ("tesla_energy_site_power_watts", "tesla_energy_site_battery_level_percent",
                 "tesla_energy_site_energy_left_joules"):
        assert f"\n{name}{{" not in text, name
    assert 'tesla_energy_site_live_status_timestamp_seconds{energy_site="Home"} 1.752546211e+09' in text


def test_site_flows_are_those_reported_with_their_signs_and_energy_in_joules() -> None:
    found = parse(scenario("powerwall_site"))
    flows = {key.split('flow="')[1].split('"')[0]: value for key, value in found.items()
             if key.startswith("tesla_energy_site_power_watts")}
    assert flows == {"solar": 1185.0, "battery": 5060.0, "load": 6245.0, "grid": -799.800048828125,
                     "grid_services": 0.0, "generator": 0.0}
    assert found['tesla_energy_site_energy_left_joules{energy_site="Home"}'] == pytest.approx(38896.47368421053 * 3600)
    assert found['tesla_energy_site_battery_level_percent{energy_site="Home"}'] == pytest.approx(95.50537403739663)


def test_live_status_timestamp_keeps_its_utc_offset() -> None:
    found = parse(scenario("powerwall_site"))
    assert found['tesla_energy_site_live_status_timestamp_seconds{energy_site="Home"}'] == 1702851811.0  # 22:23:31Z


def test_unit_facts_come_from_site_info_with_serial_from_the_din() -> None:
    text = scenario("wall_connector_only_site")
    assert ('tesla_wall_connector_info{active="true",device_id="c0ffee00-0000-4000-8000-000000000201",'
            f'din="{GARAGE}",part_number="1457768-01-G",role="unknown",serial_number="PGT12345678901",'
            'unit="garage"} 1.0') in text
    # is_active "yes" is not a bool: the fact is left out, the unit is still listed
    assert ('tesla_wall_connector_info{din="1457768-02-G--PGT12345678904",part_number="1457768-02-G",'
            'role="unknown",serial_number="PGT12345678904",unit="PGT12345678904"} 1.0') in text
    assert "orphan-without-din" not in text


def roles(names: Units) -> dict[str, str]:
    text = exposition(snapshot(*SCENARIOS["wall_connector_only_site"]), names)
    return {line.split('din="')[1].split('"')[0]: line.split('role="')[1].split('"')[0]
            for line in text.splitlines() if line.startswith("tesla_wall_connector_info{")}


def test_the_power_sharing_role_comes_from_the_leaders_setting_or_from_which_unit_is_on_the_lan() -> None:
    names = {GARAGE: "garage", DRIVEWAY: "driveway"}
    # only the leader joins the home network: the unit the local API reaches leads, the others follow
    on_lan = roles(Units(names, {}, on_lan=["garage"]))
    assert on_lan[GARAGE] == "leader" and set(on_lan.values()) == {"leader", "follower"}
    assert list(on_lan.values()).count("leader") == 1
    # energy_site.leaders (serial or DIN, any case) wins over the LAN rule
    chosen = roles(Units(names, {}, leaders=" pgt12345678903 ", on_lan=["garage"]))
    assert [din for din, role in chosen.items() if role == "leader"] == ["1457768-02-G--PGT12345678903"]
    assert set(roles(Units(names, {})).values()) == {"unknown"}
    assert unit_roles([GARAGE], [], [], {}) == {GARAGE: "leader"}      # one unit is its own leader


def test_empty_site_name_and_time_zone_are_left_out_of_site_info() -> None:
    assert 'tesla_energy_site_info{energy_site="Home",site_id="2252000000654321"} 1.0' in scenario("wall_connector_only_site")


def test_null_response_yields_no_unit_or_flow_samples() -> None:
    found = parse(scenario("response_null"))
    assert not [s for s in found if s.startswith(("tesla_wall_connector", "tesla_energy_site_power",
                                                  "tesla_energy_site_live_status"))]


def test_products_lists_energy_sites_with_their_units_and_skips_vehicles() -> None:
    sites = parse_products(unwrap(body("products.json"), "products"))
    assert [(s.site_id, s.site_name, [u.din for u in s.units]) for s in sites] == [
        ("1689500000123456", "Home", [GARAGE, DRIVEWAY]),
        ("2252000000654321", None, ["1734688-02-E--PGT98765432101"]),
    ]
    assert parse_products(unwrap(body("products_vehicles_only.json"), "products")) == []


@pytest.mark.parametrize("payload", [{"error": "invalid_token", "error_description": "x"}, [], "ok", None])
def test_body_without_fleet_envelope_is_a_bad_payload(payload) -> None:
    with pytest.raises(BadPayload):
        unwrap(payload, "live_status")


def test_products_response_that_is_not_a_list_is_a_bad_payload() -> None:
    with pytest.raises(BadPayload):
        parse_products(unwrap({"response": None}, "products"))


def test_collector_does_not_mutate_its_input() -> None:
    data = snapshot(*SCENARIOS["wall_connector_only_site"])
    before = repr(data)
    exposition(data)
    assert repr(data) == before


def test_unit_drawing_power_without_a_vin_key_is_not_reported_unplugged() -> None:
    found = parse(exposition(snapshot("live_status_minimal_charging.json", "site_info_null.json")))
    unit = f'{{din="{GARAGE}",unit="garage"}}'
    assert found[f"tesla_wall_connector_power_watts{unit}"] == 11520.0
    assert found[f"tesla_wall_connector_state_code{unit}"] == 1.0
    assert found.get(f"tesla_wall_connector_vehicle_connected{unit}") != 0.0
