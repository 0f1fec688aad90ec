"""The ``/sim/`` control API (no auth, JSON): ground truth, faults, clock, live events, state.

    GET    /sim/truth[?prices_from=&prices_to=]   sessions (each with its "bill"), Tessie charges, commands, events, prices,
                                                   day-ahead prices and random spikes
    GET    /sim/bill[?month=YYYY-MM]               the month's bill (default: the current local month)
    GET    /sim/faults                             registered faults with hits/remaining/active
    POST   /sim/faults                             body = one fault spec -> {"id": ...}
    DELETE /sim/faults | /sim/faults/{id}          clear all / one (releases hung requests)
    GET    /sim/clock                              {"now", "origin", "speed", "model_time"}
    POST   /sim/clock  {"advance": seconds}        jump forward; physics steps through the gap
    POST   /sim/events                             body = one scenario event (no "at"), applied now
    GET    /sim/state                              compact charger/vehicle view for debugging
"""

from __future__ import annotations

import json
import math
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from simulator.bill import month_bill, month_of, parse_month, session_bill
from simulator.faults import FaultRegistry, parse_fault
from simulator.model import Model
from simulator.events import parse_event, scenario_refs
from simulator.schema import ScenarioError
from simulator.upstreams.jsonfmt import dumps


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(payload), status=status, content_type="application/json")


async def _body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"null")
    except ValueError as exc:
        raise ScenarioError(f"body: invalid JSON ({exc}); send a JSON object") from None


def truth_payload(model: Model, prices_from: float | None = None, prices_to: float | None = None) -> dict[str, Any]:
    """``GET /sim/truth``: sessions (each with its ``bill``), commands, events and the true prices
    (default: the last 24 h including the interval in progress), with the day-ahead price of every
    clock hour starting in that window (``day_ahead``, published or not: hours are UTC-aligned, as
    Central hours are) and the random spikes overlapping it (``spikes``)."""
    now = model.now
    tel, tariff, tz = model.scenario.telemetry, model.scenario.tariff, site_zone(model)
    hi = prices_to if prices_to is not None else now + 300
    lo = prices_from if prices_from is not None else now - 86400
    return {
        "now": now, "origin": model.origin, "model_time": model.t,
        "sessions": [{**s.to_json(model.prices, tel.meter_error, tel.delay_s),
                      "bill": session_bill(s, model.prices, tariff, tz, now)} for s in model.truth.sessions],
        "vehicle_charges": [c.truth() for c in model.truth.vehicle_charges],
        "commands": list(model.truth.commands), "events": list(model.truth.events),
        "prices": [{"t": t, "price": p} for t, p in model.prices.between(lo, hi)],
        "day_ahead": [{"start": start, "price": model.prices.day_ahead_hour(start)}
                      for start in range(int(math.ceil(lo / 3600)) * 3600, int(hi), 3600)],
        "spikes": [{"start": a, "end": b, "price": c} for a, b, c in model.prices.spikes_between(lo, hi)],
    }


def site_zone(model: Model) -> ZoneInfo:
    """Bills follow the site's local clock (hours, days, months)."""
    return ZoneInfo(model.scenario.site.time_zone)


def bill_payload(model: Model, month: tuple[int, int] | None = None) -> dict[str, Any]:
    """``GET /sim/bill``: the bill of a local calendar (year, month) over every session (default:
    the month it is now at the site)."""
    tz = site_zone(model)
    year, number = month if month is not None else month_of(model.now, tz)
    return month_bill(model.truth.sessions, year, number, model.prices, model.scenario.tariff, tz, model.now)


