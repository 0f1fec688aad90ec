"""Resident memory of every long-running component, at idle and under load.

The whole suite against the simulator's demo scenario (two Wall Connectors, two cars, 35 days of
prices): twc-, fleet-, vehicle- and price-exporter at their default poll intervals, the session
store (dry-run smart charging), and Prometheus scraping all of them and itself every 15 s. VmRSS
is read from /proc/<pid>/status every 250 ms.

- idle: after start-up has settled (every exporter has polled, the price exporter has loaded its
  30-day history, the session store has evaluated), for `idle_s`;
- load: Prometheus reloaded (SIGHUP) with a 100 ms scrape interval for every job, for `load_s`.

The table gives the maximum over the samples of each phase, and the growth from the first to the
last sample of the load phase. The session store's memory over 100,000 sessions is measured by the
scale benchmark, during its API load, and shown beside these when both ran.
"""
from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from typing import Callable

import yaml

from benchmarks.report import table
from suite.processes import wait_until
from testkit.ports import free_port
from testkit.rss import RssSampler
from testkit.stack import PATIENT, Stack

COMPONENTS = ("twc-exporter", "fleet-exporter", "vehicle-exporter", "price-exporter", "session-store", "simulator",
              "prometheus")
JOBS = {"twc": "twc-exporter", "fleet": "fleet-exporter", "vehicle": "vehicle-exporter", "price": "price-exporter",
        "session_store": "session-store", "prometheus": "prometheus"}


@dataclass(frozen=True)
class Settings:
    settle_s: float
    idle_s: float
    load_s: float
    load_interval: str = "100ms"

    @classmethod
    def full(cls) -> "Settings":
        return cls(settle_s=10, idle_s=15, load_s=30)

    @classmethod
    def quick(cls) -> "Settings":
        return cls(settle_s=6, idle_s=5, load_s=10)


@dataclass
class Row:
    component: str
    idle_mib: float
    load_mib: float
    growth_mib: float
    scrapes: int | None = None          # scrapes of the component during the load phase (Prometheus's count)
    scrape_max_ms: float | None = None  # longest of them, by Prometheus's scrape_duration_seconds


@dataclass
class MemoryResult:
    settings: Settings
    rows: list[Row]

    def table(self, store_100k: tuple[int, float, float, float] | None = None) -> str:
        rows = [[r.component, f"{r.idle_mib:.0f}", f"**{r.load_mib:.0f}**", f"{r.growth_mib:+.1f}",
                 "" if r.scrapes is None else f"{r.scrapes:,}",
                 "" if r.scrape_max_ms is None else f"{r.scrape_max_ms:.1f}"] for r in self.rows]
        rows.append(["**all components**", f"{sum(r.idle_mib for r in self.rows):.0f}",
                     f"**{sum(r.load_mib for r in self.rows):.0f}**", "", "", ""])
        if store_100k:
            sessions, idle, load, after = store_100k
            rows.append([f"session-store, {sessions:,} sessions stored (scale benchmark)", f"{idle:.0f}",
                         f"**{load:.0f}** (API load)", f"{after - idle:+.1f} (after the load)", "", ""])
        return table(["component", "idle RSS (MiB, max)",
                      f"under load RSS (MiB, max; scraped every {self.settings.load_interval})",
                      "growth during the load (MiB)", "scrapes during the load", "longest scrape (ms)"], rows)


def _prometheus_config(targets: dict[str, str], interval: str) -> str:
    return yaml.safe_dump({"global": {"scrape_interval": interval, "scrape_timeout": interval,
                                      "evaluation_interval": "15s"},
                           "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [address]}]}
                                              for job, address in targets.items()]}, sort_keys=False)


