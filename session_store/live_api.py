"""The live API: every Wall Connector unit and what it is doing (`/api/chargers`), every car with its
state and last sessions (`/api/vehicles`), and the prices now and ahead (`/api/prices`).

Each answer is built from frozen views the loops left (the sessions evaluation's `SessionsView`, the
`live` poller's `LiveView`, smart charging's view) and, for a car's sessions, the storage: a request
never waits on Prometheus. What is missing (Prometheus unreachable, an exporter not running, smart
charging off) is null with its reason in `errors`, never a 500.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

from aiohttp import web

from servicekit.config import Config
from servicekit.poller import Health
from session_store.api import _int, _json, filter_values, guarded
from session_store.live import FLEET, LiveView, vehicle_states
from session_store.records import rounded
from session_store.storage import Storage
from session_store.views import SessionsView, SmartChargingView
from upstreams.tessie import vehicle_name

SESSIONS_PER_VEHICLE = 5
MAX_SESSIONS_PER_VEHICLE = 100


def _when(moment: float | None) -> str:
    return "never" if moment is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def reading_errors(live: LiveView | None, health: Health | None, what: str) -> list[str]:
    """Why the live readings may be missing or old: Prometheus not read yet, or failing since the last read.
    Only the outcome is named (an error's text could carry Prometheus's URL, and a URL credentials)."""
    if health is not None and not health.up and health.failures:
        return [f"Prometheus unreachable ({health.last_outcome}): {what} as of the last good read, "
                f"{_when(live.taken_at if live else None)}"]
    if live is None:
        return [f"Prometheus not read yet: {what} unknown until the first read"]
    return []


def unit_state(power_w: float | None, session_open: bool, connected: bool | None, threshold_w: float) -> str:
    """charging / plugged_in / idle / unknown, as the session state machine sees the unit: power above the
    session threshold is charging; a session still open below it (its grace period) or a vehicle
    connected is plugged in; no vehicle, or power with no link series to say so, is idle."""
    if power_w is not None and power_w > threshold_w:
        return "charging"
    if session_open and power_w is not None:
        return "plugged_in"
    if connected is True:
        return "plugged_in"
    if connected is False:
        return "idle"
    return "idle" if power_w is not None else "unknown"


def chargers_json(sessions: SessionsView | None, live: LiveView | None, source: str | None,
                  names: Mapping[str, str], threshold_w: float, stale_s: float, now: float) -> list[dict[str, Any]]:
    """Every unit the sessions loop knows (seen in the power series or configured) or whose link series
    Prometheus has (of the session source once chosen), idle ones included, sorted by name."""
    links = {link.unit: link for link in (live.links if live else ()) if source is None or link.source == source}
    open_ = {s.unit: s for s in (sessions.in_progress if sessions else ())}
    power = {unit: (t, watts) for unit, t, watts in (sessions.power if sessions else ())}
    units = set(sessions.units if sessions else ()) | set(links) | set(open_)
    out = []
    for unit in sorted(units):
        link, session = links.get(unit), open_.get(unit)
        t, watts = power.get(unit, (None, None))
        fresh = watts if t is not None and now - t <= stale_s else None
        vin = session.vin if session and session.vin else (link.vin if link else None)
        vehicle = session.vehicle if session and session.vehicle else (
            vehicle_name(names, vin, link.label if link else None) if vin else None)
        din = link.din if link else (session.key if session and source == FLEET else None)
        out.append({"unit": unit, "din": din,
                    "state": unit_state(fresh, session is not None, link.connected if link else None, threshold_w),
                    "power_w": None if fresh is None else round(fresh, 1), "vin": vin, "vehicle": vehicle,
                    "session": None if session is None else {
                        "start": round(session.start, 3), "duration_s": round(max(0.0, now - session.start), 3),
                        "energy_wh": round(session.energy_wh, 1), "cost": round(session.estimated_cost, 6)}})
    return out


def vehicle_errors(live: LiveView | None, health: Health | None) -> list[str]:
    errors = reading_errors(live, health, "vehicle state")
    if live is not None and not live.vehicle_targets:
        errors.append("no vehicle-exporter data in Prometheus (tesla_vehicle_up absent: vehicle-exporter not "
                      "running or not scraped): battery, charging state and connectivity unknown")
    for target, up in sorted((live.vehicle_targets if live else {}).items()):
        if not up:
            errors.append(f"vehicle-exporter target {target}: its last poll failed or its data is stale "
                          "(tesla_vehicle_up 0): values are the last known, see data_age_s")
    return errors


def away_sessions(storage: Storage, vin: str, limit: int) -> list[dict[str, Any]]:
    """The car's last charges away from home (the cars' own charge history, as /api/charges serves them)."""
    return [charge.public() for charge in storage.vehicle_charges(vins=[vin], away=True, limit=limit)]


def vehicles_json(states: Mapping[str, dict[str, Any]], storage: Storage, limit: int,
                  wanted: Sequence[str] | None, now: float) -> list[dict[str, Any]]:
    """Each car's state with its age, and its last `limit` wall sessions (newest first) by VIN; `wanted`
    keeps the cars named (by name or VIN), any of them."""
    out = []
    for vin, state in states.items():
        if wanted is not None and vin not in wanted and state["vehicle"] not in wanted:
            continue
        data_at = state["data_at"]
        out.append({**{k: v for k, v in state.items() if k not in ("data_at", "plugged_in")},
                    "plugged_in": state["plugged_in"],
                    "data_age_s": None if data_at is None else round(max(0.0, now - data_at), 3),
                    "sessions": [s.public() for s in storage.sessions(vin=vin, limit=limit)] if limit else [],
                    "away_charges": away_sessions(storage, vin, limit)})
    return out


def prices_json(live: LiveView | None, health: Health | None, smart: SmartChargingView | None,
                config: Config, now: float) -> dict[str, Any]:
    """The prices now (5-minute, the hour's average and projection), smart charging's percentiles and
    thresholds, and the forecast per clock hour; each missing part null with its reason."""
    errors = reading_errors(live, health, "prices")
    prices = live.prices if live else None
    if live is not None:
        for value, series, why in (
                (prices.five_minute, "electricity_price_cents_per_kwh", "price-exporter down, stale or not scraped"),
                (prices.hour_average, "electricity_price_hour_average_cents_per_kwh",
                 "the provider's current-hour average is unavailable"),
                (prices.hour_projected, "electricity_price_hour_projected_cents_per_kwh",
                 "no 5-minute price of the hour in progress yet")):
            if value is None:
                errors.append(f"no {series} in Prometheus: {why}")
    settings = config.smart_charging
    percentiles = thresholds = None
    if smart is None:
        errors.append("smart charging is off (smart_charging.enabled): no percentiles or thresholds")
    else:
        percentiles = {"stop": settings.stop_percentile, "resume": settings.resume_percentile,
                       "lookback_days": settings.lookback_days, "signal": settings.signal,
                       "price_rank": smart.market.price_rank if smart.market else None}
        market = smart.market
        if market is None:
            errors.append("smart charging has not evaluated yet: no thresholds")
        elif market.stop_threshold is None or market.resume_threshold is None:
            errors.append("no thresholds: " + ("smart charging could not read Prometheus" if not market.prometheus_ok
                                               else "no price history in Prometheus's lookback"))
        else:
            thresholds = {"stop_cents": round(market.stop_threshold, 4),
                          "resume_cents": round(market.resume_threshold, 4)}
    forecast = None
    if prices is not None and prices.forecast and prices.forecast_start is not None:
        forecast = [{"start": prices.forecast_start + 3600 * hour, "cents": round(cents, 4),
                     "source": "day_ahead" if hour < prices.day_ahead else "profile"}
                    for hour, cents in enumerate(prices.forecast)]
    elif live is not None:
        errors.append("no forecast in Prometheus (electricity_price_forecast_cents_per_kwh): the price exporter "
                      "publishes it once it has the day-ahead prices or a lookback of billed prices")
    return {"as_of": now,
            **rounded({"price_5m_cents": prices.five_minute if prices else None,
                       "hour_average_cents": prices.hour_average if prices else None,
                       "projected_hour_cents": prices.hour_projected if prices else None}),
            "percentiles": percentiles, "thresholds": thresholds, "forecast": forecast, "errors": errors}


def add_live_routes(app: web.Application, config: Config, storage: Storage,
                    sessions: Callable[[], SessionsView | None], live: Callable[[], LiveView | None],
                    live_health: Callable[[], Health | None], smart: Callable[[], SmartChargingView | None],
                    source: Callable[[], str | None], clock: Callable[[], float] = time.time) -> None:
    """/api/chargers, /api/vehicles and /api/prices over the loops' latest views. `source` names the session
    source once chosen (live_status or local): the units' link series of that source are used."""
    names = config.vehicles.names
    stale_s = max(300.0, 4 * config.sessions.evaluation_interval) + config.sessions.settle

    async def chargers(request: web.Request) -> web.StreamResponse:
        wanted = filter_values(request, "unit")
        now = clock()
        rows = chargers_json(sessions(), live(), source(), names, config.sessions.power_threshold_w, stale_s, now)
        return _json({"chargers": [row for row in rows if wanted is None or row["unit"] in wanted], "as_of": now})

    async def vehicles(request: web.Request) -> web.StreamResponse:
        wanted = filter_values(request, "vehicle")
        limit = _int(request, "limit", SESSIONS_PER_VEHICLE, 0, MAX_SESSIONS_PER_VEHICLE)
        now, view = clock(), live()
        states = vehicle_states(view, names, known=names)
        return _json({"vehicles": vehicles_json(states, storage, limit, wanted, now), "as_of": now,
                      "errors": vehicle_errors(view, live_health())})

    async def prices(request: web.Request) -> web.StreamResponse:
        return _json(prices_json(live(), live_health(), smart(), config, clock()))

    app.router.add_get("/api/chargers", guarded(chargers))
    app.router.add_get("/api/vehicles", guarded(vehicles))
    app.router.add_get("/api/prices", guarded(prices))
