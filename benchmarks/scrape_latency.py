"""Scrape latency: our pre-rendered exposition vs prometheus-client's own server, on the same registry.

Ours renders the registry once per poll (`Exposition.render`) and serves the ready bytes from
`metrics_app` on aiohttp; prometheus-client's `start_http_server` renders on every scrape. Both
serve the very same registry object from this process on 127.0.0.1 (one server at a time), and a
separate client process scrapes them. The decoded bodies are compared, so the two servers are
shown to serve identical content and the difference is only when the rendering happens.

The collector's clock is pinned for the benchmark, so snapshots filled once stay fresh however
long prometheus-client takes at 1,000 units (otherwise they would be withdrawn after 60 s and the
bodies would shrink mid-run); rendering does exactly the same work either way.
"""
from __future__ import annotations

import asyncio
import contextlib
import gzip
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Coroutine, Iterator

import aiohttp
from aiohttp import web
from prometheus_client import start_http_server
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from benchmarks import registries
from benchmarks.registries import BenchRegistry
from benchmarks.report import ms, pct, run_client, size, table
from servicekit.exposition import Exposition, render
from servicekit.server import metrics_app

MODES = ("prometheus", "plain")
MODE_TITLES = {"prometheus": "Prometheus headers (OpenMetrics, gzip)", "plain": "plain text, no gzip"}
SERVERS = ("ours", "prometheus-client")


@dataclass(frozen=True)
class Settings:
    scrapes: int            # per server, mode and case
    slow_scrapes: int       # prometheus-client at 1,000 units (each scrape renders ~3 MB)
    render_repeats: int
    live_scrapes: int       # ours while re-rendering at poll cadence
    live_interval: float    # seconds between those scrapes, so they spread over several render cycles

    @classmethod
    def full(cls) -> "Settings":
        return cls(scrapes=200, slow_scrapes=50, render_repeats=7, live_scrapes=200, live_interval=0.025)

    @classmethod
    def quick(cls) -> "Settings":
        return cls(scrapes=50, slow_scrapes=10, render_repeats=3, live_scrapes=60, live_interval=0.025)


@dataclass
class Scrapes:
    case: str
    server: str
    mode: str
    latencies_ms: list[float]
    wire_bytes: int
    decoded_bytes: int
    samples: int
    sha256: str
    connects: int
    content_type: str
    cpu_ms_per_scrape: float = float("nan")  # CPU time of the serving process (all threads) per scrape
    cores: float = float("nan")              # that CPU time over the wall time of the run
    note: str = ""

    @property
    def p50(self) -> float:
        return pct(self.latencies_ms, 50)

    @property
    def p99(self) -> float:
        return pct(self.latencies_ms, 99)

    @property
    def max(self) -> float:
        return max(self.latencies_ms)


@dataclass
class RenderCost:
    case: str
    units: int
    series: int
    total_ms: list[float]
    text_ms: list[float]
    openmetrics_ms: list[float]
    gzip_ms: list[float]
    text_bytes: int
    openmetrics_gzip_bytes: int


@dataclass
class CaseResult:
    case: str
    exporter: str
    units: int
    runs: list[Scrapes] = field(default_factory=list)
    render: RenderCost | None = None

    def run(self, server: str, mode: str) -> Scrapes | None:
        return next((r for r in self.runs if r.server == server and r.mode == mode), None)

    def ratio(self, mode: str) -> float | None:
        ours, theirs = self.run("ours", mode), self.run("prometheus-client", mode)
        return theirs.p50 / ours.p50 if ours and theirs else None

    def identical(self, mode: str) -> bool | None:
        ours, theirs = self.run("ours", mode), self.run("prometheus-client", mode)
        return ours.sha256 == theirs.sha256 if ours and theirs else None


