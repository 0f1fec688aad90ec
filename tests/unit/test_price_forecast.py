"""The price exporter's forecast, assembled as its process does it and polled against the simulator:
day-ahead hours first, the hour-of-week profile of the lookback's billed prices after them, and the
fallback when the day-ahead feed fails."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from billing.forecast import hour_of_week_profile
from exporters import price
from servicekit.config import load
from servicekit.runtime import PartsContext
from simulator.testing import Harness, simulate
from testkit.exposition import parse
from testkit.golden import promtool_problems

CENTRAL = ZoneInfo("America/Chicago")
LOG = logging.getLogger("test-price-forecast")
COMED = '{provider="comed"}'
LOOKBACK_DAYS = 3


def scenario(start: str, **prices: object) -> dict:
    return {"start": start, "chargers": [{"name": "garage", "serial": "PGT00000000001"}],
            "prices": {"history_days": LOOKBACK_DAYS + 1, **prices}}


def central(*fields: int) -> float:
    return datetime(*fields, tzinfo=CENTRAL).timestamp()


class Exporter:
    """price-exporter's parts on the simulator's clock; `poll()` runs every poller once, `scrape()` renders."""

    def __init__(self, h: Harness) -> None:
        config = load({"price": {"base_url": h.url}, "smart_charging": {"lookback_days": LOOKBACK_DAYS}}, {}, {})
        self.registry = CollectorRegistry()
        context = PartsContext(h.session, self.registry, lambda: None, lambda target: None)
        self.parts = price.parts_factory(config, LOG, clock=h.clock.now)(context)
        [self.target] = self.parts.targets

    async def poll(self, *endpoints: str) -> None:
        pollers = self.target.pollers
        await asyncio.gather(*(pollers[name].poll_once() for name in endpoints or pollers))

    def scrape(self) -> str:
        return generate_latest(self.registry).decode()


def forecast_of(found: dict[str, float]) -> list[float]:
    values = {int(key.split('hours_ahead="')[1].split('"')[0]): value for key, value in found.items()
              if key.startswith("electricity_price_forecast_cents_per_kwh{")}
    assert sorted(values) == list(range(len(values)))
    return [values[i] for i in range(len(values))]


async def truth(h: Harness, start: float, end: float) -> dict:
    _, body = await h.get_json(f"/sim/truth?prices_from={int(start)}&prices_to={int(end)}", auth=False)
    return body


async def inject(h: Harness, spec: dict) -> None:
    status, body = await h.post_json("/sim/faults", spec)
    assert status == 201, body


async def test_after_half_past_four_the_forecast_is_day_ahead_until_tomorrow_23h_then_the_profile() -> None:
    async with simulate(scenario("2025-07-14T17:02:00-05:00")) as h:   # Monday; the latest price ends 17:00
        exporter = Exporter(h)
        await exporter.poll()
        text = exporter.scrape()
        known = await truth(h, central(2025, 7, 14, 17), central(2025, 7, 16, 17))
    found = parse(text)
    start = central(2025, 7, 14, 17)
    assert found[f"electricity_price_forecast_start_timestamp_seconds{COMED}"] == start
    # today's hours to 22:00, 23:00 (label 0 of tomorrow), tomorrow's to 22:00: 6 + 1 + 23
    assert found[f"electricity_price_forecast_day_ahead_prices{COMED}"] == 30
    forecast = forecast_of(found)
    day_ahead = {d["start"]: d["price"] for d in known["day_ahead"]}
    assert len(forecast) == 48 and forecast[:30] == [day_ahead[start + 3600 * i] for i in range(30)]
    assert f"electricity_price_cents_per_kwh{COMED}" in found
    assert found['electricity_price_upstream_requests_total{endpoint="daynexttomorrow",outcome="success"}'] == 1
    assert promtool_problems(text) == ""


async def test_before_half_past_four_only_todays_hours_are_day_ahead() -> None:
    async with simulate(scenario("2025-07-14T12:02:00-05:00")) as h:
        exporter = Exporter(h)
        await exporter.poll()
        found = parse(exporter.scrape())
    assert found[f"electricity_price_forecast_start_timestamp_seconds{COMED}"] == central(2025, 7, 14, 12)
    assert found[f"electricity_price_forecast_day_ahead_prices{COMED}"] == 11    # 12:00 .. 22:00


async def test_day_ahead_failing_falls_back_to_the_profile_and_the_price_stays(caplog) -> None:
    caplog.set_level(logging.INFO, LOG.name)
    async with simulate(scenario("2025-07-14T17:02:00-05:00")) as h:
        await inject(h, {"target": "comed/daynext*", "kind": "status", "status": 503})
        exporter = Exporter(h)
        await exporter.poll()
        await exporter.poll("day_ahead")                       # a second failure: no second log line
        found = parse(exporter.scrape())
        known = await truth(h, central(2025, 7, 11, 17), central(2025, 7, 14, 17))
    assert found[f"electricity_price_forecast_day_ahead_prices{COMED}"] == 0
    assert found[f"electricity_price_cents_per_kwh{COMED}"] == known["prices"][-1]["price"]
    assert found[f"electricity_price_up{{target=\"comed\"}}"] == 1
    assert found['electricity_price_upstream_requests_total{endpoint="daynexttoday",outcome="server_error"}'] == 2
    # the fallback: each hour at the mean billed price of its weekday and hour over the 3-day lookback
    prices = {p["t"]: p["price"] for p in known["prices"]}
    ends = range(int(central(2025, 7, 11, 18)), int(central(2025, 7, 14, 17)) + 1, 3600)
    billed = [(end, sum(prices[end - 300 * k] for k in range(12)) / 12) for end in ends]
    profile = hour_of_week_profile(billed, CENTRAL)
    forecast = forecast_of(found)
    start = central(2025, 7, 14, 17)
    for i in (0, 6, 20, 47):   # Monday 17:00 and 23:00, Tuesday 13:00 (no Tuesday: the same hour on Fri-Mon)
        local = datetime.fromtimestamp(start + 3600 * i, CENTRAL)
        same_hour = [v for (_, hour), v in profile.items() if hour == local.hour]
        expected = profile.get((local.weekday(), local.hour), sum(same_hour) / len(same_hour))
        assert forecast[i] == pytest.approx(expected, abs=1e-4), i
    failures = [r for r in caplog.records if r.name == LOG.name and r.levelno == logging.WARNING]
    assert len(failures) == 1 and "comed day_ahead failed (server_error)" in failures[0].getMessage()


async def test_the_last_good_day_ahead_prices_stay_while_the_feed_fails() -> None:
    async with simulate(scenario("2025-07-14T17:02:00-05:00")) as h:
        exporter = Exporter(h)
        await exporter.poll()
        await inject(h, {"target": "comed/daynext*", "kind": "malformed"})
        h.advance(3600)
        await exporter.poll("current", "day_ahead")
        found = parse(exporter.scrape())
    assert found['electricity_price_upstream_requests_total{endpoint="daynexttoday",outcome="bad_payload"}'] == 1
    assert found[f"electricity_price_forecast_start_timestamp_seconds{COMED}"] == central(2025, 7, 14, 18)
    assert found[f"electricity_price_forecast_day_ahead_prices{COMED}"] == 29   # one hour of them has passed


async def test_no_day_ahead_and_no_history_exports_no_forecast() -> None:
    async with simulate(scenario("2025-07-14T17:00:00-05:00", history_days=0)) as h:
        await inject(h, {"target": "comed/daynext*", "kind": "status", "status": 500})
        exporter = Exporter(h)
        await exporter.poll()
        text = exporter.scrape()
    found = parse(text)
    assert f"electricity_price_cents_per_kwh{COMED}" in found
    assert not [key for key in found if key.startswith("electricity_price_forecast")]
    assert "# TYPE electricity_price_forecast_cents_per_kwh gauge" in text   # the family, without samples
