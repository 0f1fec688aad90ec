"""Price collector: recorded ComEd feeds in, exposition text out (golden), plus the quirks.

The golden holds one exposition per scenario, each section starting with `# scenario: <name>`:
a day of history plus the live feed (negative prices overnight), an empty answer, and a feed whose
newest entries are "n/a" or otherwise unusable.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from testkit.exposition import parse
from testkit.golden import check_golden, promtool_problems, render

from zoneinfo import ZoneInfo

from billing.tariff import HOURLY_AVERAGE, Tariff
from upstreams.comed import INTERVAL_S, parse_feed
from servicekit.errors import BadPayload
from servicekit.upstream import decode_json
from exporters.price import PriceBook, make_collect
from upstreams.price_providers import CurrentPrice, Rate

FIXTURES = Path(__file__).parent / "fixtures" / "comed"
GOLDEN = Path(__file__).parent / "golden" / "price.txt"
LOOKBACK_S = 86400.0
COMED = '{provider="comed"}'
NEWEST = 1752556800.0  # 2025-07-15 00:20 CDT, the newest entry of 5minutefeed.json
MIDNIGHT = 1752555600.0  # 2025-07-15 00:00 CDT
TARIFF = Tariff(ZoneInfo("America/Chicago"), HOURLY_AVERAGE, delivery_per_kwh=0.075,
                reference_supply_per_kwh=0.10028)


def rates(name: str, endpoint: str = "5minutefeed") -> list[Rate]:
    """A recorded feed decoded and parsed as the client does, as the provider's `Rate`s."""
    points = parse_feed(decode_json((FIXTURES / name).read_bytes(), name), endpoint)
    return [Rate(p.end - INTERVAL_S, p.end, p.cents) for p in points]


def hour_average(name: str) -> float | None:
    points = parse_feed(decode_json((FIXTURES / name).read_bytes(), name), "currenthouraverage")
    return points[-1].cents if points else None


def scenario(history: tuple[str, ...], feed: str, average: str) -> tuple[dict, PriceBook]:
    """What the exporter holds after bootstrapping `history` days and one poll of the live feed."""
    book = PriceBook(LOOKBACK_S)
    for day in history:
        book.add(rates(day, "5minutefeed_range"))
    current = CurrentPrice(tuple(rates(feed)), hour_average(average))
    book.add(current.recent)
    return {"comed": {"current": book.snapshot(current)}}, book


SCENARIOS = {
    "day_of_history_and_live_feed": (("5minutefeed_range_20250714.json",), "5minutefeed.json",
                                     "currenthouraverage.json"),
    "empty_answers": ((), "5minutefeed_empty.json", "currenthouraverage_empty.json"),
    "unusable_newest_entries": ((), "5minutefeed_na.json", "currenthouraverage_na.json"),
}


def exposition(data: dict, book: PriceBook) -> str:
    """Rendered from the pollers' snapshots in `data` alone (the book is the pollers' own)."""
    return render(lambda: make_collect("comed", book.lookback_s, TARIFF)(data))


def render_scenario(name: str) -> str:
    return exposition(*scenario(*SCENARIOS[name]))


def test_exposition_matches_golden() -> None:
    check_golden(GOLDEN, "".join(f"# scenario: {name}\n{render_scenario(name)}" for name in SCENARIOS))


@pytest.mark.parametrize("name", SCENARIOS)
def test_promtool_check_metrics_is_clean(name: str) -> None:
    assert promtool_problems(render_scenario(name)) == ""


def test_empty_price_list_is_no_data_not_zero() -> None:
    assert rates("5minutefeed_empty.json") == [] and hour_average("currenthouraverage_empty.json") is None
    found = parse(render_scenario("empty_answers"))
    prices = [series for series in found if series.startswith("electricity_price_") and not series.startswith(
        ("electricity_price_monthly", "electricity_price_reference"))]  # the tariff's own figures
    assert prices == [], found