class LoopThread:
    """An asyncio loop in a daemon thread: aiohttp serves from it while the main thread waits on the client."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-loop", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self.run(drain())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextlib.contextmanager
def serve_ours(loop: LoopThread, exposition: Exposition, dirty_every: float | None = None,
               polls: Callable[[], Awaitable[None]] | None = None) -> Iterator[str]:
    """`metrics_app` on a real TCP port; with `dirty_every`, also the exporter's render loop, marked dirty
    as often as the pollers would (so renders run in a worker thread while scrapes are answered); with
    `polls`, the render loop and that coroutine, which stands in for the pollers."""
    tasks: list[asyncio.Task[None]] = []
    renders = dirty_every is not None or polls is not None

    async def marked_dirty() -> None:
        while True:
            exposition.mark_dirty()
            await asyncio.sleep(dirty_every)  # type: ignore[arg-type]

    async def start() -> tuple[web.AppRunner, int]:
        runner = web.AppRunner(metrics_app("benchmark", "benchmark", exposition), access_log=None,
                               handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        if renders:
            tasks.append(asyncio.create_task(polls() if polls is not None else marked_dirty()))
            tasks.append(asyncio.create_task(exposition.run()))
        return runner, runner.addresses[0][1]

    async def stop(runner: web.AppRunner) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()

    # Renders run in the loop's default executor; a dedicated one lets us wait for an unfinished render
    # after the run (it counts, with its time), so it cannot steal CPU from the next measurement.
    executor = ThreadPoolExecutor(1, thread_name_prefix="render") if renders else None
    if executor:
        loop.loop.set_default_executor(executor)
    runner, port = loop.run(start())
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        loop.run(stop(runner))
        if executor:
            executor.shutdown(wait=True)


@contextlib.contextmanager
def serve_prometheus_client(bench: BenchRegistry) -> Iterator[str]:
    """prometheus-client's own threaded WSGI server on the same registry."""
    server, thread = start_http_server(0, addr="127.0.0.1", registry=bench.registry)
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def scrape(case: str, server: str, url: str, mode: str, count: int, warmup: int, interval: float = 0.0,
           note: str = "") -> Scrapes:
    timeout = 60 + count * (interval + 5)
    args = ["burst", "--url", url, "--mode", mode, "--count", str(count), "--warmup", str(warmup)]
    if interval:
        args += ["--interval", str(interval)]
    cpu, wall = time.process_time(), time.perf_counter()
    data = run_client(args, timeout)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if data["statuses"] != [200]:
        raise RuntimeError(f"{case} {server} {mode}: HTTP statuses {data['statuses']}")
    # This process only serves while the client runs (the main thread waits), so its CPU time is the server's.
    return Scrapes(case, server, mode, data["latencies_ms"], data["wire_bytes"], data["decoded_bytes"],
                   data["samples"], data["sha256"], data["connects"], data["content_type"],
                   cpu * 1000.0 / (count + warmup), cpu / wall, note)


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = function()
    return (time.perf_counter() - start) * 1000.0, value


def render_cost(bench: BenchRegistry, repeats: int) -> RenderCost:
    """`Exposition.render` as a whole (the per-poll cost), and its parts measured separately."""
    totals, texts, oms, gzips = [], [], [], []
    rendered = render(bench.registry)  # warm-up (first collection imports and caches)
    for _ in range(repeats):
        total, rendered = timed(lambda: render(bench.registry))
        text_ms, text = timed(lambda: generate_latest(bench.registry))
        om_ms, om = timed(lambda: generate_openmetrics(bench.registry))
        gz_ms, _ = timed(lambda: (gzip.compress(text, 6, mtime=0), gzip.compress(om, 6, mtime=0)))
        for samples, value in ((totals, total), (texts, text_ms), (oms, om_ms), (gzips, gz_ms)):
            samples.append(value)
    series = sum(1 for line in rendered.text.splitlines() if line and not line.startswith(b"#"))
    return RenderCost(bench.name, bench.units, series, totals, texts, oms, gzips, len(rendered.text),
                      len(rendered.openmetrics_gzip))


def pin_clock(bench: BenchRegistry) -> None:
    now = time.time()
    bench.refresh(now)
    bench.collector.clock = lambda: now + 1.0


