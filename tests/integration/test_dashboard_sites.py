"""Every dashboard with several sites selected, against a real Prometheus holding two sites.

tests/integration/test_promql_matcher.py shows that `$site` picks a site's series; this shows what the panels
make of two sites at once. One Prometheus (promtool blocks) holds every series the dashboards read, for two
sites `a` and `b` whose units and vehicles share names (a "garage" and a "Blue" at each), whose prices differ
(each site its own zone: b's are dearer) and whose session stores differ: site a's store and counters are
new in the time range (its history is lost, retention or an outage of more than a day) while b's store has
been up throughout. The recording rules' outputs carry `site`, as the site-aware rules make them.

Every PromQL query of every dashboard is resolved as Grafana would with `$site` All (`.*`), `a` and `b`, and
run (instant or range, as its panel does); none may fail (a join of two sites' same-named units fails with
"duplicate series"). Then each query's All answer must be either
- per site: every series has its site, and the All answer is exactly site a's answer and site b's side by
  side (prices, percentiles, states, ratios, each unit's power);
- a total: no series has a site, and each is site a's plus site b's (power, energy, cost, sessions): with
  `unless on()` in the session counters, b's store would decide for a and count a's lifetime as the range's;
- or site-less: the same whatever the sites (the constant thresholds).
A representative set of non-additive panels (the current price, the 30-day percentiles, a unit's power by
unit) must show one series per site, each the single site's answer.
"""
from __future__ import annotations

import json
import math
import re
import time
import urllib.parse
from typing import Any, Iterator

import pytest

from servicekit.promql import with_matcher
from testkit import ROOT
from testkit.backfill import write_blocks
from testkit.grafana import Window, panels, resolve
from testkit.http import get

pytestmark = pytest.mark.integration

STEP = 15                                        # one sample every scrape interval
END = int(time.time()) // 60 * 60 - 900          # the dashboards' "now": inside the retention
START = END - 3 * 3600                           # an hour before the 2-hour time range, and the range
A_SINCE = END - 3600                             # site a's session store and counters: only this last hour
FIRST_RECORDED = END - 30 * 86400                # both stores recorded their first session a month ago
SITES = ("a", "b")
# site -> its units (a "garage" at both) and the vehicle on each; vehicles alone: the same "Blue" at both
UNITS = {"a": {"garage": "Blue", "driveway": "Red"}, "b": {"garage": "Blue", "shed": "Green"}}
VEHICLES = {site: sorted(set(units.values())) for site, units in UNITS.items()}
# the value of every other label a query reads or matches on
VALUES = {
    "component": ("supply", "supply_credit", "delivery"), "percentile": ("25", "75", "90"),
    "hours_ahead": ("0", "1", "2"), "period": ("today", "yesterday", "month_to_date", "last_bill"),
    "source": ("computed", "utility"), "outcome": ("success", "timeout"), "estimated": ("false",),
    "action": ("stop",), "reason": ("stale_price",), "signal": ("billed",),
    "provider": ("comed",), "utility": ("comed",), "sensor": ("handle",), "phase": ("L1",), "relay": ("1",),
    "level": ("high",), "location": ("inside",), "stat": ("min",), "state": ("charging",), "flow": ("grid",),
    "period_start": ("2026-01-01",), "period_end": ("2026-02-01",), "le": ("0.1", "1", "+Inf"),
}
JOBS = (("twc_", "twc"), ("tesla_wall_connector", "fleet"), ("tesla_energy_site", "fleet"), ("tesla_vehicle", "vehicle"),
        ("electricity_price", "price"), ("utility_meter", "meter"), ("charging", "session_store"),
        ("smart_charging", "session_store"))
