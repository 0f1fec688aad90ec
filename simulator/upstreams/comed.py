"""ComEd Hourly Pricing API: ``GET /api?type=5minutefeed[&datestart=&dateend=]`` and
``GET /api?type=currenthouraverage``.

Wire format as the real host: a JSON array, newest first, of
``{"millisUTC": "<epoch ms>", "price": "<cents, one decimal>"}`` (both strings), served with
``Content-Type: text/html``. ``datestart``/``dateend`` are ``YYYYMMDDhhmm`` America/Chicago wall
clock, inclusive at both ends (on the repeated fall-back hour the first occurrence is used).
``currenthouraverage`` is one element: the running mean of the published prices of the clock
hour the newest price belongs to, stamped with that newest price's ``millisUTC``. Interval
semantics: ``millisUTC`` is the END of the 5-minute interval (see ``simulator.prices``). An
unknown ``type`` answers 200 with the servlet banner text.

Day-ahead prices: ``GET /rrtp/ServletFeed?type=daynexttoday&date=YYYYMMDD`` (that Central day) and
``type=daynexttomorrow&date=YYYYMMDD`` (the day after ``date``; ``date`` defaults to the simulated
Central today for both). Text, as the real servlet: Highcharts pairs
``[[Date.UTC(2025,6,15,0,0,0), 2.1], [Date.UTC(2025,6,15,1,0,0), 2.0], ...]`` with a 0-based month
and a Central wall-clock hour that is the hour's END ("hour ending", as upstreams.comed reads it):
day D lists the hours ending at D 00:00 .. D 23:00, 24 of them, 23 in spring (no 2 a.m.) and 25 in
autumn (1 a.m. twice, CDT then CST). A day is published from 16:30 Central of the day before
(simulated time); before that, and for later days, the answer is ``[]``. Prices: ``PriceSeries.
day_ahead_hour``. A bad ``date`` answers ``[]``.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from simulator.model import Model
from simulator.prices import INTERVAL_S, format_price
from simulator.upstreams.jsonfmt import dumps

CHICAGO = ZoneInfo("America/Chicago")
BANNER = "Servlet Feed 2.95-SGalertsSync"
SERVLET_PATH = "/rrtp/ServletFeed"
PUBLISHED_AT = (16, 30)  # tomorrow's day-ahead prices appear at 16:30 Central the day before


def feed_entries(points: list[tuple[int, float]]) -> list[dict[str, str]]:
    return [{"millisUTC": str(t * 1000), "price": format_price(p)} for t, p in points]


def parse_central(stamp: str) -> float:
    """``YYYYMMDDhhmm`` in Chicago wall-clock time -> unix seconds."""
    if len(stamp) != 12 or not stamp.isdigit():
        raise ValueError(stamp)
    return datetime.strptime(stamp, "%Y%m%d%H%M").replace(tzinfo=CHICAGO).timestamp()


def five_minute_feed(model: Model, datestart: str | None, dateend: str | None) -> list[dict[str, str]]:
    now = model.now
    if datestart and dateend:
        try:
            start, end = parse_central(datestart), parse_central(dateend)
        except ValueError:
            return []
        return feed_entries(model.prices.published(now, start, end))
    latest = model.prices.latest_published(now)
    if latest is None:
        return []
    return feed_entries(model.prices.published(now, latest - 86400 + INTERVAL_S, latest))


def current_hour_average(model: Model) -> list[dict[str, str]]:
    latest = model.prices.latest_published(model.now)
    if latest is None:
        return []
    hour_end = int(math.ceil(latest / 3600.0)) * 3600
    points = model.prices.published(model.now, hour_end - 3600 + INTERVAL_S, latest)
    mean = sum(p for _, p in points) / len(points)
    return [{"millisUTC": str(latest * 1000), "price": format_price(mean)}]


def central_today(now: float) -> date:
    return datetime.fromtimestamp(now, CHICAGO).date()


def day_ahead_published(now: float, day: date) -> bool:
    """Day D's prices are out from 16:30 Central on D - 1 (simulated time)."""
    local = datetime.fromtimestamp(now, CHICAGO)
    return day <= local.date() or (day == local.date() + timedelta(days=1)
                                   and (local.hour, local.minute) >= PUBLISHED_AT)


def day_ahead_hours(model: Model, day: date) -> list[tuple[datetime, float]]:
    """(Central wall-clock end of the hour, day-ahead price) of the hours ending on ``day`` at 00:00 .. 23:00."""
    midnight = int(datetime(day.year, day.month, day.day, tzinfo=CHICAGO).timestamp())
    following = day + timedelta(days=1)
    next_midnight = int(datetime(following.year, following.month, following.day, tzinfo=CHICAGO).timestamp())
    return [(datetime.fromtimestamp(end, CHICAGO), model.prices.day_ahead_hour(end - 3600))
            for end in range(midnight, next_midnight, 3600)]


def highcharts(hours: list[tuple[datetime, float]]) -> str:
    """``[[Date.UTC(y,m0,d,h,0,0), price], ...]``: wall-clock fields, month 0-based, one decimal."""
    pairs = (f"[Date.UTC({t.year},{t.month - 1},{t.day},{t.hour},0,0), {format_price(p)}]" for t, p in hours)
    return "[" + ", ".join(pairs) + "]"


def day_ahead_feed(model: Model, kind: str, date_param: str | None) -> str:
    try:
        day = datetime.strptime(date_param, "%Y%m%d").date() if date_param else central_today(model.now)
    except ValueError:
        return "[]"
    if kind == "daynexttomorrow":
        day += timedelta(days=1)
    if not day_ahead_published(model.now, day):
        return "[]"
    return highcharts(day_ahead_hours(model, day))


def html_json(payload: object) -> web.Response:
    return web.Response(body=dumps(payload), content_type="text/html", charset="utf-8")


def routes(model: Model) -> list[web.RouteDef]:
    async def api(request: web.Request) -> web.Response:
        kind = request.query.get("type", "")
        model.sync()  # scheduled price events apply as time passes
        if kind == "5minutefeed":
            return html_json(five_minute_feed(model, request.query.get("datestart"), request.query.get("dateend")))
        if kind == "currenthouraverage":
            return html_json(current_hour_average(model))
        return web.Response(text=BANNER, content_type="text/html")

    async def servlet_feed(request: web.Request) -> web.Response:
        kind = request.query.get("type", "")
        model.sync()  # as /api: the clock decides what is published
        if kind in ("daynexttoday", "daynexttomorrow"):
            return web.Response(text=day_ahead_feed(model, kind, request.query.get("date")), content_type="text/html")
        return web.Response(text=BANNER, content_type="text/html")

    return [web.get("/api", api), web.get(SERVLET_PATH, servlet_feed)]