def state_payload(model: Model) -> dict[str, Any]:
    """``GET /sim/state``: a compact view for debugging."""
    chargers = {}
    for name in model.chargers:
        s = model.charger_snapshot(name)
        chargers[name] = {"din": s.cfg.din, "role": s.cfg.role, "vin": s.vin, "contactor_closed": s.contactor_closed,
                          "power_w": s.power_w, "session_energy_wh": s.session_energy_wh,
                          "evse_state": s.evse_state, "handle_temp_c": round(s.handle_c, 1)}
    vehicles = {}
    for vin, v in model.vehicles.items():
        vehicles[vin] = {"name": v.cfg.name, "soc": round(v.soc, 3), "charge_limit": v.charge_limit,
                         "charging_state": v.charging_state, "charger": v.charger, "awake": v.awake,
                         "power_w": model.current_power(v.charger) if v.charger else 0.0}
    return {"now": model.now, "model_time": model.t, "chargers": chargers, "vehicles": vehicles}


def routes(model: Model, faults: FaultRegistry) -> list[web.RouteDef]:
    refs = scenario_refs(model.scenario)
    charger_names = [c.name for c in model.scenario.chargers]

    def bad_request(exc: ScenarioError) -> web.Response:
        return _json({"error": str(exc)}, 400)

    def float_param(request: web.Request, name: str) -> float | None:
        value = request.query.get(name)
        return None if value in (None, "") else float(value)  # type: ignore[arg-type]

    async def truth(request: web.Request) -> web.Response:
        model.sync()
        try:
            lo, hi = float_param(request, "prices_from"), float_param(request, "prices_to")
        except ValueError:
            return _json({"error": "prices_from/prices_to must be unix seconds"}, 400)
        return _json(truth_payload(model, lo, hi))

    async def bill(request: web.Request) -> web.Response:
        text = request.query.get("month")
        try:
            month = parse_month(text) if text is not None else None
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)
        model.sync()
        return _json(bill_payload(model, month))

    async def list_faults(request: web.Request) -> web.Response:
        now = model.now
        return _json({"faults": [f.to_json(now) for f in faults.all()]})

    async def add_fault(request: web.Request) -> web.Response:
        try:
            spec = parse_fault(await _body(request), "fault", charger_names)
        except ScenarioError as exc:
            return bad_request(exc)
        fault = faults.add(spec, model.now)
        return _json({"id": fault.id, "fault": fault.to_json(model.now)}, 201)

    async def clear_faults(request: web.Request) -> web.Response:
        return _json({"cleared": faults.clear()})

    async def clear_fault(request: web.Request) -> web.Response:
        fault_id = request.match_info["id"]
        if not faults.remove(fault_id):
            return _json({"error": f"no fault {fault_id}"}, 404)
        return _json({"cleared": 1})

    def clock_json() -> dict[str, Any]:
        clock = model.clock
        return {"now": clock.now(), "origin": model.origin, "speed": clock.speed, "model_time": model.t}

    async def get_clock(request: web.Request) -> web.Response:
        return _json(clock_json())

    async def post_clock(request: web.Request) -> web.Response:
        try:
            body = await _body(request)
        except ScenarioError as exc:
            return bad_request(exc)
        advance = body.get("advance") if isinstance(body, dict) else None
        if set(body or {}) != {"advance"} or isinstance(advance, bool) or not isinstance(advance, (int, float)) \
                or advance < 0:
            return _json({"error": "body: expected {\"advance\": seconds >= 0}"}, 400)
        model.clock.advance(float(advance))
        model.sync()
        return _json(clock_json())

    async def post_event(request: web.Request) -> web.Response:
        try:
            event = parse_event(await _body(request), "event", refs, scheduled=False)
        except ScenarioError as exc:
            return bad_request(exc)
        return _json(model.apply_event(event))

    async def state(request: web.Request) -> web.Response:
        model.sync()
        return _json(state_payload(model))

    return [
        web.get("/sim/truth", truth),
        web.get("/sim/bill", bill),
        web.get("/sim/faults", list_faults),
        web.post("/sim/faults", add_fault),
        web.delete("/sim/faults", clear_faults),
        web.delete("/sim/faults/{id}", clear_fault),
        web.get("/sim/clock", get_clock),
        web.post("/sim/clock", post_clock),
        web.post("/sim/events", post_event),
        web.get("/sim/state", state),
    ]
