"""ComEd's day-ahead (predicted hourly) prices: the client's parsing (hour ending, Central wall clock,
clock changes, not yet published), the simulator's feed and its forecast error, and the provider
against the simulator with its faults."""
from __future__ import annotations

import math
import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from servicekit.errors import BadPayload, NoData, ServerError
from servicekit.upstream import Upstream, UpstreamMetrics
from simulator.config import PriceConfig
from simulator.prices import PriceSeries
from simulator.scenario import load_scenario
from simulator.schema import ScenarioError
from simulator.testing import Harness, simulate
from upstreams.comed import ComEd, HourPrice, parse_day_ahead
from upstreams.price_providers import ComEdProvider

CENTRAL = ZoneInfo("America/Chicago")
ENDPOINTS = ("daynexttoday", "daynexttomorrow")
PAIR = re.compile(r"\[Date\.UTC\((\d+),(\d+),(\d+),(\d+),0,0\), (-?\d+\.\d)\]")


def scenario(start: str, **prices: object) -> dict:
    return {"start": start, "chargers": [{"name": "garage", "serial": "PGT00000000001"}],
            "prices": {"history_days": 2, **prices}}


def central(*fields: int, fold: int = 0) -> float:
    return datetime(*fields, tzinfo=CENTRAL, fold=fold).timestamp()


def starts_local(hours: list[HourPrice]) -> list[str]:
    return [datetime.fromtimestamp(h.start, CENTRAL).strftime("%d %H:%M %Z") for h in hours]


# --- parsing --------------------------------------------------------------------------------------


def test_a_label_is_the_central_wall_clock_end_of_its_hour_with_a_zero_based_month() -> None:
    hours = parse_day_ahead("[[Date.UTC(2025,6,15,0,0,0), 2.1], [Date.UTC(2025,6,15,1,0,0), -0.3],"
                            "[Date.UTC(2025,6,15,23,0,0), 4.0]]", "daynexttoday")
    assert hours == [HourPrice(central(2025, 7, 14, 23), 2.1), HourPrice(central(2025, 7, 15, 0), -0.3),
                     HourPrice(central(2025, 7, 15, 22), 4.0)]


def test_autumn_one_oclock_twice_is_first_cdt_then_cst() -> None:
    text = "[" + ", ".join(f"[Date.UTC(2025,10,2,{h},0,0), {h}.5]" for h in [0, 1, 1, *range(2, 24)]) + "]"
    hours = parse_day_ahead(text, "daynexttoday")
    assert len(hours) == 25 and all(b.start - a.start == 3600 for a, b in zip(hours, hours[1:]))
    assert starts_local(hours)[:4] == ["01 23:00 CDT", "02 00:00 CDT", "02 01:00 CDT", "02 01:00 CST"]
    assert [h.cents for h in hours[1:4]] == [1.5, 1.5, 2.5]   # 1 a.m. CDT ends the hour from 00:00 CDT


def test_spring_two_oclock_is_missing_and_the_day_has_23_hours() -> None:
    text = "[" + ", ".join(f"[Date.UTC(2025,2,9,{h},0,0), 3.0]" for h in [0, 1, *range(3, 24)]) + "]"
    hours = parse_day_ahead(text, "daynexttoday")
    assert len(hours) == 23 and all(b.start - a.start == 3600 for a, b in zip(hours, hours[1:]))
    assert starts_local(hours)[1:3] == ["09 00:00 CST", "09 01:00 CST"]   # ends 01:00 CST, then 03:00 CDT


@pytest.mark.parametrize("text", ["", "  \n", "[]", "[ ]"])
def test_empty_is_not_yet_published_not_an_error(text: str) -> None:
    assert parse_day_ahead(text, "daynexttomorrow") == []


def test_prices_that_are_not_numbers_are_skipped() -> None:
    text = "[[Date.UTC(2025,6,15,1,0,0), null], [Date.UTC(2025,6,15,2,0,0), NaN], [Date.UTC(2025,6,15,3,0,0), 2.0]]"
    assert parse_day_ahead(text, "daynexttoday") == [HourPrice(central(2025, 7, 15, 2), 2.0)]


