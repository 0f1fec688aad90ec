"""Time-series engines: Prometheus and VictoriaMetrics holding the same history, side by side in one run.

One history (`scale.write_history`, the catch-up benchmark's: 30 days of Fleet series for 10 units at a 30 s
step and the 5-minute price; `--quick`: 3 days, 3 units) goes into both engines: Prometheus as TSDB blocks
written by promtool, VictoriaMetrics (the suite's flags, `suite.processes.victoria_metrics_process`) through
its import API in chunks of 100,000 samples, then `/internal/force_flush` and `/internal/force_merge`, waiting
until no merge runs and its files stop changing. Then: (1) the bytes on disk per stored sample; (2) the
session store catching up the whole history from each engine (as the scale benchmark does it); (3) every
PromQL query of the committed dashboards (Meter & Bills aside: its data is not in this history), resolved
as Grafana would (testkit.grafana, every filter at All) for a 24-hour and a 7-day dashboard range ending at
the history's end, run against both engines alternately, a few warm-up passes, then the timed ones;
(4) a live suite (the simulator's demo scenario and every component at 15x, scraped every second by both
engines, Prometheus with the repository's rules): the bytes per sample of real scrapes, and the series an
installation stores per Wall Connector; (5) from those, disk sizes at a 15 s scrape interval.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from benchmarks import scale
from benchmarks.report import pct, size, table
from suite.processes import wait_until
from testkit import ROOT, grafana
from testkit.exposition import samples
from testkit.http import call_json, get, get_json
from testkit.ports import free_port
from testkit.rss import RssSampler
from testkit.stack import PATIENT, Stack

DAY = 86400
WINDOWS = (("24 h", DAY), ("7 d", 7 * DAY))
SCRAPE_S = 15                               # the suite's scrape interval (prometheus.scrape_interval)
SIZING_UNITS = (10, 100, 1000)
SIZING_DAYS = (40, 365)                     # VictoriaMetrics's retention in the suite (-retentionPeriod=40d), a year
# How each engine is asked: Prometheus; VictoriaMetrics as the suite runs it (its rollup result cache on); the
# same with `nocache=1`, which makes it compute every answer, as Prometheus does.
VARIANTS = (("prometheus", "prometheus", ()), ("victoriametrics", "victoriametrics", ()),
            ("victoriametrics nocache=1", "victoriametrics", (("nocache", "1"),)))
HISTORY_METRICS = ("tesla_wall_connector_power_watts", "tesla_wall_connector_vehicle_connected",
                   "tesla_wall_connector_vehicle_info", "electricity_price_5m_cents_per_kwh")
WALL_CONNECTOR = ("charger", "unit", "din")     # the labels that name a Wall Connector ...
VEHICLE = ("vin", "vehicle")                    # ... and a car


@dataclass(frozen=True)
class Settings:
    units: int
    days: int
    step_s: int
    catch_ups: int          # session-store catch-ups per engine, the engines taking turns
    warmups: int            # passes over every query before the timed ones
    passes: int             # timed passes
    live_s: float           # the live suite (the demo at SPEED x) scraped this long by both engines

    @classmethod
    def full(cls) -> "Settings":
        return cls(units=10, days=30, step_s=30, catch_ups=3, warmups=3, passes=20, live_s=300)

    @classmethod
    def quick(cls) -> "Settings":
        return cls(units=3, days=3, step_s=30, catch_ups=2, warmups=1, passes=3, live_s=40)


# ------------------------------------------------------------------------------------------- queries

@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref: str
    window: str
    instant: bool
    expr: str
    params: tuple[tuple[str, str], ...]

    @property
    def path(self) -> str:
        return "/api/v1/query" if self.instant else "/api/v1/query_range"

    @property
    def name(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref} ({self.window}, {'instant' if self.instant else 'range'})"


def panel_window(panel: dict, end: float, span: int) -> grafana.Window:
    """The range, interval and step Grafana uses for `panel` on a dashboard showing `span` seconds up to `end`:
    a panel's own relative time (timeFrom) wins over the dashboard's range, as in Grafana."""
    if panel.get("timeFrom"):
        return grafana.Window.of(panel, end)
    low = grafana.seconds(panel["interval"]) if panel.get("interval") else grafana.SCRAPE_INTERVAL
    return grafana.Window(end - span, end, max(low, math.ceil(span / grafana.MAX_DATA_POINTS)))


def panel_queries(end: float) -> list[PanelQuery]:
    """Every PromQL target of every dashboard panel (testkit.grafana.query_panels), for each window, with every
    filter at All and the default choices."""
    queries = []
    for label, span in WINDOWS:
        for dashboard, panel in grafana.query_panels():
            variables = {v["name"]: v for v in dashboard["templating"]["list"] if v["type"] in ("query", "custom")}
            window = panel_window(panel, end, span)
            for target in panel["targets"]:
                if target["datasource"]["type"] != "prometheus":
                    continue
                expr = grafana.resolve(target["expr"], window, {}, variables)
                instant = bool(target.get("instant", False))
                if instant:
                    params = (("query", expr), ("time", f"{window.end:.3f}"))
                else:
                    start, stop = window.aligned()
                    params = (("query", expr), ("start", f"{start:.0f}"), ("end", f"{stop:.0f}"),
                              ("step", str(window.interval)))
                queries.append(PanelQuery(dashboard["uid"], panel["title"], target["refId"], label, instant, expr,
                                          params))
    return queries


def answer(status: int, body: bytes) -> tuple[str, Any]:
    """("error", text), ("empty", None) or ("data", {labels without __name__: [(t, value)]}), NaN points dropped
    (what a broken division looks like)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return "error", f"HTTP {status}: {body[:120]!r}"
    if status != 200 or parsed.get("status") != "success":
        return "error", f"HTTP {status}: {parsed.get('error', '')[:120]}"
    data = parsed["data"]
    series: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    if data["resultType"] == "scalar":
        points = [data["result"]]
        series[()] = [(float(t), float(v)) for t, v in points if not math.isnan(float(v))]
    else:
        for one in data["result"]:
            labels = tuple(sorted((k, v) for k, v in one["metric"].items() if k != "__name__"))
            points = [one["value"]] if "value" in one else one["values"]
            kept = [(float(t), float(v)) for t, v in points if not math.isnan(float(v))]
            if kept:
                series[labels] = kept
    series = {k: v for k, v in series.items() if v}
    return ("data", series) if series else ("empty", None)


