"""Declarative scenarios: load and strictly validate the YAML that drives the simulator.

Format (every key optional unless marked *; durations accept ``90``, ``90s``, ``10m``, ``2h``,
``1d``; scenario times such as ``at`` are offsets from ``start``)::

    start: now | 2025-07-14T12:00:00-05:00   # origin of scenario time (default now)
    speed: 1.0                                # sim seconds per real second
    seed: 1                                   # noise seed (prices have their own)
    site: {energy_site_id: 1689500000123456, site_name: Home, site_id: STE..., time_zone: America/Chicago,
           power_flows: {base_load_kw: 0.8, solar_peak_kw: 0}}   # power_flows absent = WC-only site
    chargers:                                 # * at least one
      - name: garage                          # *
        serial: PGT12345678901, part_number: 1457768-02-G, din: <part>--<serial>, device_id: <uuid>
        firmware: 23.24.3+gba52398ee0bc71
        wiring: split_phase | three_phase     # US 240 V split phase or EU 3-phase
        grid_v: 240, grid_hz: 60, max_current_a: 48
        role: standalone | leader | follower  # followers need leader: <name>; only leaders/standalone listen
        leader: garage, sharing_max_current_a: 64   # sharing limit on a leader caps the whole group
        vitals_layout: old | new              # relay_coil_v (26 keys) or relay_k1_v/k2_v + evse_not_ready_reasons
        lifetime_energy: on_session_end | live
        ambient_c: 20, uptime_s: 86400
        wifi: {ssid, signal_strength, rssi, snr, connected, ip, internet, mac}
        lifetime: {contactor_cycles, contactor_cycles_loaded, alert_count, thermal_foldbacks,
                   avg_startup_temp, charge_starts, energy_wh, connector_cycles, uptime_s, charging_time_s}
    vehicles:
      - vin: 5YJ3E1EA7KF000001                # *
        name: red                             # how events refer to it (default: the VIN)
        display_name, target_id (UUID, not the VIN), battery_kwh: 75, soc: 50, charge_limit: 80,
        max_power_kw: 11.5, efficiency: 0.92, ramp: 30s, taper_pct: 3, taper_floor_kw: 1.0,
        autostart: true, asleep: false, active: true, sleep_after: 10m, odometer_miles, car_version,
        range_miles: 310, car_type: model3, latitude, longitude
    prices: {seed, base: 3.0, amplitude: 2.5, noise: 0.6, negative_chance: 0.08, history_days: 35, lag: 0,
             spikes|overrides: [{from: 2h, to: 2h30m, price: 15.0}],
             explicit: {start: -1h, values: [2.1, 2.3, ...]},     # values[i]: i-th 5-minute interval
             forecast_error: 0.10,            # day-ahead feed: true hourly mean x (1 + N(0, this)), per hour
             spike_chance_per_day: 0,         # random spikes per local day (0.3: on ~30 % of days), never
             spike_cents: [15, 120]}          #   in the day-ahead feed; price range (or one number), 15-60 min
    events:                                   # applied in time order
      - {at: 1m, vehicle: red, plug_in: garage}
      - {at: 3h, vehicle: red, unplug: true}
      - {at: 30m, charger: garage, dip: {duration: 2m, power_kw: 3.0}}
      - {at: 40m, vehicle: red, user_stop: true}      # also user_start, sleep, wake
      - {at: 20h, vehicle: red, drive: {soc: 35}}     # back from driving (unplugged): battery at most 35 %
      - {at: 22h, vehicle: red, away_charge: {soc: 80, duration: 30m}}   # a Supercharger stop that ends now
        # away_charge also takes location, supercharger (true), price_per_kwh (0.45 $), latitude, longitude
      - {at: 10m, charger: garage, temperature: {handle_c: 65, pcba_c: .., mcu_c: .., duration: 20m}}
      - {at: 50m, charger: garage, alert: {codes: [27], fault_state: 8, duration: 5m}}
      - {at: 2h, price: {price: 15.0, duration: 30m}}
    faults: [ see simulator.faults ]
    telemetry: {delay: 6h, meter_error: 0.0, empty_as_null: true,
                charges_delay: 5s, home_location: Home, home_cost_per_kwh: 0.15,   # Tessie's /{vin}/charges
                history: [{charger: garage, vehicle: red | target_id: <uuid>, start: -2d, duration: 2h,
                           energy_wh: 21508}]}
    quirks: {stale_cache_while_charging: false}
    tariff:                                   # how /sim/truth and /sim/bill bill the charging (cents per kWh, $ a month)
      supply_billing: hourly_average | interval   # ComEd: local clock hour at the mean of its 12 prices
      delivery_cents_per_kwh: 7.5             # flat, and the rate for times no period covers
      delivery_periods:                       # optional time of day; the first matching period wins
        - {name: super_peak, months: [6, 7, 8, 9], days: [mon, tue, wed, thu, fri],
           start: "13:00", end: "19:00", cents_per_kwh: 10.7}   # local HH:MM on 5-minute marks, quoted
        - {name: night, start: "22:00", end: "06:00", cents_per_kwh: 3}   # start > end wraps midnight
      monthly_fixed_dollars: 19.56, capacity_dollars_per_month: 0     # month bills only
      reference_supply_cents_per_kwh: 0       # fixed-price supply for savings; 0 = no reference
    meter:                                    # the home's ComEd meter behind the Opower portal (simulator.meter)
      enabled: true
      username: demo@example.com, password: demo-password, mfa_code: "123456"   # login and its MFA code
      account_number: "0123456789"            # digits
      read_resolution: HALF_HOUR              # BILLING, DAY, HOUR, HALF_HOUR or QUARTER_HOUR
      base_load_kw: 0.6, seed: 11             # the home without the EV: a seeded daily shape around this
      delay: 36h                              # a read is published this long after it ends
      history: 40d                            # reads exist from local midnight this long before start
      bill_cycle_day: 1, bill_delay: 3d       # periods from day N of a month to day N of the next (1..28)
      refresh_token_lifetime: 14d             # each refresh token's life; every refresh issues a new one
      corrections: [{day: 2026-11-02, factor: 0.9, after: 72h}]   # first published x factor, true after
"""