def test_empty_answer_keeps_the_history_it_already_has() -> None:
    data, book = scenario(*SCENARIOS["day_of_history_and_live_feed"])
    before = (book.history.ends.copy(), book.history.cents.copy())
    book.add(rates("5minutefeed_empty.json"))
    assert (book.history.ends == before[0]).all() and (book.history.cents == before[1]).all()
    empty = {"comed": {"current": book.snapshot(CurrentPrice((), None))}}
    found = parse(exposition(empty, book))
    assert f"electricity_price_cents_per_kwh{COMED}" not in found
    assert f"electricity_price_percentile_rank_percent{COMED}" not in found
    assert found[f"electricity_price_lookback_prices{COMED}"] == 288.0


def test_negative_prices_are_valid_prices() -> None:
    found = parse(render_scenario("day_of_history_and_live_feed"))
    assert found[f"electricity_price_cents_per_kwh{COMED}"] == -0.4
    assert found['electricity_price_lookback_percentile_cents_per_kwh{percentile="10",provider="comed"}'] < 1.0
    assert 0.0 < found[f"electricity_price_percentile_rank_percent{COMED}"] < 1.0  # the cheapest price of the day


def test_with_the_live_feed_failing_the_history_snapshot_keeps_the_lookback_statistics() -> None:
    """The price, its rank and the hour in progress leave with the live snapshot; the 30 days' statistics,
    from the history poller's own snapshot, stay true and stay exported."""
    _, book = scenario(*SCENARIOS["day_of_history_and_live_feed"])
    found = parse(exposition({"comed": {"history": book.snapshot()}}, book))
    assert found[f"electricity_price_lookback_prices{COMED}"] == 288.0
    for gone in ("cents_per_kwh", "percentile_rank_percent", "hour_projected_cents_per_kwh"):
        assert f"electricity_price_{gone}{COMED}" not in found, gone


def test_the_newer_of_the_two_snapshots_supplies_the_history() -> None:
    data, book = scenario(*SCENARIOS["day_of_history_and_live_feed"])
    stale_history = PriceBook(LOOKBACK_S).snapshot()            # taken before anything was fetched
    found = parse(exposition({"comed": {**data["comed"], "history": stale_history}}, book))
    assert found[f"electricity_price_lookback_prices{COMED}"] == 288.0


def test_newest_first_feed_is_read_oldest_first_and_the_newest_is_current() -> None:
    recent = rates("5minutefeed.json")
    assert [r.end for r in recent] == sorted(r.end for r in recent) and len(recent) == 288
    assert recent[-1] == Rate(NEWEST - 300, NEWEST, -0.4)  # the price covers (T - 5 min, T]


def test_current_price_carries_the_end_of_its_interval() -> None:
    text = render_scenario("day_of_history_and_live_feed")
    assert f"electricity_price_interval_end_timestamp_seconds{COMED} 1.7525568e+09" in text
    # every 5-minute price once, stamped with the end of its interval in milliseconds
    assert f"electricity_price_5m_cents_per_kwh{COMED} -0.4 1752556800000" in text


def test_the_hour_in_progress_is_projected_from_its_published_prices_and_the_latest() -> None:
    """00:20 is the newest price: 00:05-00:20 of the hour 00:00-01:00 are published, eight to go at -0.4."""
    published = [r.cents for r in rates("5minutefeed.json") if MIDNIGHT < r.end <= NEWEST]
    found = parse(render_scenario("day_of_history_and_live_feed"))
    assert found[f"electricity_price_hour_published_prices{COMED}"] == len(published) == 4
    assert found[f"electricity_price_hour_projected_cents_per_kwh{COMED}"] == pytest.approx(
        (sum(published) + 8 * -0.4) / 12, abs=1e-4)                 # served to 1e-4 cent
    assert 0 <= found[f"electricity_price_hour_projected_percentile_rank_percent{COMED}"] <= 100


