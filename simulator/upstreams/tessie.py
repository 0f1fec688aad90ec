"""Tessie native API: ``/vehicles``, ``/{vin}/state``, ``/{vin}/status``, ``/{vin}/battery``, ``/{vin}/charges``,
``POST /{vin}/command/<name>`` and ``POST /{vin}/wake``.

No Fleet envelope here: state is the vehicle object at top level, lists are ``{"results": [...]}``
and commands answer ``{"result": true}`` or ``{"result": false, "reason": "..."}``. Units are as
Tessie returns them (miles, kW, kWh, hours, ms timestamps). Reading state never wakes a car:
an asleep car returns the state cached when it fell asleep (``use_cache=false`` gets
``{"state": "asleep"}``); commands and ``/wake`` wake it.

The token check (``Authorization: Bearer`` or ``?access_token=``) is shared with the Fleet
passthrough, as on api.tessie.com.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from simulator.model import Model
from simulator.snapshots import VehicleSnapshot
from simulator.upstreams.jsonfmt import dumps

COMMANDS = ("start_charging", "stop_charging", "set_charge_limit", "set_charging_amps")


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(payload), status=status, content_type="application/json")


def auth_error(request: web.Request, token: str) -> web.Response | None:
    """401 with Tessie's error text when the token is missing or wrong, else None."""
    header = request.headers.get("Authorization", "")
    given = header[7:].strip() if header[:7].lower() == "bearer " else request.query.get("access_token")
    if not given:
        return json_response({"error": "Access token is required"}, 401)
    if given != token:
        return json_response({"error": "Invalid access token"}, 401)
    return None


def _flag(request: web.Request, name: str, default: bool) -> bool:
    value = request.query.get(name)
    return default if value is None else value.strip().lower() in ("true", "1", "yes")


AWAY_OFFSET_DEG = 0.05   # about 5.6 km north of home, for a snapshot that is away without saying where


def charger_facts(s: VehicleSnapshot) -> dict[str, Any]:
    """What the car says about the charger: a Supercharger (present, Tesla) only while the snapshot says it is
    at one (``fast_charger``, when the model provides it); AC on a Wall Connector; ``<invalid>`` unplugged."""
    if getattr(s, "fast_charger", None):
        return {"fast_charger_present": True, "fast_charger_type": "Tesla", "fast_charger_brand": "Tesla"}
    return {"fast_charger_present": False, "fast_charger_type": "ACSingleWireCAN" if s.plugged else "<invalid>",
            "fast_charger_brand": "<invalid>"}


def position(s: VehicleSnapshot) -> tuple[float, float]:
    """Where the car is: the snapshot's own coordinates when it has them, else home (the vehicle's configured
    latitude/longitude), or a point away from home when the snapshot says ``at_home`` is false."""
    latitude, longitude = getattr(s, "latitude", None), getattr(s, "longitude", None)
    if isinstance(latitude, (int, float)) and isinstance(longitude, (int, float)):
        return float(latitude), float(longitude)
    if getattr(s, "at_home", True) is False:
        return s.cfg.latitude + AWAY_OFFSET_DEG, s.cfg.longitude
    return s.cfg.latitude, s.cfg.longitude


