"""End-to-end latencies through the real processes.

(a) Car unplugged -> session served. The simulator charges one car per Wall Connector unit of a
    Fleet site and unplugs them one after another (scheduled scenario events, so the simulator's
    truth unplug time is exact); fleet-exporter and price-exporter poll it, Prometheus scrapes
    them, the session store evaluates. The benchmark polls `GET /api/sessions` every 100 ms and
    takes, per car, the time from the truth unplug (converted to wall-clock time) to the first
    answer listing that unit's session. Unplugs are staggered so each one meets the Fleet poll,
    the scrape and the evaluation at a different phase.

(b) Price spike scraped -> stop command. As tests/e2e/test_smart_charging_scenario.py: 32 days of
    prices backfilled with `python -m exporters.price_backfill`, the simulated ComEd clock running
    behind the wall clock and jumped to just before each 5-minute mark, the session store in live
    mode (`control_enabled`). Spike and cheap intervals alternate, so each repetition is: spike
    published -> stop; cheap price published -> start; the car charges again. Latency runs from the
    timestamp of Prometheus's first scrape showing the spike price to the stop's entry in the action
    log (`t`, taken when that evaluation starts), and to the simulator receiving `stop_charging`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from benchmarks.report import pct, table
from suite.processes import ManagedProcess, wait_until
from testkit.backfill import price_backfill
from testkit.http import get_json
from testkit.ports import free_port
from testkit.prometheus import RunningPrometheus
from testkit.simulator import Simulator
from testkit.stack import PATIENT, Stack

PART = "1457768-02-G"
POLL_S = 0.1            # how often the benchmark asks GET /api/sessions


@dataclass(frozen=True)
class UnplugConfig:
    name: str
    fleet_s: float        # energy_site.live_status_interval (FLEET_LIVE_STATUS_INTERVAL)
    scrape_s: float       # Prometheus scrape_interval
    evaluation_s: float   # sessions.evaluation_interval
    cars: int
    charge_s: int         # plug-in to the first unplug
    stagger_s: int        # between unplugs

    @property
    def settings(self) -> str:
        return f"Fleet poll {self.fleet_s:g} s, scrape {self.scrape_s:g} s, evaluation {self.evaluation_s:g} s"


@dataclass(frozen=True)
class Settings:
    unplug: tuple[UnplugConfig, ...]
    spike: tuple[tuple[float, int], ...]    # (smart-charging evaluation interval, repetitions)

    @classmethod
    def full(cls) -> "Settings":
        return cls((UnplugConfig("defaults", 30, 15, 15, cars=6, charge_s=80, stagger_s=7),
                    UnplugConfig("fast", 1, 1, 1, cars=6, charge_s=20, stagger_s=3)),
                   ((2.0, 5), (10.0, 5)))

    @classmethod
    def quick(cls) -> "Settings":
        return cls((UnplugConfig("fast", 1, 1, 1, cars=2, charge_s=20, stagger_s=3),), ((2.0, 2), (10.0, 1)))


@dataclass
class UnplugResult:
    config: UnplugConfig
    latencies_s: list[float]                  # per car, in unplug order
    missing: int = 0

    def row(self) -> list[str]:
        values = self.latencies_s
        return [self.config.name, self.config.settings, str(len(values)) + (f" ({self.missing} never served)"
                                                                              if self.missing else ""),
                f"{pct(values, 50):.1f}", f"{max(values):.1f}" if values else "n/a",
                f"{min(values):.1f}" if values else "n/a", ", ".join(f"{v:.1f}" for v in values)]


@dataclass
class SpikeResult:
    evaluation_s: float
    to_log_s: list[float] = field(default_factory=list)       # first scrape of the spike -> stop in the action log
    to_command_s: list[float] = field(default_factory=list)   # ... -> the simulator got stop_charging
    resume_s: list[float] = field(default_factory=list)       # first scrape of the cheap price -> start in the log

    def row(self) -> list[str]:
        return [f"{self.evaluation_s:g} s", str(len(self.to_log_s)),
                f"{pct(self.to_log_s, 50):.2f} / {max(self.to_log_s):.2f}",
                f"{pct(self.to_command_s, 50):.2f} / {max(self.to_command_s):.2f}",
                f"{pct(self.resume_s, 50):.2f} / {max(self.resume_s):.2f}" if self.resume_s else "n/a",
                ", ".join(f"{v:.2f}" for v in self.to_log_s)]


@dataclass
class LatencyResult:
    unplug: list[UnplugResult]
    spike: list[SpikeResult]
    spike_behind_s: float = 0.0

    def unplug_table(self) -> str:
        return table(["configuration", "settings", "sessions", "p50 (s)", "max (s)", "min (s)", "each (s)"],
                     [r.row() for r in self.unplug])

    def spike_table(self) -> str:
        return table(["smart-charging evaluation", "spikes", "scrape -> stop in action log p50 / max (s)",
                      "scrape -> simulator got stop_charging p50 / max (s)",
                      "cheap price scrape -> start in log p50 / max (s)", "each, to the log (s)"],
                     [r.row() for r in self.spike])


def _vin(i: int) -> str:
    return f"5YJ3E1EA7KF1{i:05d}"


def _serial(i: int) -> str:
    return f"PGT{i + 1:011d}"


# --- (a) car unplugged -> session served --------------------------------------------------------

def unplug_scenario(config: UnplugConfig) -> dict[str, Any]:
    plug_at = 2
    return {
        "start": "now", "seed": 5,
        "site": {"energy_site_id": 1689500000123400, "site_name": "Bench"},
        "chargers": [{"name": f"unit{i + 1}", "serial": _serial(i), "part_number": PART, "role": "standalone"}
                     for i in range(config.cars)],
        "vehicles": [{"vin": _vin(i), "name": f"car{i + 1}", "display_name": f"Car {i + 1}", "battery_kwh": 75,
                      "soc": 30, "charge_limit": 90, "max_power_kw": 7.7} for i in range(config.cars)],
        "events": [{"at": plug_at, "vehicle": f"car{i + 1}", "plug_in": f"unit{i + 1}"} for i in range(config.cars)]
                  + [{"at": plug_at + config.charge_s + i * config.stagger_s, "vehicle": f"car{i + 1}", "unplug": True}
                     for i in range(config.cars)],
        "telemetry": {"delay": "6h"},   # no Fleet charge history during the run: only live sessions
    }


def run_unplug(config: UnplugConfig, log: Callable[[str], None]) -> UnplugResult:
    stack = Stack(name=f"bench-unplug-{config.name}", patience=PATIENT, log=log)
    ok = False
    try:
        sim = stack.simulator(unplug_scenario(config))
        names = ",".join(f"{PART}--{_serial(i)}:unit{i + 1}" for i in range(config.cars))
        tessie = {"TESSIE_ACCESS_TOKEN": sim.token, "TESSIE_BASE_URL": sim.url, "WALL_CONNECTOR_NAMES": names}
        fleet = stack.component("fleet-exporter", "exporters.fleet",
                                env={**tessie, "FLEET_LIVE_STATUS_INTERVAL": f"{config.fleet_s:g}"})
        price = stack.component("price-exporter", "exporters.price", env={"COMED_BASE_URL": sim.url})
        prometheus = stack.prometheus({"fleet": [fleet.address], "price": [price.address]},
                                      scrape_interval=config.scrape_s)
        store = stack.component("session-store", "session_store", env={
            **tessie, "FLEET_LIVE_STATUS_INTERVAL": f"{config.fleet_s:g}"}, config={
            "sessions": {"evaluation_interval": config.evaluation_s, "min_duration": 10, "min_energy_kwh": 0.01,
                         "catch_up": "10m", "database": str(stack.workdir / "sessions.db")},
            "prometheus": {"url": prometheus.url, "scrape_interval": config.scrape_s}}).url
        offset = sim.offset()
        clock = sim.clock()
        last_unplug = clock["origin"] + 2 + config.charge_s + (config.cars - 1) * config.stagger_s
        deadline = last_unplug + offset + 2 * (config.fleet_s + config.scrape_s + config.evaluation_s) + 60
        log(f"  {config.name}: {config.settings}; {config.cars} cars unplug {config.stagger_s} s apart from "
            f"{config.charge_s + 2} s after the simulator started")
        served: dict[str, float] = {}
        while len(served) < config.cars and time.time() < deadline:
            try:
                page = get_json(f"{store}/api/sessions?limit=100", timeout=10)
            except OSError:
                time.sleep(POLL_S)
                continue
            seen = time.time()
            for session in page["sessions"]:
                if session["source"] == "live_status" and session["unit"] not in served:
                    served[session["unit"]] = seen
            time.sleep(POLL_S)
        truth = {s["charger"]: s for s in sim.truth()["sessions"]}
        latencies = []
        for i in range(config.cars):
            unit = f"unit{i + 1}"
            unplug = truth[unit]["unplug"]
            if unit in served and unplug is not None:
                latencies.append(served[unit] - (unplug + offset))
        result = UnplugResult(config, latencies, config.cars - len(latencies))
        log(f"  unplug -> served: {', '.join(f'{v:.1f}' for v in latencies)} s"
            + (f"; {result.missing} never served" if result.missing else ""))
        ok = result.missing == 0
        return result
    finally:
        stack.close(ok)


# --- (b) price spike scraped -> stop command --------------------------------------------------------

SPIKE, LOW = 50.0, 1.0          # cents per kWh
LEAD_S = 3                      # jump to this long before a 5-minute mark; the price is published at the mark
MIN_INTERVAL_S = 5              # smart_charging.min_interval (default 600 s) so repetitions follow each other


def spike_scenario(origin: int, first_mark: int, repetitions: int) -> dict[str, Any]:
    """A cheap stretch before `first_mark`; then per repetition a spike interval ending at the mark and a
    cheap one ending 300 s later; marks 600 s apart."""
    prices = [{"from": first_mark - 1800 - origin, "to": first_mark - 300 - origin, "price": LOW}]
    for k in range(repetitions):
        mark = first_mark + 600 * k
        prices += [{"from": mark - 300 - origin, "to": mark - origin, "price": SPIKE},
                   {"from": mark - origin, "to": mark + 300 - origin, "price": LOW}]
    return {
        "start": datetime.fromtimestamp(origin, timezone.utc).isoformat(), "seed": 42,
        "site": {"energy_site_id": 1689500000123499, "site_name": "Home"},
        "chargers": [{"name": "garage", "serial": _serial(41), "part_number": PART, "role": "standalone"}],
        "vehicles": [{"vin": _vin(42), "name": "grey", "display_name": "Grey", "battery_kwh": 100, "soc": 20,
                      "charge_limit": 95, "max_power_kw": 11.5, "ramp": 0, "taper_pct": 0}],
        "prices": {"seed": 8, "history_days": 33, "spikes": prices},
        "events": [{"at": first_mark - 900 - origin, "vehicle": "grey", "plug_in": "garage"}],
        "telemetry": {"delay": "6h"},
    }


class SpikeRun:
    """The running pieces of (b), and the session store, restarted per evaluation interval on one database."""

    def __init__(self, stack: Stack, sim: Simulator, prometheus: RunningPrometheus, store_config: dict[str, Any],
                 env: dict[str, str]) -> None:
        self.stack, self.sim, self.prometheus = stack, sim, prometheus
        self.store_config, self.env = store_config, env
        self.process: ManagedProcess | None = None
        self.api = ""

    def start_store(self, evaluation_s: float) -> None:
        if self.process is not None:
            self.stack.stop(self.process)
        config = {**self.store_config, "smart_charging": {**self.store_config["smart_charging"],
                                                          "evaluation_interval": evaluation_s}}
        store = self.stack.component("session-store", "session_store", env=self.env, config=config)
        self.process, self.api = store.process, store.url

    def smart(self) -> dict[str, Any]:
        return get_json(f"{self.api}/api/smart-charging")

    def vehicle(self) -> dict[str, Any]:
        return next((v for v in self.smart()["vehicles"] if v["vin"] == _vin(42)), {})

    def actions(self) -> list[dict[str, Any]]:
        return get_json(f"{self.api}/api/smart-charging/actions?vin={_vin(42)}&limit=1000")["actions"][::-1]

    def first_scraped(self, price: float, since: float) -> float:
        samples = self.prometheus.query(f"electricity_price_cents_per_kwh[{int(time.time() - since) + 5}s]")
        return min(float(t) for t, v in samples[0]["values"] if float(t) >= since and float(v) == price)

    def action_after(self, kind: str, since: float) -> dict[str, Any] | None:
        return next((a for a in self.actions() if a["action"] == kind and a["t"] >= since), None)

    def repetition(self, mark: int, evaluation_s: float, result: SpikeResult) -> str:
        """Spike published at `mark` -> stop; cheap price at `mark` + 300 -> start; the car charges again."""
        since = time.time()
        self.sim.jump_to(mark - LEAD_S)
        wait_until(lambda: self.action_after("stop", since) is not None, 3 * evaluation_s + 60, 0.1, "the stop")
        stop = self.action_after("stop", since)
        assert stop is not None
        if stop["outcome"] != "sent" or stop["price"] != SPIKE:
            raise RuntimeError(f"unexpected stop: {stop}")
        scraped = self.first_scraped(SPIKE, since)
        offset = self.sim.offset()
        command = next(c for c in reversed(self.sim.truth()["commands"]) if c["command"] == "stop_charging")
        result.to_log_s.append(stop["t"] - scraped)
        result.to_command_s.append(command["t"] + offset - scraped)
        wait_until(lambda: self.vehicle().get("charging") is False, 60, 0.1, "the unit's power to fall")
        # The cheap price is published only once min_interval has passed since the stop, so the start
        # waits for an evaluation, not for min_interval.
        time.sleep(max(0.0, stop["t"] + MIN_INTERVAL_S - time.time()))
        since = time.time()
        self.sim.jump_to(mark + 300 - LEAD_S)
        wait_until(lambda: self.action_after("start", since) is not None, 3 * evaluation_s + 60, 0.1, "the start")
        start = self.action_after("start", since)
        assert start is not None
        result.resume_s.append(start["t"] - self.first_scraped(LOW, since))
        wait_until(lambda: self.vehicle().get("charging") is True, 60, 0.1, "the car charging again")
        return (f"spike scraped -> stop in the action log {result.to_log_s[-1]:.2f} s, -> stop_charging at the "
                f"simulator {result.to_command_s[-1]:.2f} s; cheap price scraped -> start {result.resume_s[-1]:.2f} s")


def run_spike(settings: Settings, log: Callable[[str], None]) -> tuple[list[SpikeResult], float]:
    repetitions = sum(count for _, count in settings.spike)
    behind = 600 * repetitions + 2400        # every repetition moves the simulated clock 600 s ahead
    stack = Stack(name="bench-spike", patience=PATIENT, log=log)
    ok = False
    try:
        origin = int(time.time()) - behind
        first_mark = math.ceil((origin + 2100) / 300) * 300
        sim = stack.simulator(spike_scenario(origin, first_mark, repetitions))
        price_port = free_port()
        comed = {"COMED_BASE_URL": sim.url, "COMED_POLL_INTERVAL": "1"}
        started = time.monotonic()
        price_backfill(stack.workdir / "tsdb", sim.url, days=32, instance=f"127.0.0.1:{price_port}",
                       until=sim.now() - 240, timeout=300)
        log(f"  32 days of prices backfilled in {time.monotonic() - started:.1f} s; the simulated clock runs "
            f"{behind / 60:.0f} min behind the wall clock")
        names = {"WALL_CONNECTOR_NAMES": f"{PART}--{_serial(41)}:garage"}
        tessie = {"TESSIE_ACCESS_TOKEN": sim.token, "TESSIE_BASE_URL": sim.url, "FLEET_LIVE_STATUS_INTERVAL": "1"}
        fleet = stack.component("fleet-exporter", "exporters.fleet", env={**tessie, **names})
        # on the port the backfill put in its samples' instance label
        stack.component("price-exporter", "exporters.price", env=comed, port=price_port)
        prometheus = stack.prometheus({"fleet": [fleet.address], "price": [f"127.0.0.1:{price_port}"]},
                                      scrape_interval=1, data_dir=stack.workdir / "tsdb")
        # Latency is the pipeline's (poll, render, scrape, evaluation, command), the same for both
        # signals: the price exporter renders the 5-minute price and the projected hour price together.
        # The 5-minute signal lets a cheap price resume within minutes, so repetitions follow each other
        # (the billed signal holds a pause to the end of the spike's hour: tests/e2e/test_smart_charging_scenario.py).
        store_config = {
            "sessions": {"database": str(stack.workdir / "sessions.db"), "evaluation_interval": 1},
            "prometheus": {"url": prometheus.url, "scrape_interval": 1},
            "smart_charging": {"control_enabled": True, "min_interval": MIN_INTERVAL_S, "signal": "five_minute",
                               "max_price_age": f"{behind + 1800}s"}}
        run = SpikeRun(stack, sim, prometheus, store_config,
                       {**tessie, **names, "FLEET_CHARGE_HISTORY_INTERVAL": "3600"})
        results = []
        mark = first_mark
        for index, (evaluation_s, count) in enumerate(settings.spike):
            run.start_store(evaluation_s)
            wait_until(lambda: (run.smart()["market"] or {}).get("stop_threshold") is not None, 60, 0.1, "thresholds")
            market = run.smart()["market"]
            if not LOW < market["resume_threshold"] < market["stop_threshold"] < SPIKE:
                raise RuntimeError(f"thresholds do not bracket the test prices: {market}")
            if index == 0:
                run.sim.jump_to(first_mark - 905)          # the car plugs in 5 s later, at a cheap price
            wait_until(lambda: run.vehicle().get("charging") is True, 60, 0.1, "the car charging")
            result = SpikeResult(evaluation_s)
            for _ in range(count):
                line = run.repetition(mark, evaluation_s, result)
                mark += 600
                log(f"  evaluation every {evaluation_s:g} s: {line}")
            results.append(result)
        ok = True
        return results, behind
    finally:
        stack.close(ok)


def run(settings: Settings, log: Callable[[str], None]) -> LatencyResult:
    unplug = []
    for config in settings.unplug:
        unplug.append(run_unplug(config, log))
    spike, behind = run_spike(settings, log)
    return LatencyResult(unplug, spike, behind)


# --- report -------------------------------------------------------------------------------------------

def markdown(result: LatencyResult) -> list[str]:
    out = ["## 4. End-to-end latency", "",
           "### Car unplugged -> session served by `GET /api/sessions`", "",
           "The real simulator, fleet-exporter, price-exporter, Prometheus and session store. One car per Wall "
           "Connector unit of a Fleet site (7.7 kW) charges, then the cars are unplugged one after another by "
           "scheduled scenario events (truth unplug time exact to the second), each unplug meeting the Fleet poll, "
           "the scrape and the evaluation at a different phase. The benchmark asks `GET /api/sessions` every "
           f"{POLL_S * 1000:g} ms; latency = the first answer listing the unit's session - the simulator's truth "
           "unplug time (in wall-clock time). `defaults` is the shipped configuration (Fleet live_status every 30 s, "
           "Prometheus scrape 15 s, session evaluation 15 s); `fast` is 1 s everywhere. Only `sessions.min_duration` "
           "(10 s) and `min_energy_kwh` (0.01) are lowered so the short charges count; they do not change when a "
           "session is served.", "", result.unplug_table(), ""]
    for r in result.unplug:
        bound = r.config.fleet_s + r.config.scrape_s + r.config.evaluation_s
        if not r.latencies_s:
            out.append(f"- {r.config.name}: no session served")
            continue
        out.append(f"- {r.config.name}: worst case by construction is about one Fleet poll + one scrape + one "
                   f"evaluation = {bound:g} s plus the work; measured max {max(r.latencies_s):.1f} s "
                   f"({max(r.latencies_s) / bound:.0%} of it).")
    if result.spike:
        out += ["", "### Price spike scraped -> stop command sent", "",
                "As `tests/e2e/test_smart_charging_scenario.py`: 32 days of prices backfilled by "
                "`exporters.price_backfill`, fleet- and price-exporter polling every 1 s, Prometheus scraping every "
                "1 s, the session store in live mode. The simulated ComEd clock runs "
                f"{result.spike_behind_s / 60:.0f} min behind the wall clock and is jumped to {LEAD_S} s before each "
                "5-minute mark, where a 50 ¢ spike is published; the next interval is 1 ¢. Each repetition: spike -> "
                "stop, cheap price -> start, the car charges again. `smart_charging.min_interval` is 5 s (default "
                "600 s) so repetitions can follow each other, and `max_price_age` covers the lag. Latency = the "
                "stop's `t` in `/api/smart-charging/actions` (taken when the evaluation starts) - the timestamp of "
                "Prometheus's first sample of `electricity_price_cents_per_kwh` at 50; \"simulator got "
                "stop_charging\" uses the simulator's truth command log instead. The default evaluation interval is "
                "60 s; 10 s is measured instead, because at 60 s each repetition waits up to two minutes (stop and "
                "resume). Expect up to one evaluation interval plus the evaluation's queries at any interval.", "",
                result.spike_table(), ""]
    return out
