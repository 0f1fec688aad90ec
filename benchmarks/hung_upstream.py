"""Upstream hung: does /metrics stay fast while the Wall Connector stops answering?

The real `twc-exporter` process polls the real simulator; a separate client process scrapes it
every 50 ms the whole time. After a healthy stretch we inject `hang` on the charger for 30 s
(requests are held open, never answered in time) and keep scraping until `twc_up` has gone to 0
and come back to 1. The exporter's design says a scrape never waits on an upstream, so latency
during the hang should look like latency before it; `twc_up` should fall once the vitals request
times out (3 s) and come back at the first poll after the hang, which backoff may delay.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from benchmarks.report import ROOT, ms, pct, table
from suite.processes import wait_until
from testkit.exposition import by_label, samples, value
from testkit.http import get
from testkit.stack import PATIENT, Stack

SAMPLE = 'twc_up{target="garage"}'


@dataclass(frozen=True)
class Settings:
    hang_s: float
    healthy_s: float       # scraping before the fault
    after_s: float         # scraping after twc_up recovered
    max_recovery_s: float  # give up waiting for twc_up=1 this long after the hang ended
    interval: float = 0.05

    @classmethod
    def full(cls) -> "Settings":
        return cls(hang_s=30, healthy_s=10, after_s=5, max_recovery_s=90)

    @classmethod
    def quick(cls) -> "Settings":
        return cls(hang_s=10, healthy_s=4, after_s=2, max_recovery_s=60)


@dataclass
class Phase:
    name: str
    latencies_ms: list[float]
    errors: int

    def row(self) -> list[str]:
        if not self.latencies_ms:
            return [self.name, "0", "n/a", "n/a", "n/a", str(self.errors)]
        return [self.name, str(len(self.latencies_ms)), ms(pct(self.latencies_ms, 50)), ms(pct(self.latencies_ms, 99)),
                ms(max(self.latencies_ms)), str(self.errors)]


@dataclass
class HungResult:
    hang_s: float
    interval: float
    phases: list[Phase]
    down_after_s: float | None        # from injection to the first scrape showing twc_up 0
    recovered_after_end_s: float | None  # from the end of the hang to the first scrape showing twc_up 1 again
    vitals_outcomes: dict[str, float]  # the exporter's own twc_upstream_requests_total for vitals, at the end
    logs_kept: str | None = None

    def table(self) -> str:
        return table(["phase", "scrapes", "p50 (ms)", "p99 (ms)", "max (ms)", "failed scrapes"],
                     [p.row() for p in self.phases])

    def timeline(self) -> str:
        down = "never seen" if self.down_after_s is None else f"{self.down_after_s:.2f} s after the fault was injected"
        back = ("not within the wait" if self.recovered_after_end_s is None
                else f"{self.recovered_after_end_s:.2f} s after the hang ended "
                     f"({self.hang_s + self.recovered_after_end_s:.1f} s after it began)")
        outcomes = ", ".join(f"{k} {v:g}" for k, v in sorted(self.vitals_outcomes.items()) if v) or "none"
        return (f"- `twc_up{{target=\"garage\"}}` went to 0: {down}\n"
                f"- `twc_up{{target=\"garage\"}}` back to 1: {back}\n"
                f"- exporter's own count of vitals requests by outcome: {outcomes}")


def _outcomes(text: str) -> dict[str, float]:
    """The exporter's own count of vitals requests, by outcome."""
    return by_label(samples(text), "twc_upstream_requests_total", "outcome", endpoint="vitals")


class Watcher:
    """The client process in watch mode, its JSON lines collected by a reader thread."""

    def __init__(self, url: str, interval: float, duration: float, log_path: Path) -> None:
        self.rows: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.stderr = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.client", "watch", "--url", url, "--interval", str(interval),
             "--duration", str(duration), "--sample", SAMPLE], cwd=ROOT, stdout=subprocess.PIPE, stderr=self.stderr,
            start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            row = json.loads(line)
            with self.lock:
                self.rows.append(row)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.rows)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.reader.join(10)
        self.stderr.close()


def _recovered(rows: list[dict[str, Any]], injected: float, ended: float) -> tuple[float | None, float | None]:
    down_at = next((r["t"] for r in rows if r["t"] >= injected and r.get("value") == 0.0), None)
    if down_at is None:
        return None, None
    up_at = next((r["t"] for r in rows if r["t"] > down_at and r["t"] >= ended and r.get("value") == 1.0), None)
    return down_at - injected, None if up_at is None else up_at - ended


def _phase(name: str, rows: list[dict[str, Any]]) -> Phase:
    return Phase(name, [r["ms"] for r in rows if r.get("status") == 200],
                 sum(1 for r in rows if r.get("status") != 200))


def run(settings: Settings, log: Callable[[str], None]) -> HungResult:
    """Simulator + twc-exporter + watching client; every process is stopped whatever happens."""
    stack = Stack(name="bench-hung", patience=PATIENT, log=log)
    workdir = stack.workdir
    watcher: Watcher | None = None
    ok = False
    try:
        sim = stack.simulator("demo")
        charger = sim.charger_address("garage")
        speed = float(sim.clock()["speed"])
        exporter = stack.component("twc-exporter", "exporters.twc", ready_timeout=30,
                                   env={"TWC_CHARGERS": f"garage:{charger}", "TWC_POLL_VITALS_INTERVAL": "1"})
        metrics = f"{exporter.url}/metrics"
        wait_until(lambda: value(get(metrics)[2].decode(), SAMPLE) == 1.0, 30, 0.1, f"{SAMPLE} 1")
        log(f"  simulator at {sim.url} (speed {speed:g}), charger garage at {charger}; twc-exporter on "
            f"{exporter.address} reports {SAMPLE} 1")

        budget = settings.healthy_s + settings.hang_s / speed + settings.max_recovery_s + settings.after_s + 30
        watcher = Watcher(metrics, settings.interval, budget, workdir / "client.log")
        time.sleep(settings.healthy_s)
        injected = time.time()
        fault = sim.add_fault({"target": "wall_connector:garage", "kind": "hang", "duration": settings.hang_s})
        ended = injected + settings.hang_s / speed
        log(f"  injected fault {fault}: hang on wall_connector:garage for {settings.hang_s:g} s")

        deadline = ended + settings.max_recovery_s
        recovered_at: float | None = None
        while time.time() < deadline:
            down, back = _recovered(watcher.snapshot(), injected, ended)
            if back is not None:
                recovered_at = ended + back
                break
            if watcher.process.poll() is not None:
                raise RuntimeError(f"the scraping client exited early (log {workdir / 'client.log'})")
            time.sleep(0.2)
        time.sleep(settings.after_s)
        watcher.stop()
        final = get(metrics)[2].decode()
        rows = watcher.snapshot()
        down, back = _recovered(rows, injected, ended)
        phases = [_phase("healthy, before the fault", [r for r in rows if r["t"] < injected]),
                  _phase(f"upstream hung ({settings.hang_s:g} s)", [r for r in rows if injected <= r["t"] < ended]),
                  _phase("hang over, until twc_up is 1 again",
                         [r for r in rows if ended <= r["t"] < (recovered_at or float("inf"))])]
        if recovered_at is not None:
            phases.append(_phase("after recovery", [r for r in rows if r["t"] >= recovered_at]))
        result = HungResult(settings.hang_s, settings.interval, phases, down, back, _outcomes(final))
        ok = True
        return result
    finally:
        if watcher is not None:
            watcher.stop()
        stack.close(ok)
