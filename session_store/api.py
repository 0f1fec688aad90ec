"""HTTP API of the session store: sessions (JSON, CSV), one session, the one in progress, daily /
weekly / monthly summaries, a WebSocket of live events, and its OpenAPI description.

Bad query parameters get a 400 with a one-line JSON error naming the parameter.
"""
from __future__ import annotations

import asyncio
import csv
import hmac
import io
import json
import math
import weakref
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable
from zoneinfo import ZoneInfo

from aiohttp import WSCloseCode, WSMsgType, web

from billing.tariff import Tariff, Totals, local_day
from servicekit.identifiers import is_vin
from session_store.openapi import OPENAPI
from session_store.records import Session, VehicleChargeRecord, rounded
from session_store.storage import Storage
from session_store.views import SessionsView, SmartChargingControl

MAX_LIMIT = 1000
MAX_VALUES = 100                    # values of one multi-value filter
EVERYTHING = ("All", "$__all", ".*")   # a Grafana multi-select's "All" (the dashboards' allValue is .*)
CSV_FIELDS = ["id", "unit", "din", "vin", "vehicle", "start", "end", "duration_s", "energy_wh", "peak_w", "average_w",
              "meter_energy_wh", "supply_cost", "supply_credit", "delivery_cost", "full_cost", "supply_price_cents",
              "effective_price_cents", "reference_cost", "savings", "cost_final", "gap_s", "source", "reconciliation",
              "metered_energy_wh", "energy_of_record_wh", "target_id", "energy_site_id"]


class BadParameter(ValueError):
    pass


def _time(request: web.Request, name: str, zone: ZoneInfo) -> float | None:
    """Unix seconds, or ISO 8601 (a date or date-time; without an offset, the configured time zone)."""
    text = request.query.get(name)
    if text is None or text == "":
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds):
            return seconds
        raise BadParameter(f"{name}: expected a finite number of Unix seconds, got {text[:40]!r}")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadParameter(f"{name}: expected Unix seconds or ISO 8601 such as 2026-11-01 or "
                           f"2026-11-01T08:00:00-06:00, got {text[:40]!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).timestamp()


def _moment(value: Any, zone: ZoneInfo) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).timestamp()


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name, str(default))
    try:
        value = int(text)
    except ValueError:
        raise BadParameter(f"{name}: expected a whole number from {low} to {high}, got {text[:40]!r}") from None
    if not low <= value <= high:
        raise BadParameter(f"{name}: expected a whole number from {low} to {high}, got {value}")
    return value


def filter_values(request: web.Request, name: str) -> tuple[str, ...] | None:
    """A multi-value filter: repeated (`unit=a&unit=b`) and comma-separated (`unit=a,b`, what Grafana's
    `${unit:csv}` sends) values, any of which matches. None (no filter) when no value is given (empty
    ones are ignored) or one is `All`, `$__all` or `.*`, a multi-select's "All"."""
    values = [part.strip() for text in request.query.getall(name, []) for part in text.split(",")]
    chosen = tuple(value for value in dict.fromkeys(values) if value)
    if not chosen or any(value in EVERYTHING for value in chosen):
        return None
    if len(chosen) > MAX_VALUES:
        raise BadParameter(f"{name}: at most {MAX_VALUES} values, got {len(chosen)}")
    return chosen


def _choice(request: web.Request, name: str, choices: tuple[str, ...], default: str) -> str:
    value = request.query.get(name, default)
    if value not in choices:
        raise BadParameter(f"{name}: expected one of {', '.join(choices)}, got {value[:40]!r}")
    return value


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=json.dumps(data, allow_nan=False, default=str), status=status,
                        content_type="application/json", headers=headers)