def vehicle_payload(s: VehicleSnapshot) -> dict[str, Any]:
    """The ``/{vin}/state`` object for a snapshot (cached snapshots keep their own timestamps)."""
    v, ms, sec = s.cfg, int(s.t * 1000), int(s.t)
    latitude, longitude = position(s)
    connected = s.plugged or bool(getattr(s, "fast_charger", None))   # a Supercharger's connector latches too
    battery_kw = s.power_w * v.efficiency / 1000.0
    to_limit_kwh = max(0.0, s.charge_limit - s.soc) / 100.0 * v.battery_kwh
    hours = to_limit_kwh / battery_kw if s.charging_state == "Charging" and battery_kw > 0 else 0.0
    miles_per_kwh = v.range_miles / v.battery_kwh
    charge_state = {
        "battery_level": int(round(s.soc)), "usable_battery_level": int(round(s.soc)),
        "battery_range": round(s.soc / 100 * v.range_miles, 2),
        "est_battery_range": round(s.soc / 100 * v.range_miles * 0.9, 2),
        "ideal_battery_range": round(s.soc / 100 * v.range_miles * 1.05, 2),
        "charge_limit_soc": s.charge_limit, "charge_limit_soc_std": 80, "charge_limit_soc_min": 50,
        "charge_limit_soc_max": 100, "charging_state": s.charging_state,
        "charger_power": int(round(s.power_w / 1000.0)), "charger_voltage": int(round(s.voltage_v)),
        "charger_actual_current": int(round(s.current_a)), "charger_pilot_current": s.pilot_a,
        "charger_phases": s.phases, "charge_amps": s.charge_amps, "charge_current_request": s.charge_amps,
        "charge_current_request_max": s.pilot_a or s.charge_amps,
        "charge_rate": round(battery_kw * miles_per_kwh, 1), "charge_energy_added": round(s.energy_added_kwh, 2),
        "charge_miles_added_rated": round(s.energy_added_kwh * miles_per_kwh, 1),
        "charge_miles_added_ideal": round(s.energy_added_kwh * miles_per_kwh * 1.05, 1),
        "time_to_full_charge": round(hours, 2), "minutes_to_full_charge": int(round(hours * 60)),
        "conn_charge_cable": s.cable, **charger_facts(s),
        "charge_port_door_open": connected, "charge_port_latch": "Engaged" if connected else "Disengaged",
        "charge_enable_request": s.charging_state == "Charging", "user_charge_enable_request": None,
        "scheduled_charging_mode": "Off", "scheduled_charging_pending": False, "scheduled_charging_start_time": None,
        "scheduled_departure_time": None, "scheduled_departure_time_minutes": 480, "off_peak_charging_enabled": False,
        "off_peak_charging_times": "all_week", "off_peak_hours_end_time": 360,
        "battery_heater_on": False, "not_enough_power_to_heat": None, "timestamp": ms,
        "pack_current": round(-battery_kw * 1000 / 360.0, 1), "pack_voltage": 360.0,
        "module_temp_min": round(s.ambient_c + 3, 1), "module_temp_max": round(s.ambient_c + 5, 1),
        "energy_remaining": round(s.soc / 100 * v.battery_kwh, 2), "lifetime_energy_used": 4567.8,
    }
    return {
        "id": v.id, "vin": v.vin, "id_s": str(v.id), "user_id": 123456, "vehicle_id": v.id + 1,
        "display_name": v.display_name, "state": s.state, "in_service": False, "access_type": "OWNER",
        "api_version": 71, "color": None, "option_codes": None, "calendar_enabled": True, "tokens": None,
        "backseat_token": None, "backseat_token_updated_at": None,
        "charge_state": charge_state,
        "climate_state": {
            "inside_temp": round(s.ambient_c + 2, 1), "outside_temp": round(s.ambient_c, 1), "is_climate_on": False,
            "is_preconditioning": False, "battery_heater": False, "driver_temp_setting": 21.0,
            "passenger_temp_setting": 21.0, "timestamp": ms},
        "drive_state": {
            "latitude": latitude, "longitude": longitude, "heading": 90, "shift_state": None, "speed": None,
            "power": -int(round(battery_kw)), "gps_as_of": sec, "timestamp": ms, "native_latitude": latitude,
            "native_longitude": longitude, "native_type": "wgs", "native_location_supported": 1},
        "gui_settings": {
            "gui_distance_units": "mi/hr", "gui_temperature_units": "F", "gui_charge_rate_units": "kW",
            "gui_range_display": "Rated", "gui_24_hour_time": False, "show_range_units": True, "timestamp": ms},
        "vehicle_config": {
            "car_type": v.car_type, "charge_port_type": "US", "exterior_color": "MidnightSilver",
            "trim_badging": "74d", "wheel_type": "Pinwheel18", "can_accept_navigation_requests": True,
            "timestamp": ms},
        "vehicle_state": {
            "odometer": v.odometer_miles, "car_version": v.car_version, "locked": True, "sentry_mode": False,
            "vehicle_name": v.display_name, "is_user_present": False, "api_version": 71, "timestamp": ms,
            "software_update": {"status": "", "version": " ", "download_perc": 0, "install_perc": 1,
                                "expected_duration_sec": 2700, "scheduled_time_ms": 0, "warning_time_remaining_ms": 0},
            "tpms_pressure_fl": 2.9, "tpms_pressure_fr": 2.9, "tpms_pressure_rl": 2.9, "tpms_pressure_rr": 2.9},
    }


