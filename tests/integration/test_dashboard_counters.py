"""The dashboards' session totals are exact on the histories that fool `increase()` (issue 13).

Prometheus holds what it would have scraped from the session store every 15 s; the queries are the
committed panels' (Session History: Energy over the time range, Energy per day by vehicle). Each
history checks one part of `grafana.boards.counted`:

- a store in service: a car first seen with its first session (its series appears at 9 kWh), sessions
  of an unknown vehicle attributed to a car learned from charge history (the empty-vehicle series falls
  by 4 kWh as the car's rises), and a two-hour scrape gap across midnight;
- a new installation: the first scrape already holds a 14 kWh session imported from charge history;
- a store older than what Prometheus holds (retention, a long outage): its series appear at their
  lifetime totals, which are not the window's.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from testkit import ROOT
from testkit.backfill import write_blocks
from testkit.prometheus import PrometheusAPI

pytestmark = pytest.mark.integration

STEP = 15
HOUR, DAY = 3600, 86400
# Three days ago at midnight UTC: inside Prometheus's retention, and whole days for the bars.
T0 = (int(time.time()) // DAY - 3) * DAY
ENERGY = "charging_session_energy_joules"


@dataclass
class History:
    """Series as the store exposes them, sampled every STEP seconds while it is scraped."""

    scraped: list[tuple[int, int]]                           # [start, end) spans the store was scraped
    first_recorded: int | None
    energy_wh: dict[tuple[str, str], list[tuple[int, float]]] = field(default_factory=dict)   # (unit, vehicle)
    # -> [(from t, value)]: the series exists from its first t on

    def times(self, since: int = -2**62) -> list[int]:
        return [t for start, end in self.scraped for t in range(start, end, STEP) if t >= since]

    def openmetrics(self) -> str:
        lines = ["# TYPE charging_session_store_up gauge"]
        lines += [f"charging_session_store_up 1 {t}" for t in self.times()]
        if self.first_recorded is not None:
            lines.append("# TYPE charging_session_first_recorded_timestamp_seconds gauge")
            lines += [f"charging_session_first_recorded_timestamp_seconds {self.first_recorded} {t}"
                      for t in self.times(self.first_recorded)]
        lines.append(f"# TYPE {ENERGY} counter")
        for (unit, vehicle), changes in self.energy_wh.items():
            labels = f'unit="{unit}"' + (f',vehicle="{vehicle}"' if vehicle else "")
            for t in self.times(changes[0][0]):
                value = [v for since, v in changes if since <= t][-1]
                lines.append(f"{ENERGY}_total{{{labels}}} {value * 3600} {t}")
        return "\n".join(lines) + "\n# EOF\n"


def panel_expr(title: str) -> str:
    dashboard = json.loads((ROOT / "grafana" / "dashboards" / "session-history.json").read_text())
    [expr] = [t["expr"] for p in dashboard["panels"] if p["title"] == title for t in p["targets"]]
    return expr


def resolved(expr: str, range_s: int) -> str:
    """Grafana's interpolation with All selected."""
    return (expr.replace("$unit", ".*").replace("$vehicle", ".*").replace("$site", ".*")
            .replace("$__range_s", str(range_s))
            .replace("$__range", f"{range_s}s"))


def energy_kwh(url: str, start: int, end: int) -> float | None:
    """The Energy panel with the dashboard's time range [start, end]."""
    return PrometheusAPI(url).value(resolved(panel_expr("Energy"), end - start), end)


def daily_kwh(url: str, first_day: int, last_day: int) -> dict[int, dict[str, float]]:
    """The Energy per day bars: day -> vehicle -> kWh."""
    bars: dict[int, dict[str, float]] = {}
    expr = resolved(panel_expr("Energy per day"), DAY)
    for series in PrometheusAPI(url).query_range(expr, first_day, last_day, DAY):
        for t, value in series["values"]:
            bars.setdefault(int(t), {})[series["metric"].get("vehicle", "")] = float(value)
    return bars


def plain_increase_kwh(url: str, start: int, end: int) -> float | None:
    return PrometheusAPI(url).value(f"sum(increase({ENERGY}_total[{end - start}s])) / 3.6e6", end)


