"""Every vehicle on the account is watched, asleep and inactive ones too, and none is woken (issue 17, part 2).

The exporter is assembled as its process does it and polled once per target; Tessie is the in-process
simulator (its `/{vin}/status` and truth log say whether a car was woken), or, for the payload the
simulator never produces (`last_state: null`), a server answering the recorded fixtures.
"""
from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry, generate_latest

from exporters import vehicle
from servicekit.config import Config, load
from servicekit.runtime import PartsContext
from simulator.testing import simulate
from simulator.upstreams.tessie import vehicle_payload
from testkit.exposition import parse
from upstreams.tessie import parse_vehicle_state

FIXTURES = Path(__file__).parent / "fixtures" / "tessie"
LOG = logging.getLogger("test-vehicle-discovery")
START, T0 = "2025-07-14T12:00:00-05:00", 1752512400
AWAKE, ASLEEP = "5YJ3E1EA7KF000011", "5YJYGDEE1MF000012"
SIM_HOME = (41.8781, -87.6298)   # where the simulator's cars are (its default vehicle position)


def scenario() -> dict[str, Any]:
    return {
        "start": START,
        "chargers": [{"name": "garage", "serial": "PGT00000000001"}],
        "vehicles": [
            {"vin": AWAKE, "name": "blue", "display_name": "Blue", "soc": 40},
            {"vin": ASLEEP, "name": "silver", "display_name": "Silver", "soc": 71, "asleep": True, "active": False},
        ],
        "events": [{"at": "1m", "vehicle": "blue", "plug_in": "garage"}],
        "prices": {"history_days": 1},
    }


def config_for(base_url: str, token: str, **vehicles: Any) -> Config:
    return load({"tessie": {"base_url": base_url}, "vehicles": vehicles}, {}, {"TESSIE_ACCESS_TOKEN": token})


async def scrape(config: Config, session: aiohttp.ClientSession) -> str:
    """Assemble the exporter as its process would, poll every target once (discovered ones too), render."""
    registry, holder = CollectorRegistry(), []
    context = PartsContext(session, registry, lambda: None, lambda target: holder[0].targets.append(target))
    holder.append(vehicle.parts_factory(config, LOG)(context))
    for _ in range(2):   # the second round polls what discovery spawned
        waiting = [p for t in list(holder[0].targets) for p in t.pollers.values() if p.health.last_outcome is None]
        await asyncio.gather(*(p.poll_once() for p in waiting))
    return generate_latest(registry).decode()


def labels(name: str, vin: str) -> str:
    return f'{{vehicle="{name}",vin="{vin}"}}'


async def test_an_asleep_inactive_car_is_discovered_and_stays_asleep() -> None:
    async with simulate(scenario()) as h:
        h.advance(120)
        _, active_only = await h.get_json("/vehicles?only_active=true")
        assert [r["vin"] for r in active_only["results"]] == [AWAKE]   # what the exporter used to ask for
        found = parse(await scrape(config_for(h.url, h.token), h.session))
        _, status = await h.get_json(f"/{ASLEEP}/status")
        commands = list(h.sim.model.truth.commands)
    silver = labels("Silver", ASLEEP)
    assert found['tesla_vehicle_up{target="Silver"}'] == 1.0
    assert found[f"tesla_vehicle_connectivity_code{silver}"] == 1.0          # asleep, read from the cache
    assert found[f"tesla_vehicle_battery_level_percent{silver}"] == 71.0
    assert found[f"tesla_vehicle_data_timestamp_seconds{silver}"] == T0      # when it fell asleep
    assert found[f"tesla_vehicle_connectivity_code{labels('Blue', AWAKE)}"] == 2.0
    assert status == {"status": "asleep"} and commands == []


async def test_simulated_cars_are_home_when_home_is_where_they_charge() -> None:
    async with simulate(scenario()) as h:
        h.advance(120)
        home = parse(await scrape(config_for(h.url, h.token, home_latitude=SIM_HOME[0],
                                             home_longitude=SIM_HOME[1]), h.session))
        # a home 0.05 degrees north: 0.05 x pi / 180 x 6371008.8 m = 5559.754 m, exported to 0.1 m
        elsewhere = parse(await scrape(config_for(h.url, h.token, home_latitude=SIM_HOME[0] + 0.05,
                                                  home_longitude=SIM_HOME[1]), h.session))
        without = await scrape(config_for(h.url, h.token), h.session)
    for vin, name in ((AWAKE, "Blue"), (ASLEEP, "Silver")):
        assert home[f"tesla_vehicle_home_distance_meters{labels(name, vin)}"] == 0.0
        assert home[f"tesla_vehicle_at_home{labels(name, vin)}"] == 1.0
        assert elsewhere[f"tesla_vehicle_home_distance_meters{labels(name, vin)}"] == 5559.8
        assert elsewhere[f"tesla_vehicle_at_home{labels(name, vin)}"] == 0.0
    assert "tesla_vehicle_home_distance_meters" not in without and "tesla_vehicle_at_home" not in without


