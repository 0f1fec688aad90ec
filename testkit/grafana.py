"""Grafana's side of the dashboards, emulated for tests and benchmarks: reading the committed JSON, resolving
its variables the way Grafana does ($__range, $__interval, $__rate_interval, All as the variable's allValue,
so `$site` is `.*`, ${x:csv}, the date formats of $__from and $__to in the browser's zone, relative time
overrides, step alignment, chained filter variables, `${store}` as the session store under test), and
running the resolved queries against a Prometheus query API (Prometheus or VictoriaMetrics) or the session
store's API, as Grafana's Prometheus and Infinity datasources would.
"""
from __future__ import annotations

import json
import math
import re
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from testkit import ROOT
from testkit.http import get

DASHBOARDS = ROOT / "grafana" / "dashboards"
INFINITY = "yesoreyeram-infinity-datasource"
# The session store's datasource: the `store` variable (a site's store), or the single-site uid.
STORE_DATASOURCES = ("${store}", "session-store")
# The browser the dashboards are resolved for: relative times (now/d, now/w) and date formats of $__from and
# $__to follow its time zone, as in Grafana with the dashboards' timezone "browser". Not UTC, so the local
# hours of the day are a real offset from Prometheus's UTC.
BROWSER = ZoneInfo("America/Chicago")
SCRAPE_INTERVAL = 15          # the Grafana datasource's timeInterval (prometheus.scrape_interval)
# The dashboard time range the test uses: the last 2 hours. Billed hourly prices are one sample per clock
# hour, stamped with its end (electricity_price_billed_cents_per_kwh): two hours always hold a complete
# hour's, wherever in the hour the test runs; ten minutes would hold one only just after the hour.
TEST_RANGE = 7200
MAX_DATA_POINTS = 1000

# ------------------------------------------------------------------------------ reading the JSON

def panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])      # collapsed rows keep their panels inside


# Meter & Bills needs the utility's meter data, which arrives days late and reaches Prometheus as TSDB
# blocks: tests/e2e/test_meter.py runs every one of its queries against a Prometheus holding them.
CHECKED_ELSEWHERE = {"meter-bills"}


def query_panels() -> Iterator[tuple[dict, dict]]:
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        if dashboard["uid"] in CHECKED_ELSEWHERE:
            continue
        for panel in panels(dashboard):
            if panel["type"] != "row":
                yield dashboard, panel


def query_variables(dashboard: dict) -> list[dict]:
    return [v for v in dashboard["templating"]["list"] if v["type"] == "query"]


# ----------------------------------------------------------------- Grafana's variable resolution

DURATION = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 365 * 86400}
VARIABLE = re.compile(r"\$\{(\w+)(?::([^}]+))?\}|\$(\w+)|\[\[(\w+)\]\]")


