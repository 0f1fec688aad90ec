"""A simulated month of a home with two cars charging at night, seen both ways: our sessions (from 15-s
power samples, priced by our tariff, as the session store derives them) reconciled with the meter reads
charging-meter pulls through the real `opower` library from the simulator's portal, against the
simulator's own truth of the home's meter (`/sim/meter`: base load plus the true EV energy, billed by
the utility's rule, computed without the suite's code).

Shared by tests/integration/test_meter_month.py (EV share and EV cost within 1 % of the truth) and the
closing figures in docs/meter.md. The simulator runs in process on a ManualClock; nothing waits on time.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from billing.settings import tariff_for
from meter import credentials
from meter.client import interactive_login
from meter.reconcile import Reconciliation, ev_intervals, read_shares, reconcile
from meter.sync import MeterSync
from servicekit.config import Config, load
from session_store.costing import cost_fields, session_bill
from session_store.records import Session
from session_store.sessions import Completed, Params, UnitState, step
from session_store.storage import Storage
from simulator.app import SimulatorServer
from simulator.clock import ManualClock
from simulator.scenario import load_scenario
from upstreams.opower_route import session_for

CHICAGO = ZoneInfo("America/Chicago")
SCRAPE_S = 15
TARIFF = {"delivery_cents_per_kwh": 5.9, "monthly_fixed_dollars": 19.56, "capacity_dollars_per_month": 9.80,
          "reference_supply_cents_per_kwh": 10.028}
CARS = ({"vin": "5YJ3E1EA7KF000051", "name": "blue", "battery_kwh": 75, "soc": 30, "charge_limit": 90,
         "max_power_kw": 11.5},
        {"vin": "7SAYGDEE1PA000052", "name": "red", "battery_kwh": 60, "soc": 40, "charge_limit": 80,
         "max_power_kw": 7.7})
CHARGERS = ({"name": "garage", "serial": "PGT00000000051", "part_number": "1457768-02-G", "role": "standalone"},
            {"name": "driveway", "serial": "PGT00000000052", "part_number": "1457768-02-G", "role": "standalone"})


def scenario(first: date, days: int, seed: int = 5) -> dict[str, Any]:
    """Evenings from `first` on: each car plugs in between 17:00 and 23:00 most days and leaves between 06:30
    and 08:00, its battery drained by the day's driving (the simulator's `drive` event)."""
    rng = random.Random(seed)
    start = datetime.combine(first, datetime.min.time(), CHICAGO)
    events: list[dict[str, Any]] = []
    for day in range(days):
        for car, charger in zip(CARS, CHARGERS):
            if rng.random() < 0.2:
                continue
            plug = start + timedelta(days=day, hours=rng.uniform(17, 23))
            leave = start + timedelta(days=day + 1, hours=rng.uniform(6.5, 8))
            if leave - start >= timedelta(days=days):
                continue
            events.append({"at": f"{(plug - start).total_seconds():.0f}s", "vehicle": car["name"],
                           "drive": {"soc": round(rng.uniform(50, 70), 1)}})
            events.append({"at": f"{(plug - start).total_seconds() + 1:.0f}s", "vehicle": car["name"],
                           "plug_in": charger["name"]})
            events.append({"at": f"{(leave - start).total_seconds():.0f}s", "vehicle": car["name"], "unplug": True})
    return {"start": start.isoformat(), "seed": seed, "chargers": list(CHARGERS), "vehicles": list(CARS),
            "prices": {"seed": 23, "history_days": 1}, "events": sorted(events, key=lambda e: float(e["at"][:-1])),
            "tariff": TARIFF, "meter": {"history": "3d", "delay": "36h"}}


def config(database: Path, login: Path, base_url: str) -> Config:
    return load({"general": {"timezone": "America/Chicago"}, "tariff": TARIFF,
                 "sessions": {"database": str(database)},
                 "meter": {"credential_file": str(login), "base_url": base_url,
                           "prometheus_data_dir": str(database.parent / "no-tsdb"), "history_days": 45}}, {}, {})


@dataclass(frozen=True)
class MonthResult:
    month: str
    ours: Reconciliation
    truth_home_kwh: float
    truth_ev_kwh: float
    truth_ev_cost: float
    sessions: int
    reads: tuple            # the month's stored reads, to reconcile again (another tariff)
    completed: tuple        # (unit, Completed) as the session store derived them
    prices: dict            # the 5-minute prices (interval end -> cents)
    start: float
    end: float

    @property
    def truth_share(self) -> float:
        return self.truth_ev_kwh / self.truth_home_kwh

    @property
    def share_error(self) -> float:
        """Relative error of our EV share."""
        return (self.ours.ev_share or 0.0) / self.truth_share - 1

    @property
    def cost_error(self) -> float:
        """Relative error of our EV cost against the EV part of the utility's bill."""
        return self.ours.ev_cost_computed / self.truth_ev_cost - 1