def difference(ours: dict, theirs: dict) -> str | None:
    """None when two answers hold the same series, points and values (relative 1e-9); else what differs."""
    only_a, only_b = set(ours) - set(theirs), set(theirs) - set(ours)
    notes = []
    if only_a or only_b:
        example = dict(min(only_a or only_b))
        notes.append(f"series only on Prometheus {len(only_a)}, only on VictoriaMetrics {len(only_b)} (e.g. {example})")
    points_a = points_b = shared = 0
    worst = 0.0
    for key in set(ours) & set(theirs):
        a, b = dict(ours[key]), dict(theirs[key])
        points_a += len(set(a) - set(b))
        points_b += len(set(b) - set(a))
        for t in set(a) & set(b):
            shared += 1
            scale_ = max(abs(a[t]), abs(b[t]), 1e-12)
            worst = max(worst, abs(a[t] - b[t]) / scale_)
    if points_a or points_b:
        notes.append(f"points only on Prometheus {points_a}, only on VictoriaMetrics {points_b}")
    if worst > 1e-9:
        notes.append(f"values differ: up to {worst:.1%} (relative) over {shared} shared points")
    return "; ".join(notes) or None


@dataclass
class QueryResults:
    queries: list[PanelQuery]
    latencies: dict[str, list[list[float]]]          # variant -> per query, ms of each timed pass
    outcomes: dict[str, list[tuple[str, Any]]]       # variant -> per query, its last answer
    load: tuple[tuple[float, float, float], tuple[float, float, float]]   # load average before and after

    def answered(self, i: int) -> bool:
        """Whether either engine returned data for query i."""
        return any(self.outcomes[name][i][0] == "data" for name, _, _ in VARIANTS)

    def of(self, variant: str, window: str, data_only: bool = False) -> list[float]:
        return [ms for i, (q, runs) in enumerate(zip(self.queries, self.latencies[variant]))
                if q.window == window and (self.answered(i) or not data_only) for ms in runs]

    def medians(self, variant: str, window: str) -> list[float]:
        return [pct(runs, 50) for q, runs in zip(self.queries, self.latencies[variant]) if q.window == window]

    def with_data(self, variant: str, window: str) -> int:
        return sum(1 for q, o in zip(self.queries, self.outcomes[variant]) if q.window == window and o[0] == "data")

    def findings(self) -> list[tuple[PanelQuery, str]]:
        """Every query whose answers differ between the engines (or between VictoriaMetrics with and without its
        cache): data on one side only, an error, or other series, points or values."""
        found = []
        for i, query in enumerate(self.queries):
            (kind_p, data_p), (kind_v, data_v) = self.outcomes["prometheus"][i], self.outcomes["victoriametrics"][i]
            kind_n, data_n = self.outcomes["victoriametrics nocache=1"][i]
            if kind_p == "error" or kind_v == "error":
                found.append((query, f"error: Prometheus {data_p if kind_p == 'error' else 'ok'}, VictoriaMetrics "
                                     f"{data_v if kind_v == 'error' else 'ok'}"))
            elif kind_p != kind_v:
                found.append((query, f"data on {'Prometheus' if kind_p == 'data' else 'VictoriaMetrics'} only"))
            elif kind_p == "data" and (note := difference(data_p, data_v)):
                found.append((query, note))
            if kind_v != kind_n:
                cached = f"{kind_v} / {kind_n}"
            elif kind_v == "data":
                cached = difference(data_v, data_n)
            else:
                cached = None if data_v == data_n else f"{data_v} / {data_n}"
            if cached:
                found.append((query, f"VictoriaMetrics with its cache / with nocache=1: {cached}"))
        return found


