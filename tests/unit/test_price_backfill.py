"""price-backfill writes the billed hourly series beside the 5-minute one, and backfills everything
again when what it backfilled before did not include it."""
from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from billing.tariff import HOURLY_AVERAGE, Tariff
from exporters.price_backfill import SERIES, openmetrics, read_state
from exporters.price_history import PriceHistory

HOUR = 1_784_000_000 // 3600 * 3600
LABELS = {"provider": "comed", "job": "price", "instance": "127.0.0.1:9884"}


def test_both_series_oldest_first_and_only_complete_hours_billed() -> None:
    prices = [(HOUR + 300 * i, float(i)) for i in range(1, 19)]          # one full hour, half of the next
    history = PriceHistory.empty().merged(prices, 0)
    text = openmetrics(history, LABELS, Tariff(ZoneInfo("America/Chicago"), HOURLY_AVERAGE))
    lines = text.splitlines()
    five = [line for line in lines if line.startswith("electricity_price_5m_cents_per_kwh{")]
    billed = [line for line in lines if line.startswith("electricity_price_billed_cents_per_kwh{")]
    assert len(five) == 18 and five[0].endswith(f" 1.0 {HOUR + 300}")
    assert billed == ['electricity_price_billed_cents_per_kwh{instance="127.0.0.1:9884",job="price",'
                      f'provider="comed"}} 6.5 {HOUR + 3600}']                    # mean of 1..12, at the hour's end
    assert lines[-1] == "# EOF"


def test_a_state_from_before_the_billed_series_means_backfilling_everything_again(tmp_path) -> None:
    state = tmp_path / "price-backfill.json"
    state.write_text(json.dumps({"end": 1234.0}))
    assert read_state(state) == 0.0
    state.write_text(json.dumps({"end": 1234.0, "series": SERIES}))
    assert read_state(state) == 1234.0
    state.write_text("not json")
    assert read_state(state) == 0.0 and read_state(None) == 0.0