from __future__ import annotations

import math
import re
import uuid
import zlib
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from simulator.config import (
    WEEKDAYS, ChargerConfig, DeliveryPeriodConfig, ExplicitPrices, HistoricalSession, LifetimeInit, PowerFlows,
    READ_RESOLUTIONS, MeterConfig, MeterCorrection, PriceConfig, PriceOverride, Quirks, Scenario, SiteConfig,
    TariffConfig, TelemetryConfig, VehicleConfig, WifiConfig,
)
from simulator.events import Refs, parse_event, scenario_refs
from simulator.faults import parse_fault
from simulator.schema import ScenarioError, Section, fail

__all__ = ["Scenario", "ScenarioError", "load_scenario", "parse_event", "scenario_refs"]

WIRINGS = ("split_phase", "three_phase")
ROLES = ("standalone", "leader", "follower")
LAYOUTS = ("old", "new")
LIFETIME_MODES = ("on_session_end", "live")
SUPPLY_BILLING = ("hourly_average", "interval")
_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


def _stable_int(text: str) -> int:
    return zlib.crc32(text.encode())


def _stable_uuid(text: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"charging-sim:{text}"))


def load_scenario(source: str | Path | Mapping[str, Any]) -> Scenario:
    """Read a YAML file (or take an already-parsed mapping) and validate it strictly."""
    if isinstance(source, Mapping):
        return _scenario(Section(source, ""))
    path = Path(source)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read ({exc.strerror}); check the --scenario path") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ScenarioError(f"{path}: invalid YAML{where} ({problem}); fix the YAML syntax") from None
    return _scenario(Section(data if data is not None else {}, ""))


def _scenario(s: Section) -> Scenario:
    start = _start(s)
    speed = s.float("speed", 1.0, min=0.001)
    seed = s.int("seed", 1)
    site = _site(s.section("site"))
    chargers = tuple(_charger(Section(item, p), i) for i, (p, item) in enumerate(s.list("chargers")))
    if not chargers:
        raise fail("chargers", "missing or empty", "list at least one charger")
    _check_chargers(chargers)
    vehicles = tuple(_vehicle(Section(item, p), i) for i, (p, item) in enumerate(s.list("vehicles")))
    _check_unique("vehicles", [v.vin for v in vehicles], "vin")
    _check_unique("vehicles", [v.name for v in vehicles], "name")
    _check_unique("vehicles", [v.target_id for v in vehicles], "target_id")
    prices = _prices(s.section("prices"))
    refs = Refs(chargers, vehicles)
    events = tuple(parse_event(item, p, refs, scheduled=True) for p, item in s.list("events"))
    faults = tuple(parse_fault(item, p, [c.name for c in chargers]) for p, item in s.list("faults"))
    telemetry = _telemetry(s.section("telemetry"), refs)
    quirks_s = s.section("quirks")
    quirks = Quirks(stale_cache_while_charging=quirks_s.bool("stale_cache_while_charging", False))
    quirks_s.finish()
    tariff = _tariff(s.section("tariff"))
    meter = _meter(s.section("meter"))
    s.finish()
    return Scenario(
        start=start, speed=speed, seed=seed, site=site, chargers=chargers, vehicles=vehicles, prices=prices,
        events=tuple(sorted(events, key=lambda e: e.at_s or 0.0)), faults=faults, telemetry=telemetry,
        quirks=quirks, tariff=tariff, meter=meter,
    )