def measure_queries(urls: dict[str, str], queries: list[PanelQuery], settings: Settings,
                    log: Callable[[str], None]) -> QueryResults:
    """Each pass asks every query of every variant in turn, the order of the variants rotating from pass to
    pass, over one keep-alive connection per variant; the timed passes follow the warm-up ones."""
    clients = {name: scale.Client(urls[engine]) for name, engine, _ in VARIANTS}
    latencies: dict[str, list[list[float]]] = {name: [[] for _ in queries] for name, _, _ in VARIANTS}
    outcomes: dict[str, list[tuple[str, Any]]] = {name: [("empty", None)] * len(queries) for name, _, _ in VARIANTS}
    before = os.getloadavg()
    try:
        for run in range(settings.warmups + settings.passes):
            started = time.monotonic()
            order = VARIANTS[run % len(VARIANTS):] + VARIANTS[:run % len(VARIANTS)]
            for i, query in enumerate(queries):
                for name, _, extra in order:
                    path = f"{query.path}?{urllib.parse.urlencode(query.params + extra)}"
                    elapsed, status, body = clients[name].get(path)
                    if run >= settings.warmups:
                        latencies[name][i].append(elapsed)
                    if run == settings.warmups + settings.passes - 1:
                        outcomes[name][i] = answer(status, body)
            log(f"  pass {run + 1} of {settings.warmups + settings.passes} "
                f"({'warm-up' if run < settings.warmups else 'timed'}): {len(queries)} queries x {len(VARIANTS)} in "
                f"{time.monotonic() - started:.1f} s")
    finally:
        for client in clients.values():
            client.close()
    return QueryResults(queries, latencies, outcomes, (before, os.getloadavg()))


# -------------------------------------------------------------------------------- series per unit

@dataclass
class JobSeries:
    fixed: int
    wall_connectors: int        # distinct Wall Connectors the job's series name
    per_wall_connector: int     # series naming one of them
    vehicles: int
    per_vehicle: int            # series naming a car and no Wall Connector

    @property
    def per_unit(self) -> float:
        """Series per Wall Connector with one car."""
        return (self.per_wall_connector / self.wall_connectors if self.wall_connectors else 0.0) + (
            self.per_vehicle / self.vehicles if self.vehicles else 0.0)


def classify(series: Iterable[dict[str, str]]) -> JobSeries:
    """Count the series of one job by what they name: a Wall Connector (charger, unit or din), a car (vin,
    vehicle), or neither (fixed: one per installation). A `target` label naming one of its Wall Connectors or
    cars (an exporter's per-target health) counts with it."""
    rows = list(series)
    chargers = {row[k] for row in rows for k in WALL_CONNECTOR if k in row}
    cars = {row[k] for row in rows for k in VEHICLE if k in row}
    counts = JobSeries(0, 0, 0, 0, 0)
    units: dict[str, set[str]] = {}
    vehicles: dict[str, set[str]] = {}
    for row in rows:
        unit = [k for k in WALL_CONNECTOR if k in row] or (["target"] if row.get("target") in chargers else [])
        car = [k for k in VEHICLE if k in row] or (["target"] if row.get("target") in cars else [])
        if unit:
            counts.per_wall_connector += 1
            for k in unit:
                units.setdefault(k, set()).add(row[k])
        elif car:
            counts.per_vehicle += 1
            for k in car:
                vehicles.setdefault(k, set()).add(row[k])
        else:
            counts.fixed += 1
    # a Wall Connector or car may be named by several labels (unit and din; vin and vehicle): count the label
    # with the most values among the series counted
    counts.wall_connectors = max((len(units[k]) for k in units), default=0)
    counts.vehicles = max((len(vehicles[k]) for k in vehicles), default=0)
    return counts


@dataclass
class SeriesCount:
    jobs: dict[str, JobSeries]          # by job (recording rules and alerts: "rules")
    store_after_catch_up: JobSeries     # the session store's own /metrics with a month of sessions on 10 units

    def job(self, name: str) -> JobSeries:
        """The session store counts with the larger of its two views: the live demo's (a session or two, and
        what Prometheus adds per target) and the catch-up's (a month of sessions on every unit and car)."""
        found = self.jobs.get(name, JobSeries(0, 0, 0, 0, 0))
        if name != "session_store":
            return found
        other = self.store_after_catch_up
        return found if found.per_unit >= other.per_unit else JobSeries(
            max(found.fixed, other.fixed), other.wall_connectors, other.per_wall_connector, other.vehicles,
            other.per_vehicle)

    @property
    def per_unit(self) -> float:
        return sum(self.job(name).per_unit for name in self.jobs)

    @property
    def fixed(self) -> int:
        return sum(self.job(name).fixed for name in self.jobs)


SPEED = 15      # the live suite runs this many times faster than real time: scrapes every 1 s stand for 15 s
# Poll intervals (seconds) of the live suite: the defaults divided by SPEED, so each scrape sees what a 15 s
# scrape would (a new vitals poll every time, a new Fleet status every other scrape, a new price every 20th).
LIVE_POLLS = {"TWC_POLL_VITALS_INTERVAL": 5, "TWC_POLL_LIFETIME_INTERVAL": 60, "TWC_POLL_VERSION_INTERVAL": 300,
              "TWC_POLL_WIFI_INTERVAL": 60, "FLEET_LIVE_STATUS_INTERVAL": 30, "TESSIE_POLL_INTERVAL": 60,
              "COMED_POLL_INTERVAL": 300, "SMART_CHARGING_EVALUATION_INTERVAL": 60}


@dataclass
class LiveDisk:
    engine: str
    samples: int
    series: int
    files_bytes: int
    index_bytes: int        # Prometheus: the blocks' index files; VictoriaMetrics: indexdb
    wal_bytes: int = 0      # Prometheus: its write-ahead log, every sample of the run (none truncated yet)

    @property
    def per_sample(self) -> float:
        return self.files_bytes / self.samples if self.samples else float("nan")


@dataclass
class Live:
    seconds: float
    series: SeriesCount
    disks: dict[str, LiveDisk]


