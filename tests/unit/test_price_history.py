"""Price history and statistics: merging, windows, quantiles as PromQL computes them, percentile rank."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from upstreams.comed import central_stamp, parse_feed
from servicekit.errors import BadPayload
from exporters.price import PriceBook, fill_history, view
from exporters.price_history import PriceHistory, percentile_rank, statistics
from upstreams.price_providers import CurrentPrice, Rate


def promql_quantile(q: float, values: list[float]) -> float:
    """PromQL's quantile_over_time: rank = q * (n - 1), linear interpolation between neighbours."""
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = int(np.floor(rank))
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def test_quantiles_match_promql_interpolation() -> None:
    rng = np.random.default_rng(7)
    cents = np.round(rng.normal(3.5, 2.0, 8640), 1)
    stats = statistics(cents)
    assert stats is not None and stats.count == 8640
    for q, value in stats.quantiles.items():
        assert value == pytest.approx(promql_quantile(q, list(cents)), abs=1e-9)
    assert stats.median == pytest.approx(stats.quantiles[0.5])


def test_merge_prefers_new_values_keeps_order_and_trims() -> None:
    history = PriceHistory.empty().merged([(600.0, 2.0), (300.0, 1.0)], keep_after=0)
    history = history.merged([(600.0, 2.5), (900.0, -0.4)], keep_after=400)
    assert list(history.ends) == [600.0, 900.0]
    assert list(history.cents) == [2.5, -0.4]


def test_window_takes_intervals_ending_inside_it() -> None:
    history = PriceHistory.empty().merged([(t, t / 300) for t in (300.0, 600.0, 900.0)], keep_after=0)
    assert list(history.window(300.0, 900.0)) == [2.0, 3.0]


def test_percentile_rank_counts_equal_prices_half() -> None:
    cents = np.array([1.0, 2.0, 2.0, 3.0])
    assert percentile_rank(cents, 2.0) == 50.0
    assert percentile_rank(cents, 10.0) == 100.0
    assert percentile_rank(np.array([]), 1.0) is None


def test_empty_history_has_no_statistics_never_zero() -> None:
    record = view(CurrentPrice((), None), PriceHistory.empty(), 30 * 86400)
    assert record.stats is None and record.rank is None and record.current is None


def test_comed_feed_is_sorted_strings_parsed_bad_entries_skipped() -> None:
    body = [{"millisUTC": "1752505500000", "price": "3.1"}, {"millisUTC": "1752505200000", "price": "-0.2"},
            {"millisUTC": "1752504900000", "price": "n/a"}, {"price": "2.0"}]
    points = parse_feed(body, "5minutefeed")
    assert [(p.end, p.cents) for p in points] == [(1752505200.0, -0.2), (1752505500.0, 3.1)]
    assert parse_feed([], "5minutefeed") == []
    with pytest.raises(BadPayload):
        parse_feed({"error": "x"}, "5minutefeed")


def test_comed_dates_are_central_wall_clock() -> None:
    assert central_stamp(datetime(2025, 3, 9, 6, 0, tzinfo=ZoneInfo("UTC"))) == "202503090000"  # CST
    assert central_stamp(datetime(2025, 7, 15, 5, 0, tzinfo=ZoneInfo("UTC"))) == "202507150000"  # CDT


class DayProvider:
    """A provider answering day chunks from a function, failing once on a chosen day."""

    name, resolution, zone = "test", 300.0, ZoneInfo("America/Chicago")

    def __init__(self, fail_on: int | None = None) -> None:
        self.calls: list[str] = []
        self.fail_on = fail_on

    async def history(self, day: datetime) -> list[Rate]:
        self.calls.append(day.strftime("%Y-%m-%d"))
        if self.fail_on is not None and len(self.calls) == self.fail_on:
            raise BadPayload("day chunk: truncated")
        start = datetime(day.year, day.month, day.day, tzinfo=self.zone).timestamp()
        end = datetime.fromordinal(day.toordinal() + 1).replace(tzinfo=self.zone).timestamp()  # 23-25 h
        return [Rate(t, t + 300, 3.0) for t in np.arange(start, end, 300.0)]


async def test_history_bootstrap_resumes_after_a_failure_without_refetching_days() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=ZoneInfo("America/Chicago")).timestamp()
    book = PriceBook(30 * 86400)
    provider = DayProvider(fail_on=5)
    with pytest.raises(BadPayload):
        await fill_history(book, provider, provider.zone, 30, lambda: None, clock=lambda: now)
    first = list(provider.calls)
    await fill_history(book, provider, provider.zone, 30, lambda: None, clock=lambda: now)
    second = provider.calls[len(first):]
    assert first[0] == "2026-11-25" and len(first) == 5
    assert second[0] == "2026-11-25", "today is always refreshed"
    assert "2026-11-24" not in second, "complete days are not fetched again"
    assert len(set(provider.calls)) == 31
    ends = book.history.ends
    assert ends[0] == ends[-1] - 31 * 86400, "lookback plus one day of margin is kept"
    assert set(np.diff(ends)) == {300.0}, "no gaps across the DST change"
