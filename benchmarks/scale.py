"""Scale: the session store catching up a month of history, the price backfill, and the sessions API
over 100,000 stored sessions.

(a) Catch-up. 30 days of Fleet series for 10 units at a 30 s step (power, vehicle connected, vehicle
    info while plugged in) and the 5-minute price, with 1-2 charging sessions per unit and day
    (ramp, a dip shorter than the grace period, taper; unplugged before or after the grace period),
    written into a TSDB with `promtool tsdb create-blocks-from openmetrics` (`load_history`, which also loads
    it into VictoriaMetrics for the tsdb benchmark: `run_catch_up(..., engine)`). Prometheus starts on it,
    then the session store with `sessions.catch_up: 30d`; the benchmark polls `GET /api/sessions`
    until every generated session is stored and compares (unit, start, end) with what it generated.
(b) Price backfill. `python -m exporters.price_backfill --days 30` against the simulator, timed as a
    whole process (fetch a day per request, write OpenMetrics, promtool), each into a fresh directory.
(c) Sessions API. 100,000 sessions written through `Storage.save_step` (batches of 1,000) into the
    database of a running session store (pointing at a Prometheus with no data), then the API is
    timed over keep-alive HTTP from this process. The store's evaluation interval is set to 30 days
    so that only the requests are measured (the start-up ladder below measures evaluations and
    renders with sessions stored).
"""
from __future__ import annotations

import http.client
import itertools
import json
import math
import re
import socket
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlsplit

import numpy as np

from benchmarks.report import pct, size, table
from servicekit import history_import
from suite.processes import ManagedProcess, victoria_metrics_process, wait_until
from session_store.records import Session
from session_store.storage import Storage
from testkit.backfill import create_blocks, price_backfill
from testkit.http import get_json
from testkit.ports import free_port
from testkit.rss import RssSampler
from testkit.stack import PATIENT, Stack

DAY = 86400
PART = "1457768-02-G"
THRESHOLD_W = 100.0     # sessions.power_threshold_w
GRACE_S = 600.0         # sessions.grace_period


@dataclass(frozen=True)
class Settings:
    units: int
    days: int
    step_s: int
    backfill_days: int
    backfill_runs: int
    api_sessions: int
    api_requests: int           # per cheap endpoint (pages)
    api_slow_requests: int      # /api/summary
    api_exports: int
    ladder: tuple[int, ...]     # stored sessions for the start-up ladder

    @classmethod
    def full(cls) -> "Settings":
        return cls(units=10, days=30, step_s=30, backfill_days=30, backfill_runs=3, api_sessions=100_000,
                   api_requests=200, api_slow_requests=3, api_exports=2, ladder=(0, 1000, 5000, 100_000))

    @classmethod
    def quick(cls) -> "Settings":
        return cls(units=10, days=7, step_s=30, backfill_days=30, backfill_runs=1, api_sessions=20_000,
                   api_requests=50, api_slow_requests=2, api_exports=1, ladder=(0, 5000))


# --- (a) catch-up --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Planned:
    unit: str
    vin: str
    plug: float
    unplug: float
    start: float        # first sample above the threshold
    end: float          # last sample above it
    energy_wh: float    # trapezoid over the written samples, ramps included


@dataclass
class History:
    path: Path
    planned: list[Planned]
    samples: int
    first: float
    last: float
    units: int
    days: int
    step_s: int
    bytes: int          # of the OpenMetrics text


def _unit_din(i: int) -> str:
    return f"{PART}--PGT{i + 1:011d}"


def _vin(i: int) -> str:
    return f"5YJ3E1EA7KF2{i:05d}"


def _charges(rng: np.random.Generator, first: float, last: float) -> Iterator[tuple[float, float, float, float]]:
    """(plug, charge start, charge end, unplug): 1-2 a day, 30 min to 4 h of charging."""
    t = first + rng.uniform(0, 12 * 3600)
    while True:
        plug = t
        start = plug + rng.uniform(30, 300)
        end = start + rng.uniform(1800, 4 * 3600)
        # unplugged before the grace period ends (the disconnect closes it) or long after (the grace period does)
        unplug = end + (rng.uniform(60, 480) if rng.random() < 0.5 else rng.uniform(900, 3 * 3600))
        if unplug + 1800 > last:
            return
        yield plug, start, end, unplug
        t = unplug + rng.uniform(4 * 3600, 20 * 3600)