def _start(s: Section) -> float | None:
    value = s.raw("start", "now")
    if value == "now":
        return None
    if isinstance(value, datetime):  # YAML parses unquoted timestamps itself
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise fail("start", f"got {value!r}", "use now or an ISO timestamp with offset") from None
    else:
        raise fail("start", f"got {value!r}", "use now or an ISO timestamp with offset")
    if parsed.tzinfo is None:
        raise fail("start", f"got {value!r} without a UTC offset", "add an offset such as -05:00 or Z")
    return float(math.floor(parsed.timestamp()))


def _site(s: Section) -> SiteConfig:
    tz = s.str("time_zone", "America/Chicago")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail(s.key_path("time_zone"), f"unknown time zone {tz!r}",
                   "use an IANA name like America/Chicago") from None
    flows = None
    if s.has("power_flows"):
        raw = s.raw("power_flows")
        if raw is True or isinstance(raw, Mapping):
            f = Section(raw if isinstance(raw, Mapping) else {}, s.key_path("power_flows"))
            flows = PowerFlows(f.float("base_load_kw", 0.8, min=0), f.float("solar_peak_kw", 0.0, min=0))
            f.finish()
        elif raw not in (False, None):
            raise fail(s.key_path("power_flows"), f"got {raw!r}", "use false, true or {base_load_kw, solar_peak_kw}")
    site = SiteConfig(
        energy_site_id=s.int("energy_site_id", SiteConfig.energy_site_id, min=1),
        site_name=s.str("site_name", SiteConfig.site_name),
        site_id=s.str("site_id", SiteConfig.site_id),
        time_zone=tz,
        power_flows=flows,
    )
    s.finish()
    return site


def _charger(s: Section, index: int) -> ChargerConfig:
    name = s.str("name")
    wiring = s.str("wiring", "split_phase", choices=WIRINGS)
    eu = wiring == "three_phase"
    din = s.str("din", None)
    part, serial = None, None
    if din is not None:
        if "--" not in din:
            raise fail(s.key_path("din"), f"got {din!r}", "use <part_number>--<serial>")
        part, serial = din.split("--", 1)
    serial = s.str("serial", serial or f"PGT{_stable_int(name) % 10**11:011d}")
    part = s.str("part_number", part or ("1529455-02-D" if eu else "1457768-02-G"))
    if din is not None and din != f"{part}--{serial}":
        raise fail(s.key_path("din"), f"{din!r} disagrees with part_number/serial", "drop din or make them match")
    role = s.str("role", "standalone", choices=ROLES)
    leader = s.str("leader", None)
    if role == "follower" and leader is None:
        raise fail(s.key_path("leader"), "missing for a follower", "name the leader charger")
    if role != "follower" and leader is not None:
        raise fail(s.key_path("leader"), f"set on a {role}", "only followers name a leader")
    sharing = s.float("sharing_max_current_a", None, min=6)
    if sharing is not None and role != "leader":
        raise fail(s.key_path("sharing_max_current_a"), f"set on a {role}", "set it on the leader")
    wifi_s = s.section("wifi")
    wifi = WifiConfig(
        ssid=wifi_s.str("ssid", WifiConfig.ssid),
        signal_strength=wifi_s.int("signal_strength", WifiConfig.signal_strength),
        rssi=wifi_s.int("rssi", WifiConfig.rssi),
        snr=wifi_s.int("snr", WifiConfig.snr),
        connected=wifi_s.bool("connected", True),
        ip=wifi_s.str("ip", f"192.168.1.{102 + index}"),
        internet=wifi_s.bool("internet", True),
        mac=wifi_s.str("mac", f"98:ED:5C:{index:02X}:{_stable_int(name) % 256:02X}:{_stable_int(serial) % 256:02X}"),
    )
    wifi_s.finish()
    life_s = s.section("lifetime")
    d = LifetimeInit()
    lifetime = LifetimeInit(
        **{k: life_s.int(k, getattr(d, k), min=0) for k in (
            "contactor_cycles", "contactor_cycles_loaded", "alert_count", "thermal_foldbacks", "charge_starts",
            "energy_wh", "connector_cycles", "uptime_s", "charging_time_s")},
        avg_startup_temp=life_s.float("avg_startup_temp", d.avg_startup_temp),
    )
    life_s.finish()
    cfg = ChargerConfig(
        name=name, serial=serial, part_number=part,
        device_id=s.str("device_id", _stable_uuid(f"{part}--{serial}")),
        firmware=s.str("firmware", ChargerConfig.firmware),
        wiring=wiring,
        grid_v=s.float("grid_v", 230.0 if eu else 240.0, min=100, max=480),
        grid_hz=s.float("grid_hz", 50.0 if eu else 60.0, min=45, max=65),
        max_current_a=s.float("max_current_a", 32.0 if eu else 48.0, min=6, max=80),
        role=role, leader=leader, sharing_max_current_a=sharing,
        vitals_layout=s.str("vitals_layout", "old", choices=LAYOUTS),
        lifetime_energy=s.str("lifetime_energy", "on_session_end", choices=LIFETIME_MODES),
        ambient_c=s.float("ambient_c", 20.0, min=-40, max=60),
        uptime_s=s.int("uptime_s", 86400, min=0),
        wifi=wifi, lifetime=lifetime,
    )
    s.finish()
    return cfg


