"""ComEd Hourly Pricing API (`/api?type=5minutefeed`, `type=currenthouraverage`).

Quirks owned here (shared/upstream/electricity-price-apis.md): JSON served as text/html; newest
entry first (we sort); `millisUTC` and `price` are strings; prices in cents/kWh and may be
negative; an empty list means "no data", never a zero price; `datestart`/`dateend` are Central
wall-clock `YYYYMMDDhhmm`, inclusive at both ends.

Interval convention (ComEd does not document it): a price stamped T covers (T - 5 min, T], the
interval *ending* at T, like the utility's "hour ending" labels.

Day-ahead (predicted hourly) prices, `/rrtp/ServletFeed?type=daynexttoday&date=YYYYMMDD` and
`type=daynexttomorrow&date=YYYYMMDD` (undocumented; shared/upstream/electricity-price-apis.md 1.8):
- The body is text, not JSON: Highcharts pairs `[[Date.UTC(2025,6,15,0,0,0), 2.1], ...]`, cents per
  kWh. Despite its name `Date.UTC(...)` is a **Central wall-clock** label and its month is 0-based.
- **Hour convention: a pair labelled hour h is the price of the hour ENDING at h** (wall clock of
  the label's day), i.e. the hour [h - 1, h). Source: the `comed-hourly-pricing` package (0.1.0)
  reads ComEd's hourly tables as "hour ending" ("1:00 AM covers 12:00 AM to 1:00 AM"; its 12:00 AM
  row ends the previous day's last hour). Most public clients that parse these pairs read them the
  same way; one reads them as hour starting. Hour ending is also the convention of PJM, of ComEd's
  bills and of the 5-minute feed above. So day D's feed, labels 0..23, covers the hours ending at
  D 00:00 .. D 23:00 (the first is D-1's last hour), and the hour 23:00-24:00 of D comes as label 0
  of D+1.
- Clock changes: in autumn the label 1 appears twice, the first ending at 1:00 CDT, the second at
  1:00 CST; in spring the label 2 is missing. Every hour we return lasts 3600 s (a spring day has 23,
  an autumn day 25). A label that names no wall-clock time (2 a.m. in spring), or repeats without a
  clock change, makes the whole answer a `BadPayload`: a shifted hour would be silently wrong.
- **Which date is sent:** the package sends no date for the next-day feed and labels its rows with
  tomorrow's Central date, i.e. the servlet answers "tomorrow" relative to its own today. We send
  today's Central date with both types (the reference day; tomorrow is the day after it) and trust
  the dates inside the pairs, never the parameter, so a server that ignores it reads the same.
- `daynexttomorrow` is empty (`[]` or a blank body) until about 16:30 Central the day before: that
  is "not yet published", an empty list, not an error.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from servicekit.errors import BadPayload
from servicekit.upstream import Upstream

CENTRAL = ZoneInfo("America/Chicago")
INTERVAL_S = 300.0
HOUR_S = 3600.0
DAY_AHEAD_TODAY = "daynexttoday"
DAY_AHEAD_TOMORROW = "daynexttomorrow"


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


@dataclass(frozen=True)
class HourPrice:
    start: float     # Unix seconds: the start of the clock hour (3600 s) the predicted price covers
    cents: float     # predicted supply price, cents per kWh


# One pair: [Date.UTC(y, m0, d, h, mi, s), price]; the price token is read by float() below.
_PAIR = re.compile(r"\[\s*Date\.UTC\(\s*(\d{4})\s*,\s*(\d{1,2})\s*,\s*(\d{1,2})\s*,\s*(\d{1,2})\s*,"
                   r"\s*(\d{1,2})\s*,\s*(\d{1,2})\s*\)\s*,\s*([^\s,\[\]]+)\s*\]")
_SEPARATOR = re.compile(r"\s*,\s*")


def _pairs(text: str, endpoint: str) -> list[tuple[tuple[int, ...], str]]:
    """The (date fields, price token) of every pair; anything but a well-formed list is a BadPayload."""
    body = text.strip()
    if not body:
        return []
    if not (body.startswith("[") and body.endswith("]")):
        raise BadPayload(f"{endpoint}: expected a list of [Date.UTC(...), price] pairs")
    inner, position, pairs = body[1:-1].strip(), 0, []
    while position < len(inner):
        match = _PAIR.match(inner, position)
        if match is None:
            raise BadPayload(f"{endpoint}: unreadable pair at character {position + 1}: {inner[position:position + 40]!r}")
        pairs.append((tuple(int(g) for g in match.groups()[:6]), match.group(7)))
        position = match.end()
        if position < len(inner):
            separator = _SEPARATOR.match(inner, position)
            if separator is None or separator.end() == position or separator.end() >= len(inner):
                raise BadPayload(f"{endpoint}: expected a comma between pairs at character {position + 1}")
            position = separator.end()
    return pairs


def _wall(fields: tuple[int, ...], endpoint: str) -> datetime:
    """The naive Central wall-clock time a label names (month 0-based; hour 24 is the next midnight)."""
    year, month0, day, hour, minute, second = fields
    try:
        if minute or second or not 0 <= hour <= 24:
            raise ValueError("not a clock hour")
        return datetime(year, month0 + 1, day) + timedelta(hours=hour)
    except ValueError as error:
        raise BadPayload(f"{endpoint}: invalid hour label Date.UTC{fields} ({error})") from None


def _hour_end(wall: datetime, occurrence: int, endpoint: str) -> float:
    """Unix time of a wall-clock hour label, the hour's end; the second occurrence of the autumn
    1 a.m. is the later (CST) one."""
    earlier, later = wall.replace(tzinfo=CENTRAL, fold=0), wall.replace(tzinfo=CENTRAL, fold=1)
    if datetime.fromtimestamp(earlier.timestamp(), CENTRAL).replace(tzinfo=None) != wall:
        raise BadPayload(f"{endpoint}: {wall:%Y-%m-%d %H:%M} does not exist on Central clocks (spring forward)")
    repeated = earlier.utcoffset() != later.utcoffset()
    if occurrence > (1 if repeated else 0):
        raise BadPayload(f"{endpoint}: the hour ending {wall:%Y-%m-%d %H:%M} is listed more than "
                         f"{'twice' if repeated else 'once'}")
    return (later if occurrence else earlier).timestamp()


def parse_day_ahead(text: str, endpoint: str) -> list[HourPrice]:
    """Hours sorted by start; an empty or blank answer is an empty list (not yet published); pairs
    whose price is not a number (`null`, `n/a`, NaN) are skipped."""
    seen: dict[datetime, int] = {}
    hours: dict[float, float] = {}
    for fields, token in _pairs(text, endpoint):
        wall = _wall(fields, endpoint)
        occurrence = seen.get(wall, 0)
        seen[wall] = occurrence + 1
        end = _hour_end(wall, occurrence, endpoint)
        try:
            cents = float(token)
        except ValueError:
            continue
        if math.isfinite(cents):
            hours[end - HOUR_S] = cents
    return [HourPrice(start, cents) for start, cents in sorted(hours.items())]


def central_stamp(moment: datetime) -> str:
    return moment.astimezone(CENTRAL).strftime("%Y%m%d%H%M")


class ComEd:
    def __init__(self, upstream: Upstream, base_url: str) -> None:
        self.upstream = upstream
        self.url = f"{base_url.rstrip('/')}/api"
        self.feed_url = f"{base_url.rstrip('/')}/rrtp/ServletFeed"

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

    async def day_ahead_today(self, today: date) -> list[HourPrice]:
        """The day-ahead prices of `today` (a Central date): the hours ending at 00:00 .. 23:00 of it."""
        return await self._day_ahead(DAY_AHEAD_TODAY, today)

    async def day_ahead_tomorrow(self, today: date) -> list[HourPrice]:
        """The day-ahead prices of the day after `today`; empty until about 16:30 Central of `today`."""
        return await self._day_ahead(DAY_AHEAD_TOMORROW, today)

    async def _day_ahead(self, kind: str, today: date) -> list[HourPrice]:
        params = {"type": kind, "date": today.strftime("%Y%m%d")}
        return await self.upstream.fetch_text(kind, self.feed_url, params=params,
                                              parse=lambda text: parse_day_ahead(text, kind))