# Series that are not in the exporters' reference tables: recording rules (with `site`, as the site-aware rules
# keep it), Prometheus's own per target, and the alerts.
EXTRA = {
    "charging:unit_power_watts": ("gauge", "unit"), "charging:charger_power_watts": ("gauge", "charger"),
    "charging:power_watts:sum": ("gauge", ""), "charging:cost_dollars_per_hour": ("gauge", ""),
    "electricity_price:lookback_percentile_cents_per_kwh": ("gauge", "percentile"),
    "electricity_price:billed_lookback_percentile_cents_per_kwh": ("gauge", "percentile"),
    "electricity_price:lookback_prices": ("gauge", ""), "electricity_price:billed_lookback_hours": ("gauge", ""),
    "up": ("target", ""), "scrape_duration_seconds": ("target", ""), "scrape_samples_scraped": ("target", ""),
    "ALERTS": ("alert", ""),
}
CONSTANTS = ("charging_threshold:",)             # rules/thresholds.yml: no site


def reference() -> dict[str, tuple[str, str]]:
    """Every series the suite exports: name -> (kind, its labels as the metrics reference lists them)."""
    from session_store.metrics import REFERENCE as SESSIONS
    from session_store.smart_metrics import REFERENCE as SMART
    from suite.reference import exporter_rows, meter_rows
    rows = list(SESSIONS) + list(SMART) + meter_rows()
    for exporter in ("twc", "fleet", "vehicle", "price"):
        rows += exporter_rows(exporter)
    found: dict[str, tuple[str, str]] = {}
    for name, kind, labels, _ in rows:
        if kind == "histogram":
            found |= {f"{name}_bucket": ("counter", f"{labels}, le"), f"{name}_sum": ("counter", labels),
                      f"{name}_count": ("counter", labels)}
        else:
            found[name] = ("counter" if kind == "counter" else "gauge", labels)
    return found | EXTRA