def live_suite(stack: Stack, store_metrics: str, settings: Settings, log: Callable[[str], None]) -> Live:
    """The simulator's demo scenario (two Wall Connectors, the leader also polled over its local API, two cars)
    at SPEED times real time, the four exporters and the session store polling SPEED times faster than their
    defaults, scraped every second by Prometheus (evaluating rules/: recording rules and alerts are stored series
    too) and by vmagent into VictoriaMetrics, for `settings.live_s`. Then: every series Prometheus holds, by job;
    and the bytes per sample of what each engine stored (Prometheus: its head written as a block by the snapshot
    API; VictoriaMetrics: flushed and merged)."""
    sim = stack.simulator("demo", speed=SPEED, name="demo-simulator")
    polls = {name: f"{seconds / SPEED:g}" for name, seconds in LIVE_POLLS.items()}
    tessie = {"TESSIE_ACCESS_TOKEN": sim.token, "TESSIE_BASE_URL": sim.url, **polls}
    targets: dict[str, list[str]] = {}
    for job, module, env in (("twc", "exporters.twc", {"TWC_CHARGERS": f"garage:{sim.charger_address('garage')}",
                                                       **polls}),
                             ("fleet", "exporters.fleet", tessie), ("vehicle", "exporters.vehicle", tessie),
                             ("price", "exporters.price", {"COMED_BASE_URL": sim.url, **polls})):
        targets[job] = [stack.component(f"demo-{job}", module, env=env).address]
    store_port = free_port()
    targets["session_store"] = [f"127.0.0.1:{store_port}"]
    prometheus = stack.prometheus(targets, scrape_interval=1, name="demo-prometheus", extra=["--web.enable-admin-api"],
                                  rule_files=[str(p) for p in sorted((ROOT / "rules").glob("*.yml"))])
    vm = stack.victoria_metrics(targets, scrape_interval=1, name="demo-victoria-metrics")
    stack.component("demo-session-store", "session_store", port=store_port, env=tessie, config={
        "sessions": {"database": str(stack.workdir / "demo-sessions.db"), "evaluation_interval": 1},
        "prometheus": {"url": prometheus.url}})
    started = time.monotonic()
    wait_until(lambda: prometheus.value("count(up == 1)") == len(targets), 60, 0.5, "every demo job up")
    log(f"  the demo suite at {SPEED}x, scraped every second by both engines, for {settings.live_s:g} s")
    time.sleep(max(0.0, settings.live_s - (time.monotonic() - started)))
    now = time.time()
    found = get_json(f"{prometheus.url}/api/v1/series?"
                     + urllib.parse.urlencode({"match[]": '{__name__=~".+"}', "start": now - 10, "end": now}),
                     timeout=30)["data"]
    by_job: dict[str, list[dict[str, str]]] = {}
    for labels in found:
        by_job.setdefault(labels.get("job", "rules"), []).append(labels)
    jobs = {job: classify(rows) for job, rows in sorted(by_job.items())}
    store = classify(dict(s.labels, __name__=s.name) for s in samples(store_metrics))
    for job, counted in jobs.items():
        log(f"  {job:14s} {counted.fixed + counted.per_wall_connector + counted.per_vehicle:4d} series: "
            f"{counted.fixed} fixed, {counted.per_wall_connector} on {counted.wall_connectors} Wall Connectors, "
            f"{counted.per_vehicle} on {counted.vehicles} cars")
    log(f"  session store after the catch-up: {store.fixed} fixed, {store.per_wall_connector} on "
        f"{store.wall_connectors} Wall Connectors, {store.per_vehicle} on {store.vehicles} cars")
    seconds = time.monotonic() - started
    stack.stop(vm.agent)
    snapshot = call_json(f"{prometheus.url}/api/v1/admin/tsdb/snapshot", None, timeout=120)["data"]["name"]
    blocks = [d for d in (prometheus.data_dir / "snapshots" / snapshot).iterdir() if (d / "meta.json").exists()]
    stats = [json.loads((d / "meta.json").read_text())["stats"] for d in blocks]
    files = sum(scale.directory_bytes(d)[0] for d in blocks)
    disks = {"prometheus": LiveDisk("prometheus", sum(x["numSamples"] for x in stats),
                                    sum(x["numSeries"] for x in stats), files,
                                    sum((d / "index").stat().st_size for d in blocks),
                                    scale.directory_bytes(prometheus.data_dir / "wal")[0])}
    scale.vm_settle(vm.url, vm.data_dir)
    metrics = get(f"{vm.url}/metrics", timeout=10)[2].decode()
    rows = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith(('vm_rows{type="storage/small"}', 'vm_rows{type="storage/big"}')))
    series = next((int(float(line.rsplit(" ", 1)[1])) for line in metrics.splitlines()
                   if line.startswith("vm_new_timeseries_created_total")), 0)
    disks["victoriametrics"] = LiveDisk("victoriametrics", int(rows), series, scale.directory_bytes(vm.data_dir)[0],
                                        scale.directory_bytes(vm.data_dir / "indexdb")[0])
    for disk in disks.values():
        log(f"  {disk.engine}: {disk.samples:,} samples of {disk.series:,} series in {size(disk.files_bytes)} "
            f"({disk.per_sample:.3f} bytes/sample, index {size(disk.index_bytes)})")
    return Live(seconds, SeriesCount(jobs, store), disks)


# -------------------------------------------------------------------------------------------- the run

@dataclass
class Disk:
    engine: str
    version: str
    samples: int            # what the engine counts (count_over_time over the whole history)
    written: str
    write_s: float
    settle_s: float
    files_bytes: int
    allocated_bytes: int

    @property
    def per_sample(self) -> float:
        return self.files_bytes / self.samples


