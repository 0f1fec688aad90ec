"""A month of prices, backfilled and live mixed, weighs every 5-minute price once: PromQL's
quantile_over_time, the exporter's numpy statistics and the simulator's true prices agree."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from exporters.price_history import QUANTILES
from suite.processes import wait_until
from testkit.backfill import price_backfill
from testkit.exposition import matching
from testkit.http import get
from testkit.ports import free_port

pytestmark = pytest.mark.e2e
DAY = 86400


def test_backfilled_and_live_prices_weigh_once_and_statistics_agree(
        tmp_path: Path, start_simulator, start_component, start_prometheus) -> None:
    sim = start_simulator("demo")

    def newest_published() -> float:
        truth = sim.truth()
        return max(p["t"] for p in truth["prices"] if p["t"] <= truth["now"])

    # The live exporter only ever exports the newest price: if a new one were published between the
    # backfill and the first scrape, the one in between would be missing (the next backfill fills it;
    # see README). Start well before the next 5-minute mark so the test never straddles one: from here to
    # the first scrape (backfill, exporter, Prometheus's first scrape ~5-10 s after it starts) takes
    # 10-20 s, 45 s on a busy machine is margin enough.
    if 300 - time.time() % 300 < 45:
        first = newest_published()
        wait_until(lambda: newest_published() > first, 60, 0.1, "the next 5-minute price")
    newest_known = newest_published()
    price_port = free_port()
    data_dir = tmp_path / "tsdb"
    started = time.monotonic()
    backfill = price_backfill(data_dir, sim.url, days=32, instance=f"127.0.0.1:{price_port}", until=newest_known - 1)
    print(f"\nbackfill of 32 days: {time.monotonic() - started:.2f} s ({backfill.stderr.strip().split('msg=')[-1]})")

    start_component("price-exporter", "exporters.price", price_port,
                    env={"COMED_BASE_URL": sim.url, "COMED_POLL_INTERVAL": "1"})
    prometheus = start_prometheus({"price": [f"127.0.0.1:{price_port}"]}, scrape_interval=1, data_dir=data_dir)
    series = 'electricity_price_5m_cents_per_kwh{job="price"}'
    # The newest price exists only live (the backfill stopped before it), and has been scraped several
    # times (each scrape offers it again, with its own timestamp: stored once, it counts once below).
    wait_until(lambda: (prometheus.value(f"timestamp({series})") or 0) >= newest_known, 30, 0.1, "the live price")
    wait_until(lambda: (prometheus.value('count_over_time(electricity_price_cents_per_kwh[1m])') or 0) >= 4, 30,
               0.1, "four scrapes of the price")

    newest = prometheus.value(f"timestamp({series})")
    at = newest + 1  # range selectors include both ends: (newest - 30d, newest] is [at - 30d, at]
    truth = sim.truth(prices_from=int(at - 31 * DAY), prices_to=int(at))["prices"]
    window = np.array([p["price"] for p in truth if at - 30 * DAY <= p["t"] <= at])
    assert window.size == 30 * 288

    counted = prometheus.query(f"count_over_time({series}[30d])", at=at)
    assert float(counted[0]["value"][1]) == window.size, "every 5-minute price must be stored exactly once"

    metrics = get(f"http://127.0.0.1:{price_port}/metrics")[2].decode()
    numpy_view = matching(metrics, "electricity_price_lookback_percentile_cents_per_kwh")
    for q in QUANTILES:
        truth_q = float(np.quantile(window, q))
        promql = float(prometheus.query(f"quantile_over_time({q}, {series}[30d])", at=at)[0]["value"][1])
        mine = numpy_view[f'electricity_price_lookback_percentile_cents_per_kwh{{percentile="{q * 100:g}",'
                          f'provider="comed"}}']
        assert promql == pytest.approx(truth_q, abs=1e-9), f"PromQL p{q * 100:g}"
        assert mine == pytest.approx(truth_q, abs=1e-9), f"exporter p{q * 100:g}"
    print(f"p90: truth {np.quantile(window, 0.9):.3f}, PromQL and exporter equal; {window.size} prices counted once")