def dashboard_targets() -> Iterator[tuple[dict, dict, dict]]:
    """(dashboard, panel, target) of every PromQL query of every committed dashboard."""
    for path in sorted((ROOT / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                if "expr" in target:
                    yield dashboard, panel, target


def read_series() -> set[str]:
    """The metric names the dashboards' queries select (by name, or by a `__name__` regex over the reference)."""
    known, names = reference(), set()

    def seen(name: str | None) -> bool:
        if name:
            names.add(name)
        return False
    for _, _, target in dashboard_targets():
        with_matcher(target["expr"], 'x="y"', skip=seen)
        for regex in re.findall(r'__name__=~"([^"]+)"', target["expr"]):
            names |= {name for name in known if re.fullmatch(regex, name)}
    return names


def label_sets(site: str, name: str, labels: str) -> list[dict[str, str]]:
    """The series of one metric at one site: every unit (or charger, or vehicle, or unit and its vehicle) times
    every value of the other labels it has."""
    names = [n.strip() for n in labels.split(",") if n.strip() and n.strip() not in ("...facts", "site")]
    if name == "tesla_wall_connector_vehicle_info":
        names.append("vehicle")                  # one of its facts, which the unit table reads
    if "unit" in names:
        base = [{"unit": unit, **({"vehicle": vehicle} if "vehicle" in names else {})}
                for unit, vehicle in UNITS[site].items()]
    elif "charger" in names or "target" in names:
        base = [{label: unit for label in ("charger", "target") if label in names} for unit in UNITS[site]]
    elif "vehicle" in names:
        base = [{"vehicle": vehicle} for vehicle in VEHICLES[site]]
    else:
        base = [{}]
    for label in names:
        if label in ("unit", "charger", "target", "vehicle"):
            continue
        values = VALUES.get(label, (f"{label}-1",))
        if label == "endpoint":                   # each upstream its own (the queries drop the metric name)
            base = [{**b, label: name.split("_upstream")[0]} for b in base]
            continue
        if label in ("din", "vin"):
            base = [{**b, label: f"{label}-{b.get('unit', b.get('vehicle'))}"} for b in base]
            continue
        base = [{**b, label: value} for b in base for value in values]
    return base


def job_of(name: str) -> str:
    return next((job for prefix, job in JOBS if name.startswith(prefix)), "session_store")


def value(name: str, kind: str, s: int, k: int, i: int, t: int) -> float:
    """Site s's series k at step i (time t): counters rise, prices are dearer at b, moments are recent."""
    if kind == "counter":
        return float((i + 1) * (1 + k + 2 * s))
    if name.endswith("_timestamp_seconds") and name != "charging_session_first_recorded_timestamp_seconds":
        return float(t - 60 * (1 + k + s))
    if name.endswith(("_info", "_up")) or name in ("up", "charging_session_store_up"):
        return 1.0
    return (1 + s) * 5.0 + k + (i % 12) / 4 + (s * 0.5 if "power" in name else 0.0)


def openmetrics(names: set[str], sites: tuple[str, ...] = SITES, labelled: bool = True) -> str:
    """Every series of `names` for `sites`; without the `site` label (`labelled` False: a one-home Prometheus of
    one's own, or history from before sites), which leaves a single site's series as they are otherwise."""
    known = reference()
    lines: list[str] = []
    steps = list(enumerate(range(START, END + 1, STEP)))
    for name in sorted(names):
        if name.startswith(CONSTANTS):
            lines += [f"# TYPE {name} gauge"] + [f"{name} 60 {t}" for _, t in steps]
            continue
        kind, labels = known[name]
        counter = kind == "counter" and name.endswith("_total")     # OpenMetrics: the family is named without _total
        lines.append(f"# TYPE {name.removesuffix('_total')} counter" if counter else f"# TYPE {name} gauge")
        for s, site in enumerate(sites):
            if kind == "target":
                sets = [{"job": job, "instance": f"{site}.example:1"} for job in
                        ("twc", "fleet", "vehicle", "price", "session_store", "meter")]
            elif kind == "alert":
                sets = [{"alertname": "WallConnectorOffline", "alertstate": "firing", "severity": "warning",
                         "unit": unit, "job": "twc"} for unit in UNITS[site]]
            else:
                sets = [{**labels_, "job": job_of(name), "instance": f"{site}.example:1"}
                        for labels_ in label_sets(site, name, labels)]
            # site a's store and its counters: only the last hour (its earlier history is gone)
            since = A_SINCE if site == "a" and name.startswith(("charging_session", "charging_sessions")) else START
            for k, extra in enumerate(sets):
                text = ",".join(f'{key}="{val}"' for key, val in sorted({**extra, **({"site": site} if labelled else {})}
                                                                         .items()))
                for i, t in steps:
                    if t < since:
                        continue
                    if name == "charging_session_first_recorded_timestamp_seconds":
                        sample = float(FIRST_RECORDED)
                    else:
                        sample = value(name, kind, s, k, i, t)
                    lines.append(f"{name}{{{text}}} {sample!r} {t}")
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Two Prometheus: sites a and b, labelled; site a's series alone, without the label."""
    from testkit.stack import Stack
    workdir = tmp_path_factory.mktemp("dashboard-sites")
    names = read_series()
    with Stack(workdir) as stack:
        both = write_blocks(workdir / "two-sites", openmetrics(names))
        plain = write_blocks(workdir / "unlabelled", openmetrics(names, ("a",), labelled=False))
        yield {"two sites": stack.prometheus({}, data_dir=both, name="two-sites").url,
               "unlabelled": stack.prometheus({}, data_dir=plain, name="unlabelled").url}


@pytest.fixture(scope="module")
def two_sites(prometheus: dict[str, str]) -> str:
    return prometheus["two sites"]


# --------------------------------------------------------------------------------------- answers

Answer = dict[str, dict[float, float]]


def answer(url: str, dashboard: dict, panel: dict, target: dict, site: str | None) -> Answer | str:
    """The target's answer with `$site` All (None) or one site, resolved as Grafana resolves it: series (labels
    as sorted JSON) -> time -> value; or the error."""
    variables = {v["name"]: v for v in dashboard["templating"]["list"] if v["type"] in ("query", "custom")}
    window = Window.of(panel, END)
    expr = resolve(target["expr"], window, {"site": [site]} if site else {}, variables)
    if target.get("instant"):
        path, params = "/api/v1/query", {"query": expr, "time": window.end}
    else:
        start, end = window.aligned()
        path, params = "/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": window.interval}
    status, _, body = get(f"{url}{path}?{urllib.parse.urlencode(params)}", timeout=30)
    reply = json.loads(body)
    if status != 200 or reply.get("status") != "success":
        return f"HTTP {status}: {reply.get('error', body[:300])}"
    return {json.dumps(series["metric"], sort_keys=True):
            {float(t): float(v) for t, v in ([series["value"]] if "value" in series else series["values"])}
            for series in reply["data"]["result"]}


def same(x: float, y: float) -> bool:
    return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)