def guarded(handler: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
    """A route whose bad query parameters answer 400 with the one-line message naming the parameter."""
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except BadParameter as error:
            return _json({"error": str(error)}, status=400)
    return wrapper


def period_start(moment: datetime, period: str) -> datetime:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def summarise(days: Iterable[Any], period: str, tariff: Tariff, away: Iterable[VehicleChargeRecord] = (),
              zone: ZoneInfo = ZoneInfo("UTC")) -> list[dict[str, Any]]:
    """Totals per local day, ISO week (from Monday) or month, from the stored per-day shares of the
    bills (a session crossing midnight counts in both days). A month is a bill: the fixed and capacity
    charges on top, and its reference (the fixed-price rate) without capacity. Charging away from home
    (`away`: the cars' own charge history, by the local day it started) is beside the bill, not in it."""
    sums: dict[str, dict[str, Any]] = {}

    def bucket_of(day: str) -> dict[str, Any]:
        key = period_start(datetime.fromisoformat(day), period).date().isoformat()
        return sums.setdefault(key, {"sessions": 0, "energy_wh": 0.0, "supply": 0.0, "delivery": 0.0,
                                     "reference": 0.0, "has_reference": False, "final": True,
                                     "away": 0, "away_wh": 0.0, "away_cost": 0.0})
    for charge in away:
        bucket = bucket_of(local_day(charge.start, zone).isoformat())
        bucket["away"] += 1
        bucket["away_wh"] += charge.energy_added_wh or 0.0
        bucket["away_cost"] += charge.cost or 0.0
    for row in days:
        bucket = bucket_of(row["day"])
        bucket["sessions"] += row["sessions"]
        for name, column in (("energy_wh", "energy_wh"), ("supply", "supply_cost"), ("delivery", "delivery_cost")):
            bucket[name] += row[column]
        if row["reference_cost"] is not None:
            bucket["reference"] += row["reference_cost"] - row["delivery_cost"]
            bucket["has_reference"] = True
        bucket["final"] = bucket["final"] and bool(row["final"])
    monthly = period == "month"
    out = []
    for key, bucket in sums.items():
        totals = Totals(bucket["energy_wh"], bucket["supply"], bucket["delivery"],
                        bucket["reference"] if bucket["has_reference"] else None, bucket["final"],
                        tariff.monthly_fixed if monthly else 0.0, tariff.capacity_per_month if monthly else 0.0)
        kwh = totals.energy_wh / 1000
        out.append(rounded({"period_start": key, "sessions": bucket["sessions"], "energy_kwh": kwh,
                    "supply_cost": totals.supply, "delivery_cost": totals.delivery, "charging_cost": totals.charging,
                    "supply_price_cents": totals.supply / kwh * 100 if kwh else None,
                    "effective_price_cents": totals.charging / kwh * 100 if kwh else None,
                    "fixed_charge": totals.fixed if monthly else None,
                    "capacity_charge": totals.capacity if monthly else None,
                    "total_cost": totals.total, "reference_cost": totals.reference, "savings": totals.savings,
                    "final": totals.final, "away_charges": bucket["away"], "away_energy_kwh": bucket["away_wh"] / 1000,
                    "away_cost": bucket["away_cost"]}))
    return sorted(out, key=lambda row: row["period_start"])


class Events:
    """Fan-out of live events to WebSocket clients; a slow or gone client never blocks the loop."""

    def __init__(self) -> None:
        self.clients: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self.pending: list[dict[str, Any]] = []

    def publish(self, event: dict[str, Any]) -> None:
        self.pending.append(event)

    async def close(self) -> None:
        """Say goodbye to every client: an open WebSocket would otherwise hold shutdown until it is killed."""
        for client in list(self.clients):
            await client.close(code=WSCloseCode.GOING_AWAY, message=b"session store shutting down")

    async def flush(self) -> None:
        events, self.pending = self.pending, []
        for client in list(self.clients):
            for event in events:
                try:
                    await client.send_str(json.dumps(event, default=str))
                except (ConnectionError, RuntimeError):
                    self.clients.discard(client)
                    break


def add_routes(app: web.Application, storage: Storage, sessions: Callable[[], SessionsView | None], tariff: Tariff,
               events: Events, zone: ZoneInfo, hello: Callable[[], dict[str, Any]] = dict) -> None:
    """The session routes: stored sessions from `storage`, the ones in progress from the latest view;
    `hello` adds what a WebSocket client is told first besides them (every car's state)."""
    def in_progress() -> list[dict[str, Any]]:
        view = sessions()
        return [session.public() for session in view.in_progress] if view else []

    def filters(request: web.Request) -> dict[str, Any]:
        start, end = _time(request, "from", zone), _time(request, "to", zone)
        if start is not None and end is not None and end <= start:
            raise BadParameter("to: must be after from")
        return {"start": start, "end": end, "unit": filter_values(request, "unit"),
                "vehicle": filter_values(request, "vehicle")}

    async def list_sessions(request: web.Request) -> web.StreamResponse:
        chosen = filters(request)
        fmt = _choice(request, "format", ("json", "csv"), "json")
        limit = _int(request, "limit", 100, 1, MAX_LIMIT)
        offset = _int(request, "offset", 0, 0, 10**9)
        rows = storage.sessions(**chosen, limit=limit, offset=offset)
        if fmt == "csv":
            return csv_response(rows, "sessions.csv")
        return _json({"total": storage.count(**chosen), "limit": limit, "offset": offset,
                      "sessions": [s.public() for s in rows]})

    async def export(request: web.Request) -> web.StreamResponse:
        """Streamed a thousand sessions at a time, yielding to the loop in between: an export of every
        session neither holds them all in memory nor stalls scrapes and other requests."""
        chosen = filters(request)
        as_json = _choice(request, "format", ("csv", "json"), "csv") == "json"
        response = web.StreamResponse(headers={
            "Content-Type": "application/json; charset=utf-8" if as_json else "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="sessions-export.{"json" if as_json else "csv"}"'})
        await response.prepare(request)
        first = True
        if not as_json:
            await response.write(csv_text([], header=True).encode())
        for batch in storage.iter_sessions(**chosen):
            if as_json:
                text = ",".join(json.dumps(s.public(), allow_nan=False, default=str) for s in batch)
                await response.write((("[" if first else ",") + text).encode())
            else:
                await response.write(csv_text(batch, header=False).encode())
            first = False
            await asyncio.sleep(0)
        if as_json:
            await response.write(b"[]" if first else b"]")
        await response.write_eof()
        return response

    async def one(request: web.Request) -> web.StreamResponse:
        try:
            session_id = int(request.match_info["id"])
        except ValueError:
            raise BadParameter(f"id: expected a whole number, got {request.match_info['id'][:40]!r}") from None
        # beyond SQLite's INTEGER range no session exists (and sqlite3 would raise OverflowError: a 500)
        session = storage.session(session_id) if -2**63 <= session_id < 2**63 else None
        return _json(session.public(lines=True)) if session else _json(
            {"error": f"no session {str(session_id)[:40]}"}, status=404)

    async def current(request: web.Request) -> web.StreamResponse:
        return _json({"sessions": in_progress()})

    async def summary(request: web.Request) -> web.StreamResponse:
        period = _choice(request, "period", ("day", "week", "month"), "day")
        chosen = filters(request)
        away = [] if chosen["unit"] else storage.vehicle_charges(
            vins=chosen["vehicle"] or (), vehicles=chosen["vehicle"] or (), away=True, start=chosen["start"],
            end=chosen["end"])
        if chosen["start"] is not None:
            away = [c for c in away if c.start >= chosen["start"]]   # counted on the day it started, as sessions
        return _json({"period": period, "time_zone": zone.key,
                      "summaries": summarise(storage.day_totals(**chosen), period, tariff, away, zone)})

    async def openapi(request: web.Request) -> web.StreamResponse:
        return _json(OPENAPI)

    async def websocket(request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse(heartbeat=30)
        await socket.prepare(request)
        events.clients.add(socket)
        await socket.send_str(json.dumps({"type": "hello", "in_progress": in_progress(), **hello()}, default=str))
        async for message in socket:
            if message.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
        events.clients.discard(socket)
        return socket

    app.router.add_get("/api/sessions", guarded(list_sessions))
    app.router.add_get("/api/sessions/current", guarded(current))
    app.router.add_get("/api/sessions/{id}", guarded(one))
    app.router.add_get("/api/export", guarded(export))
    app.router.add_get("/api/summary", guarded(summary))
    app.router.add_get("/api/openapi.json", openapi)
    app.router.add_get("/api/events", websocket)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (a vehicle named "=HYPERLINK(...)") gets a
    leading apostrophe, as OWASP advises; numbers, negative costs included, stay numbers."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_START) else value


def csv_text(rows: list[Session], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
    if header:
        writer.writeheader()
    for session in rows:
        writer.writerow({key: spreadsheet_safe(value) for key, value in session.public().items()})
    return buffer.getvalue()


def csv_response(rows: list[Session], filename: str) -> web.Response:
    return web.Response(text=csv_text(rows, header=True), content_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})


MAX_OVERRIDE_S = 30 * 86400


def authorized(request: web.Request, token: Any, what: str, form_token: Any = None) -> web.Response | None:
    """None when the request carries the API token (a bearer header, or `form_token` from a page's form),
    else the error answer: 403 when no token is configured (`what` are disabled), 401 otherwise."""
    if token is None:
        return _json({"error": f"{what} are disabled: set SMART_CHARGING_API_TOKEN in .secrets"}, status=403)
    expected = token.reveal().encode()
    sent = request.headers.get("Authorization", "")
    if hmac.compare_digest(sent.encode(), b"Bearer " + expected) or (
            isinstance(form_token, str) and hmac.compare_digest(form_token.encode(), expected)):
        return None
    return _json({"error": "send the SMART_CHARGING_API_TOKEN as 'Authorization: Bearer <token>'"},
                 status=401, headers={"WWW-Authenticate": "Bearer"})


def add_smart_charging_routes(app: web.Application, control: SmartChargingControl, storage: Storage, token: Any,
                              zone: ZoneInfo) -> None:
    """Smart charging: its state per vehicle, the action log, and the token-protected override."""

    async def state(request: web.Request) -> web.StreamResponse:
        view = control.view()
        vehicles = [{name: getattr(v, name) for name in v.__dataclass_fields__ if name != "status"}
                    for v in view.vehicles]
        return _json({"dry_run": view.dry_run, "last_evaluation": view.evaluated_at,
                      "market": asdict(view.market) if view.market else None, "vehicles": vehicles})

    async def actions(request: web.Request) -> web.StreamResponse:
        limit = _int(request, "limit", 100, 1, MAX_LIMIT)
        return _json({"actions": [asdict(a) for a in storage.actions(limit, request.query.get("vin") or None)]})

    async def override(request: web.Request) -> web.StreamResponse:
        """POST {"vin": ..., "until": ISO 8601 or Unix seconds}: pause smart charging for that vehicle."""
        denied = authorized(request, token, "overrides")
        if denied is not None:
            return denied
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return _json({"error": "body: expected JSON like {\"vin\": \"5YJ3...\", \"until\": \"2026-11-26T07:00\"}"},
                         status=400)
        if not isinstance(body, dict):
            return _json({"error": "body: expected a JSON object"}, status=400)
        vin = body.get("vin")
        if not isinstance(vin, str) or not is_vin(vin):
            return _json({"error": "vin: expected a 17-character VIN"}, status=400)
        until = _moment(body.get("until"), zone)
        now = control.now()
        if until is None or not now < until <= now + MAX_OVERRIDE_S:
            return _json({"error": "until: expected a moment within the next 30 days (ISO 8601 or Unix seconds)"},
                         status=400)
        record = control.set_override(vin.upper(), until)
        return _json({"vin": record.vin, "override_until": until})

    app.router.add_get("/api/smart-charging", state)
    app.router.add_post("/api/smart-charging/override", override)
    app.router.add_get("/api/smart-charging/actions", guarded(actions))