def priced(completed, prices: dict[float, float], tariff, now: float) -> list[Session]:
    """Sessions as the session store records them: the tariff's bill of each one's intervals."""
    sessions = []
    for name, event in completed:
        fields = cost_fields(session_bill(event.intervals, prices, tariff, now))
        sessions.append(Session(unit=name, din=None, vin=event.vin, vehicle=None, start=event.start, end=event.end,
                                duration_s=event.duration_s, energy_wh=event.energy_wh, peak_w=event.peak_w,
                                average_w=event.energy_wh * 3600 / max(1.0, event.duration_s), meter_energy_wh=None,
                                **fields, intervals=event.intervals, gap_s=event.gap_s, source="local",
                                reconciliation="pending"))
    return sessions


def sessions_from_samples(server: SimulatorServer, clock: ManualClock, until: float
                          ) -> tuple[list[tuple[str, Completed]], dict[float, float]]:
    """Step the model in 15-s strides, keep each charger's power as Prometheus would, and derive and price
    sessions as the session store does (sessions.step, then the tariff's bill)."""
    model = server.model
    names = [c["name"] for c in CHARGERS]
    samples: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in names}
    while clock.now() < until:
        clock.advance(SCRAPE_S)
        model.sync()
        for name in names:
            samples[name][0].append(float(model.t))
            samples[name][1].append(model.current_power(name))
    prices = {float(end): model.prices.price(end)
              for end in range(int(model.origin // 3600 * 3600) - 3600, int(until) + 7200, 300)}
    completed = []
    for name in names:
        t, watts = samples[name]
        _, events = step(UnitState(), t, watts, Params())
        completed += [(name, event) for event in events if isinstance(event, Completed)]
    return completed, prices


async def run(tmp: Path, first: date = date(2026, 10, 1), days: int = 30) -> MonthResult:
    """The month of `first`: simulate it (and two more days, so its last reads are published), derive our
    sessions, log in and pull through the library, reconcile, and compare with the simulator's truth."""
    spec = load_scenario(scenario(first, days))
    clock = ManualClock(spec.start)
    server = SimulatorServer(spec, clock=clock)
    await server.start()
    try:
        cfg = config(tmp / "store.sqlite3", tmp / "login.json", server.url)
        tariff = tariff_for(cfg)
        storage = Storage(cfg.sessions.database, CHICAGO)
        month_end = spec.start + days * 86400   # (October has no clock change before the 31st's end)
        completed, prices = sessions_from_samples(server, clock, month_end + 2 * 86400)
        sessions = priced(completed, prices, tariff, clock.now())
        storage.save_step({}, sessions, [], clock.now())
        meter = spec.meter
        async with session_for(server.url) as http:
            async def ask(_: str) -> str:
                return meter.mfa_code

            async def choose(options: dict[str, str]) -> str:
                return next(iter(options))
            login_data = await interactive_login(http, "comed", meter.username, meter.password, ask, choose)
        credentials.save(cfg.meter.credential_file, credentials.Credential("comed", meter.username, login_data,
                                                                           clock.now()))
        sync = MeterSync(cfg, storage, tariff, _quiet(), clock=clock.now)
        await sync.pull_now()
        reads = storage.meter_reads(spec.start, month_end)
        shares = read_shares(reads, ev_intervals(sessions, tariff))
        ours = reconcile(first.strftime("%Y-%m"), spec.start, month_end, shares, tariff, 0.01)
        truth = await _truth(server, first, first + timedelta(days=days - 1))
        storage.close()
        return MonthResult(first.strftime("%Y-%m"), ours, sum(d["home_kwh"] for d in truth),
                           sum(d["ev_kwh"] for d in truth), sum(d["ev_cost"] for d in truth), len(sessions),
                           tuple(reads), tuple(completed), prices, spec.start, month_end)
    finally:
        await server.stop()


async def _truth(server: SimulatorServer, first: date, last: date) -> list[dict[str, Any]]:
    import aiohttp
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/sim/meter", params={"start": first.isoformat(),
                                                              "end": last.isoformat()}) as response:
            return (await response.json())["days"]


def _quiet():
    import logging
    log = logging.getLogger("meter-month")
    log.setLevel(logging.WARNING)
    return log
