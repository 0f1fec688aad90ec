"""ElectricityPriceLow on the demo's own prices: the real rules in promtool, fed 30 days of the
simulator's billed hours and then one day's projected hour prices, as the demo's Prometheus holds
them after `make up` (price-backfill fills the 30 days).

The demo's prices sit around 2.3 ¢/kWh, below the fixed 3 ¢ "cheap" level for most of the day, so
with a fixed level ElectricityPriceLow fired within minutes of the first start. Relative to the
history (the lower of 3 ¢ and the 10th percentile of billed hours) it fires in the cheap night
hours only."""
from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import yaml

from simulator.prices import PriceSeries
from simulator.scenario import load_scenario

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
LABELS = 'provider="comed",job="price",instance="p:9884"'
DAYS = 30
DAY = (2026, 1, 23)   # a day of the demo with cheap night hours


def demo_prices() -> tuple[np.ndarray, np.ndarray]:
    """(the billed hours of the 30 days before DAY, the 5-minute prices of DAY by hour), from the
    demo scenario's price curve."""
    scenario = load_scenario(ROOT / "simulator" / "scenarios" / "demo.yaml")
    zone = scenario.site.time_zone
    midnight = datetime(*DAY, tzinfo=ZoneInfo(zone)).timestamp()
    series = PriceSeries(scenario.prices, midnight, zone)
    history = np.array([p for _, p in series.between(midnight - DAYS * 86400 + 1, midnight)])
    day = np.array([p for _, p in series.between(midnight + 1, midnight + 86400)])
    return history.reshape(-1, 12).mean(axis=1).round(4), day.reshape(-1, 12)


def projected(hour: np.ndarray) -> list[float]:
    """The hour's projected price after each of its 5-minute prices: the published ones, the rest at the latest."""
    return [round(float(hour[:k].sum() + (12 - k) * hour[k - 1]) / 12, 4) for k in range(1, 13)]


def test_demo_prices_fire_price_low_in_the_cheap_night_hours_only(tmp_path: Path) -> None:
    billed, day = demo_prices()
    assert len(billed) == DAYS * 24
    level = min(3.0, float(np.percentile(billed, 10)))   # numpy's default interpolation is quantile_over_time's
    steps = [price for hour in day for price in projected(hour)]
    daytime = steps[7 * 12:20 * 12]
    # The demo's complaint: in the daytime the hour is under the fixed 3 ¢ most of the time, for
    # far more than the 10 minutes that fired ElectricityPriceLow.
    assert sum(price < 3 for price in daytime) > len(daytime) / 2
    assert any(all(price < 3 for price in daytime[i:i + 3]) for i in range(len(daytime)))
    # Billed hours stamped with their end: one price and eleven gaps at 5-minute steps, for the 30
    # days and then for each hour of the day as it completes; the projected price from the first
    # step of the day (00:05) on.
    hours = [*billed, *(hour.mean().round(4) for hour in day)]
    billed_values = " ".join(f"_x{12 if i == 0 else 11} {value:g}" for i, value in enumerate(hours))
    start = f"{DAYS * 24}h"
    test = {
        "rule_files": [str(ROOT / "rules" / "thresholds.yml"), str(ROOT / "rules" / "prices.yml")],
        "evaluation_interval": "5m",
        "tests": [{
            "name": "the demo's prices",
            "interval": "5m",
            "input_series": [
                {"series": f"electricity_price_billed_cents_per_kwh{{{LABELS}}}", "values": billed_values},
                {"series": f"electricity_price_hour_projected_cents_per_kwh{{{LABELS}}}",
                 "values": f"_x{DAYS * 24 * 12} " + " ".join(f"{price:g}" for price in steps)},
            ],
            "promql_expr_test": [
                # The level at the start of the day: the lower of 3 and the 10th percentile of the 30 days.
                {"expr": "round(electricity_price:alert_low_cents_per_kwh, 0.01)", "eval_time": f"{start}5m",
                 "exp_samples": [{"labels": '{provider="comed"}', "value": round(level, 2)}]},
                # From 07:00 to 20:00, when a person starts the demo, not even pending.
                {"expr": 'count_over_time(ALERTS{alertname="ElectricityPriceLow"}[13h])',
                 "eval_time": f"{DAYS * 24 + 20}h", "exp_samples": []},
                # It still tells of the cheapest hours: it fires in the night.
                {"expr": 'count_over_time(ALERTS{alertname="ElectricityPriceLow",alertstate="firing"}[24h]) > bool 0',
                 "eval_time": f"{DAYS * 24 + 24}h",
                 "exp_samples": [{"labels": '{alertname="ElectricityPriceLow",alertstate="firing",'
                                            f'severity="info",{LABELS}}}', "value": 1}]},
            ],
        }],
    }
    path = tmp_path / "demo_prices_test.yml"
    path.write_text(yaml.safe_dump(test, width=1 << 30))
    result = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