def seconds(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([smhdwy])", text).groups()
    return int(number) * DURATION[unit]


def duration_text(value: int) -> str:
    return f"{value}s"


@dataclass
class Window:
    """The time range, interval and step Grafana would use for one panel."""
    start: float
    end: float
    interval: int

    @classmethod
    def of(cls, panel: dict, now: float) -> "Window":
        relative = panel.get("timeFrom")
        local = datetime.fromtimestamp(now, BROWSER)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if relative == "now/d":                      # today so far in the browser's zone
            span = max(now - midnight.timestamp(), TEST_RANGE)
        elif relative == "now/w":                    # this week so far (from Monday)
            span = max(now - (midnight - timedelta(days=local.weekday())).timestamp(), TEST_RANGE)
        elif relative:
            span = seconds(relative)
        else:
            span = TEST_RANGE
        low = seconds(panel["interval"]) if panel.get("interval") else SCRAPE_INTERVAL
        return cls(now - span, now, max(low, math.ceil(span / MAX_DATA_POINTS)))

    @property
    def range_s(self) -> int:
        return round(self.end - self.start)

    def aligned(self) -> tuple[float, float]:
        """Grafana aligns a range query's start and end to its step (UTC here)."""
        step = self.interval
        return self.start // step * step, self.end // step * step


def regex_escape(value: str) -> str:
    """Grafana's escaping of a multi-value selection for a PromQL regex string."""
    return re.sub(r"([\\^$*+?.()|{}\[\]])", r"\\\\\1", value)


def date_format(moment: float, form: str) -> str:
    """`${__from:date:<form>}`: Grafana's date formats (moment.js tokens) in the browser's zone."""
    if form == "seconds":
        return str(round(moment))
    if form in ("", "ms"):
        return str(int(moment * 1000))
    local = datetime.fromtimestamp(moment, BROWSER)
    tokens = {"YYYY": f"{local.year:04d}", "x": str(int(moment * 1000)), "H": str(local.hour),
              "m": str(local.minute), "s": str(local.second)}
    if form not in tokens:
        raise AssertionError(f"date format {form!r} not emulated")
    return tokens[form]


def resolve(text: str, window: Window, selection: dict[str, list[str] | None], variables: dict[str, dict],
            listed: dict[str, list[str]] | None = None) -> str:
    """Interpolate like Grafana: built-ins, the datasource, filters (None = All) and choices. All is the
    filter's allValue (`.*`) as is, in every format but :text; without one, every value the variable lists
    (`listed`). A selection is `(a|b)` in PromQL, `a,b` with :csv; a custom variable is its selected option
    (its value, or its text with :text)."""
    rate_interval = max(window.interval + SCRAPE_INTERVAL, 4 * SCRAPE_INTERVAL)
    builtins = {"__interval": duration_text(window.interval), "__interval_ms": str(window.interval * 1000),
                "__rate_interval": duration_text(rate_interval), "__auto": duration_text(window.interval),
                "__range": duration_text(window.range_s), "__range_s": str(window.range_s),
                "__range_ms": str(window.range_s * 1000), "datasource": "prometheus"}

    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(3) or match.group(4)
        form = match.group(2) or ""
        if name in ("__from", "__to"):
            return date_format(window.start if name == "__from" else window.end, form.removeprefix("date:")
                               .removeprefix("date"))
        if name in builtins:
            return builtins[name]
        if name not in variables:
            if name.isdigit():
                return match.group()                # label_replace's "$1": Grafana leaves it alone
            raise AssertionError(f"unknown variable ${name}")
        variable = variables[name]
        if variable["type"] == "custom":
            chosen = selection.get(name) or [variable["current"]["value"]]
            option = next(o for o in variable["options"] if o["value"] == chosen[0])
            return option["text"] if form == "text" else option["value"]
        chosen = selection.get(name)
        if chosen is None and variable.get("allValue") and form != "text":
            return variable["allValue"]             # Grafana: a custom all value is used as is, in every format
        if chosen is None:
            chosen = (listed or {}).get(name, [])
        if form == "csv":
            return ",".join(chosen)
        if form == "text":
            return "All" if selection.get(name) is None else " + ".join(chosen)
        assert not form, f"${{{name}:{form}}} not emulated"
        escaped = [regex_escape(v) for v in chosen]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    return VARIABLE.sub(value, text)


# --------------------------------------------------------------------------------------- checks

def prometheus_api(url: str, path: str, params: dict[str, Any]) -> dict:
    status, _, body = get(f"{url}{path}?{urllib.parse.urlencode(params)}", timeout=30)
    answer = json.loads(body)
    if status != 200 or answer.get("status") != "success":
        return {"error": f"HTTP {status}: {answer.get('error', body[:200])}"}
    return answer["data"]


def has_values(data: dict) -> bool:
    """At least one sample that is a number (NaN is what a broken division looks like)."""
    for series in data["result"]:
        for _, sample in ([series["value"]] if "value" in series else series["values"]):
            if not math.isnan(float(sample)):
                return True
    return False


def run_prometheus(url: str, window: Window, instant: bool, expr: str) -> str | None:
    """None when the query parses and returns data; else what went wrong."""
    if instant:
        data = prometheus_api(url, "/api/v1/query", {"query": expr, "time": f"{window.end:.3f}"})
    else:
        start, end = window.aligned()
        data = prometheus_api(url, "/api/v1/query_range", {"query": expr, "start": start, "end": end,
                                                            "step": window.interval})
    if "error" in data:
        return data["error"]
    return None if has_values(data) else "no data"


def field(row: dict, selector: str) -> tuple[bool, Any]:
    """A column's value in a row (`session.start`: nested); a null parent is a present, empty value."""
    value: Any = row
    for key in selector.split("."):
        if value is None:
            return True, None
        if not isinstance(value, dict) or key not in value:
            return False, None
        value = value[key]
    return True, value


def fetch_infinity(store: str, target: dict, window: Window, selection: dict, variables: dict,
                   listed: dict | None = None) -> tuple[str, list[dict] | str]:
    """The URL Grafana's Infinity datasource would call, and the rows at its root selector (or the problem).
    `store` is the session store under test, what the target's `${store}` datasource resolves to."""
    source = target["datasource"]
    if source["type"] != INFINITY or source["uid"] not in STORE_DATASOURCES:
        return "", f"datasource {source} is not the session store's"
    params = [(p["key"], resolve(p["value"], window, selection, variables, listed))
              for p in target["url_options"]["params"]]
    url = f"{store}{target['url']}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    status, headers, body = get(url, timeout=10)
    if status != 200 or not headers.get("Content-Type", "").startswith("application/json"):
        return url, f"HTTP {status} {headers.get('Content-Type')} from {url}: {body[:200]!r}"
    return url, json.loads(body)[target["root_selector"]]


def run_infinity(store: str, target: dict, window: Window, selection: dict, variables: dict,
                 listed: dict | None = None) -> str | None:
    """None when the route answers rows holding every column; with one unit or vehicle picked, every row
    must be of it (the route follows the filter)."""
    url, rows = fetch_infinity(store, target, window, selection, variables, listed)
    if isinstance(rows, str):
        return rows
    if not rows:
        return f"no rows from {url}"
    missing = sorted({c["selector"] for c in target["columns"] for row in rows if not field(row, c["selector"])[0]})
    if missing:
        return f"fields {missing} missing from {url}"
    for name, chosen in selection.items():
        used = any(p["value"] == f"${{{name}:csv}}" for p in target["url_options"]["params"])
        if chosen is not None and used and variables[name]["type"] == "query":
            others = sorted({str(row[name]) for row in rows if name in row and row[name] not in chosen})
            if others:
                return f"{url} does not follow ${name}={chosen}: rows of {others}"
    return None


def filter_values(url: str, variable: dict, window: Window, variables: dict[str, dict] | None = None,
                  selection: dict[str, list[str] | None] | None = None) -> tuple[list[str], str | None]:
    """Run a `label_values(metric, label)` variable query; the variables it follows (`$site`) resolved from
    the dashboard's `variables` (All unless `selection` picks)."""
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["query"])
    if not match:
        return [], f"unsupported variable query {variable['query']!r}"
    metric, label = match.groups()
    metric = resolve(metric, window, selection or {}, variables or {})
    data = prometheus_api(url, f"/api/v1/label/{label}/values",
                          {"match[]": metric, "start": window.start, "end": window.end})
    if isinstance(data, dict) and "error" in data:
        return [], data["error"]
    return sorted(data), None