def run_case(loop: LoopThread, bench: BenchRegistry, settings: Settings, log: Callable[[str], None],
             live_render_every: float | None = None) -> CaseResult:
    pin_clock(bench)
    result = CaseResult(bench.name, bench.exporter, bench.units)
    result.render = render_cost(bench, settings.render_repeats)
    log(f"  render once per poll: median {ms(statistics.median(result.render.total_ms))} ms "
        f"({result.render.series:,} series, {size(result.render.text_bytes)} text)")
    exposition = Exposition(bench.registry)
    exposition.render_now()
    slow = bench.units >= 1000
    with serve_ours(loop, exposition) as url:
        for mode in MODES:
            run = scrape(bench.name, "ours", url, mode, settings.scrapes, 5)
            result.runs.append(run)
            log(f"  ours              {mode:10s} p50 {ms(run.p50)} ms  p99 {ms(run.p99)} ms  "
                f"{size(run.wire_bytes)} on the wire, {run.connects} new connection(s) in {len(run.latencies_ms)} "
                f"scrapes, server CPU {ms(run.cpu_ms_per_scrape)} ms/scrape")
    with serve_prometheus_client(bench) as url:
        for mode in MODES:
            count = settings.slow_scrapes if slow else settings.scrapes
            run = scrape(bench.name, "prometheus-client", url, mode, count, 2 if slow else 5)
            result.runs.append(run)
            log(f"  prometheus-client {mode:10s} p50 {ms(run.p50)} ms  p99 {ms(run.p99)} ms  "
                f"{size(run.wire_bytes)} on the wire, {run.connects} new connection(s) in {len(run.latencies_ms)} "
                f"scrapes, server CPU {ms(run.cpu_ms_per_scrape)} ms/scrape")
    if live_render_every:
        renders_before = exposition.renders
        with serve_ours(loop, exposition, dirty_every=live_render_every) as url:
            run = scrape(bench.name, "ours, re-rendering", url, "prometheus", settings.live_scrapes, 5,
                         settings.live_interval)
        renders = exposition.renders - renders_before
        run.note = f"{renders} render{'' if renders == 1 else 's'} in {len(run.latencies_ms) + 5} scrapes"
        result.runs.append(run)
        log(f"  ours while re-rendering (marked dirty every {live_render_every * 1000:g} ms): p50 {ms(run.p50)} ms  "
            f"p99 {ms(run.p99)} ms  max {ms(run.max)} ms ({run.note}; server process busy {run.cores:.2f} cores)")
    for mode in MODES:
        ratio, same = result.ratio(mode), result.identical(mode)
        log(f"  ratio prometheus-client p50 / ours p50, {mode}: {ratio:.1f}x; identical decoded bodies: {same}")
    return result


def run(settings: Settings, log: Callable[[str], None]) -> list[CaseResult]:
    """Every exporter's registry, served both ways; twc and fleet at 1 and 1,000 units."""
    loop = LoopThread()
    session: aiohttp.ClientSession = loop.run(_session())
    results: list[CaseResult] = []
    try:
        builders: list[tuple[Callable[[], BenchRegistry], float | None]] = [
            (lambda: registries.twc_registry(1, session), None),
            # 1,000 chargers x 4 endpoints: every finished poll marks the exposition dirty; vitals alone
            # (every 5 s) finish 200 times a second, so the exporter re-renders back to back.
            (lambda: registries.twc_registry(1000, session), 0.005),
            (lambda: registries.fleet_registry(1, session), None),
            (lambda: registries.fleet_registry(1000, session), None),
            (lambda: registries.vehicle_registry(session), None),
            (lambda: registries.price_registry(session), None),
        ]
        for build, live in builders:
            build_ms, bench = timed(build)
            log(f"{bench.name} (registry built in {build_ms / 1000:.1f} s)")
            results.append(run_case(loop, bench, settings, log, live))
            del bench
    finally:
        loop.run(session.close())
        loop.close()
    return results


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()  # never used to fetch: `Upstream` objects merely hold it


# --- tables -------------------------------------------------------------------------------------

TARGET_RATIO_1000 = 10.0


def verdict(result: CaseResult, mode: str) -> str:
    ratio = result.ratio(mode)
    if ratio is None:
        return ""
    if result.units >= 1000:
        return "met (>= 10x)" if ratio >= TARGET_RATIO_1000 else f"MISSED: {ratio:.1f}x < 10x"
    if result.exporter in ("twc", "fleet") and result.units == 1:
        return "met (no slower)" if ratio >= 1.0 else f"MISSED: {1 / ratio:.2f}x slower"
    return "(no target)"


