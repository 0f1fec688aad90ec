"""Location for privacy: a car's distance from a configured home and an at-home flag, never its coordinates;
without a home, no location metric at all (issue 17, part 2)."""
from __future__ import annotations

import logging
import math

import pytest

from exporters import vehicle
from exporters.vehicle import make_collect
from servicekit.location import EARTH_RADIUS_M, Home, distance_from_home_m, haversine_m, home_from, is_at_home
from servicekit.config import ConfigError, load
from testkit.exposition import parse
from testkit.golden import render
from upstreams.tessie import VehicleNames, parse_vehicle_state

HOME = (41.8772, -87.6298)
BLUE = '{vehicle="Blue",vin="5YJ3E1EA7KF000001"}'


def car_at(latitude: float | None, longitude: float | None):
    drive = {"latitude": latitude, "longitude": longitude} if latitude is not None else {}
    return parse_vehicle_state({"vin": "5YJ3E1EA7KF000001", "display_name": "Blue", "state": "online",
                                "charge_state": {"battery_level": 62}, "drive_state": drive})


def exposition(record, home: Home | None) -> dict[str, float]:
    names = VehicleNames({})
    names.learn([record])
    return parse(render(lambda: make_collect(names, home)({"Blue": {"state": record}})))


def test_distance_due_north_is_the_arc_by_hand() -> None:
    # 0.0009 degrees of latitude = 0.0009 x pi / 180 rad = 1.5708e-5 rad; x 6371008.8 m = 100.0757 m
    assert haversine_m(HOME, (41.8781, -87.6298)) == pytest.approx(6371008.8 * 0.0009 * math.pi / 180, rel=1e-9)
    assert distance_from_home_m(Home(*HOME, 150), (41.8781, -87.6298)) == 100.1
    assert haversine_m((0.0, 0.0), (1.0, 0.0)) == pytest.approx(111195.08, abs=0.01)   # one degree: 111.195 km
    assert haversine_m(HOME, HOME) == 0.0
    assert EARTH_RADIUS_M == 6371008.8


def test_distance_across_the_globe_stays_finite() -> None:
    assert haversine_m((0.0, 0.0), (0.0, 180.0)) == pytest.approx(math.pi * EARTH_RADIUS_M)


def test_with_a_home_the_car_has_a_distance_and_an_at_home_flag() -> None:
    found = exposition(car_at(41.8781, -87.6298), Home(*HOME, 150))
    assert found[f"tesla_vehicle_home_distance_meters{BLUE}"] == 100.1
    assert found[f"tesla_vehicle_at_home{BLUE}"] == 1.0
    away = exposition(car_at(41.525, -88.0817), Home(*HOME, 150))   # a Supercharger 54 km away
    assert away[f"tesla_vehicle_home_distance_meters{BLUE}"] == pytest.approx(54233.4, abs=0.1)
    assert away[f"tesla_vehicle_at_home{BLUE}"] == 0.0


def test_without_a_home_no_location_family_exists() -> None:
    text = render(lambda: make_collect(VehicleNames({}), None)({"Blue": {"state": car_at(41.8781, -87.6298)}}))
    assert "home_distance" not in text and "at_home" not in text
    assert "tesla_vehicle_battery_level_percent" in text


def test_a_car_without_a_position_has_no_distance_and_is_not_called_away() -> None:
    found = exposition(car_at(None, None), Home(*HOME, 150))
    assert f"tesla_vehicle_home_distance_meters{BLUE}" not in found
    assert f"tesla_vehicle_at_home{BLUE}" not in found
    for bad in ({"latitude": "41.8", "longitude": -87.6}, {"latitude": 95.0, "longitude": -87.6},
                {"latitude": 41.8, "longitude": None}, {"latitude": True, "longitude": -87.6}):
        assert parse_vehicle_state({"vin": "5YJ3E1EA7KF000001", "drive_state": bad}).position is None, bad


def test_the_radius_boundary_counts_as_home() -> None:
    car = (41.8781, -87.6298)
    exact = haversine_m(HOME, car)
    assert is_at_home(Home(*HOME, exact), car) is True
    assert is_at_home(Home(*HOME, math.nextafter(exact, 0.0)), car) is False
    assert exposition(car_at(*car), Home(*HOME, 100.0))[f"tesla_vehicle_at_home{BLUE}"] == 0.0  # 100.08 m away
    assert exposition(car_at(*car), Home(*HOME, 101.0))[f"tesla_vehicle_at_home{BLUE}"] == 1.0
    assert is_at_home(Home(*HOME, 150), None) is None


def test_coordinates_stay_out_of_reprs_of_home_settings_and_vehicle_state() -> None:
    config = load({"vehicles": {"home_latitude": 41.8772, "home_longitude": -87.6298}}, {}, {})
    home = home_from(config.vehicles)
    assert home == Home(41.8772, -87.6298, 150.0)
    for text in (repr(home), str(home), repr(config.vehicles), repr(config), repr(car_at(41.8781, -87.6298))):
        assert "41.87" not in text and "87.62" not in text, text


def test_home_settings_from_yaml_and_environment() -> None:
    config = load({}, {"HOME_LATITUDE": "41.8772", "HOME_LONGITUDE": "-87.6298", "HOME_RADIUS_M": "200"}, {})
    assert home_from(config.vehicles) == Home(41.8772, -87.6298, 200.0)
    assert home_from(load({}, {}, {}).vehicles) is None
    assert load({}, {}, {}).vehicles.home_radius_m == 150


@pytest.mark.parametrize("vehicles, message", [
    ({"home_latitude": 41.8772},
     "vehicles.home_longitude: missing while vehicles.home_latitude is set, got home_latitude alone; set "
     "vehicles.home_longitude (or HOME_LONGITUDE) too, or remove home_latitude for no location metrics"),
    ({"home_longitude": -87.6298},
     "vehicles.home_latitude: missing while vehicles.home_longitude is set, got home_longitude alone; set "
     "vehicles.home_latitude (or HOME_LATITUDE) too, or remove home_longitude for no location metrics"),
    ({"home_latitude": 91, "home_longitude": 0},
     "vehicles.home_latitude: must be >= -90 and <= 90, got 91; use a value >= -90 and <= 90"),
    ({"home_latitude": 0, "home_longitude": -181},
     "vehicles.home_longitude: must be >= -180 and <= 180, got -181; use a value >= -180 and <= 180"),
    ({"home_radius_m": 0}, "vehicles.home_radius_m: must be > 0, got 0; use a value > 0"),
])
def test_bad_home_settings_stop_with_one_line(vehicles: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load({"vehicles": vehicles}, {}, {})
    assert str(error.value) == message


@pytest.mark.parametrize("settings, expected", [
    ({}, "no home location (vehicles.home_latitude, home_longitude): no distance-from-home or at-home metrics"),
    ({"home_latitude": 41.8772, "home_longitude": -87.6298},
     "home location set: exporting distance from home and at-home within 150 m"),
])
def test_start_up_says_once_whether_location_is_exported(caplog, settings: dict, expected: str) -> None:
    log = logging.getLogger("test-vehicle-location")
    caplog.set_level(logging.INFO, logger=log.name)
    config = load({"vehicles": settings}, {}, {"TESSIE_ACCESS_TOKEN": "t"})
    vehicle.parts_factory(config, log)
    lines = [r.getMessage() for r in caplog.records if r.name == log.name]
    assert lines == [expected]
    assert not any("41.87" in line or "87.62" in line for line in lines)