def same_answer(ours: Answer, theirs: Answer) -> bool:
    return ours.keys() == theirs.keys() and all(
        ours[k].keys() == theirs[k].keys() and all(same(ours[k][t], theirs[k][t]) for t in ours[k]) for k in ours)


def site_of(key: str) -> str | None:
    return json.loads(key).get("site")


def kind_of(every: Answer, alone: dict[str, Answer]) -> str | None:
    """How the All answer relates to the single sites': per site, total, site-less; None if none of these."""
    sites = {site_of(key) for key in every}
    if every and None not in sites:
        union = {key: points for answer_ in alone.values() for key, points in answer_.items()}
        return "per site" if same_answer(every, union) else None
    if sites - {None}:
        return None                                   # some series with a site, some without
    if all(same_answer(every, answer_) for answer_ in alone.values()):
        return "site-less"
    total: Answer = {}
    for answer_ in alone.values():
        for key, points in answer_.items():
            for t, v in points.items():
                total.setdefault(key, {})[t] = total.get(key, {}).get(t, 0.0) + v
    return "total" if same_answer(every, total) else None


# ----------------------------------------------------------------------------------------- tests

def test_every_panel_query_is_per_site_or_a_total_of_the_sites(two_sites: str) -> None:
    failures, kinds = [], {"per site": 0, "total": 0, "site-less": 0, "empty": 0}
    for dashboard, panel, target in dashboard_targets():
        where = f"{dashboard['uid']} / {panel['title']} / {target['refId']}"
        every = answer(two_sites, dashboard, panel, target, None)
        alone = {site: answer(two_sites, dashboard, panel, target, site) for site in SITES}
        errors = [f"{selection}: {reply}" for selection, reply in (("All", every), *alone.items())
                  if isinstance(reply, str)]
        if errors:
            failures.append(f"{where}: {'; '.join(errors)}")
            continue
        assert not isinstance(every, str)
        if not every and not any(alone.values()):
            kinds["empty"] += 1
            continue
        kind = kind_of(every, alone)     # type: ignore[arg-type]
        if kind is None:
            failures.append(f"{where}: All is neither each site's answer, their total nor site-less: "
                            f"{sorted(every)[:4]} vs a {sorted(alone['a'])[:2]}, b {sorted(alone['b'])[:2]}")
            continue
        kinds[kind] += 1
    print(f"\n{sum(kinds.values())} panel queries on two sites: {kinds}")
    assert not failures, f"{len(failures)} queries mix the sites:\n" + "\n".join(failures)
    assert kinds["per site"] >= 120 and kinds["total"] >= 40 and kinds["empty"] <= 15, kinds


# (dashboard, panel, refId): non-additive panels, each site's own value side by side
PER_SITE = [
    ("charging-overview", "Price now", "A"), ("charging-overview", "Price now", "B"),
    ("electricity-prices", "Price now", "A"), ("electricity-prices", "This hour (projected)", "A"),
    ("electricity-prices", "Last billed hour", "A"), ("electricity-prices", "Percentile (30 days)", "A"),
    ("electricity-prices", "30-day percentiles", "A"), ("electricity-prices", "30-day percentiles", "B"),
    ("electricity-prices", "This hour, the billed hours and their 30-day percentiles · $site", "D"),
    ("charging-overview", "Power per Wall Connector", "A"), ("wall-connectors", "All Wall Connectors", "B"),
    ("wall-connectors", "Power per unit", "A"), ("session-history", "Average price paid", "A"),
]


