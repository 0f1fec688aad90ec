"""Fleet API passthrough (as served by api.tessie.com): ``/api/1/products`` and the energy
site's ``live_status``, ``site_info`` and ``telemetry_history?kind=charge``.

Fleet envelope ``{"response": ...}`` (``count`` on lists, ``error``/``error_description`` on
errors). Wall connector state codes use the Fleet numbering (1 charging, 2 not plugged,
4 plugged not charging), fault state 2 is normal, power is in W (float) and ``vin`` is present
only while a vehicle is plugged in. Charge history records appear ``telemetry.delay`` after
the session ended; ``start_date``/``end_date`` are ISO-8601 with offset (bare dates are read as
whole days in ``time_zone`` or the site's zone).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from simulator.model import Model
from simulator.upstreams.tessie import json_response


def fleet_error(status: int, error: str, description: str) -> web.Response:
    return json_response({"response": None, "error": error, "error_description": description}, status)


def wall_connectors(model: Model) -> list[dict[str, Any]]:
    return [{"device_id": c.device_id, "din": c.din, "is_active": True} for c in model.scenario.chargers]


def products_payload(model: Model) -> dict[str, Any]:
    site = model.scenario.site
    items: list[dict[str, Any]] = []
    for vin, v in model.vehicles.items():
        cfg = v.cfg
        items.append({
            "id": cfg.id, "user_id": 123456, "vehicle_id": cfg.id + 1, "vin": vin, "color": None,
            "access_type": "OWNER", "display_name": cfg.display_name, "option_codes": None, "cached_data": "",
            "granular_access": {"hide_private": False}, "tokens": None, "state": "online" if v.awake else "asleep",
            "in_service": False, "id_s": str(cfg.id), "calendar_enabled": True, "api_version": 71,
            "backseat_token": None, "backseat_token_updated_at": None, "ble_autopair_enrolled": False,
            "vehicle_config": {"car_type": cfg.car_type}, "command_signing": "allowed", "release_notes_supported": True,
        })
    flows = site.power_flows
    items.append({
        "energy_site_id": site.energy_site_id, "site_name": site.site_name, "id": site.site_id,
        "components": {"battery": False, "solar": bool(flows and flows.solar_peak_kw > 0), "grid": True,
                       "load_meter": flows is not None, "wall_connectors": wall_connectors(model)},
    })
    return {"response": items, "count": len(items)}


def live_status_payload(model: Model) -> dict[str, Any]:
    site = model.scenario.site
    entries = []
    for name in model.chargers:
        s = model.charger_snapshot(name)
        entry: dict[str, Any] = {"din": s.cfg.din, "wall_connector_state": s.fleet_state,
                                 "wall_connector_fault_state": s.fault_state,
                                 "wall_connector_power": round(float(s.power_w), 3)}
        if s.vin:
            entry["vin"] = s.vin
        entries.append(entry)
    body: dict[str, Any] = {"timestamp": datetime.fromtimestamp(int(model.now), ZoneInfo(site.time_zone)).isoformat()}
    power = model.site_power()
    if power is not None:
        body.update({k: round(v, 3) for k, v in power.items()})
        body.update({"battery_power": 0, "grid_services_power": 0, "generator_power": 0, "grid_status": "Active",
                     "grid_services_active": False, "island_status": "on_grid", "storm_mode_active": False})
    body["wall_connectors"] = entries
    return {"response": body}


def site_info_payload(model: Model) -> dict[str, Any]:
    site = model.scenario.site
    flows = site.power_flows
    return {"response": {
        "id": site.site_id, "site_name": site.site_name, "installation_time_zone": site.time_zone,
        "installation_date": "2023-12-12T10:00:00-06:00", "version": "23.44.0 eb113390", "battery_count": 0,
        "backup_reserve_percent": 0, "default_real_mode": "self_consumption", "nameplate_power": 0,
        "nameplate_energy": 0, "user_settings": {"storm_mode_enabled": False},
        "components": {"battery": False, "solar": bool(flows and flows.solar_peak_kw > 0), "grid": True,
                       "load_meter": flows is not None, "wall_connectors": wall_connectors(model)},
    }}


def parse_date(value: str, tz: ZoneInfo, *, end: bool) -> float:
    """ISO-8601 with offset; naive times are read in ``tz``; a bare date means the whole day."""
    value = value.strip()  # an unencoded "+" arrives as " " and is rejected, as it should be
    parsed = datetime.fromisoformat(value)
    if len(value) == 10 and end:
        parsed += timedelta(days=1)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.timestamp()


def charge_history_payload(model: Model, start: float, end: float) -> dict[str, Any]:
    now = model.now
    records = [r.to_json() for r in model.charge_records() if r.visible_at <= now and start <= r.start <= end]
    if not records and model.scenario.telemetry.empty_as_null:
        return {"response": None}
    return {"response": {"charge_history": records}}


def routes(model: Model) -> list[web.RouteDef]:
    site = model.scenario.site

    def site_or_404(request: web.Request) -> web.Response | None:
        if request.match_info["site"] != str(site.energy_site_id):
            return fleet_error(404, "not_found", f"energy site {request.match_info['site']} not found")
        model.sync()
        return None

    async def products(request: web.Request) -> web.Response:
        model.sync()
        return json_response(products_payload(model))

    async def live_status(request: web.Request) -> web.Response:
        return site_or_404(request) or json_response(live_status_payload(model))

    async def site_info(request: web.Request) -> web.Response:
        return site_or_404(request) or json_response(site_info_payload(model))

    async def telemetry_history(request: web.Request) -> web.Response:
        if (error := site_or_404(request)) is not None:
            return error
        q = request.query
        if q.get("kind") != "charge":
            return fleet_error(400, "invalid_field", "kind must be charge")
        try:
            tz = ZoneInfo(q.get("time_zone") or site.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            return fleet_error(400, "invalid_field", "unknown time_zone")
        try:
            start = parse_date(q["start_date"], tz, end=False)
            end = parse_date(q["end_date"], tz, end=True)
        except KeyError as exc:
            return fleet_error(400, "invalid_field", f"{exc.args[0]} is required")
        except ValueError:
            return fleet_error(400, "invalid_field", "start_date/end_date must be ISO-8601")
        return json_response(charge_history_payload(model, start, end))

    async def not_found(request: web.Request) -> web.Response:
        return fleet_error(404, "not_found", f"{request.path} not found")

    return [
        web.get("/api/1/products", products),
        web.get("/api/1/energy_sites/{site}/live_status", live_status),
        web.get("/api/1/energy_sites/{site}/site_info", site_info),
        web.get("/api/1/energy_sites/{site}/telemetry_history", telemetry_history),
        web.route("*", "/api/1/{tail:.*}", not_found),
    ]
