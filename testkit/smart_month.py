"""A simulated month of evening plug-ins and morning departures with price spikes, and `simulate`, which
runs it under a smart-charging strategy ("none", "five_minute" or "billed") and prices every session
by the simulator's own bill.

The rules run the session store's own decision function (`smart_charging.decide`, `remember`)
against the simulator's car once a minute, sending stop and start commands to the model directly,
with thresholds from the last 30 days of prices as PromQL computes them. Nothing waits on a clock.
Shared by tests/unit/test_smart_savings.py (ten days: the billed rule saves the most) and benchmark
3b (benchmarks/smart_savings.py: the month, with perfect foresight beside it).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from billing.tariff import HOURLY_AVERAGE, Tariff, billed_prices, projected_price
from session_store.smart_charging import Market, Memory, Params, VehicleNow, decide, remember
from simulator.bill import bill_lines
from simulator.clock import ManualClock
from simulator.model import Model
from simulator.scenario import load_scenario

CHICAGO = ZoneInfo("America/Chicago")
STRATEGIES = ("none", "five_minute", "billed")
LOOKBACK_S = 30 * 86400
EVALUATION_S = 60
STOP, RESUME = 0.90, 0.75
CARS = (("5YJ3E1EA7KF000101", "blue", "garage", 75.0), ("7SAYGDEE1PA000102", "red", "driveway", 82.0))
POWER_KW = 11.5


@dataclass(frozen=True)
class Plan:
    """A month of plug-ins: (vin, charger, plug-in, unplug, state of charge at plug-in) and the scenario."""

    scenario: dict
    visits: list[tuple[str, str, int, int, float]]
    start: int
    end: int


def month(seed: int = 3, days: int = 30, first: str = "2026-06-01") -> Plan:
    """Cars plug in between 17:00 and 20:30 and leave between 06:30 and 08:00; they arrive with 20-70 %.
    Spikes (20-80 cents, 10-40 minutes): about one evening in three lands one in the charging hours,
    and about one a day falls at any time."""
    rng = random.Random(seed)
    start = datetime.fromisoformat(first).replace(tzinfo=CHICAGO)
    origin = int(start.timestamp())
    visits, events, spikes = [], [], []
    for day in range(days):
        evening = start + timedelta(days=day)
        for vin, name, charger, _ in CARS:
            plug = evening.replace(hour=17) + timedelta(minutes=rng.randrange(0, 210, 5))
            leave = evening.replace(hour=6, minute=30) + timedelta(days=1, minutes=rng.randrange(0, 90, 5))
            visits.append((vin, charger, int(plug.timestamp()), int(leave.timestamp()), rng.uniform(20, 70)))
            events += [{"at": int(plug.timestamp()) - origin, "vehicle": name, "plug_in": charger},
                       {"at": int(leave.timestamp()) - origin, "vehicle": name, "unplug": True}]
        moments = [evening.replace(hour=18) + timedelta(minutes=rng.randrange(0, 240, 5))] if rng.random() < 0.35 else []
        moments.append(evening + timedelta(minutes=rng.randrange(0, 1440, 5)))
        for moment in moments:
            at = int(moment.timestamp()) - origin
            spikes.append({"from": at, "to": at + rng.choice((600, 900, 1200, 1800, 2400)),
                           "price": round(rng.uniform(20, 80), 1)})
    scenario = {
        "start": start.isoformat(), "seed": seed,
        "chargers": [{"name": charger, "serial": f"PGT0000000010{i}", "part_number": "1457768-02-G",
                      "role": "standalone"} for i, (_, _, charger, _) in enumerate(CARS)],
        "vehicles": [{"vin": vin, "name": name, "battery_kwh": battery, "soc": 50, "charge_limit": 90,
                      "max_power_kw": POWER_KW, "sleep_after": "1d"} for vin, name, _, battery in CARS],
        "prices": {"seed": seed + 10, "history_days": 32, "spikes": spikes},
        "events": events,
    }
    return Plan(scenario, visits, origin, origin + (days + 1) * 86400)


class PriceBoard:
    """Every 5-minute price of the run and its lookback, and the billed hours they make: what
    Prometheus and the price exporter would hold at any moment."""

    def __init__(self, model: Model, start: int, end: int, tariff: Tariff) -> None:
        first = (start - LOOKBACK_S - 3600) // 300 * 300
        self.ends = np.arange(first + 300, end + 3600, 300)
        self.cents = np.array([model.prices.price(int(e)) for e in self.ends])
        self.tariff = tariff
        hours = billed_prices(dict(zip(self.ends.tolist(), self.cents.tolist())), tariff)
        self.hour_ends = np.array([h for h, _ in hours])
        self.hour_cents = np.array([c for _, c in hours])
        self._thresholds: dict[tuple[str, float], tuple[float, float, float]] = {}

    def latest(self, now: float) -> int:
        return int(np.searchsorted(self.ends, now, side="right")) - 1

    def market(self, now: float, signal: str) -> Market:
        i = self.latest(now)
        end, five = float(self.ends[i]), float(self.cents[i])
        recent = dict(zip(self.ends[i - 24:i + 1].tolist(), self.cents[i - 24:i + 1].tolist()))
        projected = projected_price(recent, self.tariff.period_end(end + 300), self.tariff).cents
        if signal == "billed":
            j = int(np.searchsorted(self.hour_ends, end, side="right"))
            stop, resume, days = self._quantiles(("billed", float(self.hour_ends[j - 1])),
                                                 self.hour_cents, self.hour_ends, j, 3600)
            price = projected
        else:
            stop, resume, days = self._quantiles(("five_minute", end), self.cents, self.ends, i + 1, 300)
            price = five
        return Market(price, now - end, stop, resume, days, signal=signal, five_minute_price=five,
                      hour_projected=projected)

    def _quantiles(self, key: tuple[str, float], values: np.ndarray, ends: np.ndarray, upto: int,
                   seconds: float) -> tuple[float, float, float]:
        """quantile_over_time(q, series[30d]) as of the newest sample (memoised per sample)."""
        if key not in self._thresholds:
            low = int(np.searchsorted(ends, ends[upto - 1] - LOOKBACK_S, side="right"))
            window = values[low:upto]
            self._thresholds = {key: (float(np.quantile(window, STOP)), float(np.quantile(window, RESUME)),
                                      window.size * seconds / 86400)}
        return self._thresholds[key]


@dataclass
class Run:
    strategy: str
    energy_kwh: float = 0.0
    supply: float = 0.0
    delivery: float = 0.0
    commands: int = 0
    sessions: list[tuple[int, int, float]] = field(default_factory=list)   # (plug-in, unplug, Wh)
    old_rule: list[tuple[float, float]] = field(default_factory=list)      # per session: (billed, per-interval) supply

    @property
    def old_rule_supply(self) -> float:
        """What the original costing (every 5-minute interval at its own price) would have reported."""
        return sum(interval for _, interval in self.old_rule)

    @property
    def cost(self) -> float:
        return self.supply + self.delivery


def simulate(plan: Plan, strategy: str, delivery_per_kwh: float = 0.075) -> Run:
    scenario = load_scenario(plan.scenario)
    clock = ManualClock(plan.start)
    model = Model(scenario, clock)
    tariff = Tariff(CHICAGO, HOURLY_AVERAGE, delivery_per_kwh=delivery_per_kwh)
    board = PriceBoard(model, plan.start, plan.end, tariff) if strategy != "none" else None
    arrivals = sorted((plug, vin, soc) for vin, _, plug, _, soc in plan.visits)
    memories = {vin: Memory() for vin, *_ in CARS}
    params = Params(dry_run=False)
    run = Run(strategy)
    now = plan.start
    while now < plan.end:
        while arrivals and arrivals[0][0] <= now + EVALUATION_S:   # the car arrives having driven
            plug, vin, soc = arrivals.pop(0)
            clock.advance(max(0, plug - 1 - clock.now()))
            model.sync()
            model.vehicles[vin].soc = soc
        clock.advance(now + EVALUATION_S - clock.now())
        now = int(clock.now())
        model.sync()
        if board is None:
            continue
        market = board.market(now, strategy)
        for vin, *_ in CARS:
            car = model.vehicles[vin]
            charging = car.charger is not None and model.current_power(car.charger) > 100
            vehicle = VehicleNow(vin, plugged=car.charger is not None, charging=charging, unit=car.charger)
            decision = decide(market, vehicle, memories[vin], params, now)
            ok = None
            if decision.action is not None:
                ok, _ = model.command(vin, f"{decision.kind}_charging", {})
                run.commands += 1
            memories[vin] = remember(memories[vin], decision, vehicle, ok, now, params)
    model.sync()
    settings = scenario.tariff.__class__(delivery_per_kwh=delivery_per_kwh)
    for session in model.truth.sessions:
        lines = bill_lines(session.by_interval, model.prices, settings, CHICAGO)
        run.energy_kwh += sum(line["energy_kwh"] for line in lines)
        run.supply += sum(line["supply"] for line in lines)
        run.delivery += sum(line["delivery"] for line in lines)
        run.sessions.append((session.plug_in, session.unplug or plan.end, session.energy_wh))
        run.old_rule.append((sum(line["supply"] for line in lines),
                             sum(ws / 3.6e8 * model.prices.price(end) for end, ws in session.by_interval.items())))
    return run