def _check_unique(section: str, values: list[str], key: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise fail(f"{section}[{i}].{key}", f"duplicate {value!r}", f"give every entry its own {key}")
        seen.add(value)


def _check_chargers(chargers: tuple[ChargerConfig, ...]) -> None:
    _check_unique("chargers", [c.name for c in chargers], "name")
    _check_unique("chargers", [c.serial for c in chargers], "serial")
    roles = {c.name: c.role for c in chargers}
    for i, c in enumerate(chargers):
        if c.leader is not None and roles.get(c.leader) != "leader":
            raise fail(f"chargers[{i}].leader", f"{c.leader!r} is not a charger with role leader",
                       "name a charger whose role is leader")


def _vehicle(s: Section, index: int) -> VehicleConfig:
    vin = s.str("vin")
    if len(vin) != 17:
        raise fail(s.key_path("vin"), f"{vin!r} is not 17 characters", "use a 17-character VIN")
    display = s.str("display_name", f"Car {index + 1}")
    limit = s.int("charge_limit", 80, min=50, max=100)
    cfg = VehicleConfig(
        vin=vin, name=s.str("name", vin), display_name=display,
        target_id=s.str("target_id", _stable_uuid(vin)),
        id=s.int("id", 1000000 + _stable_int(vin) % 10**9),
        battery_kwh=s.float("battery_kwh", 75.0, min=5, max=250),
        soc=s.float("soc", 50.0, min=0, max=100),
        charge_limit=limit,
        max_power_kw=s.float("max_power_kw", 11.5, min=1, max=22),
        efficiency=s.float("efficiency", 0.92, min=0.5, max=1.0),
        ramp_s=s.duration("ramp", 30.0),
        taper_pct=s.float("taper_pct", 3.0, min=0, max=50),
        taper_floor_kw=s.float("taper_floor_kw", 1.0, min=0.1),
        autostart=s.bool("autostart", True),
        asleep=s.bool("asleep", False),
        active=s.bool("active", True),
        sleep_after_s=s.duration("sleep_after", 600.0),
        odometer_miles=s.float("odometer_miles", 12345.6, min=0),
        car_version=s.str("car_version", VehicleConfig.car_version),
        range_miles=s.float("range_miles", 310.0, min=10),
        car_type=s.str("car_type", "model3"),
        latitude=s.float("latitude", VehicleConfig.latitude, min=-90, max=90),
        longitude=s.float("longitude", VehicleConfig.longitude, min=-180, max=180),
    )
    s.finish()
    return cfg


def _prices(s: Section) -> PriceConfig:
    overrides = []
    for key in ("spikes", "overrides"):
        for p, item in s.list(key):
            o = Section(item, p)
            start, end = o.duration("from", signed=True), o.duration("to", signed=True)
            if end <= start:
                raise fail(o.key_path("to"), "not after from", "make to later than from")
            overrides.append(PriceOverride(start, end, o.float("price", min=-100, max=1000)))
            o.finish()
    explicit = None
    if s.has("explicit"):
        e = s.section("explicit")
        values = e.raw("values")
        if not isinstance(values, list) or not values or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise fail(e.key_path("values"), "expected a non-empty list of numbers", "list prices in cents/kWh")
        explicit = ExplicitPrices(e.duration("start", 0.0, signed=True), tuple(float(v) for v in values))
        e.finish()
    cfg = PriceConfig(
        seed=s.int("seed", 7), base=s.float("base", 3.0), amplitude=s.float("amplitude", 2.5, min=0),
        noise=s.float("noise", 0.6, min=0), negative_chance=s.float("negative_chance", 0.08, min=0, max=1),
        history_days=s.float("history_days", 35.0, min=0, max=400), lag_s=s.duration("lag", 0.0),
        overrides=tuple(overrides), explicit=explicit,
        forecast_error=s.float("forecast_error", 0.10, min=0, max=1),
        spike_chance_per_day=s.float("spike_chance_per_day", 0.0, min=0, max=24),
        spike_cents=_price_range(s, "spike_cents", (15.0, 120.0)),
    )
    s.finish()
    return cfg


def _price_range(s: Section, key: str, default: tuple[float, float]) -> tuple[float, float]:
    """``[low, high]`` cents/kWh, or one number for a fixed price."""
    value = s.raw(key, None)
    if value is None:
        return default
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value, value]
    if not (isinstance(value, list) and len(value) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)) or value[0] > value[1]:
        raise fail(s.key_path(key), f"got {value!r}", "use [low, high] in cents/kWh with low <= high, or one number")
    if not all(-100 <= v <= 1000 for v in value):
        raise fail(s.key_path(key), f"got {value!r}", "use prices between -100 and 1000 cents/kWh")
    return float(value[0]), float(value[1])


