"""ComEd Hourly Pricing API (`/api?type=5minutefeed`, `type=currenthouraverage`).

Quirks owned here (shared/upstream/electricity-price-apis.md): JSON served as text/html; newest
entry first (we sort); `millisUTC` and `price` are strings; prices in cents/kWh and may be
negative; an empty list means "no data", never a zero price; `datestart`/`dateend` are Central
wall-clock `YYYYMMDDhhmm`, inclusive at both ends.

Interval convention (ComEd does not document it): a price stamped T covers (T - 5 min, T], the
interval *ending* at T, like the utility's "hour ending" labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from servicekit.errors import BadPayload
from servicekit.upstream import Upstream

CENTRAL = ZoneInfo("America/Chicago")
INTERVAL_S = 300.0


@dataclass(frozen=True)
class PricePoint:
    end: float       # Unix seconds: the end of the 5-minute interval the price covers
    cents: float     # supply price, cents per kWh


def parse_feed(body: Any, endpoint: str) -> list[PricePoint]:
    """Entries sorted oldest first; entries whose price is not a number are skipped."""
    if not isinstance(body, list):
        raise BadPayload(f"{endpoint}: expected a JSON array")
    points = {}
    for entry in body:
        if not isinstance(entry, dict):
            continue
        try:
            millis = int(str(entry["millisUTC"]))
            cents = float(str(entry["price"]))
        except (KeyError, ValueError):
            continue
        if cents == cents:
            points[millis / 1000.0] = cents
    return [PricePoint(end, cents) for end, cents in sorted(points.items())]


def central_stamp(moment: datetime) -> str:
    return moment.astimezone(CENTRAL).strftime("%Y%m%d%H%M")


class ComEd:
    def __init__(self, upstream: Upstream, base_url: str) -> None:
        self.upstream = upstream
        self.url = f"{base_url.rstrip('/')}/api"

    async def five_minute(self, start: datetime | None = None, end: datetime | None = None) -> list[PricePoint]:
        """The last 24 hours, or every 5-minute price between start and end (inclusive)."""
        params = {"type": "5minutefeed"}
        if start is not None and end is not None:
            params.update(datestart=central_stamp(start), dateend=central_stamp(end))
        endpoint = "5minutefeed_range" if "datestart" in params else "5minutefeed"
        return await self.upstream.fetch_json(endpoint, self.url, params=params,
                                              parse=lambda body: parse_feed(body, endpoint))

    async def current_hour_average(self) -> PricePoint | None:
        """Running mean of this hour's 5-minute prices so far, stamped with the latest one included."""
        points = await self.upstream.fetch_json("currenthouraverage", self.url, params={"type": "currenthouraverage"},
                                                parse=lambda body: parse_feed(body, "currenthouraverage"))
        return points[-1] if points else None