@dataclass
class TsdbResult:
    settings: Settings
    started: datetime
    elapsed_s: float
    load: tuple[float, float, float]
    history: scale.History
    generate_s: float
    disks: dict[str, Disk]
    catch_ups: dict[str, list[scale.CatchUp]]          # engine -> each run, in order
    queries: QueryResults
    rss: dict[str, tuple[float, float, float]]          # engine -> MiB max: loaded, catching up, queries
    live: Live | None = None
    notes: list[str] = field(default_factory=list)


def _version(engine: str, url: str) -> str:
    try:
        if engine == "prometheus":
            return "Prometheus " + get_json(f"{url}/api/v1/status/buildinfo")["data"]["version"]
        text = get(f"{url}/metrics", timeout=10)[2].decode()
        line = next(line for line in text.splitlines() if line.startswith("vm_app_version{"))
        version = line.split('short_version="', 1)[1].split('"', 1)[0]
        if not version:         # Debian's build reports none: its package's version then
            version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "victoria-metrics"], capture_output=True,
                                     text=True, timeout=10).stdout.strip() or "(version not reported)"
        return f"VictoriaMetrics {version}"
    except (OSError, KeyError, StopIteration, IndexError, ValueError, subprocess.SubprocessError):
        return engine


def stored_samples(url: str, history: scale.History) -> int:
    """The samples an engine holds, by PromQL: count_over_time over the whole history (prices start 2 days early)."""
    total = 0
    for name in HISTORY_METRICS:     # one by one: count_over_time drops the name, leaving equal label sets
        expr = f"sum(count_over_time({name}[{history.days + 3}d]))"
        reply = get_json(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": history.last + 1}),
                         timeout=120)
        if reply.get("status") != "success":
            raise RuntimeError(f"{url}: {expr}: {reply}")
        total += int(float(reply["data"]["result"][0]["value"][1])) if reply["data"]["result"] else 0
    return total


def run(settings: Settings, log: Callable[[str], None]) -> TsdbResult:
    began, clock, load = datetime.now(timezone.utc), time.monotonic(), os.getloadavg()
    stack = Stack(name="bench-tsdb", patience=PATIENT, log=log)
    ok = False
    try:
        started = time.monotonic()
        history = scale.write_history(stack.workdir / "history.om", settings.units, settings.days, settings.step_s,
                                      time.time())
        generate_s = time.monotonic() - started
        log(f"  generated {history.samples:,} samples ({size(history.bytes)} of OpenMetrics), "
            f"{len(history.planned)} sessions on {settings.units} units over {settings.days} days in "
            f"{generate_s:.1f} s")
        loaded = {engine: scale.load_history(stack, engine, history, log) for engine in scale.ENGINES}
        history.path.unlink()
        sampler = RssSampler({engine: one.process.process.pid for engine, one in loaded.items()
                              if one.process.process})
        disks = {}
        for engine, one in loaded.items():
            counted = stored_samples(one.url, history)
            disks[engine] = Disk(engine, _version(engine, one.url), counted, one.written, one.write_s, one.settle_s,
                                 one.files_bytes, one.allocated_bytes)
            log(f"  {disks[engine].version}: {counted:,} samples in {size(one.files_bytes)} "
                f"({disks[engine].per_sample:.3f} bytes/sample)")
        notes = [f"{engine} holds {d.samples:,} samples, {history.samples:,} were written"
                 for engine, d in disks.items() if d.samples != history.samples]
        sampler.mark("catch-up")
        catch_ups: dict[str, list[scale.CatchUp]] = {engine: [] for engine in loaded}
        for turn in range(settings.catch_ups):
            for engine in (scale.ENGINES if turn % 2 == 0 else scale.ENGINES[::-1]):
                catch_ups[engine].append(scale.catch_up(stack, loaded[engine], history, generate_s, log,
                                                        name=f"session-store-{engine}-{turn + 1}"))
        sampler.mark("queries")
        queries = panel_queries(history.last)
        log(f"  {len(queries)} dashboard queries ({len(queries) // len(WINDOWS)} per window), {settings.warmups} "
            f"warm-up and {settings.passes} timed passes")
        measured = measure_queries({engine: one.url for engine, one in loaded.items()}, queries, settings, log)
        sampler.stop()
        rss = {engine: (max(sampler.of("start", engine)), max(sampler.of("catch-up", engine)),
                        max(sampler.of("queries", engine))) for engine in loaded}
        for one in loaded.values():
            stack.stop(one.process)
        live = live_suite(stack, catch_ups["prometheus"][0].metrics, settings, log)
        result = TsdbResult(settings, began, time.monotonic() - clock, load, history, generate_s, disks, catch_ups,
                            measured, rss, live, notes)
        ok = True
        return result
    finally:
        stack.close(ok)


# ------------------------------------------------------------------------------------------ reporting

def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def sizing_bases(result: TsdbResult) -> list[tuple[str, str, float, float]]:
    """(basis, engine, bytes per sample, index bytes per series): the generated history's (its index is a
    negligible share at 31 series: counted in the bytes per sample) and the live suite's (samples without the
    index, whose share is large after minutes of scrapes: counted once per series instead)."""
    bases = [("generated history", engine, disk.per_sample, 0.0) for engine, disk in result.disks.items()]
    if result.live:
        bases += [("live suite", engine, (d.files_bytes - d.index_bytes) / d.samples, d.index_bytes / d.series)
                  for engine, d in result.live.disks.items() if d.samples and d.series]
    return bases