def _telemetry(s: Section, refs: Refs) -> TelemetryConfig:
    history = []
    for p, item in s.list("history"):
        h = Section(item, p)
        charger = refs.charger(h)
        if h.has("vehicle") == h.has("target_id"):
            raise fail(p, "needs exactly one of vehicle, target_id", "name the vehicle or give its target_id")
        target = refs.target_ids[refs.vehicle(h)] if h.has("vehicle") else h.str("target_id")
        history.append(HistoricalSession(charger, target, h.duration("start", signed=True), h.duration("duration"),
                                         h.int("energy_wh", min=0)))
        h.finish()
    cfg = TelemetryConfig(
        delay_s=s.duration("delay", 6 * 3600.0), meter_error=s.float("meter_error", 0.0, min=-0.5, max=0.5),
        empty_as_null=s.bool("empty_as_null", True), history=tuple(history),
        charges_delay_s=s.duration("charges_delay", 5.0), home_location=s.str("home_location", "Home"),
        home_cost_per_kwh=s.float("home_cost_per_kwh", 0.15, min=0, max=10),
    )
    s.finish()
    return cfg


def _tariff(s: Section) -> TariffConfig:
    periods = tuple(_delivery_period(Section(item, p)) for p, item in s.list("delivery_periods"))
    cfg = TariffConfig(
        supply_billing=s.str("supply_billing", "hourly_average", choices=SUPPLY_BILLING),
        delivery_per_kwh=s.float("delivery_cents_per_kwh", 7.5, min=0, max=500) / 100,
        delivery_periods=periods,
        monthly_fixed=s.float("monthly_fixed_dollars", 19.56, min=0, max=10000),
        capacity_per_month=s.float("capacity_dollars_per_month", 0.0, min=0, max=10000),
        reference_supply_per_kwh=s.float("reference_supply_cents_per_kwh", 0.0, min=0, max=500) / 100,
    )
    s.finish()
    return cfg


def _delivery_period(s: Section) -> DeliveryPeriodConfig:
    start, end = _clock_minutes(s, "start"), _clock_minutes(s, "end")
    if start == 1440:
        raise fail(s.key_path("start"), "got '24:00'", "use 00:00 (24:00 is only an end)")
    if start == end:
        raise fail(s.key_path("end"), "equals start", "use 00:00 to 24:00 for a whole day")
    cfg = DeliveryPeriodConfig(
        start_min=start, end_min=end, per_kwh=s.float("cents_per_kwh", min=0, max=500) / 100,
        name=s.str("name", ""),
        months=_months(s), days=_days(s),
    )
    s.finish()
    return cfg


