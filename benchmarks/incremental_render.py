"""Render CPU and scrape latency while polls arrive: today's renderer (the whole registry at every
render, `servicekit.exposition.render`) against the incremental one (`servicekit.incremental`: only
the targets whose snapshots changed), side by side in one run, on the twc exporter's real registry
at 1,000 and 10,000 chargers.

Polls arrive as configured, spread evenly over the chargers: vitals every 5 s, lifetime and
wifi_status every 60 s, version every 300 s (the defaults), each a new snapshot in the charger's
poller followed by `mark_dirty()`, exactly what a finished poll does. The exporter's own render loop
(`Exposition.run`: at most one render per second, spaced by four times a render's duration, in a
worker thread) renders meanwhile, and a separate client process scrapes with Prometheus's headers
every 25 ms. Render CPU is the worker thread's own CPU time over the renders (gzip included), per
second of the run; "between renders" is how old the served data can get. "today" runs as the code
before it did (Python's 5 ms GIL switch interval); "incremental" as the runtime now runs it (0.5 ms,
`servicekit.exposition.share_gil_with_scrapes`).
"""
from __future__ import annotations

import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import aiohttp

from benchmarks import registries
from benchmarks.registries import BenchRegistry
from benchmarks.report import ms, pct, run_client, table
from benchmarks.scrape_latency import LoopThread, serve_ours
from servicekit.exposition import Exposition, Rendered, render, share_gil_with_scrapes
from servicekit.incremental import IncrementalRenderer
from servicekit.poller import Health, Snapshot

RENDERERS = ("today", "incremental")
INTERVALS = {"vitals": 5.0, "lifetime": 60.0, "wifi_status": 60.0, "version": 300.0}  # config defaults
TICK_S = 0.05
TARGET_P99_MS = 5.0
DEFAULT_SWITCH_INTERVAL = sys.getswitchinterval()


@dataclass(frozen=True)
class Settings:
    sizes: tuple[int, ...]
    duration_s: float          # scraping while polls arrive, per size and renderer
    scrape_interval_s: float

    @classmethod
    def full(cls) -> "Settings":
        return cls(sizes=(1000, 10000), duration_s=20.0, scrape_interval_s=0.025)

    @classmethod
    def quick(cls) -> "Settings":
        return cls(sizes=(1000, 10000), duration_s=8.0, scrape_interval_s=0.025)


class Metered:
    """A renderer that also counts its calls and the CPU time of the thread running them."""

    def __init__(self, renderer: Callable[[], Rendered]) -> None:
        self.renderer = renderer
        self.cpu_s: list[float] = []
        self.started: list[float] = []
        self.ended: list[float] = []

    def __call__(self) -> Rendered:
        cpu = time.thread_time()
        self.started.append(time.monotonic())
        rendered = self.renderer()
        self.cpu_s.append(time.thread_time() - cpu)
        self.ended.append(time.monotonic())
        return rendered


@dataclass
class Run:
    units: int
    renderer: str
    latencies_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    render_cpu_s: list[float] = field(default_factory=list)
    render_starts: list[float] = field(default_factory=list)
    polls: int = 0
    series: int = 0
    first_render_s: float = 0.0
    rendered_targets: int | None = None

    @property
    def cpu_per_s(self) -> float:
        return sum(self.render_cpu_s) / self.wall_s if self.wall_s else float("nan")

    @property
    def between_s(self) -> float | None:
        gaps = [b - a for a, b in zip(self.render_starts, self.render_starts[1:])]
        return statistics.mean(gaps) if gaps else None

    def row(self) -> list[str]:
        between = self.between_s
        per_render = statistics.median(self.render_cpu_s) * 1000 if self.render_cpu_s else None
        return [f"{self.units:,} chargers", self.renderer, f"{self.polls / self.wall_s:,.0f}",
                f"{len(self.render_cpu_s)}", ms(per_render), f"**{self.cpu_per_s:.2f}**",
                f"{between:.1f}" if between is not None else f"> {self.wall_s:.0f}",
                f"{ms(pct(self.latencies_ms, 50))} / **{ms(pct(self.latencies_ms, 99))}** / "
                f"{ms(max(self.latencies_ms))}",
                "" if self.rendered_targets is None else f"{self.rendered_targets / self.wall_s:,.0f}"]


HEADERS = ["registry", "renderer", "polls per s", "renders", "CPU per render, median (ms)",
           "render CPU per s (cores)", "s between renders", "scrape p50 / p99 / max (ms)", "targets rendered per s"]