def sizing_rows(result: TsdbResult) -> list[list[str]]:
    if result.live is None:
        return []
    series = result.live.series
    per_day = DAY / SCRAPE_S
    rows = []
    for basis, engine, per_sample, per_series in sizing_bases(result):
        row = [basis, engine, f"{per_sample:.2f}", f"{per_series:.0f}",
               size(round(series.per_unit * per_day * per_sample))]
        for units in SIZING_UNITS:
            for days in SIZING_DAYS:
                row.append(_gb((units * series.per_unit + series.fixed) * (per_day * days * per_sample + per_series)))
        rows.append(row)
    return rows


def _gb(count: float) -> str:
    if count >= 1e9:
        return f"{count / 1e9:.1f} GB"
    return f"{count / 1e6:.0f} MB" if count >= 1e7 else f"{count / 1e6:.1f} MB"


def report(result: TsdbResult) -> str:
    """The section's tables and notes, in markdown."""
    s, h = result.settings, result.history
    prom, vm = result.disks["prometheus"], result.disks["victoriametrics"]
    out = [f"Measured by `python -m benchmarks --only tsdb{' --quick' * (s == Settings.quick())}` on "
           f"{result.started:%Y-%m-%d %H:%M} UTC; the run took {result.elapsed_s:.0f} s. Load average when it started: "
           f"{result.load[0]:.2f} / {result.load[1]:.2f} / {result.load[2]:.2f} (1 / 5 / 15 min); other processes "
           f"on the machine share its 2 cores. {prom.version}, {vm.version}.", "",
           f"History: {h.days} days x {h.units} units at a {h.step_s} s step (`scale.write_history`): "
           f"{h.samples:,} samples with {len(h.planned)} charging sessions ({size(h.bytes)} of OpenMetrics, "
           f"generated in {result.generate_s:.1f} s): "
           "`tesla_wall_connector_power_watts`, `_vehicle_connected`, `_vehicle_info` while plugged in, and "
           "the 5-minute price.", "",
           "### Disk bytes per sample", "",
           table(["engine", "written by", "write time (s)", "then flush and merge (s)", "samples it holds", "files",
                  "allocated (du)", "bytes/sample"],
                 [[d.version, "promtool, " + d.written if d.engine == "prometheus" else
                   f"import API, {scale.IMPORT_CHUNK:,} samples a request", f"{d.write_s:.1f}",
                   "" if d.engine == "prometheus" else f"{d.settle_s:.1f} ({d.written})",
                   f"{d.samples:,}", size(d.files_bytes), size(d.allocated_bytes), f"**{d.per_sample:.3f}**"]
                  for d in result.disks.values()]), "",
           f"VictoriaMetrics / Prometheus: **{_ratio(vm.per_sample, prom.per_sample)}** the bytes per sample "
           f"({_ratio(vm.allocated_bytes, prom.allocated_bytes)} allocated); write time "
           f"{_ratio(vm.write_s + vm.settle_s, prom.write_s)} (import with the merges against promtool). "
           "Prometheus is measured as promtool left it: its blocks only. A live Prometheus also keeps a "
           "write-ahead log (about the last two to three hours of samples, uncompressed records, and its "
           "checkpoints) and the head's chunks in chunks_head/, which this does not count; VictoriaMetrics's "
           "figure is its whole -storageDataPath (data parts and indexdb) once merged.", ""]
    rows = []
    for engine, runs in result.catch_ups.items():
        times = [c.caught_up_s for c in runs]
        rows.append([engine, str(len(runs)), f"{pct([c.healthy_s for c in runs], 50):.1f}",
                     f"**{pct(times, 50):.1f}** ({min(times):.1f} - {max(times):.1f})",
                     f"{runs[0].stored / pct(times, 50):.0f}", f"{runs[0].stored} / {runs[0].expected}",
                     "identical" if all(c.identical for c in runs) else "DIFFERENT",
                     f"{max(c.rss_max_mib for c in runs):.0f}"])
    out += ["### Session store catching up the history", "",
            f"The same configuration as the scale benchmark's catch-up (`source: fleet`, `catch_up: {h.days}d`): a "
            f"new store and database per run, {s.catch_ups} run(s) per engine, the engines taking turns (P, V, V, "
            "P, ...) so that the machine's other load falls on both; time from the store's process start until "
            "`GET /api/sessions` lists every generated session.", "",
            table(["engine", "runs", "healthy (s, median)", "every session stored (s): median (min - max)",
                   "sessions/s", "stored / generated", "(unit, start, end) = generated, every run",
                   "store RSS max (MiB)"], rows), ""]
    p_c, v_c = result.catch_ups["prometheus"][0], result.catch_ups["victoriametrics"][0]
    same = [(u, a, b) for u, a, b, _ in p_c.sessions] == [(u, a, b) for u, a, b, _ in v_c.sessions]
    energy = max((abs(x[3] - y[3]) / x[3] for x, y in zip(p_c.sessions, v_c.sessions) if x[3]), default=float("nan"))
    medians = {engine: pct([c.caught_up_s for c in runs], 50) for engine, runs in result.catch_ups.items()}
    out += [f"VictoriaMetrics / Prometheus catch-up time (medians): "
            f"**{_ratio(medians['victoriametrics'], medians['prometheus'])}**. Sessions from the two engines: "
            f"{'identical (unit, start, end)' if same else 'DIFFERENT'}, energies within {energy:.1e} (relative).", ""]
    out += query_report(result)
    out += sizing_report(result)
    rss = result.rss
    out += ["### Memory of the engines", "",
            table(["engine", "RSS loaded (MiB, max)", "while the store catches up", "during the queries"],
                  [[e, f"{a:.0f}", f"{b:.0f}", f"**{c:.0f}**"] for e, (a, b, c) in rss.items()]), ""]
    if result.notes:
        out += ["### Notes", "", *[f"- {note}" for note in result.notes], ""]
    return "\n".join(out)