@pytest.mark.parametrize("text, problem", [
    ("<html><body><h1>503 Service Unavailable</h1></body></html>", "expected a list"),
    ('{"padding":"xxx"}', "expected a list"),
    ("{[[Date.UTC(2025,6,15,1,0,0), 2.0]]", "expected a list"),                  # the simulator's malformed
    ("[[Date.UTC(2025,6,15,1,0,0), 2.0], [Date.UTC(2025,6,15,2,0,0), 2.1]", "unreadable pair"),  # truncated
    ("[[Date.UTC(2025,6,15,1,0,0), 2.0] [Date.UTC(2025,6,15,2,0,0), 2.1]]", "comma"),
    ("[[Date.UTC(2025,12,15,1,0,0), 2.0]]", "invalid hour label"),               # month 12 is the 13th
    ("[[Date.UTC(2025,6,15,1,30,0), 2.0]]", "invalid hour label"),
    ("[[Date.UTC(2025,2,9,2,0,0), 2.0]]", "does not exist"),
    ("[[Date.UTC(2025,6,15,1,0,0), 2.0], [Date.UTC(2025,6,15,1,0,0), 2.0]]", "more than once"),
    ("Servlet Feed 2.95-SGalertsSync", "expected a list"),
])
def test_malformed_answers_are_bad_payloads(text: str, problem: str) -> None:
    with pytest.raises(BadPayload, match=problem):
        parse_day_ahead(text, "daynexttoday")


# --- the simulator's prices -----------------------------------------------------------------------

ORIGIN = central(2025, 7, 14, 12)


def series(**config: object) -> PriceSeries:
    return PriceSeries(PriceConfig(**config), ORIGIN, "America/Chicago")


def true_means(prices: PriceSeries, hours: range) -> list[tuple[int, float]]:
    return [(start, sum(p for _, p in prices.between(start + 300, start + 3600)) / 12) for start in hours]


HOURS = range(int(ORIGIN), int(ORIGIN) + 20 * 86400, 3600)   # 480 hours


def test_day_ahead_is_the_true_hourly_mean_with_the_configured_relative_error() -> None:
    prices = series(forecast_error=0.10)
    errors = [prices.day_ahead_hour(start) / mean - 1 for start, mean in true_means(prices, HOURS) if abs(mean) >= 1]
    rms = math.sqrt(sum(e * e for e in errors) / len(errors))
    assert len(errors) > 400 and 0.09 < rms < 0.11, rms
    assert abs(sum(errors) / len(errors)) < 0.015
    exact = series(forecast_error=0.0)
    assert all(exact.day_ahead_hour(start) == round(mean, 1) for start, mean in true_means(exact, HOURS[:48]))