@pytest.mark.parametrize("uid, title, ref", PER_SITE, ids=lambda x: str(x))
def test_non_additive_panels_show_each_site_as_it_shows_alone(two_sites: str, uid: str, title: str,
                                                              ref: str) -> None:
    dashboard, panel, target = next((d, p, t) for d, p, t in dashboard_targets()
                                    if (d["uid"], p["title"], t["refId"]) == (uid, title, ref))
    every = answer(two_sites, dashboard, panel, target, None)
    alone = {site: answer(two_sites, dashboard, panel, target, site) for site in SITES}
    assert not isinstance(every, str), every
    for site, answer_ in alone.items():
        assert isinstance(answer_, dict) and answer_, f"site {site}: {answer_}"
        assert {site_of(key) for key in answer_} == {site}
        assert same_answer({k: v for k, v in every.items() if site_of(k) == site}, answer_), site
    assert {site_of(key) for key in every} == set(SITES)
    if any("unit" in json.loads(key) for key in every):          # a "garage" at each site: two series
        garages = [key for key in every if json.loads(key).get("unit") == "garage"]
        assert {site_of(key) for key in garages} == {"a", "b"}, garages
    # the sites really differ (b's prices are dearer, its units draw more)
    a = [v for key, points in every.items() if site_of(key) == "a" for v in points.values()]
    b = [v for key, points in every.items() if site_of(key) == "b" for v in points.values()]
    assert a != b


def test_totals_add_the_sites_up_and_each_store_decides_for_its_own_site(two_sites: str) -> None:
    """Energy of the range: site a's store has no history before the range (lost), b's was up throughout. Per
    site, a's counters count from their first value in the range, b's from their value before it; added up,
    the All answer is their sum. With `unless on()` b's store would decide for a too, and a's lifetime total
    would count as the range's."""
    dashboard, panel, target = next((d, p, t) for d, p, t in dashboard_targets()
                                    if (d["uid"], p["title"]) == ("session-history", "Energy"))
    every = answer(two_sites, dashboard, panel, target, None)
    alone = {site: answer(two_sites, dashboard, panel, target, site) for site in SITES}
    [total] = [v for points in every.values() for v in points.values()]   # type: ignore[union-attr]
    parts = {site: [v for points in a.values() for v in points.values()] for site, a in alone.items()}  # type: ignore
    assert total == pytest.approx(sum(v for values in parts.values() for v in values)) and all(parts.values())
    old = dict(target, expr=target["expr"].replace("unless on(site) (", "unless on() ("))
    assert "unless on() (" in old["expr"]
    mixed = answer(two_sites, dashboard, panel, old, None)
    [wrong] = [v for points in mixed.values() for v in points.values()]   # type: ignore[union-attr]
    assert wrong > total + 1e-6, "b's store decided for a: a's lifetime counted"


def test_without_the_site_label_every_panel_answers_as_for_its_site(prometheus: dict[str, str]) -> None:
    """A Prometheus whose series have no `site` label (one home, or history from before sites): every panel
    query answers what it answers for that site's labelled series (site a's, `$site` = a), the label aside;
    `by (site)` over unlabelled series is one series, `on(site)` matches as `on()`."""
    failures, with_data = [], 0

    def unsited(reply: Answer | str) -> Answer | str:
        if isinstance(reply, str):
            return reply
        return {json.dumps({k: v for k, v in json.loads(key).items() if k != "site"}, sort_keys=True): points
                for key, points in reply.items()}
    for dashboard, panel, target in dashboard_targets():
        plain = answer(prometheus["unlabelled"], dashboard, panel, target, None)
        labelled = unsited(answer(prometheus["two sites"], dashboard, panel, target, "a"))
        if isinstance(plain, str) or isinstance(labelled, str) or not same_answer(plain, labelled):
            failures.append(f"{dashboard['uid']} / {panel['title']} / {target['refId']}: "
                            f"{str(plain)[:200]} != {str(labelled)[:200]}")
        with_data += bool(plain)
    assert not failures, f"{len(failures)} queries answer otherwise without the label:\n" + "\n".join(failures)
    assert with_data >= 230