def query_report(result: TsdbResult) -> list[str]:
    q = result.queries
    s = result.settings
    per_window = len(q.queries) // len(WINDOWS)
    overridden = sum(1 for query in q.queries if query.window == WINDOWS[0][0]
                     and query.params != next(o.params for o in q.queries if o.window == WINDOWS[1][0]
                                              and (o.dashboard, o.panel, o.ref) == (query.dashboard, query.panel,
                                                                                     query.ref)))
    rows = []
    for label, _ in WINDOWS:
        base, data_base = pct(q.of("prometheus", label), 50), pct(q.of("prometheus", label, True), 50)
        for name, _, _ in VARIANTS:
            every, data = q.of(name, label), q.of(name, label, True)
            rows.append([label, name, f"{q.with_data(name, label)} / {per_window}",
                         f"**{pct(every, 50):.2f}** / {pct(every, 95):.2f} / {max(every):.1f}",
                         f"**{pct(data, 50):.2f}** / {pct(data, 95):.2f} / {max(data):.1f}" if data else "n/a",
                         f"{sum(q.medians(name, label)) / 1000:.3f}", _ratio(pct(every, 50), base),
                         _ratio(pct(data, 50), data_base) if data else "n/a"])
    before, after = q.load
    out = ["### Dashboard query latency", "",
           f"{per_window} PromQL queries per dashboard range ({per_window - overridden} follow it; the others have "
           "their own relative time, as in Grafana, and are the same in both), every filter at All, "
           f"resolved by testkit.grafana for a dashboard range ending at the history's end; {s.warmups} warm-up "
           f"passes, then {s.passes} timed passes. Each pass asks every query of each variant in turn (the order "
           "rotating between passes) over one keep-alive connection per variant; latency from sending the request "
           "to the last body byte. \"victoriametrics\" is the suite's VictoriaMetrics with its rollup result cache "
           "(repeated range queries are answered partly from it, as a refreshing dashboard's would be; "
           "-search.cacheTimestampOffset=2h keeps the last two hours out of it); \"nocache=1\" makes it compute "
           "every answer, as Prometheus does. \"All panels once\" is the sum of the queries' medians: one load of "
           "every dashboard, one query after another. \"With data\": only the queries that returned data on "
           "either engine (the rest answer empty, in well under a millisecond). Ratio: p50 against Prometheus's "
           f"(below 1: faster). Load average before the queries {before[0]:.2f}, after {after[0]:.2f} (1 min).", "",
           table(["dashboard range", "engine", "queries with data", "every query: p50 / p95 / max (ms)",
                  "with data: p50 / p95 / max (ms)", "all panels once (s)", "p50 ratio", "p50 ratio, with data"],
                  rows), ""]
    slowest = sorted(range(len(q.queries)), key=lambda i: -pct(q.latencies["prometheus"][i], 50))[:8]
    out += ["The eight slowest queries on Prometheus (median ms):", "",
            table(["query", "data", *[name for name, _, _ in VARIANTS]],
                  [[q.queries[i].name, "yes" if q.answered(i) else "no",
                    *[f"{pct(q.latencies[name][i], 50):.1f}" for name, _, _ in VARIANTS]] for i in slowest]), ""]
    answered = sorted({f"{query.dashboard} / {query.panel} / {query.ref}" for i, query in enumerate(q.queries)
                       if q.answered(i)})
    out += [f"The queries that returned data: {'; '.join(answered) or 'none'}.", ""]
    findings = q.findings()
    empty = sum(1 for i, query in enumerate(q.queries) if q.outcomes["prometheus"][i][0] == "empty"
                and q.outcomes["victoriametrics"][i][0] == "empty")
    out += [f"Most panels are empty on both engines ({empty} of {len(q.queries)} queries): the history holds only the "
            "Fleet series and the 5-minute price, no recording rules (charging:*, electricity_price:*), no "
            "session-store counters, no local Wall Connector, vehicle or suite-health series. That is expected; "
            "their latencies still count (an empty answer is what those panels cost on such an installation).", ""]
    if findings:
        out += [f"Answers that differ between the engines ({len(findings)}; compared after dropping NaN points and "
                "the metric name, values to a relative 1e-9):", ""]
        out += [f"- {query.name}: {note}" for query, note in findings]
    else:
        out += ["Every query answered the same on both engines (series, points, values to a relative 1e-9)."]
    return out + [""]


WAL_HOURS = 3       # Prometheus keeps the head (up to 1.5 x its 2-hour block range) in its WAL


def wal_note(result: TsdbResult) -> list[str]:
    """What Prometheus's WAL adds, from its bytes per sample in the live run."""
    disk = result.live.disks.get("prometheus") if result.live else None
    if not disk or not disk.wal_bytes or not disk.samples:
        return []
    per_sample = disk.wal_bytes / disk.samples
    series = result.live.series
    samples = WAL_HOURS * 3600 / SCRAPE_S
    sizes = ", ".join(f"{units:,} units {_gb((units * series.per_unit + series.fixed) * samples * per_sample)}"
                      for units in SIZING_UNITS)
    return [f"Prometheus's WAL in the live run: {size(disk.wal_bytes)}, **{per_sample:.1f} bytes per sample**. A "
            f"running Prometheus keeps the samples of its head block there, up to about {WAL_HOURS} hours: {sizes} "
            "on top of the table's figures.", ""]


