"""Charging reports: a year of 2,000 sessions (three cars on two Wall Connectors, some paused by smart charging
or the planner) and a year of half-hour meter reads in a real SQLite store, read, built, charted and
rendered to HTML and PDF. Target: the whole year's report in at most 5 s on this 2-core machine.

`fill_storage` writes the data; the report tests (tests/integration/test_report_pdf.py) fill a month with
it too. Prices are seeded 5-minute prices with an evening peak and rare spikes; every session is billed by
the suite's own tariff (billing/tariff.py), so the sessions look like the session store's own.
"""
from __future__ import annotations

import math
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from benchmarks.report import table
from billing.tariff import Tariff, bill, billed_prices
from session_store.meter_records import Bill, MeterRead
from session_store.records import ActionRecord, PlanOutcome, Session
from session_store.storage import Storage

ZONE = ZoneInfo("America/Chicago")
TARIFF = Tariff(ZONE, delivery_per_kwh=0.075, monthly_fixed=19.56, capacity_per_month=9.84,
                reference_supply_per_kwh=0.10028)
# the same tariff as configuration, for the CLI's --config
TARIFF_YAML = {"delivery_cents_per_kwh": 7.5, "monthly_fixed_dollars": 19.56, "capacity_dollars_per_month": 9.84,
               "reference_supply_cents_per_kwh": 10.028}
CARS = (("Model Y", "5YJYGDEE1MF000001", 11500.0, "garage"),
        ("Model 3", "5YJ3E1EA1PF000002", 7700.0, "driveway"),
        ("Cybertruck", "7G2CEHED1RA000003", 11500.0, "garage"))
STEP = 300.0
TARGET_S = 5.0


@dataclass
class Filled:
    """What was written: counts, and the billed hourly prices (as Prometheus would serve them)."""

    sessions: list[Session] = field(default_factory=list)
    actions: list[ActionRecord] = field(default_factory=list)
    outcomes: list[PlanOutcome] = field(default_factory=list)
    reads: int = 0
    bills: int = 0
    hourly: dict[float, float] = field(default_factory=dict)


def midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=ZONE).timestamp()


def five_minute_prices(start: float, end: float, rng: random.Random) -> dict[float, float]:
    """Cents per kWh per 5-minute interval end: cheap nights, a dearer afternoon and evening, rare spikes."""
    prices = {}
    t = start + STEP
    while t <= end:
        hour = datetime.fromtimestamp(t - STEP, ZONE).hour
        base = 2.2 + (1.2 if 7 <= hour < 14 else 0.0) + (3.5 if 14 <= hour < 20 else 0.0) + rng.gauss(0, 0.5)
        if rng.random() < 0.004:
            base += rng.uniform(20, 60)
        prices[t] = round(base, 1)
        t += STEP
    return prices


def charge(start: float, energy_wh: float, power_w: float) -> dict[float, float]:
    """{interval end: Wh} charging at `power_w` from `start` until `energy_wh` is in."""
    out, left, t = {}, energy_wh, start
    while left > 1e-6:
        end = math.floor(t / STEP) * STEP + STEP
        take = min(left, power_w * (end - t) / 3600.0)
        out[end] = take
        left -= take
        t = end
    return out


def make_session(unit: str, vehicle: str, vin: str, start: float, energy_wh: float, power_w: float,
                 prices: dict[float, float], tariff: Tariff = TARIFF) -> Session:
    intervals = charge(start, energy_wh, power_w)
    end = start + energy_wh / power_w * 3600.0
    billed = bill(intervals, prices, tariff)
    return Session(unit=unit, din=None, vin=vin, vehicle=vehicle, start=start, end=end, duration_s=end - start,
                   energy_wh=energy_wh, peak_w=power_w, average_w=energy_wh / (end - start) * 3600.0,
                   meter_energy_wh=None, supply_cost=billed.supply, supply_credit=billed.supply_credit,
                   delivery_cost=billed.delivery, full_cost=billed.full,
                   supply_price_cents=billed.per_kwh_cents(billed.supply), cost_final=billed.final,
                   intervals=intervals, gap_s=0.0, source="live_status", reconciliation="pending",
                   reference_cost=billed.reference, bill_lines=billed.lines)