async def _polls(bench: BenchRegistry, exposition: Exposition, counter: list[int]) -> None:
    """Every poller of every charger at its interval, phases spread evenly: a new snapshot, then mark_dirty."""
    by_endpoint = {e: [t.pollers[e] for t in bench.targets] for e in INTERVALS}
    due = {e: 0.0 for e in INTERVALS}
    position = {e: 0 for e in INTERVALS}
    while True:
        now = time.time()
        for endpoint, pollers in by_endpoint.items():
            due[endpoint] += len(pollers) * TICK_S / INTERVALS[endpoint]
            while due[endpoint] >= 1.0:
                due[endpoint] -= 1.0
                poller = pollers[position[endpoint] % len(pollers)]
                position[endpoint] += 1
                poller.latest = Snapshot(poller.latest.value, now)
                poller.health = Health(up=True, last_success=now, last_outcome="success",
                                       next_attempt=now + poller.interval)
                counter[0] += 1
                exposition.mark_dirty()
        await asyncio.sleep(TICK_S)


def measure(loop: LoopThread, bench: BenchRegistry, name: str, settings: Settings,
            log: Callable[[str], None]) -> Run:
    bench.refresh()
    # today's code left Python's 5 ms switch interval; the runtime now shortens it along with the new renderer
    if name == "today":
        sys.setswitchinterval(DEFAULT_SWITCH_INTERVAL)
    else:
        share_gil_with_scrapes()
    incremental = IncrementalRenderer(bench.registry) if name == "incremental" else None
    metered = Metered(incremental or (lambda: render(bench.registry)))
    exposition = Exposition(renderer=metered)
    started = time.monotonic()
    exposition.render_now()
    result = Run(bench.units, name, first_render_s=time.monotonic() - started)
    result.series = sum(1 for line in exposition.current.text.splitlines() if line and not line.startswith(b"#"))
    for measured in (metered.cpu_s, metered.started, metered.ended):
        measured.clear()
    before = incremental.rendered_targets if incremental else 0
    counter = [0]
    polls_stopped = wall = time.monotonic()
    with serve_ours(loop, exposition, polls=lambda: _polls(bench, exposition, counter)) as url:
        wall = time.monotonic()
        try:
            count = int(settings.duration_s / settings.scrape_interval_s)
            data = run_client(["burst", "--url", url, "--mode", "prometheus", "--count", str(count), "--warmup",
                               "5", "--interval", str(settings.scrape_interval_s)],
                              timeout=settings.duration_s * 20 + 120)
            if data["statuses"] != [200]:
                raise RuntimeError(f"{name} at {bench.units}: HTTP statuses {data['statuses']}")
            result.latencies_ms = data["latencies_ms"]
        finally:
            polls_stopped = time.monotonic()   # leaving serve_ours waits for an unfinished render: it counts
    result.wall_s = max([polls_stopped, *metered.ended]) - wall
    result.polls = counter[0]
    result.render_cpu_s = list(metered.cpu_s)
    result.render_starts = list(metered.started)
    result.rendered_targets = incremental.rendered_targets - before if incremental else None
    log("  " + " | ".join(result.row()))
    return result


def run(settings: Settings, log: Callable[[str], None]) -> list[Run]:
    loop = LoopThread()
    session: aiohttp.ClientSession = loop.run(_session())
    results: list[Run] = []
    try:
        for units in settings.sizes:
            started = time.monotonic()
            bench = registries.twc_registry(units, session)
            log(f"twc ({units:,} chargers), registry built in {time.monotonic() - started:.1f} s")
            for name in RENDERERS:
                results.append(measure(loop, bench, name, settings, log))
            del bench
    finally:
        sys.setswitchinterval(DEFAULT_SWITCH_INTERVAL)
        loop.run(session.close())
        loop.close()
    return results


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()  # never used to fetch: `Upstream` objects merely hold it


def report(results: list[Run]) -> str:
    lines = [table(HEADERS, [r.row() for r in results]), ""]
    for run_ in results:
        if run_.renderer == "incremental" and run_.units == 1000:
            p99 = pct(run_.latencies_ms, 99)
            lines.append(f"- Target p99 <= {TARGET_P99_MS:g} ms at 1,000 chargers while polls arrive: "
                         f"{'met' if p99 <= TARGET_P99_MS else 'NOT met'} ({ms(p99)} ms).")
    by = {(r.units, r.renderer): r for r in results}
    for units in sorted({r.units for r in results}):
        today, inc = by.get((units, "today")), by.get((units, "incremental"))
        if today and inc:
            lines.append(f"- {units:,} chargers ({inc.series:,} series): first (full) render {today.first_render_s:.1f}"
                         f" s; render CPU {today.cpu_per_s:.2f} cores today, {inc.cpu_per_s:.2f} incremental; scrape "
                         f"p99 {ms(pct(today.latencies_ms, 99))} ms today, {ms(pct(inc.latencies_ms, 99))} ms "
                         "incremental.")
    return "\n".join(lines)
