"""The session store's /metrics while its evaluations run, with 100,000 sessions stored: today's code
(views, the ledger read off the event loop, bytes rendered in a worker thread once per step) side by
side with the code before it (`BASELINE`: aggregates and the render on the event loop after every
evaluation), in the same run, against the same Prometheus.

Both read the same Wall Connectors (the simulator's demo, through the real twc-exporter and
Prometheus), evaluate every second (every evaluation commits its watermark) and serve the same
database copy. The scraping client is its own process (benchmarks.client), scraping every 50 ms.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from benchmarks.report import ROOT, ms, pct, run_client, table
from benchmarks.scale import fill
from session_store.storage import Storage
from suite.processes import ManagedProcess, wait_until
from testkit.env import clean_env
from testkit.exposition import parse
from testkit.http import get
from testkit.ports import free_port
from testkit.stack import PATIENT, Stack

# The last commit before the session store moved to frozen views and pre-rendered bytes (issue 14).
BASELINE = "f177b4d"
CODES = ("before", "now")


@dataclass(frozen=True)
class Settings:
    sessions: int
    units: int
    scrapes: int
    interval_s: float = 0.05
    evaluation_s: float = 1.0

    @classmethod
    def full(cls) -> "Settings":
        return cls(sessions=100_000, units=10, scrapes=1200)

    @classmethod
    def quick(cls) -> "Settings":
        return cls(sessions=20_000, units=10, scrapes=300)


@dataclass
class CodeResult:
    code: str
    latencies_ms: list[float] = field(default_factory=list)
    body_bytes: int = 0
    evaluations: float = 0.0          # evaluations that succeeded while scraped (its watermark moves)
    first_scrape_s: float = 0.0       # start to a /metrics answer, with the database to aggregate

    def row(self) -> list[str]:
        values = self.latencies_ms
        return [self.code, f"{len(values):,}", ms(pct(values, 50)), ms(pct(values, 90)), ms(pct(values, 99)),
                ms(max(values) if values else None), f"{self.body_bytes:,}", f"{self.evaluations:.0f}",
                f"{self.first_scrape_s:.1f}"]


HEADERS = ["code", "scrapes", "p50 ms", "p90 ms", "p99 ms", "max ms", "body bytes", "evaluations meanwhile",
           "start to first scrape s"]


def baseline_tree(directory: Path) -> Path:
    """The baseline's source, checked out beside this one (a detached git worktree)."""
    tree = directory / "baseline"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(tree), BASELINE],
                   check=True, capture_output=True)
    return tree


def store_process(name: str, tree: Path, config: Path, port: int, log: Path) -> ManagedProcess:
    """`python -P -m session_store` from `tree`: -P keeps the working directory off sys.path, so the
    baseline's modules are imported from its own tree."""
    command = [sys.executable, "-P", "-m", "session_store", "--config", str(config), "--listen", f"127.0.0.1:{port}"]
    return ManagedProcess(name, command, log, clean_env(PYTHONPATH=str(tree)), f"http://127.0.0.1:{port}/-/healthy")


def watermark(url: str) -> float:
    found = parse(get(f"{url}/metrics")[2].decode())
    return found.get("charging_session_watermark_timestamp_seconds", 0.0)


def measure(code: str, tree: Path, database: Path, stack: Stack, prometheus_url: str, chargers: list[dict],
            settings: Settings) -> CodeResult:
    config = stack.workdir / f"store-{code}.yaml"
    config.write_text(
        f"prometheus:\n  url: {prometheus_url}\n"
        f"sessions:\n  database: {database}\n  source: local\n  evaluation_interval: {settings.evaluation_s}\n"
        f"  settle: 2\n  catch_up: 10m\n"
        "wall_connectors:\n  chargers:\n" + "".join(f"    - {{name: {c['name']}, address: '{c['address']}'}}\n"
                                                    for c in chargers))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    process = stack.start(store_process(f"store-{code}", tree, config, port, stack.workdir / f"store-{code}.log"))
    try:
        process.wait_ready(stack.patience.component)
        result = CodeResult(code, first_scrape_s=time.monotonic() - started)
        wait_until(lambda: watermark(url) > 0, 60, 0.5, f"{code}: a first evaluation")
        before = watermark(url)
        answer = run_client(["burst", "--url", f"{url}/metrics", "--count", str(settings.scrapes), "--warmup", "5",
                             "--interval", f"{settings.interval_s:g}"], timeout=settings.scrapes * 5 + 60)
        result.latencies_ms, result.body_bytes = answer["latencies_ms"], answer["wire_bytes"]
        result.evaluations = (watermark(url) - before) / settings.evaluation_s
        return result
    finally:
        stack.stop(process)


def run(settings: Settings, log: Callable[[str], None] = print) -> list[CodeResult]:
    directory = Path(tempfile.mkdtemp(prefix="session-scrape-"))
    ok = False
    tree: Path | None = None
    try:
        tree = baseline_tree(directory)
        seed = directory / "seed.db"
        log(f"  filling {settings.sessions:,} sessions ({settings.units} units) ...")
        fill(seed, settings.sessions, settings.units, time.time() - 86400)
        storage = Storage(seed)   # evaluations start from now, not by catching up the day since the last session
        storage.save_step({}, [], [], time.time())
        storage.close()
        (directory / "stack").mkdir()
        with Stack(directory / "stack", name="session-scrape", patience=PATIENT, log=log) as stack:
            sim = stack.simulator("demo")
            chargers = [{"name": name, "address": sim.charger_address(name)} for name in sorted(sim.charger_urls)]
            twc = stack.component("twc-exporter", "exporters.twc", config={
                "wall_connectors": {"chargers": chargers, "vitals_interval": 1}})
            prometheus = stack.prometheus({"twc": [twc.address]}, scrape_interval=1)
            prometheus.wait_for("twc_power_watts", 60)
            results = []
            for code, source in (("before", tree), ("now", ROOT)):
                database = directory / f"{code}.db"
                shutil.copy(seed, database)
                results.append(measure(code, source, database, stack, prometheus.url, chargers, settings))
                log("  " + " | ".join(results[-1].row()))
        ok = True
        return results
    finally:
        if tree is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
        if ok:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            log(f"  files kept in {directory}")


def report(results: list[CodeResult]) -> str:
    by_code = {r.code: r for r in results}
    lines = [table(HEADERS, [r.row() for r in results])]
    if set(by_code) == set(CODES):
        before, now = (pct(by_code[c].latencies_ms, 99) for c in CODES)
        lines += ["", f"p99 {ms(now)} ms now against {ms(before)} ms before ({before / now:.0f}x); "
                      f"target p99 <= 5 ms: {'met' if now <= 5 else 'NOT met'}."]
    return "\n".join(lines)
