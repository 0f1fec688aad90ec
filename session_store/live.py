"""The live state of the cars, the units' links and the prices, read from Prometheus in one query per
cycle (the `live` poller), and what changed in it for the WebSocket.

One instant query fetches everything: the vehicle exporter's `tesla_vehicle_*` (last known within two
days: an asleep car's cached state, or an exporter outage, still leaves what was known, its age in
`data_at`), which car each unit reports and whether one is plugged in (Fleet's
`tesla_wall_connector_vehicle_*`, the local API's `twc_vehicle_connected`), and the price exporter's
current readings and forecast. The API and the WebSocket read the frozen `LiveView`; nothing here
does I/O.

    parse(result, taken_at) -> LiveView
    vehicle_states(view, names) -> {vin: state}        (what /api/vehicles and the events show)
    vehicle_events(before, after, names) -> [event]     (one per car whose state changed)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from exporters.vehicle import CHARGING_STATES, CONNECTIVITY
from upstreams.tessie import serial_of, vehicle_name

LAST_KNOWN = "2d"   # how far back a car's last reported state is still shown (with its age)
CAR_SERIES = {"tesla_vehicle_battery_level_percent": "battery_level",
              "tesla_vehicle_charging_state_code": "charging_state",
              "tesla_vehicle_connectivity_code": "connectivity",
              "tesla_vehicle_charge_limit_percent": "charge_limit",
              "tesla_vehicle_data_timestamp_seconds": "data_at"}
PRICE_SERIES = {"electricity_price_cents_per_kwh": "five_minute",
                "electricity_price_interval_end_timestamp_seconds": "interval_end",
                "electricity_price_hour_average_cents_per_kwh": "hour_average",
                "electricity_price_hour_projected_cents_per_kwh": "hour_projected",
                "electricity_price_forecast_start_timestamp_seconds": "forecast_start",
                "electricity_price_forecast_day_ahead_prices": "day_ahead"}
FORECAST = "electricity_price_forecast_cents_per_kwh"
LINK_SERIES = ("tesla_wall_connector_vehicle_connected", "tesla_wall_connector_vehicle_info", "twc_vehicle_connected")
HEALTH_SERIES = ("tesla_vehicle_up", "electricity_price_up")
# `or` keeps every right-hand series: their label sets (the name aside) never equal a car series'.
LIVE_QUERY = (f'last_over_time({{__name__=~"{"|".join(CAR_SERIES)}"}}[{LAST_KNOWN}]) or '
              f'{{__name__=~"{"|".join((*LINK_SERIES, *HEALTH_SERIES, *PRICE_SERIES, FORECAST))}"}}')
TRACKED = ("battery_level", "charging_state", "connectivity", "plugged_in", "unit")   # a change is an event
FLEET, LOCAL = "live_status", "local"   # the session sources (service.FLEET / LOCAL names)


@dataclass(frozen=True)
class CarReading:
    """One car as the vehicle exporter last reported it."""

    vin: str
    label: str | None = None              # its `vehicle` label (the exporter's name for it)
    battery_level: float | None = None
    charging_state: str | None = None     # Disconnected, NoPower, Starting, Charging, Stopped, Complete
    connectivity: str | None = None       # online, asleep, offline
    charge_limit: float | None = None
    data_at: float | None = None          # when the car reported it


@dataclass(frozen=True)
class UnitLink:
    """What a unit's series say about its vehicle link now."""

    unit: str
    source: str                       # live_status (Fleet) or local (the Wall Connector's own API)
    din: str | None = None
    connected: bool | None = None
    vin: str | None = None
    label: str | None = None          # the Fleet exporter's name for that car


@dataclass(frozen=True)
class PriceReading:
    five_minute: float | None = None      # the latest 5-minute price, cents per kWh
    interval_end: float | None = None
    hour_average: float | None = None     # the provider's running mean of the hour in progress
    hour_projected: float | None = None   # the projected billed price of the hour in progress
    forecast_start: float | None = None
    forecast: tuple[float, ...] = ()      # cents per clock hour from forecast_start, hours_ahead 0, 1, ...
    day_ahead: int = 0                    # leading forecast hours that are the utility's day-ahead prices
    up: bool | None = None                # electricity_price_up (None: no price exporter in Prometheus)


@dataclass(frozen=True)
class LiveView:
    taken_at: float
    cars: tuple[CarReading, ...] = ()
    links: tuple[UnitLink, ...] = ()
    prices: PriceReading = PriceReading()
    vehicle_targets: Mapping[str, bool] = field(default_factory=dict)   # tesla_vehicle_up by target