def write_history(path: Path, units: int, days: int, step_s: int, now: float, seed: int = 7) -> History:
    """OpenMetrics text of every series the session store reads, and the sessions it must find."""
    first = math.ceil((now - days * DAY + 900) / step_s) * step_s
    last = math.floor((now - 300) / step_s) * step_s
    t = np.arange(first, last + 1, step_s, dtype=np.int64)
    rng = np.random.default_rng(seed)
    planned: list[Planned] = []
    power, connected, info = [], [], []
    for i in range(units):
        unit, din, vin = f"unit{i + 1}", _unit_din(i), _vin(i)
        watts = np.zeros(t.size)
        plugged = np.zeros(t.size, dtype=bool)
        for plug, start, end, unplug in _charges(rng, first, last):
            inside = (t >= start) & (t < end)
            index = np.flatnonzero(inside)
            if index.size < 20:
                continue
            level = rng.uniform(7000, 11500)
            shape = np.ones(index.size)
            taper = int(index.size * 0.2)
            shape[-taper:] = np.linspace(1.0, 0.35, taper)                      # taper near the limit
            watts[index] = np.round(level * shape * rng.uniform(0.98, 1.02, index.size), 1)
            dip = index[rng.integers(5, index.size - 10)]
            watts[dip:dip + rng.integers(1, 9)] = 0.0                           # a dip of 30 s - 4 min
            plugged[(t >= plug) & (t < unplug)] = True
            above = index[watts[index] > THRESHOLD_W]
            lo, hi = above[0], above[-1]
            segment = slice(lo - 1, hi + 2)                                     # ramp up and down included
            energy = float(np.sum((watts[segment][1:] + watts[segment][:-1]) / 2 * np.diff(t[segment])) / 3600)
            planned.append(Planned(unit, vin, plug, unplug, float(t[lo]), float(t[hi]), energy))
        labels = f'din="{din}",instance="fleet:9882",job="fleet",unit="{unit}"'
        power.append((labels, watts))
        connected.append((labels, plugged.astype(float)))
        info.append((f'din="{din}",instance="fleet:9882",job="fleet",unit="{unit}",vehicle="Car {i + 1}",'
                     f'vin="{vin}"', plugged))
    price_t = np.arange(math.ceil((first - 2 * DAY) / 300) * 300, last + 1, 300, dtype=np.int64)
    prices = np.round(np.clip(4 + np.cumsum(rng.normal(0, 0.3, price_t.size)) % 6 + rng.normal(0, 0.5, price_t.size),
                              -1, 30), 1)
    samples = 0
    with path.open("w") as out:
        out.write("# TYPE tesla_wall_connector_power_watts gauge\n")
        for labels, values in power:
            out.writelines(f"tesla_wall_connector_power_watts{{{labels}}} {v:.1f} {ts}\n" for ts, v in zip(t, values))
            samples += t.size
        out.write("# TYPE tesla_wall_connector_vehicle_connected gauge\n")
        for labels, values in connected:
            out.writelines(f"tesla_wall_connector_vehicle_connected{{{labels}}} {v:.0f} {ts}\n"
                           for ts, v in zip(t, values))
            samples += t.size
        out.write("# TYPE tesla_wall_connector_vehicle_info gauge\n")
        for labels, mask in info:
            out.writelines(f"tesla_wall_connector_vehicle_info{{{labels}}} 1 {ts}\n" for ts in t[mask])
            samples += int(mask.sum())
        out.write("# TYPE electricity_price_5m_cents_per_kwh gauge\n")
        out.writelines(f'electricity_price_5m_cents_per_kwh{{instance="price:9884",job="price",provider="comed"}} '
                       f"{p:g} {ts}\n" for ts, p in zip(price_t, prices))
        samples += price_t.size
        out.write("# EOF\n")
    return History(path, planned, samples, float(first), float(last), units, days, step_s, path.stat().st_size)


ENGINES = ("prometheus", "victoriametrics")
IMPORT_CHUNK = 100_000      # samples per request to VictoriaMetrics's import API


@dataclass
class Loaded:
    """The history written into one time-series engine, which now runs and answers the query API at `url`."""
    engine: str
    url: str
    process: ManagedProcess
    write_s: float            # promtool writing the blocks / every chunk converted and posted to the import API
    settle_s: float           # VictoriaMetrics: force_flush, force_merge, until quiet (vm_settle); promtool: 0
    written: str              # "3 blocks" / "... parts"
    files_bytes: int          # the data as written (Prometheus: the blocks, before it starts: no WAL yet)
    allocated_bytes: int      # the same on the file system (whole blocks of 4 kB: what `du` counts)


def directory_bytes(path: Path) -> tuple[int, int]:
    """(bytes of every regular file under `path`, bytes the file system allocated for them)."""
    files = allocated = 0
    for item in path.rglob("*"):
        if item.is_file() and not item.is_symlink():
            stat = item.stat()
            files += stat.st_size
            allocated += stat.st_blocks * 512
    return files, allocated


