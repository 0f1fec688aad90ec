"""Where a car is, reduced to the two facts the suite keeps: how far it is from home and whether it is home
(the vehicle exporter's distance and flag; the session store's home or away for a charge no Wall Connector saw).

Privacy: a car's coordinates go no further than these functions; no metric, label or log line carries a
latitude or longitude, and `Home` hides its own in repr. Without a configured home nothing about location is
exported at all (the vehicle exporter says so once at start).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from servicekit.config import VehicleSettings

EARTH_RADIUS_M = 6371008.8   # IUGG mean Earth radius; the spherical model is within 0.5 % of the ellipsoid
DISTANCE_PLACES = 1          # 0.1 m: finer than any GPS fix, coarse enough to carry no float noise


@dataclass(frozen=True)
class Home:
    latitude: float
    longitude: float
    radius_m: float

    def __repr__(self) -> str:
        return f"Home(radius_m={self.radius_m:g})"   # the coordinates stay out of logs and tracebacks

    __str__ = __repr__


def home_from(settings: VehicleSettings) -> Home | None:
    """The configured home, or None when vehicles.home_latitude/home_longitude are not set (config
    validation refuses one without the other)."""
    if settings.home_latitude is None or settings.home_longitude is None:
        return None
    return Home(float(settings.home_latitude), float(settings.home_longitude), float(settings.home_radius_m))


def haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in metres between two (latitude, longitude) points in degrees; stable for the
    few metres that matter around home, where the spherical law of cosines loses precision."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def distance_from_home_m(home: Home, position: tuple[float, float] | None) -> float | None:
    """Metres from home (0.1 m), or None when the car reports no position."""
    if position is None:
        return None
    return round(haversine_m((home.latitude, home.longitude), position), DISTANCE_PLACES)


def is_at_home(home: Home, position: tuple[float, float] | None) -> bool | None:
    """Within the radius, the boundary included; None without a position (unknown, not away)."""
    if position is None:
        return None
    return haversine_m((home.latitude, home.longitude), position) <= home.radius_m