def _clock_minutes(s: Section, key: str) -> int:
    """Minutes after local midnight from a quoted ``HH:MM`` on a 5-minute mark (24:00 allowed)."""
    value = s.raw(key)
    if isinstance(value, int) and not isinstance(value, bool):  # YAML 1.1 reads unquoted 22:00 as 1320
        raise fail(s.key_path(key), f"got the number {value!r} (YAML reads an unquoted HH:MM as a number)",
                   'quote the time, e.g. "22:00"')
    match = _CLOCK.match(value) if isinstance(value, str) else None
    minutes = int(match[1]) * 60 + int(match[2]) if match else -1
    if not match or minutes % 5 or minutes > 1440:
        raise fail(s.key_path(key), f"got {value!r}", "use HH:MM on a 5-minute mark")
    return minutes


def _months(s: Section) -> tuple[int, ...]:
    value = s.raw("months", None)
    if value is None:
        return tuple(range(1, 13))
    if not isinstance(value, list) or not value or not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 12 for v in value):
        raise fail(s.key_path("months"), f"got {value!r}", "use a non-empty list of months 1..12")
    return tuple(sorted(set(value)))


def _days(s: Section) -> tuple[int, ...]:
    """Weekday names as ``datetime.weekday()`` numbers (0 = Monday)."""
    value = s.raw("days", None)
    if value is None:
        return tuple(range(7))
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v in WEEKDAYS for v in value):
        raise fail(s.key_path("days"), f"got {value!r}", f"use a non-empty list of {', '.join(WEEKDAYS)}")
    return tuple(sorted({WEEKDAYS.index(v) for v in value}))


def _meter(s: Section) -> MeterConfig:
    d = MeterConfig()
    account = s.str("account_number", d.account_number)
    if not account.isdigit() or not 6 <= len(account) <= 20:
        raise fail(s.key_path("account_number"), f"got {account!r}", 'use 6 to 20 digits, quoted: "0123456789"')
    code = s.str("mfa_code", d.mfa_code)
    if not code.isdigit() or len(code) != 6:
        raise fail(s.key_path("mfa_code"), f"got {code!r}", 'use six digits, quoted: "123456"')
    corrections = tuple(_correction(Section(item, p)) for p, item in s.list("corrections"))
    _check_unique(s.key_path("corrections"), [c.day.isoformat() for c in corrections], "day")
    cfg = MeterConfig(
        enabled=s.bool("enabled", True),
        username=_nonempty(s, "username", d.username),
        password=_nonempty(s, "password", d.password),
        mfa_code=code,
        account_number=account,
        read_resolution=s.str("read_resolution", d.read_resolution, choices=READ_RESOLUTIONS),
        base_load_kw=s.float("base_load_kw", d.base_load_kw, min=0, max=100),
        seed=s.int("seed", d.seed),
        delay_s=s.duration("delay", d.delay_s),
        history_s=_positive_duration(s, "history", d.history_s),
        bill_cycle_day=s.int("bill_cycle_day", d.bill_cycle_day, min=1, max=28),
        bill_delay_s=s.duration("bill_delay", d.bill_delay_s),
        refresh_token_lifetime_s=_positive_duration(s, "refresh_token_lifetime", d.refresh_token_lifetime_s),
        corrections=corrections,
    )
    s.finish()
    return cfg


def _nonempty(s: Section, key: str, default: str) -> str:
    value = s.str(key, default)
    if not value:
        raise fail(s.key_path(key), "is empty", "give a non-empty value")
    return str(value)


def _positive_duration(s: Section, key: str, default: float) -> float:
    value = s.duration(key, default)
    if value <= 0:
        raise fail(s.key_path(key), f"got {s.data.get(key)!r}", "use a duration > 0")
    return float(value)


def _correction(s: Section) -> MeterCorrection:
    raw = s.raw("day")
    if isinstance(raw, datetime):
        raw = raw.date()
    if isinstance(raw, date):
        day = raw
    else:
        try:
            day = date.fromisoformat(raw) if isinstance(raw, str) else None
        except ValueError:
            day = None
        if day is None:
            raise fail(s.key_path("day"), f"got {raw!r}", "use a local date YYYY-MM-DD")
    cfg = MeterCorrection(day=day, factor=s.float("factor", 0.9, min=0, max=10),
                          after_s=s.duration("after", 72 * 3600.0))
    s.finish()
    return cfg
