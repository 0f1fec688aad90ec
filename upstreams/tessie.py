"""Tessie API and its Fleet API layer (`/api/1/...`), as documented in shared/upstream/tessie-fleet-api.md.

Owns the bearer token, both response shapes (Tessie-native objects at top level, Fleet's
`{"response": ...}` envelope), unit conversion at the edge (miles -> metres, kW -> W,
kWh -> J, hours -> s, ms -> s; exact to the source's decimals, so 18.47 kWh is 66492000 J and not
66491999.99999999) and tolerance: every field but a unit's `din` may be missing or wrongly typed
and then becomes absent. Reading vehicle state uses Tessie's cache and never wakes a car.

It also holds the one naming rule for what Tessie and the Fleet API identify (vehicles by VIN,
Wall Connector units by DIN), shared by every component: see "names" at the end.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable, Collection, Iterable, Mapping

from servicekit.config import Secret
from servicekit.errors import BadPayload
from servicekit.upstream import Upstream

METERS_PER_MILE = 1609.344
JOULES_PER_KWH = 3.6e6
JOULES_PER_WH = 3600.0


def places(number: float) -> int:
    """Decimal places of a number as its source wrote it; digits past the 15th significant one are
    float noise, not the source's (0.1 + 0.2 has one place)."""
    exponent = Decimal(format(number, ".15g")).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def scaled(value: float, scale: float) -> float:
    """A unit conversion without float noise: the product rounded to the places the exact decimal
    product has (192.45 mi x 1609.344 = 309718.2528 m), so it adds no digits the source lacks."""
    return float(value) if scale == 1 else round(float(value) * scale, places(value) + places(scale))