def fill_storage(storage: Storage, first_day: date, days: int, sessions: int, seed: int = 7,
                 paused: float = 0.15, meter: bool = True, now: float | None = None) -> Filled:
    """`sessions` sessions spread over `days` from `first_day` (three cars, two units, evenings mostly); a
    share `paused` of them paused once: by smart charging mid-charge, or by the planner on arrival (split
    into two sessions, with the stop and start in the action log). With `meter`, half-hour reads of the
    home (base load plus the cars) and a bill per month."""
    rng = random.Random(seed)
    start, end = midnight(first_day), midnight(first_day + timedelta(days=days))
    prices = five_minute_prices(start - 86400, end + 2 * 86400, rng)
    filled = Filled(hourly=dict(billed_prices(prices, TARIFF)))
    made: list[Session] = []
    used: set[tuple[str, float]] = set()
    mid, held = round(paused * 20), round(paused * 40)          # of every 40 plug-ins: paused mid-charge, held

    def kind(i: int) -> str:
        return "mid" if i % 40 < mid else "held" if i % 40 < held else "plain"

    plug_ins = 0
    while plug_ins + sum(kind(i) == "mid" for i in range(plug_ins)) < sessions:   # a mid-charge pause: 2 sessions
        plug_ins += 1
    for i in range(plug_ins):
        vehicle, vin, power, unit = CARS[i % len(CARS)]
        if i % len(CARS) == 2 and i % 2:
            unit = "driveway"
        day = first_day + timedelta(days=i * days // plug_ins)
        hour = rng.choice((17, 18, 19, 20, 21, 22)) if rng.random() < 0.8 else rng.choice((9, 11, 13, 15))
        plug = midnight(day) + hour * 3600 + rng.randrange(0, 3600, 15) + (i % len(CARS)) * 17
        while (unit, plug) in used:    # sessions are unique on (unit, start)
            plug += 1
        used.add((unit, plug))
        energy = rng.uniform(4000, 32000)
        if kind(i) == "mid":           # smart charging stops it mid-charge, resumes in a cheaper hour
            first = rng.uniform(0.2, 0.5) * energy
            one = make_session(unit, vehicle, vin, plug, first, power, prices)
            resume = one.end + rng.uniform(1.5, 4) * 3600
            two = make_session(unit, vehicle, vin, resume, energy - first, power, prices)
            made += [one, two]
            filled.actions += [ActionRecord(one.end - 10, vin, vehicle, "stop", "price_above_stop_threshold", "sent",
                                            12.0, 9.0, 6.0),
                               ActionRecord(resume - 20, vin, vehicle, "start", "price_below_resume_threshold", "sent",
                                            4.0, 9.0, 6.0)]
        elif kind(i) == "held":        # the planner holds it on arrival, charges overnight
            resume = midnight(day + timedelta(days=1)) + rng.uniform(0, 3) * 3600    # the night's cheap hours
            one = make_session(unit, vehicle, vin, resume, energy, power, prices)
            made.append(one)
            filled.actions += [ActionRecord(plug + 30, vin, vehicle, "stop", "plan_wait", "sent", None, None, None),
                               ActionRecord(resume - 20, vin, vehicle, "start", "plan_charge", "sent", None, None, None)]
            filled.outcomes.append(PlanOutcome(vin, one.end + 3600, 80.0, one.full_cost * 1.03, 2, 80.0, True,
                                               one.energy_wh, one.full_cost, one.end + 3600))
        else:
            made.append(make_session(unit, vehicle, vin, plug, energy, power, prices))
        if rng.random() < 0.05:        # a dry-run decision now and then: recorded, nothing paused
            filled.actions.append(ActionRecord(plug + 600, vin, vehicle, "stop_simulated", "price_above_stop_threshold",
                                               "simulated", 15.0, 9.0, 6.0))
    made = sorted(made, key=lambda s: s.start)[:sessions]
    filled.sessions = made
    storage.save_step({}, made, [], end)
    storage.save_smart_charging({}, filled.actions)
    storage.save_plans([], filled.outcomes)
    if meter:
        _meter(storage, filled, prices, start, end, rng, now if now is not None else end + 2 * 86400)
    return filled


def _meter(storage: Storage, filled: Filled, prices: dict[float, float], start: float, end: float,
           rng: random.Random, now: float) -> None:
    ev: dict[float, float] = {}
    for session in filled.sessions:
        for t, wh in session.intervals.items():
            ev[t] = ev.get(t, 0.0) + wh
    reads = []
    t = start
    while t < end:
        hour_end = TARIFF.period_end(t + STEP)
        cents = filled.hourly.get(hour_end, 4.0) + TARIFF.delivery_per_kwh * 100
        car = sum(ev.get(t + k * STEP, 0.0) for k in range(1, 7)) / 1000.0
        kwh = round(rng.uniform(0.12, 0.7) + car, 3)
        reads.append(MeterRead(t, t + 1800, kwh, round(kwh * cents / 100.0, 4)))
        t += 1800
    storage.upsert_meter_reads(reads, now)
    bills = []
    day = datetime.fromtimestamp(start, ZONE).date().replace(day=1)
    while midnight(day) < end:
        after = (day + timedelta(days=32)).replace(day=1)
        lo, hi = midnight(day), midnight(after)
        inside = [r for r in reads if lo <= r.start < hi]
        usage = sum(r.cost or 0.0 for r in inside)
        bills.append(Bill(lo, hi, (after + timedelta(days=4)).isoformat(), sum(r.kwh for r in inside),
                          round(usage + TARIFF.monthly_fixed + TARIFF.capacity_per_month, 2), round(usage, 2),
                          hi > now))
        day = after
    storage.upsert_bills(bills, now)
    filled.reads, filled.bills = len(reads), len(bills)


# --- the benchmark ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    sessions: int
    repeats: int

    @classmethod
    def full(cls) -> "Settings":
        return cls(sessions=2000, repeats=5)

    @classmethod
    def quick(cls) -> "Settings":
        return cls(sessions=2000, repeats=2)


@dataclass
class ReportResult:
    sessions: int
    reads: int
    pages: int
    pdf_bytes: int
    html_bytes: int
    stages: dict[str, list[float]]
    command_s: float


def run(settings: Settings, log: Callable[[str], None] = print) -> ReportResult:
    from reports.charts import render_charts
    from reports.data import load_report
    from reports.html import render_html
    from reports.pdf import render_pdf

    with tempfile.TemporaryDirectory(prefix="bench-reports-") as directory:
        path = Path(directory) / "store.sqlite3"
        storage = Storage(path, ZONE)
        made = time.perf_counter()
        filled = fill_storage(storage, date(2025, 1, 1), 365, settings.sessions)
        log(f"  filled {len(filled.sessions)} sessions and {filled.reads} half-hour reads in "
            f"{time.perf_counter() - made:.1f} s")
        stages: dict[str, list[float]] = {name: [] for name in ("read and build", "charts", "html", "pdf", "total")}
        pdf = html = b""
        for _ in range(settings.repeats):
            reader = storage.reader()
            clock = time.perf_counter()
            report = load_report(reader, TARIFF, "2025", ZONE, filled.hourly, as_of=midnight(date(2026, 1, 2)))
            marks = [time.perf_counter()]
            charts = render_charts(report)
            marks.append(time.perf_counter())
            html = render_html(report, charts).encode()
            marks.append(time.perf_counter())
            pdf = render_pdf(report, charts)
            marks.append(time.perf_counter())
            reader.close()
            for name, a, b in zip(stages, [clock, *marks], marks):
                stages[name].append(b - a)
            stages["total"].append(marks[-1] - clock)
            log(f"  year report: {stages['total'][-1]:.2f} s")
        config = Path(directory) / "config.yaml"
        import yaml
        config.write_text(yaml.safe_dump({"sessions": {"database": str(path)}, "general": {"timezone": ZONE.key},
                                          "prometheus": {"url": "http://127.0.0.1:9"}, "tariff": TARIFF_YAML}))
        clock = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "reports", "2025", "--pdf", str(Path(directory) / "y.pdf"),
                               "--html", str(Path(directory) / "y.html"), "--config", str(config)],
                              capture_output=True, text=True, timeout=120)
        command = time.perf_counter() - clock
        if done.returncode:
            raise RuntimeError(f"charging-report failed: {done.stderr}")
        storage.close()
    return ReportResult(len(filled.sessions), filled.reads, len(re.findall(rb"/Type /Page[^s]", pdf)),
                        len(pdf), len(html), stages, command)


def report(result: ReportResult) -> str:
    rows = [[name, f"{statistics.median(times):.3f} s", f"{max(times):.3f} s"] for name, times in result.stages.items()]
    total = max(result.stages["total"])
    lines = [f"A year (2025): {result.sessions:,} sessions, {result.reads:,} half-hour meter reads; PDF "
             f"{result.pdf_bytes / 1024:.0f} KiB, HTML {result.html_bytes / 1024:.0f} KiB; "
             f"{len(result.stages['total'])} runs in one process.", "",
             table(["stage", "median", "max"], rows), "",
             f"Year report, read to PDF: {total:.2f} s at worst against the {TARGET_S:g} s target: "
             f"{'met' if total <= TARGET_S else 'MISSED'}.",
             f"The command end to end (`python -m reports 2025 --pdf --html`, a new process: imports, Prometheus "
             f"unreachable at once): {result.command_s:.2f} s."]
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run(Settings.quick())))