def load_history(stack: Stack, engine: str, history: History, log: Callable[[str], None]) -> Loaded:
    """`history` into a new Prometheus (promtool's blocks, then Prometheus starts on them) or VictoriaMetrics
    (started empty with the suite's flags, then the import API, flushed and merged), in `stack`."""
    if engine == "prometheus":
        data = stack.workdir / "tsdb"
        span_h = (history.last - history.first) / 3600 + 48
        started = time.monotonic()
        create_blocks(history.path, data, max_block_duration=f"{math.ceil(span_h / 24 + 1) * 24}h", timeout=900)
        write_s = time.monotonic() - started
        blocks = sum(1 for d in data.iterdir() if (d / "meta.json").exists())
        files, allocated = directory_bytes(data)
        log(f"  promtool wrote {blocks} blocks in {write_s:.1f} s")
        prometheus = stack.prometheus({}, scrape_interval=15, data_dir=data)
        return Loaded(engine, prometheus.url, prometheus.process, write_s, 0.0, f"{blocks} blocks", files, allocated)
    if engine != "victoriametrics":
        raise ValueError(f"unknown engine {engine!r}: one of {ENGINES}")
    data = stack.workdir / "victoria-metrics-data"
    port = free_port()
    process = victoria_metrics_process(data, "127.0.0.1", port, log_path=stack.workdir / "victoria-metrics.log")
    stack.start(process).wait_ready(stack.patience.prometheus)
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with history.path.open() as source:
        while chunk := "".join(itertools.islice(source, IMPORT_CHUNK)):
            history_import.post(url, chunk, timeout=300)
    write_s = time.monotonic() - started
    started = time.monotonic()
    parts, done = vm_settle(url, data)
    settle_s = done - started
    files, allocated = directory_bytes(data)
    written = f"{parts} part{'s' * (parts != 1)}"
    log(f"  imported through the API in {write_s:.1f} s ({IMPORT_CHUNK:,} samples a request); flushed and merged "
        f"into {written} in {settle_s:.1f} s")
    return Loaded(engine, url, process, write_s, settle_s, written, files, allocated)


VM_GAUGE = re.compile(r"^(vm_active_force_merges|vm_active_merges|vm_pending_rows|vm_parts)(\{[^}]*\})? (\S+)$", re.M)


def vm_settle(url: str, data: Path, timeout: float = 600) -> tuple[int, float]:
    """Flush and merge, then wait until VictoriaMetrics has no merge running, no pending rows, and files that have
    not changed for 3 s (polled every second); returns the data parts then, and the monotonic time of the first
    of those quiet polls (when it was done, to a second)."""
    _get(f"{url}/internal/force_flush")
    _get(f"{url}/internal/force_merge")
    seen: list[tuple[float, bool, tuple[int, int]]] = []
    parts = [0]

    def quiet() -> bool:
        gauges: dict[str, float] = {}
        for name, labels, value in VM_GAUGE.findall(_get(f"{url}/metrics").decode()):
            if name == "vm_parts" and "indexdb" in labels:
                continue
            gauges[name] = gauges.get(name, 0.0) + float(value)
        parts[0] = int(gauges.get("vm_parts", 0))
        busy = bool(gauges.get("vm_active_force_merges", 0) + gauges.get("vm_active_merges", 0)
                    + gauges.get("vm_pending_rows", 0))
        seen.append((time.monotonic(), busy, directory_bytes(data)))
        last = seen[-4:]
        return len(last) == 4 and not any(b for _, b, _ in last) and len({du for _, _, du in last}) == 1
    wait_until(quiet, timeout, 1.0, "VictoriaMetrics to finish merging")
    return parts[0], seen[-4][0]


@dataclass
class CatchUp:
    units: int
    days: int
    step_s: int
    samples: int
    om_bytes: int
    generate_s: float
    write_s: float            # promtool / the import API (see Loaded)
    written: str
    expected: int
    stored: int
    healthy_s: float          # process start -> /-/healthy
    caught_up_s: float        # process start -> every expected session stored
    identical: bool           # (unit, start, end) of stored == generated
    energy_error_max: float   # max |stored - numpy trapezoid| / numpy, over sessions
    rss_max_mib: float
    engine: str = "prometheus"
    sessions: list[tuple[str, float, float, float]] = field(default_factory=list, repr=False)  # unit, start, end, Wh
    metrics: str = field(default="", repr=False)    # the store's /metrics once caught up

    @property
    def per_second(self) -> float:
        return self.stored / self.caught_up_s if self.caught_up_s else float("nan")