def latency_table(results: list[CaseResult], mode: str) -> str:
    rows = []
    for result in results:
        ours, theirs = result.run("ours", mode), result.run("prometheus-client", mode)
        if not ours or not theirs:
            continue
        rows.append([result.case, f"{ms(ours.p50)} / {ms(ours.p99)}", f"{ms(theirs.p50)} / {ms(theirs.p99)}",
                     f"**{result.ratio(mode):.1f}x**", f"{size(ours.wire_bytes)} / {size(theirs.wire_bytes)}",
                     f"{len(ours.latencies_ms)} / {len(theirs.latencies_ms)}",
                     f"{ours.connects} / {theirs.connects}",
                     f"{ms(ours.cpu_ms_per_scrape)} / {ms(theirs.cpu_ms_per_scrape)}",
                     "yes" if result.identical(mode) else "NO", verdict(result, mode)])
    return table(["registry", "ours p50 / p99 (ms)", "prometheus-client p50 / p99 (ms)", "ratio (p50)",
                  "body on the wire (ours / p-c)", "scrapes", "new TCP connections", "server CPU per scrape (ms)",
                  "same content", "target"], rows)


def live_table(results: list[CaseResult]) -> str:
    rows = []
    for result in results:
        live, idle = result.run("ours, re-rendering", "prometheus"), result.run("ours", "prometheus")
        theirs = result.run("prometheus-client", "prometheus")
        if live and idle and theirs:
            rows.append([result.case, f"{ms(idle.p50)} / {ms(idle.p99)} / {ms(idle.max)}",
                         f"{ms(live.p50)} / {ms(live.p99)} / {ms(live.max)}", live.note, f"{live.cores:.2f}",
                         f"{theirs.p50 / live.p50:.1f}x / {theirs.p99 / live.p99:.1f}x"])
    return table(["registry", "ours, no render running: p50 / p99 / max (ms)",
                  "ours, re-rendering: p50 / p99 / max (ms)", "renders", "server CPU (cores)",
                  "prometheus-client / ours re-rendering (p50 / p99)"], rows)


def render_table(results: list[CaseResult]) -> str:
    rows = []
    for result in results:
        cost = result.render
        if cost is None:
            continue
        rows.append([result.case, f"{cost.series:,}", size(cost.text_bytes), size(cost.openmetrics_gzip_bytes),
                     f"**{ms(statistics.median(cost.total_ms))}**", ms(min(cost.total_ms)),
                     ms(statistics.median(cost.text_ms)), ms(statistics.median(cost.openmetrics_ms)),
                     ms(statistics.median(cost.gzip_ms))])
    return table(["registry", "series", "text", "OpenMetrics gzip", "render median (ms)", "min (ms)",
                  "text (ms)", "OpenMetrics (ms)", "2x gzip (ms)"], rows)


DOCUMENTED_RENDER_MS = 180.0  # servicekit/exposition.py and DESIGN.md: "rendering 1,000 chargers takes about 180 ms"


def notes(results: list[CaseResult]) -> list[str]:
    """Where the measurements disagree with what the code's documentation says, or cost something."""
    lines = []
    for result in results:
        if result.exporter != "twc" or result.units < 1000 or result.render is None:
            continue
        render_ms = statistics.median(result.render.total_ms)
        lines.append(f"- `Exposition.render` of {result.case}: median {render_ms:.0f} ms, "
                     f"{render_ms / DOCUMENTED_RENDER_MS:.1f}x the \"about {DOCUMENTED_RENDER_MS:.0f} ms\" stated in "
                     f"servicekit/exposition.py and DESIGN.md (text {statistics.median(result.render.text_ms):.0f} ms"
                     f" + OpenMetrics {statistics.median(result.render.openmetrics_ms):.0f} ms + gzip "
                     f"{statistics.median(result.render.gzip_ms):.0f} ms).")
        live, theirs = result.run("ours, re-rendering", "prometheus"), result.run("prometheus-client", "prometheus")
        if live and theirs:
            lines.append(f"- With every poll marking the exposition dirty, {result.case} re-render back to back: "
                         f"the serving process used {live.cores:.2f} cores while scrapes were answered ({live.note}), "
                         f"and scrapes that met a render waited for the GIL (p99 {live.p99:.0f} ms, max "
                         f"{live.max:.0f} ms). prometheus-client used {theirs.cpu_ms_per_scrape:.0f} ms of CPU per "
                         f"scrape, i.e. {theirs.cpu_ms_per_scrape / 15000:.3f} cores at a 15 s scrape interval "
                         f"(derived from the measured CPU per scrape): at this size rendering per poll buys latency "
                         f"with CPU.")
    return lines