def test_the_last_complete_hour_is_exported_once_at_its_billed_price_stamped_with_its_end() -> None:
    last_hour = [r.cents for r in rates("5minutefeed.json") if MIDNIGHT - 3600 < r.end <= MIDNIGHT]
    text = render_scenario("day_of_history_and_live_feed")
    [line] = [line for line in text.splitlines() if line.startswith("electricity_price_billed_cents_per_kwh{")]
    _, value, stamp = line.split(" ")
    assert len(last_hour) == 12 and float(value) == pytest.approx(sum(last_hour) / 12, abs=1e-4)
    assert int(stamp) == int(MIDNIGHT * 1000)


def test_the_tariffs_figures_are_exported_for_promql() -> None:
    found = parse(render_scenario("day_of_history_and_live_feed"))
    assert found[f"electricity_price_delivery_cents_per_kwh{COMED}"] == pytest.approx(7.5)
    assert found[f"electricity_price_monthly_fixed_dollars{COMED}"] == 19.56
    assert found[f"electricity_price_reference_supply_cents_per_kwh{COMED}"] == pytest.approx(10.028)


def test_hour_average_comes_from_currenthouraverage() -> None:
    found = parse(render_scenario("day_of_history_and_live_feed"))
    assert found[f"electricity_price_hour_average_cents_per_kwh{COMED}"] == 0.2
    assert f"electricity_price_hour_average_cents_per_kwh{COMED}" not in parse(render_scenario("unusable_newest_entries"))


def test_unusable_entries_are_skipped_and_the_newest_usable_price_is_current() -> None:
    # newest "n/a", then -1.7; "" / missing price / missing millisUTC / "NaN" / a duplicate are dropped
    assert [(r.end, r.cents) for r in rates("5minutefeed_na.json")] == [
        (1752555600.0, -0.3), (1752557100.0, -2.4), (1752557400.0, -1.7)]
    found = parse(render_scenario("unusable_newest_entries"))
    assert found[f"electricity_price_cents_per_kwh{COMED}"] == -1.7
    assert found[f"electricity_price_interval_end_timestamp_seconds{COMED}"] == 1752557400.0


def test_lookback_statistics_cover_exactly_the_window() -> None:
    found = parse(render_scenario("day_of_history_and_live_feed"))
    assert found[f"electricity_price_lookback_prices{COMED}"] == 288.0
    assert found[f"electricity_price_history_covered_seconds{COMED}"] == LOOKBACK_S
    assert found[f"electricity_price_history_oldest_timestamp_seconds{COMED}"] == NEWEST - LOOKBACK_S + 300
    percentiles = [found[f'electricity_price_lookback_percentile_cents_per_kwh{{percentile="{q}",provider="comed"}}']
                   for q in ("10", "25", "50", "75", "90", "95")]
    assert percentiles == sorted(percentiles)
    assert found[f"electricity_price_lookback_median_cents_per_kwh{COMED}"] == percentiles[2]


@pytest.mark.parametrize("name", ["outage.html", "unknown_type.txt"])
def test_non_json_bodies_are_bad_payloads(name: str) -> None:
    with pytest.raises(BadPayload):
        decode_json((FIXTURES / name).read_bytes(), name)


@pytest.mark.parametrize("payload", [{"error": "x"}, "[]", None, 3.1])
def test_json_that_is_not_a_list_is_a_bad_payload(payload) -> None:
    with pytest.raises(BadPayload):
        parse_feed(payload, "5minutefeed")


def test_collector_does_not_mutate_its_input() -> None:
    data, book = scenario(*SCENARIOS["day_of_history_and_live_feed"])
    before = (repr(data), book.history.ends.tobytes(), book.history.cents.tobytes())
    exposition(data, book)
    assert (repr(data), book.history.ends.tobytes(), book.history.cents.tobytes()) == before