def battery_payload(s: VehicleSnapshot) -> dict[str, Any]:
    v = s.cfg
    battery_kw = s.power_w * v.efficiency / 1000.0
    return {"timestamp": int(s.t), "battery_level": round(s.soc, 2),
            "battery_range": round(s.soc / 100 * v.range_miles, 2),
            "ideal_battery_range": round(s.soc / 100 * v.range_miles * 1.05, 2), "phantom_drain_percent": 0.0,
            "energy_remaining": round(s.soc / 100 * v.battery_kwh, 2), "lifetime_energy_used": 4567.8,
            "pack_current": round(-battery_kw * 1000 / 360.0, 1), "pack_voltage": 360.0,
            "module_temp_min": round(s.ambient_c + 3, 1), "module_temp_max": round(s.ambient_c + 5, 1)}


def routes(model: Model) -> list[web.RouteDef]:
    """Tessie routes for the main listener (register after the fixed ``/sim`` and ``/api`` paths)."""

    def vehicle_or_404(request: web.Request) -> str | None:
        vin = request.match_info["vin"]
        return vin if vin in model.vehicles else None

    not_found = {"error": "Vehicle not found"}

    async def vehicles(request: web.Request) -> web.Response:
        model.sync()
        only_active = _flag(request, "only_active", False)
        results = []
        for vin, state in model.vehicles.items():
            if only_active and not state.cfg.active:
                continue
            snap = model.vehicle_view(vin)
            results.append({"vin": vin, "is_active": state.cfg.active,
                            "is_archived_manually": bool(getattr(state.cfg, "archived", False)),
                            "last_charge_created_at": None, "last_state": vehicle_payload(snap) if snap else None})
        return json_response({"results": results})

    async def state(request: web.Request) -> web.Response:
        if (vin := vehicle_or_404(request)) is None:
            return json_response(not_found, 404)
        model.sync()
        snap = model.vehicle_view(vin, use_cache=_flag(request, "use_cache", True))
        return json_response(vehicle_payload(snap) if snap else {"state": "asleep"})

    async def status(request: web.Request) -> web.Response:
        if (vin := vehicle_or_404(request)) is None:
            return json_response(not_found, 404)
        model.sync()
        return json_response({"status": model.vehicle_status(vin)})

    async def battery(request: web.Request) -> web.Response:
        if (vin := vehicle_or_404(request)) is None:
            return json_response(not_found, 404)
        model.sync()
        snap = model.vehicle_view(vin)
        return json_response(battery_payload(snap))  # type: ignore[arg-type]

    async def charges(request: web.Request) -> web.Response:
        """The car's charges overlapping [from, to] (Unix seconds), newest first; ``superchargers_only``,
        ``minimum_energy_added`` (kWh) and ``limit`` as Tessie documents them."""
        if (vin := vehicle_or_404(request)) is None:
            return json_response(not_found, 404)
        model.sync()
        try:
            low = float(request.query.get("from", "-inf"))
            high = float(request.query.get("to", "inf"))
            minimum = float(request.query.get("minimum_energy_added", "0"))
            limit = int(request.query.get("limit", "0")) or None
        except ValueError:
            return json_response({"error": "Invalid parameter"}, 400)
        found = [c for c in reversed(model.charges(vin)) if c.end >= low and c.start <= high
                 and c.energy_added_kwh >= minimum and (c.supercharger or not _flag(request, "superchargers_only", False))]
        return json_response({"results": [c.to_json() for c in found[:limit]]})

    async def command(request: web.Request) -> web.Response:
        if (vin := vehicle_or_404(request)) is None:
            return json_response(not_found, 404)
        name = request.match_info["command"]
        if name not in COMMANDS:
            return json_response({"error": f"Unknown command {name}"}, 404)
        ok, reason = model.command(vin, name, dict(request.query))
        return json_response({"result": True} if ok else {"result": False, "reason": reason})

    async def wake(request: web.Request) -> web.Response:
        if (vin := vehicle_or_404(request)) is None:
            return json_response(not_found, 404)
        return json_response({"result": model.wake(vin)})

    return [
        web.get("/vehicles", vehicles),
        web.get("/{vin}/state", state),
        web.get("/{vin}/status", status),
        web.get("/{vin}/battery", battery),
        web.get("/{vin}/charges", charges),
        web.post("/{vin}/command/{command}", command),
        web.post("/{vin}/wake", wake),
    ]
