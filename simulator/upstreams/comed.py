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
"""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web

from simulator.model import Model
from simulator.prices import INTERVAL_S, format_price
from simulator.upstreams.jsonfmt import dumps

CHICAGO = ZoneInfo("America/Chicago")
BANNER = "Servlet Feed 2.95-SGalertsSync"


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

    return [web.get("/api", api)]
