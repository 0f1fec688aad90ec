"""One name per car and per unit in every component (issue 13), and the messages around names.

The rule (upstreams.tessie, "names"): a vehicle is called by vehicles.names, else Tessie's
display name, else its VIN; a unit by energy_site.unit_names (keyed by DIN or serial), else its
serial. The exporters run here against the in-process simulator (demo scenario: the leader
"garage", serial PGT12345678901, charging the "Model Y"), the session store and smart charging
against hand-built Prometheus answers.
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry, generate_latest

from exporters import fleet, twc, vehicle
from upstreams.tessie import (
    VehicleNames, configured_unit_name, parse_live_status, parse_vehicle_state, scaled, unit_name, unit_name_problems,
    vehicle_name,
)
from servicekit.config import Config, load
from servicekit.errors import AuthFailed
from servicekit.runtime import PartsContext
from servicekit.upstream import Upstream, UpstreamMetrics
from session_store.prometheus import Series
from session_store.service import FLEET, SessionService
from session_store.smart_loop import SmartChargingDriver
from session_store.storage import Storage
from simulator.testing import simulate

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "simulator" / "scenarios" / "demo.yaml"
MODEL_Y = "7SAYGDEE1PA000001"
GARAGE_DIN, GARAGE_SERIAL = "1457768-01-G--PGT12345678901", "PGT12345678901"
DRIVEWAY_DIN = "1457768-02-G--PGT12345678902"
LOG = logging.getLogger("test-naming")


def config_for(h, unit_names: dict[str, str] | None = None, vehicle_names: dict[str, str] | None = None) -> Config:
    return load({"tessie": {"base_url": h.url},
                 "wall_connectors": {"chargers": [{"name": "garage", "address": h.charger_urls["garage"]}]},
                 "energy_site": {"unit_names": unit_names or {}},
                 "vehicles": {"names": vehicle_names or {}}}, {}, {"TESSIE_ACCESS_TOKEN": h.token})


async def scrape(module, config: Config, h) -> str:
    """Assemble the exporter as its process would, poll every target once (discovered ones too), render."""
    registry, holder = CollectorRegistry(), []
    context = PartsContext(h.session, registry, lambda: None, lambda target: holder[0].targets.append(target))
    holder.append(module.parts_factory(config, LOG)(context))
    for _ in range(2):   # the second round polls what discovery spawned
        waiting = [p for t in list(holder[0].targets) for p in t.pollers.values() if p.health.last_outcome is None]
        await asyncio.gather(*(p.poll_once() for p in waiting))
    return generate_latest(registry).decode()


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOG.name and r.levelno == logging.WARNING]


# --- the rule, across the exporters ---------------------------------------------------------------

async def test_a_unit_and_a_car_carry_one_name_in_the_local_fleet_and_vehicle_exporters(caplog) -> None:
    caplog.set_level(logging.INFO)
    async with simulate(DEMO) as h:
        h.advance(150)   # the Model Y is plugged into the garage and charging
        config = config_for(h, unit_names={GARAGE_SERIAL: "garage"})   # keyed by the serial it is shown as
        local, site, cars = [await scrape(m, config, h) for m in (twc, fleet, vehicle)]
    assert 'twc_power_watts{charger="garage"}' in local
    assert f'tesla_wall_connector_power_watts{{din="{GARAGE_DIN}",unit="garage"}}' in site
    # not configured: the Fleet exporter learned the display name from Tessie's vehicle list
    assert (f'tesla_wall_connector_vehicle_info{{din="{GARAGE_DIN}",unit="garage",vehicle="Model Y",'
            f'vin="{MODEL_Y}"}} 1.0') in site
    assert f'tesla_vehicle_battery_level_percent{{vehicle="Model Y",vin="{MODEL_Y}"}}' in cars
    assert 'tesla_energy_site_upstream_requests_total{endpoint="vehicles",outcome="success"} 1.0' in site
    assert warnings(caplog) == []   # configured the same way: nothing to warn about


async def test_configured_vehicle_name_wins_in_both_exporters() -> None:
    async with simulate(DEMO) as h:
        h.advance(150)
        config = config_for(h, unit_names={GARAGE_DIN: "garage"}, vehicle_names={MODEL_Y: "Blue"})
        site, cars = [await scrape(m, config, h) for m in (fleet, vehicle)]
    assert f'unit="garage",vehicle="Blue",vin="{MODEL_Y}"' in site
    assert f'tesla_vehicle_battery_level_percent{{vehicle="Blue",vin="{MODEL_Y}"}}' in cars


async def test_unit_names_key_matching_no_unit_is_one_warning_with_the_din_it_meant(caplog) -> None:
    async with simulate(DEMO) as h:
        config = config_for(h, unit_names={"PGT1234567891": "garage", DRIVEWAY_DIN: "driveway"})
        site = await scrape(fleet, config, h)
    assert [line for line in warnings(caplog) if "unit_names" in line] == [
        "energy_site.unit_names: no Wall Connector of this site has that DIN or serial, got key "
        f"'PGT1234567891'; did you mean '{GARAGE_DIN}'?"]
    assert f'unit="{GARAGE_SERIAL}"' in site and 'unit="driveway"' in site


def test_unit_names_problems_are_warned_once_and_list_the_units_when_nothing_is_close(caplog) -> None:
    units = fleet.Units({"garage-unit": "garage"}, {})
    units.check([GARAGE_DIN, DRIVEWAY_DIN], LOG)
    units.check([GARAGE_DIN, DRIVEWAY_DIN], LOG)
    assert warnings(caplog) == [
        "energy_site.unit_names: no Wall Connector of this site has that DIN or serial, got key 'garage-unit'; "
        f"this site's units are {GARAGE_DIN}, {DRIVEWAY_DIN}"]


async def test_local_exporter_warns_when_the_fleet_view_names_the_charger_differently(caplog) -> None:
    async with simulate(DEMO) as h:
        await scrape(twc, config_for(h, unit_names={GARAGE_DIN: "Garage"}), h)
        await scrape(twc, config_for(h), h)
    assert warnings(caplog) == [
        f"wall_connectors.chargers: 'garage' is unit {GARAGE_DIN}, which energy_site.unit_names calls 'Garage'; "
        "give both the same name so dashboards, sessions and alerts show one",
        f"energy_site.unit_names: no name for unit {GARAGE_DIN}, so the Fleet view calls charger 'garage' by its "
        f"serial {GARAGE_SERIAL}; add {GARAGE_SERIAL}: garage (WALL_CONNECTOR_NAMES={GARAGE_SERIAL}:garage) so both "
        "views use one name"]


async def test_fleet_reads_the_vehicle_list_again_when_an_unnamed_car_plugs_in_at_most_every_five_minutes() -> None:
    class Tessie:
        def __init__(self) -> None:
            self.lists = [[parse_vehicle_state({"vin": MODEL_Y})],   # asleep and never cached: no name yet
                          [parse_vehicle_state({"vin": MODEL_Y, "display_name": "Model Y"})]]
            self.calls = 0

        async def vehicles(self):
            self.calls += 1
            return self.lists[min(self.calls, 2) - 1]

    now = [0.0]
    tessie, units = Tessie(), fleet.Units({}, {})
    directory = fleet.VehicleDirectory(tessie, units, clock=lambda: now[0])
    await directory.refresh()                       # the hourly read at start
    plugged = parse_live_status({"wall_connectors": [{"din": GARAGE_DIN, "vin": MODEL_Y}]})
    await directory.name(plugged)
    assert (tessie.calls, units.vehicle(MODEL_Y)) == (1, MODEL_Y)    # read just now: not again yet
    now[0] = 300.0
    await directory.name(plugged)
    assert (tessie.calls, units.vehicle(MODEL_Y)) == (2, "Model Y")
    now[0] = 900.0
    await directory.name(plugged)
    assert tessie.calls == 2                        # named: no more reads until the hourly one


def test_unit_rule_takes_the_din_or_the_serial_in_any_case_else_the_serial() -> None:
    assert unit_name({GARAGE_DIN: "garage"}, GARAGE_DIN) == "garage"
    assert unit_name({GARAGE_SERIAL: "garage"}, GARAGE_DIN) == "garage"
    assert unit_name({GARAGE_SERIAL.lower(): "garage"}, GARAGE_DIN) == "garage"
    assert unit_name({DRIVEWAY_DIN: "driveway"}, GARAGE_DIN) == GARAGE_SERIAL
    assert configured_unit_name({}, GARAGE_DIN) is None
    assert unit_name_problems({GARAGE_SERIAL: "a", DRIVEWAY_DIN: "b"}, [GARAGE_DIN, DRIVEWAY_DIN]) == {}


def test_vehicle_rule_configured_then_display_name_then_vin_and_shared_display_names_get_the_vin_end() -> None:
    blue, twin, other = (parse_vehicle_state({"vin": vin, "display_name": name}) for vin, name in (
        ("5YJ3E1EA7KF000001", "Model 3"), ("5YJ3E1EA7KF000009", "Model 3"), ("5YJYGDEE5LF000004", None)))
    names = VehicleNames({})
    names.learn([blue, twin, other])
    assert [names.name(s.vin) for s in (blue, twin, other)] == [
        "Model 3 (000001)", "Model 3 (000009)", "5YJYGDEE5LF000004"]   # the same whatever the list order
    names.learn([parse_vehicle_state({"vin": blue.vin})])               # a later list without the name
    assert names.name(blue.vin) == "Model 3 (000001)"
    configured = VehicleNames({blue.vin: "Blue"})
    configured.learn([blue, twin])
    assert (configured.name(blue.vin), configured.name(twin.vin)) == ("Blue", "Model 3")
    assert vehicle_name({}, "5YJ3E1EA7KF000001", None) == "5YJ3E1EA7KF000001"


# --- the session store and smart charging ---------------------------------------------------------

class FakePrometheus:
    """Raw samples by metric name, and instant vectors by query, as Prometheus would answer them."""

    def __init__(self, samples: dict[str, list[Series]], vectors: dict[str, list[dict[str, Any]]] | None = None):
        self._samples, self._vectors = samples, vectors or {}

    async def samples(self, selector: str, start: float, end: float) -> list[Series]:
        return self._samples.get(selector, [])

    async def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        return self._vectors.get(expr, [])


def fleet_series(t0: float, label: str) -> dict[str, list[Series]]:
    unit = {"din": GARAGE_DIN, "unit": GARAGE_SERIAL}
    times = [t0 + 15 * i for i in range(20)]
    return {"tesla_wall_connector_power_watts": [Series(unit, times, [11000.0] * len(times))],
            "tesla_wall_connector_vehicle_connected": [Series(unit, times, [1.0] * len(times))],
            "tesla_wall_connector_vehicle_info": [
                Series({**unit, "vin": MODEL_Y, "vehicle": MODEL_Y}, times[:2], [1.0, 1.0]),   # before the list
                Series({**unit, "vin": MODEL_Y, "vehicle": label}, times[2:], [1.0] * (len(times) - 2))]}


async def test_session_store_names_sessions_found_later_by_the_fleet_exporters_name(tmp_path) -> None:
    t0 = 1_752_500_000.0
    config = load({}, {}, {})
    service = SessionService(config, Storage(tmp_path / "s.db"), FakePrometheus(fleet_series(t0, "Model Y")), LOG,
                             clock=lambda: t0 + 400)
    service.source = FLEET
    await service._window(FLEET, t0, t0 + 300)
    [current] = service.view().in_progress
    assert (current.unit, current.vin, current.vehicle) == (GARAGE_SERIAL, MODEL_Y, "Model Y")
    assert service._name_vehicle(MODEL_Y, {}) == "Model Y"   # charge history, learned target ids


async def test_smart_charging_names_the_car_and_the_unit_by_the_same_rule() -> None:
    info = {"metric": {"din": GARAGE_DIN, "vin": MODEL_Y, "vehicle": "Model Y"}, "value": [0, "1"]}
    power = {"metric": {"din": GARAGE_DIN}, "value": [0, "11000"]}
    prometheus = FakePrometheus({}, {"tesla_wall_connector_vehicle_info": [info],
                                     "tesla_wall_connector_power_watts": [power]})
    config = load({"energy_site": {"unit_names": {GARAGE_SERIAL: "garage"}}}, {}, {})
    smart = SmartChargingDriver(config, _NoStorage(), prometheus, None, LOG)
    found = await smart.vehicles()
    assert (smart.state.names[MODEL_Y], found[MODEL_Y].unit) == ("Model Y", "garage")


class _NoStorage:
    def load_memories(self) -> dict:
        return {}


# --- float noise ---------------------------------------------------------------------------------

def test_unit_conversions_are_exact_to_the_source_decimals() -> None:
    assert scaled(18.47, 3.6e6) == 66492000.0            # not 66491999.99999999
    assert scaled(192.45, 1609.344) == 309718.2528
    assert scaled(18234.2, 1609.344) == 29345100.3648      # not 29345100.364800002
    assert scaled(1752546211461, 0.001) == 1752546211.461
    assert scaled(-275, 1e-6) == -0.000275                 # not -0.00027499999999999996
    assert scaled(0.1 + 0.2, 1.0) == 0.1 + 0.2             # no scale: the upstream's own value, untouched


def significant_digits(text: str) -> int:
    mantissa = text.lstrip("-").split("e")[0].replace(".", "").lstrip("0")
    return len(mantissa.rstrip("0")) if "e" in text or "." not in text else len(mantissa)


@pytest.mark.parametrize("golden", ["twc.txt", "vehicle.txt"])
def test_no_exported_value_carries_float_noise(golden: str) -> None:
    # every source value in these fixtures has at most 15 significant digits; noise shows as 16-17
    text = (Path(__file__).parent / "golden" / golden).read_text()
    values = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line and not line.startswith("#")]
    assert [v for v in values if significant_digits(v) > 15] == []


async def test_simulated_charging_power_is_exported_without_float_noise() -> None:
    async with simulate(DEMO) as h:
        h.advance(150)
        config = config_for(h, unit_names={GARAGE_DIN: "garage"})
        local, site = [await scrape(m, config, h) for m in (twc, fleet)]
    for text in (local, site):
        for line in text.splitlines():
            if line.startswith(("twc_power_watts", "tesla_wall_connector_power_watts", "twc_session_energy_joules",
                                "twc_lifetime_energy_joules")):
                assert significant_digits(line.rsplit(" ", 1)[1]) <= 15, line


# --- a Wall Connector's 401 ----------------------------------------------------------------------

async def test_a_wall_connector_401_says_no_token_helps_and_which_setting_to_fix() -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=401, text="login required")

    app = web.Application()
    app.router.add_get("/api/1/vitals", refuse)
    async with TestServer(app) as server, aiohttp.ClientSession() as session:
        metrics = UpstreamMetrics("t", CollectorRegistry())
        url = str(server.make_url("")).rstrip("/")
        with pytest.raises(AuthFailed) as raised:
            await twc.fetch_local(Upstream(session, metrics, timeout=5), url, "vitals")()
    message = str(raised.value)
    assert message.startswith(f"vitals at {url.split('://')[1]}: HTTP 401, yet a Wall Connector's local API has "
                              "no login")
    assert "no token fixes this" in message and "wall_connectors.chargers (TWC_CHARGERS)" in message
    assert "credentials rejected" not in message
    assert metrics.requests.labels("vitals", "auth_failed")._value.get() == 1   # still counted as before