def catch_up(stack: Stack, loaded: Loaded, history: History, generate_s: float, log: Callable[[str], None],
             name: str = "session-store") -> CatchUp:
    """A new session store (`source: fleet`, `catch_up` = the history's days) reading `loaded`, timed until
    `GET /api/sessions` lists every generated session; compared with them, then stopped."""
    database = stack.workdir / f"{name}.db"
    if database.exists():
        raise ValueError(f"{database} exists: each catch-up needs a new database (a name of its own)")
    config = {"sessions": {"source": "fleet", "catch_up": f"{history.days}d", "database": str(database)},
              "prometheus": {"url": loaded.url}}
    spawned = time.monotonic()
    store = stack.component(name, "session_store", config=config, ready_timeout=120)
    process, api = store.process, store.url
    healthy_s = time.monotonic() - spawned
    sampler = RssSampler({"session-store": process.process.pid})
    expected = len(history.planned)
    stored = [0]

    def done() -> bool:
        stored[0] = get_json(f"{api}/api/sessions?limit=1", timeout=30)["total"]
        return stored[0] >= expected
    wait_until(done, 600, 0.1, f"{expected} sessions")
    caught_up_s = time.monotonic() - spawned
    sampler.stop()
    time.sleep(1.0)
    sessions = json.loads(_get(f"{api}/api/export?format=json"))
    metrics = _get(f"{api}/metrics").decode()
    stack.stop(process)
    got = sorted((s["unit"], s["start"], s["end"]) for s in sessions)
    want = sorted((p.unit, p.start, p.end) for p in history.planned)
    truth = {(p.unit, p.start): p.energy_wh for p in history.planned}
    errors = [abs(s["energy_wh"] - truth[(s["unit"], s["start"])]) / truth[(s["unit"], s["start"])]
              for s in sessions if (s["unit"], s["start"]) in truth]
    result = CatchUp(history.units, history.days, history.step_s, history.samples, history.bytes, generate_s,
                     loaded.write_s, loaded.written, expected, len(sessions), healthy_s, caught_up_s, got == want,
                     max(errors) if errors else float("nan"), max(sampler.of("start", "session-store")),
                     loaded.engine, sorted((s["unit"], s["start"], s["end"], s["energy_wh"]) for s in sessions),
                     metrics)
    log(f"  session store on {loaded.engine}: healthy after {healthy_s:.1f} s, all {expected} sessions stored after "
        f"{caught_up_s:.1f} s ({result.per_second:.0f} sessions/s); stored {len(sessions)}, identical "
        f"(unit, start, end): {result.identical}; max energy deviation from numpy's trapezoid "
        f"{result.energy_error_max:.2e}")
    return result


def run_catch_up(settings: Settings, log: Callable[[str], None], engine: str = "prometheus") -> CatchUp:
    """Write the history, load it into `engine` (one of ENGINES), time the session store catching up."""
    stack = Stack(name="bench-catch-up", patience=PATIENT, log=log)
    ok = False
    try:
        started = time.monotonic()
        history = write_history(stack.workdir / "history.om", settings.units, settings.days, settings.step_s,
                                time.time())
        generate_s = time.monotonic() - started
        log(f"  generated {history.samples:,} samples ({size(history.bytes)} of OpenMetrics), {len(history.planned)} "
            f"sessions on {settings.units} units over {settings.days} days in {generate_s:.1f} s")
        loaded = load_history(stack, engine, history, log)
        history.path.unlink()
        result = catch_up(stack, loaded, history, generate_s, log)
        ok = True
        return result
    finally:
        stack.close(ok)


def _get(url: str, timeout: float = 300) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


# --- (b) price backfill ----------------------------------------------------------------------------

@dataclass
class Backfill:
    days: int
    runs_s: list[float]
    fetch_s: list[float]
    promtool_s: list[float]
    prices: int
    blocks: int


BACKFILL_LINE = re.compile(r"backfilled (\d+) 5-minute prices .* as (\d+) blocks: fetch ([\d.]+)s, promtool ([\d.]+)s")


def run_backfill(settings: Settings, log: Callable[[str], None]) -> Backfill:
    stack = Stack(name="bench-backfill", patience=PATIENT, log=log)
    ok = False
    try:
        sim = stack.simulator("demo")
        result = Backfill(settings.backfill_days, [], [], [], 0, 0)
        for run in range(settings.backfill_runs):
            started = time.monotonic()
            done = price_backfill(stack.workdir / f"tsdb-{run}", sim.url, days=settings.backfill_days,
                                  instance="127.0.0.1:9884", timeout=300)
            elapsed = time.monotonic() - started
            match = BACKFILL_LINE.search(done.stderr + done.stdout)
            if not match:
                raise RuntimeError(f"price-backfill said nothing about what it wrote: {done.stderr[-500:]}")
            result.runs_s.append(elapsed)
            result.prices, result.blocks = int(match[1]), int(match[2])
            result.fetch_s.append(float(match[3]))
            result.promtool_s.append(float(match[4]))
            log(f"  price-backfill --days {settings.backfill_days}: {elapsed:.2f} s in all ({result.prices:,} prices, "
                f"{result.blocks} blocks; fetch {match[3]} s, promtool {match[4]} s by its own log)")
        ok = True
        return result
    finally:
        stack.close(ok)