def sizing_report(result: TsdbResult) -> list[str]:
    if result.live is None:
        return []
    live, series = result.live, result.live.series
    jobs = table(["job", "fixed series", "series per Wall Connector", "series per car", "per unit"],
                 [[job, str(series.job(job).fixed),
                   f"{series.job(job).per_wall_connector} / {series.job(job).wall_connectors}",
                   f"{series.job(job).per_vehicle} / {series.job(job).vehicles}", f"{series.job(job).per_unit:.1f}"]
                  for job in series.jobs] + [["**all**", f"**{series.fixed}**", "", "", f"**{series.per_unit:.1f}**"]])
    disks = table(["engine", "samples", "series", "files", "of which index", "bytes/sample", "without the index",
                   "index bytes per series"],
                  [[d.engine, f"{d.samples:,}", f"{d.series:,}", size(d.files_bytes), size(d.index_bytes),
                    f"{d.per_sample:.3f}", f"**{(d.files_bytes - d.index_bytes) / d.samples:.3f}**",
                    f"{d.index_bytes / d.series:.0f}"] for d in live.disks.values() if d.samples and d.series])
    p, v = live.disks["prometheus"], live.disks["victoriametrics"]
    live_ratio = ((v.files_bytes - v.index_bytes) / v.samples) / ((p.files_bytes - p.index_bytes) / p.samples) \
        if p.samples and v.samples else float("nan")
    history_ratio = result.disks["victoriametrics"].per_sample / result.disks["prometheus"].per_sample
    live_per_series = p.samples / p.series if p.series else float("nan")
    headers = ["bytes/sample from", "engine", "bytes/sample", "index bytes/series", "per unit per day"] + [
        f"{units:,} units, {days} d" for units in SIZING_UNITS for days in SIZING_DAYS]
    return ["### A live suite: series per unit and bytes per sample", "",
            "The generated history has four metrics with timestamps exactly 30 s apart; an installation has some "
            "two hundred series per unit of every kind (gauges that change at every poll, counters, info series, "
            "histogram buckets) and scrape timestamps that jitter by milliseconds. So the suite also ran live for "
            f"{live.seconds:.0f} s: the simulator's demo scenario "
            f"(two Wall Connectors under power sharing, the leader also polled over its local API, two cars "
            f"plugging in and charging) at {SPEED}x real time, the four exporters and the session store polling "
            f"{SPEED}x faster than their defaults, scraped every second by Prometheus (evaluating rules/) and by "
            "vmagent into VictoriaMetrics: each scrape sees what a 15 s scrape of the real suite sees (new vitals "
            "every scrape, a new Fleet status every other one, a new price every 20th), with real scrape timestamps. "
            "Prometheus's head was then written as a block by its snapshot API (`/api/v1/admin/tsdb/snapshot`), "
            "VictoriaMetrics flushed and merged as above. VictoriaMetrics holds no recording rules here (no "
            "vmalert); per sample that does not matter.", "",
            disks, "",
            f"Without the index, VictoriaMetrics / Prometheus: **{live_ratio:.2f}x** the bytes per sample on live "
            f"data (the generated history: {history_ratio:.2f}x).", "",
            "Series per unit, counted from Prometheus's series API at the end of that run: a series naming a Wall "
            "Connector (charger, unit, din) counts per Wall Connector, one naming a car (vin, vehicle) per car, the "
            "rest (prices, thresholds, the exporters' own health and process metrics) once per installation. The "
            "demo's session store has completed a session or two at most; its series per unit and car are taken "
            "from the store that caught up the history above (its own /metrics, a month of sessions on every unit "
            "and car) when that one has more. \"A unit\" is one Wall Connector, polled locally and through Fleet, "
            "with one car.", "",
            jobs, "",
            "### Sizing", "",
            f"Disk at a {SCRAPE_S} s scrape interval ({DAY // SCRAPE_S:,} samples per series a day) = (units x "
            f"{series.per_unit:.1f} series per unit + {series.fixed} fixed series) x (samples x days x bytes per "
            "sample + index bytes per series). From the generated history (index included in the bytes per "
            "sample: 31 series) and from the live suite (samples without the index, then the index once per series, "
            "as if in one block or partition: both engines write it per block or monthly partition, so a year "
            "holds it several times; it is a small share either way). The engines' own metrics are not included. "
            "Prometheus's WAL comes on top of its figures (below). "
            "\"Per unit per day\" is the samples' share alone (no index, no fixed series).", "",
            table(headers, sizing_rows(result)), "",
            *wal_note(result),
            f"Both bases are short next to 40 days: {live_per_series:,.0f} samples per series live, about "
            f"{result.history.days * DAY // result.history.step_s:,} in the history. Prometheus cuts every series "
            "into chunks of at most 120 samples however long it runs; VictoriaMetrics packs up to 8,192 samples "
            "of a series into one block, so its figure may fall further over longer runs. Leave headroom on either "
            "engine: compaction (Prometheus) and merges (VictoriaMetrics) write the new blocks or parts before they "
            "delete the old ones.", ""]