def run(settings: Settings, log: Callable[[str], None]) -> MemoryResult:
    stack = Stack(name="bench-memory", patience=PATIENT, log=log)
    ok = False
    try:
        sim = stack.simulator("demo")
        garage = sim.charger_address("garage")
        tessie = {"TESSIE_ACCESS_TOKEN": sim.token, "TESSIE_BASE_URL": sim.url}
        targets: dict[str, str] = {}
        for name, module, env in (("twc-exporter", "exporters.twc", {"TWC_CHARGERS": f"garage:{garage}"}),
                                  ("fleet-exporter", "exporters.fleet", tessie),
                                  ("vehicle-exporter", "exporters.vehicle", tessie),
                                  ("price-exporter", "exporters.price", {"COMED_BASE_URL": sim.url})):
            address = stack.component(name, module, env=env).address
            targets[next(job for job, component in JOBS.items() if component == name)] = address
        prometheus_port = free_port()
        store_port = free_port()
        targets["session_store"] = f"127.0.0.1:{store_port}"
        targets["prometheus"] = f"127.0.0.1:{prometheus_port}"
        prometheus = stack.prometheus({}, config_text=_prometheus_config(targets, "15s"), port=prometheus_port)
        stack.component("session-store", "session_store", env=tessie, config={
            "sessions": {"database": str(stack.workdir / "sessions.db")},
            "prometheus": {"url": prometheus.url}}, port=store_port)
        pids = {name: stack.pid(name) for name in COMPONENTS}
        time.sleep(settings.settle_s)
        sampler = RssSampler(pids)
        sampler.mark("idle")
        time.sleep(settings.idle_s)
        (stack.workdir / "prometheus.yml").write_text(_prometheus_config(targets, settings.load_interval))
        prometheus.process.process.send_signal(signal.SIGHUP)   # reload: every job now every 100 ms
        # the new interval takes effect a few seconds after the reload: wait until Prometheus scrapes that fast
        wait_until(lambda: (prometheus.value('min(count_over_time(up[1s]))') or 0) >= 8, 60, 0.1,
                   "scrapes every 100 ms")
        sampler.mark("load")
        load_started = time.time()
        time.sleep(settings.load_s)
        sampler.mark("after")
        sampler.stop()
        window = f"{int(time.time() - load_started)}s"
        scrapes = {r["metric"]["job"]: int(float(r["value"][1]))
                   for r in prometheus.query(f"count_over_time(up[{window}])")}
        longest = {r["metric"]["job"]: float(r["value"][1]) * 1000
                   for r in prometheus.query(f"max_over_time(scrape_duration_seconds[{window}])")}
        rows = []
        for name in COMPONENTS:
            idle, load = sampler.of("idle", name), sampler.of("load", name)
            job = next((j for j, c in JOBS.items() if c == name), None)
            rows.append(Row(name, max(idle), max(load), load[-1] - load[0], scrapes.get(job or ""),
                            longest.get(job or "")))
            log(f"  {name:17s} idle {max(idle):6.0f} MiB   under load {max(load):6.0f} MiB   growth "
                f"{load[-1] - load[0]:+.1f} MiB" + (f"   {scrapes.get(job or '', 0):,} scrapes, longest "
                                                     f"{longest.get(job or '', float('nan')):.1f} ms" if job else ""))
        ok = True
        return MemoryResult(settings, rows)
    finally:
        stack.close(ok)


def markdown(result: MemoryResult, store_100k: tuple[int, float, float, float] | None) -> list[str]:
    s = result.settings
    return ["## 6. Memory", "",
            "Resident memory (VmRSS from /proc/<pid>/status, sampled every 250 ms, maximum per phase) of every "
            "long-running component: the whole suite against the simulator's demo scenario (two Wall Connectors, "
            "two cars, 35 days of prices), exporters at their default poll intervals, the session store in dry "
            f"run. Idle: {s.idle_s:g} s after {s.settle_s:g} s of settling, Prometheus scraping every job every "
            f"15 s. Under load: Prometheus reloaded with a {s.load_interval} scrape interval for every job, "
            f"{s.load_s:g} s once it scrapes that fast (scrapes and the longest scrape by Prometheus's own `up` "
            "and `scrape_duration_seconds`). Growth = last - first sample of the load phase.", "",
            result.table(store_100k), ""]