# --- (c) the sessions API over many sessions -----------------------------------------------------------

def synthetic_sessions(count: int, units: int, end: float, seed: int = 3) -> Iterator[Session]:
    """`count` completed sessions, newest ending before `end`, one every ~12 h per unit, 30 min - 4 h each,
    with their 5-minute energy split (as the store keeps it)."""
    rng = np.random.default_rng(seed)
    per_unit = math.ceil(count / units)
    span = per_unit * 12 * 3600.0
    made = 0
    for k in range(per_unit):
        for i in range(units):
            if made == count:
                return
            start = end - span + k * 12 * 3600.0 + float(rng.uniform(0, 6 * 3600))
            duration = float(rng.uniform(1800, 4 * 3600))
            watts = float(rng.uniform(7000, 11500))
            energy = watts * duration / 3600
            first_end = math.floor(start / 300) * 300 + 300
            ends = np.arange(first_end, start + duration + 300, 300, dtype=float)
            share = np.diff(np.clip(np.concatenate(([start], ends)), start, start + duration)) * watts / 3600
            intervals = {float(e): float(wh) for e, wh in zip(ends, share) if wh > 0}
            price = float(rng.uniform(2, 6))
            supply = energy / 1000 * price / 100
            made += 1
            yield Session(unit=f"unit{i + 1}", din=_unit_din(i), vin=_vin(i), vehicle=f"Car {i + 1}", start=start,
                          end=start + duration, duration_s=duration, energy_wh=energy, peak_w=watts * 1.01,
                          average_w=watts, meter_energy_wh=None, supply_cost=supply, supply_credit=0.0,
                          delivery_cost=energy / 1000 * 0.075, full_cost=supply + energy / 1000 * 0.075,
                          supply_price_cents=price, cost_final=True, intervals=intervals, gap_s=0.0,
                          source="live_status", reconciliation="matched" if k % 3 else "pending")


def fill(database: Path, count: int, units: int, end: float, batch: int = 1000) -> float:
    """Insert through the storage layer's own transaction (`save_step`); returns the seconds it took."""
    storage = Storage(database)
    try:
        started = time.monotonic()
        pending: list[Session] = []
        for session in synthetic_sessions(count, units, end):
            pending.append(session)
            if len(pending) == batch:
                storage.save_step({}, pending, [], end)
                pending = []
        if pending:
            storage.save_step({}, pending, [], end)
        return time.monotonic() - started
    finally:
        storage.close()


@dataclass
class Endpoint:
    name: str
    path: str
    latencies_ms: list[float]
    body_bytes: int
    probe_max_ms: float = float("nan")   # longest /-/healthy, asked every 100 ms from another thread meanwhile


class Prober:
    """Asks `/-/healthy` every 100 ms in a thread (its own connection) and keeps the longest wait: how long the
    store's event loop was unavailable to everyone else while the measured requests ran."""

    def __init__(self, base: str) -> None:
        self.base, self.longest_ms = base, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        client = Client(self.base)
        try:
            while not self._stop.is_set():
                elapsed, _, _ = client.get("/-/healthy")
                self.longest_ms = max(self.longest_ms, elapsed)
                self._stop.wait(0.1)
        finally:
            client.close()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(700)
        return self.longest_ms


@dataclass
class ApiResult:
    sessions: int
    units: int
    fill_s: float
    database_bytes: int
    endpoints: list[Endpoint]
    rss_empty_mib: float          # store running, database still empty (max)
    rss_idle_mib: float           # sessions stored, no requests (max)
    rss_load_mib: float           # max during the API load
    rss_after_mib: float          # at the end
    ladder: list[tuple[int, float, float, float, float, float]] = field(default_factory=list)
    # (sessions, start -> listening s, start -> answering s, longest API wait s, last_sessions() s, totals() s)