def _num(data: Mapping[str, Any] | None, key: str, scale: float = 1.0) -> float | None:
    value = (data or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return scaled(value, scale)


def _bool(data: Mapping[str, Any] | None, key: str) -> bool | None:
    value = (data or {}).get(key)
    return value if isinstance(value, bool) else None


def _str(data: Mapping[str, Any] | None, key: str) -> str | None:
    value = (data or {}).get(key)
    return value if isinstance(value, str) and value else None


def _obj(data: Mapping[str, Any] | None, key: str) -> dict[str, Any]:
    value = (data or {}).get(key)
    return value if isinstance(value, dict) else {}


def _iso_seconds(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def unwrap(body: Any, endpoint: str) -> Any:
    """The Fleet envelope's `response`; a body without one is a bad payload."""
    if not isinstance(body, dict) or "response" not in body:
        raise BadPayload(f"{endpoint}: expected a Fleet envelope with 'response'")
    return body["response"]


# --- Fleet energy site -------------------------------------------------------------------------

PLUGGED_STATES = (1, 4)      # Fleet wall_connector_state: charging, connected (community-observed)
UNPLUGGED_STATES = (2,)


@dataclass(frozen=True)
class WallConnectorStatus:
    din: str
    state: float | None
    fault_state: float | None
    power_w: float | None
    vin: str | None
    vin_reported: bool = False   # the entry has a `vin` key (null or "" = nothing plugged in)

    @property
    def vehicle_connected(self) -> bool | None:
        """A VIN, or a charging/connected state, says plugged in; a null VIN or the disconnected state says
        not; an entry saying neither is unknown (no sample rather than a fake 0)."""
        if self.vin is not None or self.state in PLUGGED_STATES:
            return True
        return False if self.vin_reported or self.state in UNPLUGGED_STATES else None


SITE_FLOWS = ("solar", "battery", "load", "grid", "grid_services", "generator")


@dataclass(frozen=True)
class LiveStatus:
    timestamp: float | None
    wall_connectors: tuple[WallConnectorStatus, ...]
    power_w: dict[str, float | None]          # site flows present in the answer
    percentage_charged: float | None
    energy_left_j: float | None
    total_pack_energy_j: float | None
    grid_status: str | None
    storm_mode_active: bool | None


def parse_live_status(response: Any) -> LiveStatus:
    data = response if isinstance(response, dict) else {}
    units = []
    for entry in data.get("wall_connectors") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("din"), str) or not entry["din"]:
            continue  # din is the only key; an entry without it cannot be attributed
        units.append(WallConnectorStatus(entry["din"], _num(entry, "wall_connector_state"),
                                         _num(entry, "wall_connector_fault_state"),
                                         _num(entry, "wall_connector_power"), _str(entry, "vin"), "vin" in entry))
    flows = {flow: _num(data, f"{flow}_power") for flow in SITE_FLOWS if f"{flow}_power" in data}
    return LiveStatus(_iso_seconds(_str(data, "timestamp")), tuple(units), flows, _num(data, "percentage_charged"),
                      _num(data, "energy_left", JOULES_PER_WH), _num(data, "total_pack_energy", JOULES_PER_WH),
                      _str(data, "grid_status"), _bool(data, "storm_mode_active"))


@dataclass(frozen=True)
class UnitInfo:
    din: str
    device_id: str | None
    is_active: bool | None

    @property
    def part_number(self) -> str:
        return self.din.partition("--")[0]

    @property
    def serial_number(self) -> str:
        """The DIN is `{part_number}--{serial}`; site_info carries no separate serial."""
        return serial_of(self.din)


@dataclass(frozen=True)
class SiteInfo:
    site_id: str | None
    site_name: str | None
    time_zone: str | None
    version: str | None
    units: tuple[UnitInfo, ...]


def _units(components: Mapping[str, Any]) -> tuple[UnitInfo, ...]:
    return tuple(UnitInfo(u["din"], _str(u, "device_id"), _bool(u, "is_active"))
                 for u in components.get("wall_connectors") or []
                 if isinstance(u, dict) and isinstance(u.get("din"), str) and u["din"])


def parse_site_info(response: Any) -> SiteInfo:
    data = response if isinstance(response, dict) else {}
    site_id = data.get("id")
    return SiteInfo(str(site_id) if site_id is not None else None, _str(data, "site_name"),
                    _str(data, "installation_time_zone"), _str(data, "version"), _units(_obj(data, "components")))


@dataclass(frozen=True)
class EnergySite:
    site_id: str
    site_name: str | None
    units: tuple[UnitInfo, ...]


def choose_site(sites: list[EnergySite]) -> EnergySite | None:
    """The energy site every component uses when none is configured: the first with Wall Connectors, else
    the first (a site whose units are not listed yet); None for an account without one."""
    return next((site for site in sites if site.units), sites[0] if sites else None)


def parse_products(response: Any) -> list[EnergySite]:
    """Energy sites among the products (entries with `energy_site_id`; vehicles have `vin`)."""
    if not isinstance(response, list):
        raise BadPayload("products: expected a list in 'response'")
    sites = []
    for entry in response:
        if isinstance(entry, dict) and entry.get("energy_site_id") is not None:
            sites.append(EnergySite(str(entry["energy_site_id"]), _str(entry, "site_name"),
                                    _units(_obj(entry, "components"))))
    return sites


@dataclass(frozen=True)
class ChargeRecord:
    """One telemetry_history charge: metered energy of record; `target_id` is not a VIN."""

    din: str
    start: float
    duration_s: float
    energy_wh: float
    target_id: str | None


def parse_charge_history(response: Any) -> list[ChargeRecord]:
    entries = (response or {}).get("charge_history") if isinstance(response, dict) or response is None else None
    records = []
    for entry in entries or []:
        if not isinstance(entry, dict):
            continue
        start = _num(_obj(entry, "charge_start_time"), "seconds")
        duration = _num(_obj(entry, "charge_duration"), "seconds")
        energy = _num(entry, "energy_added_wh")
        din = _str(entry, "din")
        if din and start is not None and duration is not None and energy is not None:
            records.append(ChargeRecord(din, start, duration, energy, _str(_obj(entry, "target_id"), "text")))
    return records


# --- vehicles -----------------------------------------------------------------------------------

MAX_PLAUSIBLE_RANGE_MILES = 700.0   # above any car's range: Tessie sends 999 as a placeholder
MILES_PER_HOUR_TO_M_PER_S = 0.44704  # 1609.344 m / 3600 s, exact
LATCH = {"engaged": True, "disengaged": False}


@dataclass(frozen=True)
class VehicleState:
    vin: str
    display_name: str | None
    state: str | None                 # online / asleep / offline
    battery_level: float | None       # percent
    usable_battery_level: float | None
    battery_range_m: float | None
    est_battery_range_m: float | None
    charge_limit_soc: float | None
    charging_state: str | None
    charger_power_w: float | None
    charger_voltage_v: float | None
    charger_current_a: float | None
    charge_energy_added_j: float | None
    time_to_full_s: float | None
    charge_port_door_open: bool | None
    cable: str | None
    inside_temp_c: float | None
    outside_temp_c: float | None
    odometer_m: float | None
    car_version: str | None
    locked: bool | None
    sentry_mode: bool | None
    data_timestamp: float | None      # charge_state.timestamp: when Tessie last heard from the car
    car_type: str | None = None                      # vehicle_config.car_type: model3, modely, ...
    ideal_battery_range_m: float | None = None
    charge_amps_a: float | None = None               # current set in the car (charge_amps)
    charge_rate_m_per_s: float | None = None         # range added per second while charging
    charge_range_added_m: float | None = None        # rated range added this charge
    charge_port_latch_engaged: bool | None = None
    scheduled_charging_pending: bool | None = None
    scheduled_charging_start: float | None = None    # Unix s
    battery_heater_on: bool | None = None
    preconditioning: bool | None = None
    fast_charger_present: bool | None = None
    fast_charger_type: str | None = None
    fast_charger_brand: str | None = None
    charger_phases: float | None = None
    energy_remaining_j: float | None = None
    lifetime_energy_used_j: float | None = None
    pack_voltage_v: float | None = None
    pack_current_a: float | None = None
    module_temp_min_c: float | None = None
    module_temp_max_c: float | None = None
    # (latitude, longitude): only ever turned into a distance from home, never exported, logged or shown
    position: tuple[float, float] | None = field(default=None, repr=False)


def _text(data: Mapping[str, Any] | None, key: str) -> str | None:
    """A string fact, where Tessie's "<invalid>" (and "") mean absent."""
    value = _str(data, key)
    return None if value is None or value.strip() in ("", "<invalid>") else value


def _range_m(data: Mapping[str, Any] | None, key: str) -> float | None:
    """A range in miles as metres; a negative or implausible one (the 999 placeholder) is absent."""
    miles = _num(data, key)
    return None if miles is None or not 0 <= miles <= MAX_PLAUSIBLE_RANGE_MILES else scaled(miles, METERS_PER_MILE)


def _epoch_s(data: Mapping[str, Any] | None, key: str) -> float | None:
    """Unix seconds given as a number or (Tessie's schema) a string of digits; null or 0 = none."""
    value = (data or {}).get(key)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    seconds = _num({key: value}, key)
    return seconds if seconds is not None and seconds > 0 else None


def _either(*flags: bool | None) -> bool | None:
    """True if any source says so, False if one says not and none says so, None if none says."""
    known = [flag for flag in flags if flag is not None]
    return any(known) if known else None


def _position(drive: Mapping[str, Any]) -> tuple[float, float] | None:
    latitude, longitude = _num(drive, "latitude"), _num(drive, "longitude")
    if latitude is None or longitude is None or not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    return latitude, longitude


def parse_vehicle_state(data: Any, vin: str | None = None) -> VehicleState:
    if not isinstance(data, dict):
        raise BadPayload("state: expected a vehicle object")
    charge, climate, vehicle = _obj(data, "charge_state"), _obj(data, "climate_state"), _obj(data, "vehicle_state")
    the_vin = _str(data, "vin") or vin
    if not the_vin:
        raise BadPayload("state: no vin in the vehicle object")
    cable = _str(charge, "conn_charge_cable")
    latch = _str(charge, "charge_port_latch")
    stamps = [s for s in (_num(charge, "timestamp"), _num(vehicle, "timestamp"), _num(climate, "timestamp")) if s]
    return VehicleState(
        vin=the_vin, display_name=_str(data, "display_name") or _str(vehicle, "vehicle_name"),
        state=_str(data, "state"), battery_level=_num(charge, "battery_level"),
        usable_battery_level=_num(charge, "usable_battery_level"),
        battery_range_m=_range_m(charge, "battery_range"), est_battery_range_m=_range_m(charge, "est_battery_range"),
        charge_limit_soc=_num(charge, "charge_limit_soc"), charging_state=_str(charge, "charging_state"),
        charger_power_w=_num(charge, "charger_power", 1000.0), charger_voltage_v=_num(charge, "charger_voltage"),
        charger_current_a=_num(charge, "charger_actual_current"),
        charge_energy_added_j=_num(charge, "charge_energy_added", JOULES_PER_KWH),
        time_to_full_s=_num(charge, "time_to_full_charge", 3600.0),
        charge_port_door_open=_bool(charge, "charge_port_door_open"),
        cable=None if cable in (None, "<invalid>") else cable,
        inside_temp_c=_num(climate, "inside_temp"), outside_temp_c=_num(climate, "outside_temp"),
        odometer_m=_num(vehicle, "odometer", METERS_PER_MILE), car_version=_str(vehicle, "car_version"),
        locked=_bool(vehicle, "locked"), sentry_mode=_bool(vehicle, "sentry_mode"),
        data_timestamp=scaled(_num(charge, "timestamp") or max(stamps, default=0.0), 0.001) or None,
        car_type=_text(_obj(data, "vehicle_config"), "car_type"),
        ideal_battery_range_m=_range_m(charge, "ideal_battery_range"),
        charge_amps_a=_num(charge, "charge_amps"),
        charge_rate_m_per_s=_num(charge, "charge_rate", MILES_PER_HOUR_TO_M_PER_S),
        charge_range_added_m=_num(charge, "charge_miles_added_rated", METERS_PER_MILE),
        charge_port_latch_engaged=LATCH.get(latch.lower()) if latch else None,
        scheduled_charging_pending=_bool(charge, "scheduled_charging_pending"),
        scheduled_charging_start=_epoch_s(charge, "scheduled_charging_start_time"),
        battery_heater_on=_either(_bool(charge, "battery_heater_on"), _bool(climate, "battery_heater")),
        preconditioning=_bool(climate, "is_preconditioning"),
        fast_charger_present=_bool(charge, "fast_charger_present"),
        fast_charger_type=_text(charge, "fast_charger_type"), fast_charger_brand=_text(charge, "fast_charger_brand"),
        charger_phases=_num(charge, "charger_phases"),
        energy_remaining_j=_num(charge, "energy_remaining", JOULES_PER_KWH),
        lifetime_energy_used_j=_num(charge, "lifetime_energy_used", JOULES_PER_KWH),
        pack_voltage_v=_num(charge, "pack_voltage"), pack_current_a=_num(charge, "pack_current"),
        module_temp_min_c=_num(charge, "module_temp_min"), module_temp_max_c=_num(charge, "module_temp_max"),
        position=_position(_obj(data, "drive_state")),
    )


def parse_vehicle_list(body: Any) -> list[VehicleState]:
    """Every vehicle on the account but those archived in Tessie, asleep or not; an entry without a cached
    state (`last_state: null`) is still listed, by its VIN."""
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise BadPayload("vehicles: expected {'results': [...]}")
    states = []
    for entry in results:
        if isinstance(entry, dict) and isinstance(entry.get("vin"), str) and entry["vin"] \
                and entry.get("is_archived_manually") is not True:
            last = entry.get("last_state") if isinstance(entry.get("last_state"), dict) else {"vin": entry["vin"]}
            states.append(parse_vehicle_state({**last, "vin": entry["vin"]}))
    return states


@dataclass(frozen=True)
class CommandResult:
    ok: bool
    reason: str | None


def parse_command(body: Any) -> CommandResult:
    if not isinstance(body, dict) or not isinstance(body.get("result"), bool):
        raise BadPayload("command: expected {'result': true|false}")
    return CommandResult(body["result"], _str(body, "reason"))


class Tessie:
    """Tessie + Fleet endpoints used by the suite; every call goes through one counted `Upstream`."""

    def __init__(self, upstream: Upstream, base_url: str, token: Secret, vins: Collection[str] = ()) -> None:
        self.upstream = upstream
        self.base_url = base_url.rstrip("/")
        self.vins = frozenset(vins)   # vehicles.vins: this site's cars only; empty = every car of the account
        upstream.headers["Authorization"] = f"Bearer {token.reveal()}"

    async def _get(self, endpoint: str, path: str, parse: Callable[[Any], Any],
                   params: Mapping[str, str] | None = None) -> Any:
        return await self.upstream.fetch_json(endpoint, f"{self.base_url}{path}", params=params, parse=parse)

    async def _fleet(self, endpoint: str, path: str, parse: Callable[[Any], Any],
                     params: Mapping[str, str] | None = None) -> Any:
        """A Fleet-layer call: the `{"response": ...}` envelope is unwrapped before `parse`."""
        return await self._get(endpoint, path, lambda body: parse(unwrap(body, endpoint)), params)

    async def energy_sites(self) -> list[EnergySite]:
        return await self._fleet("products", "/api/1/products", parse_products)

    async def live_status(self, site_id: str) -> LiveStatus:
        return await self._fleet("live_status", f"/api/1/energy_sites/{site_id}/live_status", parse_live_status)

    async def site_info(self, site_id: str) -> SiteInfo:
        return await self._fleet("site_info", f"/api/1/energy_sites/{site_id}/site_info", parse_site_info)

    async def charge_history(self, site_id: str, start: datetime, end: datetime, time_zone: str) -> list[ChargeRecord]:
        params = {"kind": "charge", "start_date": start.isoformat(), "end_date": end.isoformat(),
                  "time_zone": time_zone}
        return await self._fleet("telemetry_history", f"/api/1/energy_sites/{site_id}/telemetry_history",
                                 parse_charge_history, params)

    async def vehicles(self) -> list[VehicleState]:
        """Every vehicle on the account, asleep and inactive ones included (`only_active=false`; archived ones
        are left out), with its last cached state; never wakes a car. Only `vins` when set (one site's cars)."""
        states = await self._get("vehicles", "/vehicles", parse_vehicle_list, {"only_active": "false"})
        return [s for s in states if s.vin in self.vins] if self.vins else states

    async def vehicle_state(self, vin: str) -> VehicleState:
        """Cached state (`use_cache=true`): complete data, and the car is left asleep."""
        return await self._get("state", f"/{vin}/state", lambda body: parse_vehicle_state(body, vin),
                               {"use_cache": "true"})

    async def command(self, vin: str, name: str) -> CommandResult:
        """POST start_charging / stop_charging; `result: false` comes back with Tessie's reason."""
        return await self.upstream.fetch_json(name, f"{self.base_url}/{vin}/command/{name}", method="POST",
                                              params={"wait_for_completion": "true"}, parse=parse_command)


# --- names --------------------------------------------------------------------------------------
# One rule for every component (vehicle and Fleet exporters, session store, smart charging), so a
# car or a unit carries one name in every metric, session and alert, and a dashboard filter on it
# finds everything.

def vehicle_name(configured: Mapping[str, str], vin: str, known: str | None = None) -> str:
    """The configured name (vehicles.names), else the name Tessie gives the car (`known`: its
    display name, or the `vehicle` label the Fleet exporter derived from it), else the VIN."""
    return configured.get(vin) or known or vin


class VehicleNames:
    """Names of the account's vehicles by `vehicle_name`, with the display names learned from Tessie's
    vehicle list or a car's cached state (no car is woken). A learned name is kept when a later list lacks it (a
    car asleep since before its name was cached), so a name never flaps back to the VIN. A display name
    that two unconfigured cars share gets the end of each VIN ("Model 3 (000009)"); both exporters read
    the same list, so they agree on it."""

    def __init__(self, configured: Mapping[str, str]) -> None:
        self.configured = dict(configured)
        self.display: dict[str, str] = {}
        self.version = 0   # moves whenever a name may have changed: renders cached by name depend on it

    def learn(self, states: Iterable[VehicleState]) -> None:
        for state in states:
            if state.display_name and self.display.get(state.vin) != state.display_name:
                self.display[state.vin] = state.display_name
                self.version += 1

    def knows(self, vin: str) -> bool:
        """Whether the car has a name other than its VIN."""
        return vin in self.configured or vin in self.display

    def name(self, vin: str) -> str:
        plain = vehicle_name(self.configured, vin, self.display.get(vin))
        if vin in self.configured:
            return plain
        others = {vehicle_name(self.configured, other, self.display.get(other))
                  for other in {*self.configured, *self.display} - {vin}}
        return f"{plain} ({vin[-6:]})" if plain in others else plain


def serial_of(din: str) -> str:
    """The DIN is `{part_number}--{serial}`; a DIN without `--` is its own serial."""
    return din.partition("--")[2] or din


def configured_unit_name(unit_names: Mapping[str, str], din: str) -> str | None:
    """energy_site.unit_names for a unit, keyed by its DIN or by its serial (the name a unit has by
    default, so the key a user sees first); case does not matter."""
    wanted = {din.upper(), serial_of(din).upper()}
    return next((name for key, name in unit_names.items() if key.strip().upper() in wanted), None)


def unit_name(unit_names: Mapping[str, str], din: str) -> str:
    """A unit's name in every component: the configured one, else its serial."""
    return configured_unit_name(unit_names, din) or serial_of(din)


def unit_roles(dins: Iterable[str], leaders: Iterable[str], on_lan: Iterable[str],
               names: Mapping[str, str]) -> dict[str, str]:
    """DIN -> "leader", "follower" or "unknown". Fleet's site_info names no role, so: a site of one unit is
    its own leader; units listed in energy_site.leaders (DIN or serial) lead and the others follow; else the
    units the local API reaches lead (`on_lan`: the names of wall_connectors.chargers; with power sharing
    only the leader joins the home network) and the rest follow; else unknown. The DIN's middle segment
    ("-01-" leader) was proposed as a rule but contradicts real sites, so it is not used."""
    dins = sorted(set(dins))
    if len(dins) == 1:
        return {dins[0]: "leader"}
    wanted = {key.strip().upper() for key in leaders if key.strip()}
    chosen = {din for din in dins if {din.upper(), serial_of(din).upper()} & wanted}
    if not chosen:
        lan = set(on_lan)
        chosen = {din for din in dins if unit_name(names, din) in lan}
    if not chosen:
        return dict.fromkeys(dins, "unknown")
    return {din: "leader" if din in chosen else "follower" for din in dins}


def unit_name_problems(unit_names: Mapping[str, str], dins: Iterable[str]) -> dict[str, str]:
    """key -> one warning line for each energy_site.unit_names key that names none of `dins` (the site's
    units) by DIN or serial, with the DIN it most likely meant."""
    dins = sorted(set(dins))
    by_id = {ident.upper(): din for din in dins for ident in (din, serial_of(din))}
    problems = {}
    for key in unit_names:
        if key.strip().upper() in by_id:
            continue
        close = difflib.get_close_matches(key.strip().upper(), list(by_id), n=1, cutoff=0.6)
        hint = (f"did you mean {by_id[close[0]]!r}?" if close
                else "this site's units are " + (", ".join(dins) or "none"))
        problems[key] = (f"energy_site.unit_names: no Wall Connector of this site has that DIN or serial, "
                         f"got key {key!r}; {hint}")
    return problems
