"""Tessie's /{vin}/charges in the simulator: home sessions and away charges as the car records them."""

from __future__ import annotations

import pytest

from simulator.testing import simulate
from upstreams.tessie_charges import parse_charges

START = "2025-07-14T12:00:00-05:00"
T0 = 1752512400
RED = "5YJ3E1EA7KF000001"


def scenario(**extra: object) -> dict:
    data = {
        "start": START,
        "site": {"energy_site_id": 1689500000123456, "site_name": "Home"},
        "chargers": [{"name": "garage", "serial": "PGT00000000001", "role": "leader"}],
        "vehicles": [{"vin": RED, "name": "red", "soc": 40, "ramp": 0, "taper_pct": 0, "battery_kwh": 75,
                      "efficiency": 0.9, "max_power_kw": 11.5}],
        "events": [
            {"at": "1m", "vehicle": "red", "plug_in": "garage"},
            {"at": "61m", "vehicle": "red", "unplug": True},
            {"at": "3h", "vehicle": "red", "away_charge": {"soc": 90, "duration": "30m",
                                                            "location": "Supercharger Joliet, IL",
                                                            "price_per_kwh": 0.5}},
        ],
        "telemetry": {"charges_delay": "10s", "home_location": "Home", "home_cost_per_kwh": 0.2},
        "prices": {"history_days": 1},
    }
    data.update(extra)
    return data


@pytest.mark.asyncio
async def test_home_session_and_supercharger_stop_are_listed_with_battery_energy_and_cost() -> None:
    async with simulate(scenario()) as h:
        h.advance(61 * 60 + 5)        # unplugged 5 s ago: not listed yet (charges_delay 10 s)
        status, body = await h.get_json(f"/{RED}/charges")
        assert status == 200 and body == {"results": []}
        h.advance(10)
        _, body = await h.get_json(f"/{RED}/charges")
        [home] = body["results"]
        # one hour at 11.5 kW from 40 %: 11.5 kWh drawn, 10.35 kWh into the battery (efficiency 0.9)
        assert home["started_at"] == T0 + 60 and home["ended_at"] == T0 + 3660
        assert home["energy_used"] == 11.5 and home["energy_added"] == 10.35
        assert home["is_supercharger"] is False and home["location"] == "Home"
        assert home["starting_battery"] == 40 and home["ending_battery"] == 54   # 40 + 10.35 / 75
        assert home["cost"] == 2.3                                             # 11.5 kWh x $0.20
        h.advance(2 * 3600)
        _, body = await h.get_json(f"/{RED}/charges")
        away, again = body["results"]                                          # newest first
        assert again == home
        assert away["started_at"] == T0 + 3 * 3600 - 1800 and away["ended_at"] == T0 + 3 * 3600
        assert away["is_supercharger"] is True and away["location"] == "Supercharger Joliet, IL"
        added = (90 - 53.8) / 100 * 75          # 27.15 kWh: the home charge left it at 40 + 10.35 / 75 = 53.8 %
        assert away["energy_added"] == pytest.approx(added, abs=0.01)
        assert away["cost"] == pytest.approx(added / 0.95 * 0.5, abs=0.01)
        _, body = await h.get_json(f"/{RED}/charges", params={"from": str(T0 + 2 * 3600), "superchargers_only": "true"})
        assert [c["id"] for c in body["results"]] == [away["id"]]
        charges = parse_charges(body, RED)
        assert charges[0].supercharger and charges[0].energy_added_wh == pytest.approx(added * 1000, abs=10)
        _, truth = await h.get_json("/sim/truth")
        assert [c["away"] for c in truth["vehicle_charges"]] == [False, True]
        assert truth["vehicle_charges"][0]["session_index"] == 0


@pytest.mark.asyncio
async def test_an_away_charge_while_plugged_in_is_refused_and_unknown_cars_are_404() -> None:
    events = [{"at": "1m", "vehicle": "red", "plug_in": "garage"},
              {"at": "2m", "vehicle": "red", "away_charge": {"soc": 90}}]
    async with simulate(scenario(events=events)) as h:
        h.advance(300)
        _, truth = await h.get_json("/sim/truth")
        assert [e["note"] for e in truth["events"] if e["kind"] == "away_charge"] == ["the car is plugged in"]
        status, _ = await h.get_json("/5YJ3E1EA7KF999999/charges")
        assert status == 404
        status, body = await h.get_json(f"/{RED}/charges", auth=False)
        assert status == 401
