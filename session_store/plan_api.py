"""Departure plans over HTTP: read and set a car's departure (one-off or weekly), its plan, revisions and
outcomes, and a what-if; plus the /plans page (server-rendered, no front-end build, the chart an inline
SVG). Writes need the API token, as the override does: a bearer header for the API, a form field on
the page (never in a URL).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo

from aiohttp import web

from servicekit.identifiers import is_vin
from session_store.api import _json, _moment, authorized
from session_store.departure import Departure, format_weekly, parse_weekly
from session_store.planner import CarPlan, Hour
from session_store.planning import Planning
from session_store.records import PlanOutcome, PlanRevision, rounded
from session_store.storage import Storage
from session_store.views import PlanningView, PlanStatus

MAX_AHEAD_S = 30 * 86400
LIMIT = 20


def plan_json(result: CarPlan | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {**rounded({"energy_wh": result.energy_wh, "need_wh": result.need_wh, "cost": result.cost,
                       "finish": result.finish, "reachable_percent": result.reachable_percent}),
            "feasible": result.feasible,
            "hours": [rounded({"start": h.start, "end": h.end, "energy_wh": h.energy_wh, "cost": h.cost,
                               "price_cents": h.cents, "seconds": h.seconds}) | {"source": h.source}
                      for h in result.hours]}


def setting_json(departure: Departure) -> dict[str, Any]:
    return {"target_percent": departure.target_percent, "departure": departure.at,
            "weekly": format_weekly(departure.weekly), "battery_kwh": departure.battery_kwh,
            "updated_at": departure.updated_at}


def status_json(status: PlanStatus) -> dict[str, Any]:
    soc = status.soc
    return {"vin": status.vin, "vehicle": status.vehicle, "setting": setting_json(status.departure),
            "next_departure": status.next_departure, "plugged_in": status.plugged,
            "state_of_charge": None if soc is None else {"percent": round(soc.percent, 2), "source": soc.source,
                                                         "reading_percent": soc.reading_percent,
                                                         "reading_at": soc.reading_at},
            "efficiency": round(status.efficiency, 4), "battery_kwh": status.battery_kwh, "decision": status.reason,
            "charge_now": status.charge_now, "deadline_at_risk": status.at_risk, "plan": plan_json(status.plan)}


def hours_json(hours: tuple[Hour, ...]) -> list[dict[str, Any]]:
    return [rounded({"start": h.start, "supply_cents": h.supply_cents, "delivery_cents": h.delivery_cents,
                     "price_cents": h.cents}) | {"source": h.source, "peak_risk": h.peak_risk} for h in hours]


def revision_json(r: PlanRevision) -> dict[str, Any]:
    return {**rounded({"t": r.t, "departure": r.departure, "target_percent": r.target_percent,
                       "soc_percent": r.soc_percent, "need_wh": r.need_wh, "energy_wh": r.energy_wh, "cost": r.cost,
                       "finish": r.finish, "reachable_percent": r.reachable_percent}),
            "soc_source": r.soc_source, "feasible": r.feasible, "reason": r.reason,
            "hours": [{"start": start, "energy_wh": wh, "price_cents": cents} for start, wh, cents in r.hours]}


def outcome_json(o: PlanOutcome) -> dict[str, Any]:
    return {**rounded({"departure": o.departure, "target_percent": o.target_percent, "planned_cost": o.planned_cost,
                       "soc_percent": o.soc_percent, "energy_wh": o.energy_wh, "cost": o.cost,
                       "recorded_at": o.recorded_at}), "revisions": o.revisions, "met": o.met}


def overview_json(view: PlanningView) -> dict[str, Any]:
    return {"evaluated_at": view.evaluated_at, "trusted": view.untrusted is None,
            "untrusted_reason": view.untrusted, "day_ahead_hours": view.day_ahead_hours,
            "hours": hours_json(view.hours), "cars": [status_json(s) for s in view.cars]}


class BadSetting(ValueError):
    pass


def parse_setting(vin: str, body: Any, zone: ZoneInfo, now: float, default_battery: float) -> Departure:
    """A departure from a JSON body or a form: target_percent, and departure (a moment) or weekly
    ({"mon": "07:00", ...}); battery_kwh optional. Raises BadSetting naming the field."""
    if not isinstance(body, Mapping):
        raise BadSetting("body: expected an object like {\"target_percent\": 80, \"departure\": \"2026-12-07T07:00\"}")
    unknown = sorted(set(body) - {"target_percent", "departure", "weekly", "battery_kwh"})
    if unknown:
        raise BadSetting(f"{unknown[0]}: not a known field; use target_percent, departure, weekly, battery_kwh")
    target = _number(body.get("target_percent"), "target_percent", 1, 100)
    if target is None:
        raise BadSetting("target_percent: required, a state of charge from 1 to 100")
    battery = _number(body.get("battery_kwh"), "battery_kwh", 10, 250)
    at = body.get("departure")
    weekly = body.get("weekly") or {}
    if (at in (None, "")) == (not weekly):
        raise BadSetting("departure, weekly: give exactly one: a moment (ISO 8601 or Unix seconds) or a week "
                         "like {\"mon\": \"07:00\"}")
    if at not in (None, ""):
        moment = _moment(at, zone)
        if moment is None or not now < moment <= now + MAX_AHEAD_S:
            raise BadSetting("departure: expected a moment within the next 30 days (ISO 8601 or Unix seconds)")
        return Departure(vin, target, moment, (), battery, now)
    if not isinstance(weekly, Mapping):
        raise BadSetting("weekly: expected an object like {\"mon\": \"07:00\", \"tue\": \"07:30\"}")
    try:
        week = parse_weekly(weekly)
    except ValueError as error:
        raise BadSetting(str(error)) from None
    return Departure(vin, target, None, week, battery, now)


def _number(value: Any, name: str, low: float, high: float) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadSetting(f"{name}: expected a number from {low:g} to {high:g}, got {str(value)[:40]!r}") from None
    if isinstance(value, bool) or not math.isfinite(number) or not low <= number <= high:
        raise BadSetting(f"{name}: expected a number from {low:g} to {high:g}, got {str(value)[:40]!r}")
    return number


def known_vehicles(config: Any, control: Any) -> Callable[[], dict[str, str]]:
    """VIN -> name of every car the page offers: named in the configuration or seen by smart charging."""
    def known() -> dict[str, str]:
        seen = {v.vin: v.vehicle or v.vin for v in control.view().vehicles}
        return {**seen, **config.vehicles.names}
    return known


def add_plan_routes(app: web.Application, planning: Planning, storage: Storage, token: Any, zone: ZoneInfo,
                    clock: Callable[[], float], replan: Callable[[], None], names: Callable[[], Mapping[str, str]]) -> None:
    """The plan API and the /plans page; `replan` asks for an evaluation now (after a change)."""

    def vin_of(request: web.Request) -> str:
        vin = request.match_info["vin"].upper()
        if not is_vin(vin):
            raise web.HTTPBadRequest(text='{"error": "vin: expected a 17-character VIN"}',
                                     content_type="application/json")
        return vin

    async def overview(request: web.Request) -> web.StreamResponse:
        return _json(overview_json(planning.view()))

    async def one(request: web.Request) -> web.StreamResponse:
        vin = vin_of(request)
        departure = planning.departures.get(vin)
        status = next((s for s in planning.view().cars if s.vin == vin), None)
        if departure is None and status is None:
            return _json({"error": f"no departure is set for {vin}"}, status=404)
        return _json({"vin": vin, "setting": setting_json(departure) if departure else None,
                      "status": status_json(status) if status else None,
                      "revisions": [revision_json(r) for r in storage.plan_revisions(vin, limit=LIMIT)],
                      "outcomes": [outcome_json(o) for o in storage.plan_outcomes(vin, LIMIT)]})

    async def put(request: web.Request) -> web.StreamResponse:
        denied = authorized(request, token, "plans")
        if denied is not None:
            return denied
        vin = vin_of(request)
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return _json({"error": "body: expected JSON like {\"target_percent\": 80, \"departure\": "
                                   "\"2026-12-07T07:00\"}"}, status=400)
        try:
            departure = parse_setting(vin, body, zone, clock(), planning.settings.battery_kwh)
        except BadSetting as error:
            return _json({"error": str(error)}, status=400)
        planning.set_departure(departure)
        replan()
        return _json({"vin": vin, "setting": setting_json(departure)})

    async def delete(request: web.Request) -> web.StreamResponse:
        denied = authorized(request, token, "plans")
        if denied is not None:
            return denied
        vin = vin_of(request)
        if not planning.clear_departure(vin):
            return _json({"error": f"no departure is set for {vin}"}, status=404)
        replan()
        return _json({"vin": vin, "setting": None})

    async def what_if(request: web.Request) -> web.StreamResponse:
        vin = vin_of(request)
        now = clock()
        try:
            target = _number(request.query.get("target_percent"), "target_percent", 1, 100)
            soc = _number(request.query.get("state_of_charge"), "state_of_charge", 0, 100)
            battery = _number(request.query.get("battery_kwh"), "battery_kwh", 10, 250)
        except BadSetting as error:
            return _json({"error": str(error)}, status=400)
        departure = _moment(request.query.get("departure"), zone)
        status = next((s for s in planning.view().cars if s.vin == vin), None)
        if soc is None and status is not None and status.soc is not None:
            soc = status.soc.percent
        if target is None:
            return _json({"error": "target_percent: required, a state of charge from 1 to 100"}, status=400)
        if departure is None or departure <= now:
            return _json({"error": "departure: required, a future moment (ISO 8601 or Unix seconds)"}, status=400)
        if soc is None:
            return _json({"error": "state_of_charge: required unless the car's is known (0 to 100)"}, status=400)
        options = planning.what_if(vin, soc, target, departure, battery, now)
        if options is None:
            return _json({"error": "no prices for the hours up to that departure yet (the forecast reaches "
                                   f"{len(planning.view().hours)} hours ahead)"}, status=409)
        return _json({"vin": vin, "state_of_charge": soc, "target_percent": target, "departure": departure,
                      "options": {name: plan_json(result) for name, result in options.items()}})

    async def page(request: web.Request) -> web.StreamResponse:
        from session_store.plan_page import render
        return web.Response(text=render(planning.view(), planning, storage, names(), zone, clock(),
                                        request.query.get("message")), content_type="text/html")

    async def form(request: web.Request) -> web.StreamResponse:
        """The page's form: urlencoded fields token, target_percent, departure (a local datetime) or
        weekdays + time; redirects back to the page with a message (POST, redirect, GET)."""
        fields = await request.post()
        denied = authorized(request, token, "plans", fields.get("token"))
        if denied is not None:   # the form's answer is a page, with the API's status
            reason = "no API token is configured (SMART_CHARGING_API_TOKEN in .secrets)" if denied.status == 403 \
                else "the API token is wrong"
            challenge = {k: v for k, v in denied.headers.items() if k == "WWW-Authenticate"}
            return web.Response(status=denied.status, content_type="text/html", headers=challenge,
                                text=f"<!doctype html><title>Not saved</title><p>Not saved: {reason}. "
                                     "<a href='/plans'>Back to the plans</a></p>")
        vin = vin_of(request)
        if fields.get("action") == "clear":
            planning.clear_departure(vin)
            replan()
            raise web.HTTPSeeOther(f"/plans?message=Departure+cleared#{vin}")
        body: dict[str, Any] = {"target_percent": fields.get("target_percent")}
        days = [day for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun") if fields.get(f"day_{day}")]
        if days:
            body["weekly"] = {day: fields.get("time") for day in days}
        else:
            body["departure"] = fields.get("departure")
        if fields.get("battery_kwh"):
            body["battery_kwh"] = fields.get("battery_kwh")
        try:
            planning.set_departure(parse_setting(vin, body, zone, clock(), planning.settings.battery_kwh))
        except BadSetting as error:
            raise web.HTTPSeeOther(f"/plans?message={_quote(str(error))}#{vin}")
        replan()
        raise web.HTTPSeeOther(f"/plans?message=Saved:+the+plan+follows+within+seconds#{vin}")

    app.router.add_get("/api/plans", overview)
    app.router.add_get("/api/plans/{vin}", one)
    app.router.add_put("/api/plans/{vin}", put)
    app.router.add_delete("/api/plans/{vin}", delete)
    app.router.add_get("/api/plans/{vin}/what-if", what_if)
    app.router.add_get("/plans", page)
    app.router.add_post("/plans/{vin}", form)


def _quote(text: str) -> str:
    from urllib.parse import quote_plus
    return quote_plus(text[:200])