class Client:
    """Keep-alive HTTP/1.1 to the store; latency from sending the request to the last body byte."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)

    def get(self, path: str) -> tuple[float, int, bytes]:
        started = time.perf_counter()
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        body = response.read()
        return (time.perf_counter() - started) * 1000, response.status, body

    def close(self) -> None:
        self.connection.close()


def _time_endpoint(client: Client, base: str, name: str, path: str, count: int, warmup: int) -> Endpoint:
    latencies, body = [], b""
    for _ in range(warmup):
        client.get(path)
    prober = Prober(base)
    for _ in range(count):
        elapsed, status, body = client.get(path)
        if status != 200:
            raise RuntimeError(f"{path}: HTTP {status}: {body[:200]!r}")
        latencies.append(elapsed)
    return Endpoint(name, path, latencies, len(body), prober.stop())


def _start_times(port: int, timeout: float) -> tuple[float, float]:
    """(seconds until the port accepts connections, seconds until `/-/healthy` answers), from now. The store
    binds its port after the start-up render; the request then waits as long as its event loop is busy."""
    started = time.monotonic()
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() - started > timeout:
                raise
            time.sleep(0.01)
    listening = time.monotonic() - started
    _get(f"http://127.0.0.1:{port}/-/healthy", timeout=timeout)
    return listening, time.monotonic() - started


def _longest_wait(url: str, duration: float) -> float:
    """Poll `url` every 100 ms for `duration` s; the longest single request, in seconds."""
    longest, until = 0.0, time.monotonic() + duration
    while time.monotonic() < until:
        started = time.monotonic()
        _get(url, timeout=600)
        longest = max(longest, time.monotonic() - started)
        time.sleep(0.1)
    return longest


LADDER_EVALUATION_S = 3


def startup_ladder(stack: Stack, prometheus_url: str, counts: tuple[int, ...], units: int,
                   log: Callable[[str], None]) -> list[tuple[int, float, float, float, float, float]]:
    """The session store with N sessions already stored: start-up until the API first answers, and the
    longest an API request waited while it evaluated every 3 s (each evaluation re-renders /metrics on
    the event loop); and the collector's two queries that grow with N, timed through the storage layer."""
    rows = []
    for count in counts:
        database = stack.workdir / f"ladder-{count}.db"
        if count:
            fill(database, count, units, time.time() - 3600)
        storage = Storage(database)
        started = time.perf_counter()
        storage.last_sessions()
        last_s = time.perf_counter() - started
        started = time.perf_counter()
        storage.totals()
        totals_s = time.perf_counter() - started
        storage.close()
        config = {"sessions": {"database": str(database), "evaluation_interval": LADDER_EVALUATION_S},
                  "prometheus": {"url": prometheus_url}}
        port = free_port()
        process = stack.component(f"session-store-{count}", "session_store", port=port, config=config,
                                  wait=False).process
        listening_s, answered_s = _start_times(port, 600)
        # one evaluation interval plus one render (two collections of ~last_sessions each) and a margin
        stall_s = _longest_wait(f"http://127.0.0.1:{port}/-/healthy",
                                LADDER_EVALUATION_S + 2.5 * last_s + 2)
        stack.stop(process, timeout=1)    # its event loop may be in the next render; SIGKILL after 1 s
        rows.append((count, listening_s, answered_s, stall_s, last_s, totals_s))
        log(f"  {count:>6,} sessions stored: listening {listening_s:.2f} s and answering {answered_s:.2f} s after "
            f"start, longest API wait "
            f"while evaluating every {LADDER_EVALUATION_S} s {stall_s:.2f} s; Storage.last_sessions() {last_s:.3f} s,"
            f" Storage.totals() {totals_s:.3f} s")
    return rows