def test_a_store_in_service(tmp_path: Path, start_prometheus) -> None:
    history = History(
        scraped=[(T0, T0 + DAY - HOUR), (T0 + DAY + HOUR, T0 + 3 * DAY)],   # down 23:00-01:00 the first night
        first_recorded=T0 + 600,
        energy_wh={
            ("garage", "Blue"): [(T0, 0.0), (T0 + 12 * HOUR, 5000.0), (T0 + DAY + 2 * HOUR, 12000.0),
                                 (T0 + DAY + 3 * HOUR, 16000.0)],               # + the 4 kWh learned at 03:00
            ("garage", ""): [(T0, 0.0), (T0 + 18 * HOUR, 4000.0), (T0 + DAY + 3 * HOUR, 0.0)],
            ("driveway", "Red"): [(T0 + DAY + 4 * HOUR, 9000.0)],              # first seen with its session
        })
    prometheus = start_prometheus({}, data_dir=write_blocks(tmp_path / "in-service", history.openmetrics()))
    day2 = T0 + DAY
    assert energy_kwh(prometheus.url, day2, day2 + DAY) == pytest.approx(16.0, abs=1e-9)   # 7 + 9 new kWh
    assert energy_kwh(prometheus.url, T0, day2) == pytest.approx(9.0, abs=1e-9)
    assert energy_kwh(prometheus.url, T0, T0 + 2 * DAY) == pytest.approx(25.0, abs=1e-9)
    assert energy_kwh(prometheus.url, day2 + 5 * HOUR, day2 + 10 * HOUR) == 0.0
    bars = daily_kwh(prometheus.url, T0, T0 + 2 * DAY)
    assert bars[T0] == pytest.approx({"Blue": 5.0, "": 4.0})
    assert bars[day2] == pytest.approx({"Blue": 11.0, "": -4.0, "Red": 9.0}), "attributed, not counted twice"
    assert bars[T0 + 2 * DAY] == pytest.approx({"Blue": 0.0, "": 0.0, "Red": 0.0})
    # what increase() made of the same day: Red's first session missed, the attributed 4 kWh counted again
    # (a fall is a counter reset to increase()), the rest extrapolated
    assert plain_increase_kwh(prometheus.url, day2, day2 + DAY) < 12.0


def test_a_new_installation(tmp_path: Path, start_prometheus) -> None:
    installed = T0 + 8 * HOUR
    history = History(
        scraped=[(installed, T0 + 2 * DAY)], first_recorded=installed,
        energy_wh={("garage", ""): [(installed, 14000.0)],                   # imported before the first scrape
                   ("garage", "Blue"): [(installed, 0.0), (T0 + 10 * HOUR, 3000.0)]})
    prometheus = start_prometheus({}, data_dir=write_blocks(tmp_path / "new", history.openmetrics()))
    assert energy_kwh(prometheus.url, T0, T0 + 12 * HOUR) == pytest.approx(17.0, abs=1e-9)   # today, at noon
    bars = daily_kwh(prometheus.url, T0, T0 + DAY)
    assert bars[T0] == pytest.approx({"": 14.0, "Blue": 3.0}) and bars[T0 + DAY] == {"": 0.0, "Blue": 0.0}
    assert plain_increase_kwh(prometheus.url, T0, T0 + 12 * HOUR) < 4.0


def test_a_store_older_than_what_prometheus_holds(tmp_path: Path, start_prometheus) -> None:
    kept = T0 + 8 * HOUR
    history = History(
        scraped=[(kept, T0 + 2 * DAY)], first_recorded=T0 - 30 * DAY,
        energy_wh={("garage", "Blue"): [(kept, 100000.0), (T0 + 10 * HOUR, 106000.0)]})
    prometheus = start_prometheus({}, data_dir=write_blocks(tmp_path / "old", history.openmetrics()))
    assert energy_kwh(prometheus.url, T0, T0 + 12 * HOUR) == pytest.approx(6.0, abs=1e-9), "not the lifetime total"
    assert daily_kwh(prometheus.url, T0, T0 + DAY) == {T0: {"Blue": pytest.approx(6.0)}, T0 + DAY: {"Blue": 0.0}}
