"""servicekit.promql.with_matcher against a real Prometheus: the injected queries parse, and mean what they
should. One Prometheus holds two sites' series (as the multi-site Prometheus does: a `site` target label on
every per-site job, none on constants such as `charging_threshold:*`), another only site a's; every
expression with `site="a"` injected into the first answers exactly what the plain expression answers on the
second, instant and range, while without the matcher the answers differ (site b is really there).

Every dashboard query (Grafana variables resolved as testkit.grafana does, All selected) and every session
store query must still parse with the matcher in it.
"""
from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import pytest

from servicekit.promql import with_matcher
from testkit import ROOT
from testkit.backfill import write_blocks
from testkit.grafana import Window, panels, resolve
from testkit.http import get
from testkit.promql_queries import session_store_exprs

pytestmark = pytest.mark.integration

STEP = 15
END = int(time.time()) // 60 * 60 - 1800       # well inside the retention; half an hour ago
START = END - 2 * 3600
CONSTANT = "charging_threshold:price_high_cents_per_kwh"
# site -> its units (both have a "garage": a union over sites would mix them), vehicles, price level
SITES = {"a": {"garage": "Blue", "driveway": "Red"}, "b": {"garage": "Green", "shed": "White"}}


def openmetrics(sites: list[str]) -> str:
    """Two hours of each site's series every STEP seconds, plus the site-less constant."""
    series: dict[str, list[str]] = {"power_watts": [], "energy_joules": [], "vehicle_info": [], "price_cents": [],
                                    "request_duration_seconds": [], CONSTANT: []}
    kinds = {"power_watts": "gauge", "energy_joules": "counter", "vehicle_info": "gauge", "price_cents": "gauge",
             "request_duration_seconds": "histogram", CONSTANT: "gauge"}
    for i, t in enumerate(range(START, END + 1, STEP)):
        series[CONSTANT].append(f"{CONSTANT} 12 {t}")
        for s, site in enumerate(sites):
            level = 3 + s * 5 + (i % 20) / 4                          # b's prices are higher
            series["price_cents"].append(f'price_cents{{site="{site}"}} {level} {t}')
            for u, (unit, vehicle) in enumerate(SITES[site].items()):
                labels = f'site="{site}",unit="{unit}"'
                watts = 0 if (i + 7 * u + 3 * s) % 40 < 15 else 7000 + 1000 * u + 500 * s
                series["power_watts"].append(f"power_watts{{{labels}}} {watts} {t}")
                series["energy_joules"].append(f"energy_joules_total{{{labels}}} {i * (u + 1 + s) * 1000} {t}")
                series["vehicle_info"].append(f'vehicle_info{{{labels},vehicle="{vehicle}"}} 1 {t}')
            for le, count in (("0.1", i * (1 + 2 * s)), ("1", i * 4), ("+Inf", i * 4)):
                series["request_duration_seconds"].append(
                    f'request_duration_seconds_bucket{{site="{site}",le="{le}"}} {count} {t}')
            series["request_duration_seconds"] += [f'request_duration_seconds_count{{site="{site}"}} {i * 4} {t}',
                                                   f'request_duration_seconds_sum{{site="{site}"}} {i * 1.5} {t}']
    lines = []
    for name, samples in series.items():
        lines += [f"# TYPE {name} {kinds[name]}", *samples]
    return "\n".join(lines) + "\n# EOF\n"


# Aggregations, binary operators with on()/ignoring()/group_left, set operators, subqueries, offset and @,
# absent(), histograms, label functions, the dashboards' counted() shape, and a constant with no site.
EXPRS = [
    "power_watts",
    "sum by (unit) (rate(energy_joules_total[5m]))",
    "sum(power_watts) / count(power_watts)",
    "topk(1, power_watts) or bottomk(1, power_watts)",
    'count_values("watts", power_watts)',
    "power_watts * on(unit) group_left(vehicle) vehicle_info",
    "power_watts and ignoring(vehicle) vehicle_info",
    "sum by (unit) (power_watts) unless on(unit) (power_watts == 0)",
    "max_over_time((sum(power_watts))[30m:1m])",
    "max_over_time((sum(power_watts))[30m:1m] offset 10m)",
    f"power_watts @ {START + 1800}",
    "avg_over_time(price_cents[10m] offset 5m)",
    f"price_cents > on() group_left {CONSTANT} * 0.5",
    "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[10m])))",
    "rate(request_duration_seconds_sum[5m]) / rate(request_duration_seconds_count[5m])",
    '{__name__=~"power_watts|price_cents"}',
    'label_replace(power_watts, "charger", "$1", "unit", "(.*)")',
    'absent(power_watts{unit="shed"})',
    "absent_over_time(price_cents[5m])",
    "absent(nothing_at_all)",
    "sum(last_over_time(energy_joules_total[1d]) - (last_over_time(energy_joules_total[1d] offset 30m)"
    " or min_over_time(energy_joules_total[30m]) or 0 * last_over_time(energy_joules_total[1d])))",
    "quantile_over_time(0.9, price_cents[1h]) - scalar(max(price_cents))",
    'count(power_watts > bool 1000) + vector(time() * 0)',
]