def run_api(settings: Settings, log: Callable[[str], None]) -> ApiResult:
    stack = Stack(name="bench-api", patience=PATIENT, log=log)
    ok = False
    try:
        prometheus = stack.prometheus({}, scrape_interval=15)
        ladder = startup_ladder(stack, prometheus.url, settings.ladder, settings.units, log)
        database = stack.workdir / "sessions.db"
        config = {"sessions": {"database": str(database), "evaluation_interval": "30d"},
                  "prometheus": {"url": prometheus.url}}
        store = stack.component("session-store", "session_store", config=config)
        process, api = store.process, store.url
        assert process.process is not None
        sampler = RssSampler({"session-store": process.process.pid})
        time.sleep(2)                     # the empty store after start-up
        end = time.time() - 3600
        sampler.mark("fill")
        fill_s = fill(database, settings.api_sessions, settings.units, end)
        database_bytes = sum(p.stat().st_size for p in database.parent.glob(database.name + "*"))
        log(f"  {settings.api_sessions:,} sessions written through Storage.save_step in {fill_s:.1f} s "
            f"({settings.api_sessions / fill_s:,.0f}/s); database {size(database_bytes)}")
        total = get_json(f"{api}/api/sessions?limit=1", timeout=60)["total"]
        if total != settings.api_sessions:
            raise RuntimeError(f"the API lists {total} sessions, {settings.api_sessions} were written")
        sampler.mark("idle")
        time.sleep(3)
        sampler.mark("load")
        client = Client(api)
        month_from, month_to = end - 45 * DAY, end - 15 * DAY
        n, slow = settings.api_requests, settings.api_slow_requests
        plan = [("first page (100)", "/api/sessions", n),
                ("deep offset", f"/api/sessions?offset={settings.api_sessions - 100}", n // 2),
                ("one unit", "/api/sessions?unit=unit3", n),
                ("30-day range", f"/api/sessions?from={month_from:.0f}&to={month_to:.0f}", n),
                ("one session", "/api/sessions/1234", n),
                ("summary, month", "/api/summary?period=month", slow),
                ("export (CSV, every session)", "/api/export", settings.api_exports),
                ("/metrics (pre-rendered)", "/metrics", n)]
        endpoints = []
        for name, path, count in plan:
            endpoint = _time_endpoint(client, api, name, path, count, 0 if count <= 5 else 3)
            endpoints.append(endpoint)
            log(f"  {name:28s} {path:52s} p50 {pct(endpoint.latencies_ms, 50):9.2f} ms  p99 "
                f"{pct(endpoint.latencies_ms, 99):9.2f} ms  ({count} requests, {size(endpoint.body_bytes)}; "
                f"/-/healthy waited up to {endpoint.probe_max_ms:.0f} ms meanwhile)")
        client.close()
        sampler.mark("after")
        sampler.stop()
        result = ApiResult(settings.api_sessions, settings.units, fill_s, database_bytes, endpoints,
                           max(sampler.of("start", "session-store")), max(sampler.of("idle", "session-store")),
                           max(sampler.of("load", "session-store")), sampler.of("after", "session-store")[-1],
                           ladder)
        ok = True
        return result
    finally:
        stack.close(ok)


@dataclass
class ScaleResult:
    catch_up: CatchUp | None
    backfill: Backfill | None
    api: ApiResult | None

    def catch_up_table(self) -> str:
        c = self.catch_up
        if c is None:
            return ""
        return table(["", ""], [
            ("history", f"{c.days} days x {c.units} units at a {c.step_s} s step: {c.samples:,} samples "
                        f"({size(c.om_bytes)} OpenMetrics)"),
            ("written by promtool" if c.engine == "prometheus" else "imported through the API",
             f"{c.write_s:.1f} s, {c.written} (generating the text: {c.generate_s:.1f} s)"),
            ("session store healthy", f"{c.healthy_s:.1f} s after start"),
            ("every session stored", f"**{c.caught_up_s:.1f} s** after start"),
            ("sessions", f"{c.stored} stored, {c.expected} generated: "
                         f"{'identical (unit, start, end)' if c.identical else 'DIFFERENT'}"),
            ("rate", f"{c.per_second:.0f} sessions/s, {c.samples / c.caught_up_s:,.0f} samples/s"),
            ("energy vs numpy trapezoid of the same samples", f"max deviation {c.energy_error_max:.1e}"),
            ("session store RSS during the catch-up", f"{c.rss_max_mib:.0f} MiB max")])

    def backfill_table(self) -> str:
        b = self.backfill
        if b is None:
            return ""
        return table(["days", "prices", "blocks", "runs", "whole process p50 / max (s)", "fetch p50 (s)",
                      "promtool p50 (s)"],
                     [[str(b.days), f"{b.prices:,}", str(b.blocks), str(len(b.runs_s)),
                       f"**{pct(b.runs_s, 50):.2f}** / {max(b.runs_s):.2f}", f"{pct(b.fetch_s, 50):.2f}",
                       f"{pct(b.promtool_s, 50):.2f}"]])

    def api_table(self) -> str:
        a = self.api
        if a is None:
            return ""
        return table(["request", "path", "requests", "p50 (ms)", "p99 (ms)", "max (ms)", "body",
                      "longest `/-/healthy` meanwhile (ms)"],
                     [[e.name, f"`{e.path}`", str(len(e.latencies_ms)), f"**{pct(e.latencies_ms, 50):.2f}**",
                       f"{pct(e.latencies_ms, 99):.2f}", f"{max(e.latencies_ms):.2f}", size(e.body_bytes),
                       f"{e.probe_max_ms:.0f}"] for e in a.endpoints])

    def ladder_table(self) -> str:
        a = self.api
        if a is None or not a.ladder:
            return ""
        return table(["sessions stored (10 units)", "start -> listening (s)", "start -> first answer (s)",
                      f"longest API wait, evaluating every {LADDER_EVALUATION_S} s (s)",
                      "`Storage.last_sessions()` (s)", "`Storage.totals()` (s)"],
                     [[f"{n:,}", f"{listen:.2f}", f"{h:.2f}", f"**{w:.2f}**", f"{last:.3f}", f"{totals:.3f}"]
                      for n, listen, h, w, last, totals in a.ladder])


def run(settings: Settings, log: Callable[[str], None]) -> ScaleResult:
    log("(a) catch-up of a month of history")
    catch_up = run_catch_up(settings, log)
    log("(b) price backfill")
    backfill = run_backfill(settings, log)
    log("(c) the sessions API over many stored sessions")
    api = run_api(settings, log)
    return ScaleResult(catch_up, backfill, api)


def markdown(result: ScaleResult) -> list[str]:
    out = ["## 5. Scale", ""]
    c, b, a = result.catch_up, result.backfill, result.api
    if c:
        out += ["### Session store catching up a month of history", "",
                f"{c.days} days of Fleet series (`tesla_wall_connector_power_watts`, `_vehicle_connected`, "
                f"`_vehicle_info` while plugged in) for {c.units} units at a {c.step_s} s step plus the 5-minute "
                f"price, with 1-2 charges per unit and day (ramp, a dip shorter than the grace period, taper; "
                "unplugged before or after the grace period), written with `promtool tsdb create-blocks-from "
                f"openmetrics`. Prometheus starts on it, then the session store (`sessions.catch_up: {c.days}d`, "
                "`source: fleet`, 6 h windows); the benchmark asks `GET /api/sessions` every 100 ms until every "
                "generated session is there, then compares (unit, start, end) with what it generated.", "",
                result.catch_up_table(), ""]
    if b:
        out += ["### Price backfill", "",
                f"`python -m exporters.price_backfill --days {b.days}` against the simulator (demo scenario), timed as "
                "a whole process (interpreter start, fetching a day per request, OpenMetrics, promtool), each run into "
                "a fresh directory; fetch and promtool are the tool's own log figures.", "",
                result.backfill_table(), ""]
    if a:
        out += [f"### Sessions API over {a.sessions:,} stored sessions", "",
                f"{a.sessions:,} sessions on {a.units} units (one every ~12 h per unit, 30 min - 4 h, with their "
                f"5-minute energy split) written through `Storage.save_step` in batches of 1,000: {a.fill_s:.1f} s "
                f"({a.sessions / a.fill_s:,.0f} sessions/s); database with WAL **{size(a.database_bytes)}**. They are "
                "written into the database of a running session store pointing at a Prometheus with no data, whose "
                "evaluation interval is set to 30 days, so only the requests are measured (the start-up ladder "
                "measures evaluations and renders with sessions stored). "
                "Requests one after another over one keep-alive connection from the benchmark process; latency to "
                "the last body byte. Meanwhile another connection asks `/-/healthy` every 100 ms: its longest wait "
                "is how long the store answered nobody else (scrapes of /metrics included).", "", result.api_table(),
                "", *api_notes(a),
                f"Session store RSS: {a.rss_empty_mib:.0f} MiB empty, {a.rss_idle_mib:.0f} MiB with the sessions "
                f"stored, **{a.rss_load_mib:.0f} MiB** max during these requests, {a.rss_after_mib:.0f} MiB after.", ""]
        if a.ladder:
            out += ["### Session store start-up and evaluations with N sessions stored", "",
                    "The session store started on a database already holding N sessions (10 units), against a "
                    f"Prometheus with no data, evaluating every {LADDER_EVALUATION_S} s. \"Listening\": process "
                    "start until its port accepts connections (it binds after the start-up render of /metrics); "
                    "\"first answer\": until `/-/healthy` then answers, which may include the first evaluation's "
                    f"render. \"Longest API wait\": `/-/healthy` asked every 100 ms over one evaluation interval plus "
                    "one render; each evaluation renders /metrics synchronously on the event loop, and each render "
                    "collects twice (text and OpenMetrics). The two storage queries the collector runs are timed in "
                    "the benchmark process through `Storage`.", "", result.ladder_table(), ""]
            out += ladder_notes(a.ladder)
    return out


def api_notes(api: ApiResult) -> list[str]:
    """The endpoints that take over a second: what they cost everyone else."""
    lines = []
    for e in api.endpoints:
        if pct(e.latencies_ms, 50) >= 1000:
            lines.append(f"- `{e.path}` over {api.sessions:,} sessions: {pct(e.latencies_ms, 50) / 1000:.1f} s per "
                         f"request ({size(e.body_bytes)}); `/-/healthy` waited up to {e.probe_max_ms / 1000:.1f} s "
                         "meanwhile (the export is streamed a thousand sessions at a time, yielding to the "
                         "event loop in between).")
    return lines + ([""] if lines else [])


def ladder_notes(ladder: list[tuple[int, float, float, float, float, float]]) -> list[str]:
    rows = [r for r in ladder if r[0] > 0]
    if len(rows) < 2:
        return []
    (n1, _, _, _, l1, _), (n2, _, _, w2, l2, _) = rows[-2], rows[-1]
    return [f"- `Storage.last_sessions()` (the newest session of each unit, through the (unit, end) index) took "
            f"{l2 * 1000:.1f} ms at {n2:,} sessions and {l1 * 1000:.1f} ms at {n1:,}; the collector queries the "
            f"aggregates once per database write, not per render. At {n2:,} sessions an API request waited up "
            f"to {w2:.2f} s while the store evaluated.", ""]