async def test_the_simulator_serves_every_field_the_exporter_reads() -> None:
    async with simulate(scenario()) as h:
        h.advance(180)   # blue plugged in at 1 min and charging on the garage unit
        _, body = await h.get_json(f"/{AWAKE}/state?use_cache=true")
    record = parse_vehicle_state(body)
    assert record.charging_state == "Charging"
    assert (record.car_type, record.charger_phases, record.charge_port_latch_engaged) == ("model3", 1.0, True)
    assert (record.fast_charger_present, record.fast_charger_type, record.fast_charger_brand) == (
        False, "ACSingleWireCAN", None)
    assert record.charge_rate_m_per_s > 0 and record.charge_range_added_m > 0 and record.charge_amps_a > 0
    assert record.ideal_battery_range_m > record.battery_range_m
    assert (record.scheduled_charging_pending, record.scheduled_charging_start) == (False, None)
    assert (record.battery_heater_on, record.preconditioning) == (False, False)
    for value in (record.energy_remaining_j, record.lifetime_energy_used_j, record.pack_voltage_v,
                  record.pack_current_a, record.module_temp_min_c, record.module_temp_max_c, record.position):
        assert value is not None


async def test_a_snapshot_at_a_supercharger_away_from_home_is_served_so() -> None:
    async with simulate(scenario()) as h:
        h.advance(30)
        snapshot = h.sim.model.vehicle_view(AWAKE)
    away = SimpleNamespace(**vars(snapshot), fast_charger=True, at_home=False)   # what the Supercharger model adds
    charge, drive = (vehicle_payload(away)[key] for key in ("charge_state", "drive_state"))
    assert (charge["fast_charger_present"], charge["fast_charger_type"], charge["fast_charger_brand"]) == (
        True, "Tesla", "Tesla")
    assert charge["charge_port_latch"] == "Engaged"
    assert drive["latitude"] != snapshot.cfg.latitude
    home = vehicle_payload(snapshot)["charge_state"]
    assert (home["fast_charger_present"], home["fast_charger_brand"]) == (False, "<invalid>")


async def test_a_car_listed_without_a_cached_state_is_watched_and_archived_ones_are_not() -> None:
    """vehicles.json: Blue, 7SAYGDEE1PA000002 with `last_state: null`, Silver (inactive, asleep), Sold
    (archived); each state is a recorded payload, Red's the asleep cached one."""
    states = {"5YJ3E1EA7KF000001": "state_online_charging.json", "7SAYGDEE1PA000002": "state_asleep_cached.json",
              "5YJ3E1EA7KF000008": "state_offline_minimal.json"}
    seen: list[tuple[str, dict[str, str]]] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append((request.path, dict(request.query)))
        if request.path == "/vehicles":
            return web.Response(body=(FIXTURES / "vehicles.json").read_bytes(), content_type="application/json")
        vin = request.match_info["vin"]
        if vin not in states:
            return web.json_response({"error": "Vehicle not found"}, status=404)
        payload = json.loads((FIXTURES / states[vin]).read_text().replace("NaN", "null"))
        return web.json_response({**payload, "vin": vin})

    app = web.Application()
    app.router.add_get("/vehicles", answer)
    app.router.add_get("/{vin}/state", answer)
    async with TestServer(app) as server, aiohttp.ClientSession() as session:
        found = parse(await scrape(config_for(str(server.make_url("/")), "tkn"), session))
    red = labels("Red", "7SAYGDEE1PA000002")
    assert found['tesla_vehicle_up{target="7SAYGDEE1PA000002"}'] == 1.0   # named by VIN when discovered
    assert found[f"tesla_vehicle_battery_level_percent{red}"] == 81.0
    assert found[f"tesla_vehicle_connectivity_code{red}"] == 1.0
    assert found['tesla_vehicle_up{target="Silver"}'] == 1.0
    assert not [series for series in found if "5YJ3E1EA7KF000007" in series or "Sold" in series]
    assert seen[0] == ("/vehicles", {"only_active": "false"})
    assert sorted(path for path, _ in seen[1:]) == [f"/{vin}/state" for vin in sorted(states)]
    assert all(query == {"use_cache": "true"} for _, query in seen[1:])