def no_site(name: str | None) -> bool:
    return name == CONSTANT


def prometheus_answer(url: str, expr: str, at: float | None = None, *, step: int | None = None,
                      errors: bool = False) -> Any:
    """The result of an instant (at) or range (START..END every step) query, labels as sorted tuples; an
    error fails, or (`errors`) is the answer."""
    params = {"query": expr, "time": at} if step is None else {"query": expr, "start": START + 1800, "end": END,
                                                                "step": step}
    path = "/api/v1/query" if step is None else "/api/v1/query_range"
    status, _, body = get(f"{url}{path}?{urllib.parse.urlencode(params)}", timeout=10)
    answer = json.loads(body)
    if errors and answer["status"] == "error":
        return answer["error"]
    assert status == 200 and answer["status"] == "success", f"{expr}: {answer}"
    data = answer["data"]
    if data["resultType"] in ("scalar", "string"):
        return data["result"][1]
    return {tuple(sorted(item["metric"].items())): item.get("value", [None, None])[1] if step is None
            else tuple(item["values"]) for item in data["result"]}


@pytest.fixture(scope="module")
def two_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    from testkit.stack import Stack
    workdir = tmp_path_factory.mktemp("promql-matcher")
    with Stack(workdir) as stack:
        both = stack.prometheus({}, data_dir=write_blocks(workdir / "both", openmetrics(["a", "b"])), name="both")
        only_a = stack.prometheus({}, data_dir=write_blocks(workdir / "a", openmetrics(["a"])), name="only-a")
        yield both.url, only_a.url


@pytest.mark.parametrize("expr", EXPRS)
def test_the_injected_answer_is_the_sites_own(two_prometheus: tuple[str, str], expr: str) -> None:
    both, only_a = two_prometheus
    for matcher in ('site=~"a"', 'site="a"'):
        injected = with_matcher(expr, matcher, skip=no_site)
        for at in (START + 3600, END):
            ours, theirs = prometheus_answer(both, injected, at), prometheus_answer(only_a, expr, at)
            if matcher == 'site="a"' and expr.startswith("absent("):
                # absent() copies a selector's equality matchers into its one series: site="a" too
                theirs = {tuple(sorted(dict(labels, site="a").items())): value for labels, value in theirs.items()}
            assert ours == theirs, f"{injected} at {at}"
    injected = with_matcher(expr, 'site=~"a"', skip=no_site)
    theirs = prometheus_answer(only_a, expr, step=60)
    assert prometheus_answer(both, injected, step=60) == theirs, injected
    assert theirs or expr.startswith("absent_over_time("), "an answer to compare"


def test_without_the_matcher_site_b_is_there(two_prometheus: tuple[str, str]) -> None:
    """The comparison above can fail: the two Prometheus answer the plain expressions differently (or not at
    all: with a garage at both sites, `on(unit)` finds two series on one side)."""
    both, only_a = two_prometheus
    same = [expr for expr in EXPRS if prometheus_answer(both, expr, step=60, errors=True)
            == prometheus_answer(only_a, expr, step=60)]
    assert same == ["absent_over_time(price_cents[5m])", "absent(nothing_at_all)"], "absent() of what both have or lack"
    # and skipping the site-less constant matters: with the matcher on it, the comparison has nothing
    assert prometheus_answer(both, with_matcher(f"price_cents > on() group_left {CONSTANT} * 0.5", 'site="a"'),
                             END) == {}


def dashboard_queries(now: float) -> list[tuple[str, str]]:
    """Every dashboard panel's PromQL, with the site matcher (already there once the boards have it), its
    Grafana variables resolved with All selected."""
    found = []
    for path in sorted((ROOT / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        variables = {v["name"]: v for v in dashboard["templating"]["list"] if v["type"] in ("query", "custom")}
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                if "expr" in target:
                    expr = with_matcher(target["expr"], 'site=~".*"')
                    found.append((f"{dashboard['uid']} / {panel['title']}",
                                  resolve(expr, Window.of(panel, now), {}, variables)))
    return found


async def test_every_dashboard_and_session_store_query_parses_with_the_matcher(
        two_prometheus: tuple[str, str], tmp_path: Path) -> None:
    both, _ = two_prometheus
    queries = dashboard_queries(time.time())
    queries += [("session store", with_matcher(expr, 'site="a"')) for expr in await session_store_exprs(tmp_path)]
    assert len(queries) > 250
    for where, expr in queries:
        prometheus_answer(both, expr, END)       # asserts success: a parse error is HTTP 400