def _number(item: Mapping[str, Any]) -> float | None:
    try:
        value = float(item["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _code(table: Mapping[int, str], value: float | None) -> str | None:
    """The state a code stands for; an unknown code as its number (never dropped)."""
    if value is None:
        return None
    return table.get(int(value), "unknown" if value < 0 else str(int(value)))


def _cars(items: Iterable[tuple[str, Mapping[str, str], float | None]]) -> tuple[CarReading, ...]:
    """One reading per VIN. Each scrape target's series are grouped apart: after the exporter moved (a new
    port), the series it left behind within the window are older, so the target with the newest data wins."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for name, labels, value in items:
        vin = labels.get("vin")
        if not vin or value is None:
            continue
        group = groups.setdefault((vin, labels.get("instance", ""), labels.get("job", "")), {"label": None})
        group["label"] = group["label"] or labels.get("vehicle")
        group[CAR_SERIES[name]] = value
    best: dict[str, dict[str, Any]] = {}
    for (vin, _, _), group in sorted(groups.items()):
        if vin not in best or (group.get("data_at") or -math.inf) > (best[vin].get("data_at") or -math.inf):
            best[vin] = group
    return tuple(CarReading(vin, group["label"], group.get("battery_level"),
                            _code(CHARGING_STATES, group.get("charging_state")),
                            _code(CONNECTIVITY, group.get("connectivity")), group.get("charge_limit"),
                            group.get("data_at"))
                 for vin, group in sorted(best.items()))


def _links(items: Iterable[tuple[str, Mapping[str, str], float | None]]) -> tuple[UnitLink, ...]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for name, labels, value in items:
        if name == "twc_vehicle_connected":
            charger = labels.get("charger")
            if charger:
                found.setdefault((LOCAL, charger), {"unit": charger, "source": LOCAL})["connected"] = \
                    None if value is None else value >= 0.5
            continue
        din = labels.get("din")
        if not din:
            continue
        link = found.setdefault((FLEET, din), {"unit": labels.get("unit") or serial_of(din), "source": FLEET,
                                               "din": din})
        if name == "tesla_wall_connector_vehicle_connected":
            link["connected"] = None if value is None else value >= 0.5
        elif labels.get("vin"):
            link.update(vin=labels["vin"], label=labels.get("vehicle"))
    return tuple(UnitLink(**link) for _, link in sorted(found.items()))


def _prices(items: Iterable[tuple[str, Mapping[str, str], float | None]]) -> PriceReading:
    """The readings of one provider (the first by name, should Prometheus hold several)."""
    by_provider: dict[str, dict[str, Any]] = {}
    forecasts: dict[str, dict[int, float]] = {}
    ups: list[bool] = []
    for name, labels, value in items:
        if name == "electricity_price_up":
            ups.append(value is not None and value >= 0.5)
        elif value is None:
            continue
        elif name == FORECAST:
            try:
                hours_ahead = int(labels.get("hours_ahead", ""))
            except ValueError:
                continue
            forecasts.setdefault(labels.get("provider", ""), {})[hours_ahead] = value
        else:
            by_provider.setdefault(labels.get("provider", ""), {})[PRICE_SERIES[name]] = value
    providers = sorted(set(by_provider) | set(forecasts))
    if not providers:
        return PriceReading(up=any(ups) if ups else None)
    provider = providers[0]
    readings = by_provider.get(provider, {})
    hours = forecasts.get(provider, {})
    forecast: list[float] = []
    while len(forecast) in hours:        # the leading hours without a gap
        forecast.append(hours[len(forecast)])
    day_ahead = readings.pop("day_ahead", 0.0)
    return PriceReading(**readings, forecast=tuple(forecast), day_ahead=int(day_ahead),
                        up=any(ups) if ups else None)


def parse(result: list[dict[str, Any]], taken_at: float) -> LiveView:
    """The frozen view of one answer to LIVE_QUERY."""
    items = [(item.get("metric", {}).get("__name__", ""), item.get("metric", {}), _number(item)) for item in result]
    return LiveView(
        taken_at=taken_at,
        cars=_cars(item for item in items if item[0] in CAR_SERIES),
        links=_links(item for item in items if item[0] in LINK_SERIES),
        prices=_prices(item for item in items if item[0] in PRICE_SERIES or item[0] in (FORECAST,
                                                                                          "electricity_price_up")),
        vehicle_targets={labels.get("target", ""): value is not None and value >= 0.5
                         for name, labels, value in items if name == "tesla_vehicle_up"})


def vehicle_states(view: LiveView | None, names: Mapping[str, str],
                   known: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """VIN -> the car's state: every car the exporter reports, a unit reports, or `known` (configured) names.
    Plugged in when a unit reports its VIN, or the car says it is connected (any charging state but
    Disconnected); `unit` is the unit that reports it."""
    cars = {car.vin: car for car in view.cars} if view else {}
    links = {link.vin: link for link in view.links if link.vin} if view else {}
    states = {}
    for vin in sorted(set(cars) | set(links) | set(known)):
        car, link = cars.get(vin, CarReading(vin)), links.get(vin)
        states[vin] = {
            "vin": vin, "vehicle": vehicle_name(names, vin, car.label or (link.label if link else None)),
            "battery_level": car.battery_level, "charging_state": car.charging_state,
            "connectivity": car.connectivity, "charge_limit": car.charge_limit, "data_at": car.data_at,
            "plugged_in": link is not None or car.charging_state not in (None, "Disconnected"),
            "unit": link.unit if link else None}
    return states


def _public(state: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A car's state as the WebSocket carries it: its data's age rather than its time."""
    age = None if state["data_at"] is None else round(max(0.0, now - state["data_at"]), 3)
    return {**{key: value for key, value in state.items() if key != "data_at"}, "data_age_s": age}


def vehicle_events(before: LiveView | None, after: LiveView, names: Mapping[str, str]) -> list[dict[str, Any]]:
    """A `vehicle` event per car whose battery level, charging state, connectivity or link changed (on the
    first read, per car with anything known), carrying its whole state and the names of what changed."""
    old = vehicle_states(before, names) if before is not None else {}
    events = []
    for vin, state in vehicle_states(after, names).items():
        previous = old.get(vin)
        changed = [key for key in TRACKED if (state[key] != previous[key] if previous else
                                              state[key] not in (None, False))]
        if changed:
            events.append({"type": "vehicle", "t": after.taken_at, "changed": changed,
                           **_public(state, after.taken_at)})
    return events


def vehicles_now(view: LiveView | None, names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every car's state as the events carry it, for a WebSocket client that just connected."""
    return [_public(state, view.taken_at) for state in vehicle_states(view, names).values()] if view else []