def test_random_spikes_change_the_prices_but_never_the_day_ahead() -> None:
    calm, spiky = series(), series(spike_chance_per_day=1.0, spike_cents=(15.0, 120.0))
    spikes = spiky.spikes_between(HOURS[0], HOURS[-1])
    assert 15 <= len(spikes) <= 25            # about one a day, drawn from the seed
    for start, end, cents in spikes:
        assert 900 <= end - start <= 3600 and (end - start) % 300 == 0 and 15 <= cents <= 120
        assert 11 <= datetime.fromtimestamp(start, CENTRAL).hour <= 20
        assert [p for _, p in spiky.between(start + 300, end)] == [cents] * int((end - start) // 300)
    assert all(spiky.day_ahead_hour(start) == calm.day_ahead_hour(start) for start in HOURS)
    assert all(spiky.price(e) == calm.price(e) for e in range(HOURS[0] + 300, HOURS[-1], 300)
               if not any(s < e <= t for s, t, _ in spikes))


def test_no_spikes_by_default_and_prices_are_unchanged() -> None:
    assert series().spikes_between(HOURS[0], HOURS[-1]) == []
    assert series(spike_chance_per_day=0.0).price(int(ORIGIN)) == series().price(int(ORIGIN))


def test_overrides_stay_out_of_the_day_ahead_and_explicit_prices_are_its_truth() -> None:
    from simulator.config import ExplicitPrices, PriceOverride
    hour = int(ORIGIN)
    overridden = series(forecast_error=0.0, overrides=(PriceOverride(0, 3600, 99.0),))
    assert overridden.price(hour + 600) == 99.0 and overridden.day_ahead_hour(hour) == series(
        forecast_error=0.0).day_ahead_hour(hour)
    explicit = series(forecast_error=0.0, explicit=ExplicitPrices(0.0, tuple([6.0] * 12)))
    assert explicit.day_ahead_hour(hour) == 6.0


def test_scenario_keys_are_validated_in_one_line() -> None:
    data = scenario("2025-07-14T12:00:00-05:00", forecast_error=0.2, spike_chance_per_day=0.5, spike_cents=[20, 40])
    cfg = load_scenario(data).prices
    assert (cfg.forecast_error, cfg.spike_chance_per_day, cfg.spike_cents) == (0.2, 0.5, (20.0, 40.0))
    assert load_scenario(scenario("now", spike_cents=50)).prices.spike_cents == (50.0, 50.0)
    assert load_scenario(scenario("now")).prices.spike_chance_per_day == 0.0
    with pytest.raises(ScenarioError, match=r"^prices\.spike_cents: got \[40, 20\]; use \[low, high\]"):
        load_scenario(scenario("now", spike_cents=[40, 20]))
    with pytest.raises(ScenarioError, match=r"^prices\.forecast_error: got -0\.1; use a value >= 0"):
        load_scenario(scenario("now", forecast_error=-0.1))


# --- the simulator's feed -------------------------------------------------------------------------


async def feed(h: Harness, kind: str, day: str | None = None) -> tuple[int, str, str]:
    query = f"/rrtp/ServletFeed?type={kind}" + (f"&date={day}" if day else "")
    status, body, headers = await h.request("GET", query, auth=False)
    return status, body.decode(), headers["Content-Type"]


async def test_feed_speaks_comeds_text_format_hour_ending_in_central_wall_clock() -> None:
    async with simulate(scenario("2025-07-14T12:00:00-05:00")) as h:
        status, text, content_type = await feed(h, "daynexttoday", "20250714")
        _, truth = await h.get_json(f"/sim/truth?prices_from={int(central(2025, 7, 13, 23))}"
                                    f"&prices_to={int(central(2025, 7, 14, 23))}", auth=False)
    assert status == 200 and content_type.startswith("text/html")
    assert text.startswith("[[Date.UTC(2025,6,14,0,0,0), ") and text.endswith("]]")
    pairs = PAIR.findall(text)
    assert [int(p[3]) for p in pairs] == list(range(24)) and {p[:3] for p in pairs} == {("2025", "6", "14")}
    predicted = {d["start"]: d["price"] for d in truth["day_ahead"]}
    hours = parse_day_ahead(text, "daynexttoday")
    assert hours[0].start == central(2025, 7, 13, 23)           # label 0 ends the previous day's last hour
    assert [(h.start, h.cents) for h in hours] == [(h.start, predicted[h.start]) for h in hours]


async def test_clock_change_days_have_23_and_25_hours() -> None:
    async with simulate(scenario("2025-11-03T12:00:00-06:00")) as h:
        _, spring, _ = await feed(h, "daynexttoday", "20250309")
        _, autumn, _ = await feed(h, "daynexttoday", "20251102")
    assert [int(p[3]) for p in PAIR.findall(spring)] == [0, 1, *range(3, 24)]
    assert [int(p[3]) for p in PAIR.findall(autumn)] == [0, 1, 1, *range(2, 24)]
    assert len(parse_day_ahead(spring, "x")) == 23 and len(parse_day_ahead(autumn, "x")) == 25


async def test_tomorrow_is_empty_until_half_past_four_central() -> None:
    async with simulate(scenario("2025-07-14T16:00:00-05:00")) as h:
        before = await feed(h, "daynexttomorrow", "20250714")
        later_day = await feed(h, "daynexttoday", "20250715")
        h.advance(1800)
        after = await feed(h, "daynexttomorrow", "20250714")
        implicit = await feed(h, "daynexttomorrow")            # no date: the simulated Central today
        banner = await feed(h, "dayahead")
    assert before[:2] == (200, "[]") and later_day[1] == "[]"
    assert PAIR.findall(after[1])[0][:4] == ("2025", "6", "15", "0") and len(PAIR.findall(after[1])) == 24
    assert implicit[1] == after[1] and banner[1].startswith("Servlet Feed")


# --- the client and the provider against the simulator --------------------------------------------


def provider(h: Harness, registry: CollectorRegistry) -> ComEdProvider:
    metrics = UpstreamMetrics("test", registry, ENDPOINTS)
    return ComEdProvider(Upstream(h.session, metrics, timeout=5), h.url)


def requests(registry: CollectorRegistry, endpoint: str, outcome: str) -> float | None:
    return registry.get_sample_value("test_upstream_requests_total", {"endpoint": endpoint, "outcome": outcome})


async def inject(h: Harness, spec: dict) -> None:
    status, body = await h.post_json("/sim/faults", spec)
    assert status == 201, body


async def test_provider_returns_today_and_once_published_tomorrow_sorted() -> None:
    registry = CollectorRegistry()
    async with simulate(scenario("2025-07-14T16:00:00-05:00")) as h:
        comed = provider(h, registry)
        morning = await comed.day_ahead(h.clock.now())
        h.advance(1800)
        evening = await comed.day_ahead(h.clock.now())
        tomorrow_only = await comed.api.day_ahead_tomorrow(date(2025, 7, 14))
    assert starts_local(morning)[0] == "13 23:00 CDT" and starts_local(morning)[-1] == "14 22:00 CDT"
    assert len(morning) == 24 and len(evening) == 48 and evening[:24] == morning
    assert evening == sorted(evening, key=lambda hour: hour.start) and evening[24:] == tomorrow_only
    assert requests(registry, "daynexttomorrow", "success") == 3.0


@pytest.mark.parametrize("fault, error, outcome", [
    ({"kind": "status", "status": 503}, ServerError, "server_error"),
    ({"kind": "malformed"}, BadPayload, "bad_payload"),
    ({"kind": "truncated"}, BadPayload, "bad_payload"),
    ({"kind": "big_body", "size_mb": 0.1}, BadPayload, "bad_payload"),
])
async def test_faults_on_the_feed_are_typed_and_counted_per_endpoint(fault: dict, error: type, outcome: str) -> None:
    registry = CollectorRegistry()
    async with simulate(scenario("2025-07-14T17:00:00-05:00")) as h:
        comed = provider(h, registry)
        await inject(h, {"target": "comed/daynexttomorrow", "count": 1, **fault})
        with pytest.raises(error):
            await comed.day_ahead(h.clock.now())
        recovered = await comed.day_ahead(h.clock.now())
    assert requests(registry, "daynexttomorrow", outcome) == 1.0
    assert requests(registry, "daynexttoday", "success") == 2.0 and len(recovered) == 48


async def test_an_empty_today_is_no_data_and_an_empty_tomorrow_is_not_an_error() -> None:
    registry = CollectorRegistry()
    async with simulate(scenario("2025-07-14T17:00:00-05:00")) as h:
        comed = provider(h, registry)
        await inject(h, {"target": "comed/daynexttomorrow", "kind": "empty", "count": 1})
        today_only = await comed.day_ahead(h.clock.now())
        await inject(h, {"target": "comed/daynexttoday", "kind": "empty", "count": 1})
        with pytest.raises(NoData):
            await comed.day_ahead(h.clock.now())
    assert len(today_only) == 24


async def test_the_client_sends_todays_central_date_with_both_types() -> None:
    seen: list[str] = []
    async with simulate(scenario("2025-07-14T23:30:00-05:00")) as h:   # 04:30 UTC on the 15th
        async def trace(session, context, params) -> None:
            seen.append(params.url.query_string)
        config = aiohttp.TraceConfig()
        config.on_request_start.append(trace)
        async with aiohttp.ClientSession(trace_configs=[config]) as session:
            metrics = UpstreamMetrics("test", CollectorRegistry(), ENDPOINTS)
            hours = await ComEdProvider(Upstream(session, metrics, timeout=5), h.url).day_ahead(h.clock.now())
    assert seen == ["type=daynexttoday&date=20250714", "type=daynexttomorrow&date=20250714"]
    assert datetime.fromtimestamp(hours[-1].start, CENTRAL) == datetime(2025, 7, 15, 22, tzinfo=CENTRAL)


def test_comed_client_builds_the_servlet_url() -> None:
    assert ComEd(None, "http://sim:9880/").feed_url == "http://sim:9880/rrtp/ServletFeed"  # type: ignore[arg-type]
