"""A simulated quarter of evening plug-ins and morning departures, run under five charging strategies
and priced by the simulator's own bill (simulator/bill.py), for the departure planner's benchmark
(benchmarks/departure_planner.py) and its test (tests/unit/test_plan_quarter.py, a few nights).

Three cars: two share one circuit (a leader and a follower Wall Connector, 48 A between them), one
has its own. Each night a car arrives between 17:00 and 22:30 with 10-70 %, wants 80 or 90 % by a
departure between 05:30 and 08:30; about one night in ten it stays away. Prices have spikes that
the day-ahead forecast does not know (an afternoon or evening in three, and one day in four one at any hour),
and the forecast is off by the simulator's `forecast_error`.

Strategies, each executed against the simulator's car model once a minute (ramp, taper, power
sharing), sending start and stop commands to the model:
- plug_in: charge at plug-in;
- threshold: the billed-price threshold rule (`smart_charging.decide`, p90/p75 of billed hours);
- planner: `planner.plan` over `departure.market_hours` (the hour in progress at its projected
  price, then the day-ahead forecast as published so far, then the hour-of-week profile), replanned
  every 5 minutes, executed by `smart_charging.decide_planned`;
- greedy: the cheapest forecast hours before departure that cover the need at the car's full power,
  re-chosen every 5 minutes from the car's state of charge (what "cheapest slots" planners such as
  evcc's do with a day-ahead tariff): no realized prices for the hour in progress, no power sharing,
  no margin;
- optimum: perfect foresight: the realized billed hourly prices known at plug-in, the same energy by
  the same departures, power sharing respected; priced directly (it ignores ramp and taper, so it is
  a bound a car cannot quite reach).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Callable
from zoneinfo import ZoneInfo

import numpy as np

from billing.forecast import Forecast, build_forecast, hour_of_week_profile
from billing.tariff import HOURLY_AVERAGE, Tariff, hour_start
from session_store.departure import hour_in_progress, market_hours
from session_store.planner import Car, Hour, Request, plan
from session_store.smart_charging import Memory, Params, VehicleNow, decide, decide_planned, remember
from simulator.bill import bill_lines, hour_mean_price, local_hour_end
from simulator.clock import ManualClock
from simulator.model import Model
from simulator.scenario import load_scenario
from testkit.smart_month import LOOKBACK_S, PriceBoard

CHICAGO = ZoneInfo("America/Chicago")
STRATEGIES = ("plug_in", "threshold", "planner", "greedy", "optimum")
CARS = (("5YJ3E1EA7KF000201", "blue", "garage", 75.0), ("7SAYGDEE1PA000202", "red", "garage-2", 82.0),
        ("5YJYGDEE5MF000203", "white", "driveway", 60.0))
SHARED = ("garage", "garage-2")                 # leader and follower on one 48 A circuit
POWER_W = 11_520.0                              # 48 A x 240 V
EFFICIENCY = 0.9                                # what the planner assumes (the model's cars have 0.92)
STEP_S, REPLAN_S = 60, 300
MARGIN_S = 1800.0                               # the planner's default (planner.margin)
DELIVERY = 0.075


@dataclass(frozen=True)
class Visit:
    vin: str
    charger: str
    plug: int
    leave: int
    soc: float
    target: int


@dataclass(frozen=True)
class Quarter:
    scenario: dict
    visits: tuple[Visit, ...]
    start: int
    end: int


def quarter(seed: int = 5, days: int = 91, first: str = "2026-06-01", forecast_error: float = 0.10,
            spike_chances: tuple[float, float] = (0.35, 0.25)) -> Quarter:
    """`spike_chances`: the chance of a spike in an afternoon or evening (15:00-21:00) and of one at any
    hour, per day."""
    rng = random.Random(seed)
    start = datetime.fromisoformat(first).replace(tzinfo=CHICAGO)
    origin = int(start.timestamp())
    visits, events, spikes = [], [], []
    for day in range(days):
        evening = start + timedelta(days=day)
        for vin, name, charger, _ in CARS:
            if rng.random() < 0.1:
                continue
            plug = evening.replace(hour=17) + timedelta(minutes=rng.randrange(0, 330, 5))
            leave = evening.replace(hour=5, minute=30) + timedelta(days=1, minutes=rng.randrange(0, 180, 5))
            visit = Visit(vin, charger, int(plug.timestamp()), int(leave.timestamp()), round(rng.uniform(10, 70), 1),
                          rng.choice((80, 90)))
            visits.append(visit)
            events += [{"at": visit.plug - origin, "vehicle": name, "plug_in": charger},
                       {"at": visit.leave - origin, "vehicle": name, "unplug": True}]
        # Real-time spikes follow load: summer afternoons and evenings mostly, the odd one at any hour.
        afternoon = evening.replace(hour=15) + timedelta(minutes=rng.randrange(0, 360, 5))
        moments = [afternoon] if rng.random() < spike_chances[0] else []
        if rng.random() < spike_chances[1]:
            moments.append(evening + timedelta(minutes=rng.randrange(0, 1440, 5)))
        for moment in moments:
            at = int(moment.timestamp()) - origin
            spikes.append({"from": at, "to": at + rng.choice((600, 900, 1200, 1800, 2400)),
                           "price": round(rng.uniform(20, 80), 1)})
    chargers = [{"name": "garage", "serial": "PGT00000000201", "part_number": "1457768-02-G", "role": "leader",
                 "sharing_max_current_a": 48},
                {"name": "garage-2", "serial": "PGT00000000202", "part_number": "1457768-02-G", "role": "follower",
                 "leader": "garage"},
                {"name": "driveway", "serial": "PGT00000000203", "part_number": "1457768-02-G", "role": "standalone"}]
    scenario = {
        "start": start.isoformat(), "seed": seed, "chargers": chargers,
        "vehicles": [{"vin": vin, "name": name, "battery_kwh": battery, "soc": 50, "charge_limit": 80,
                      "max_power_kw": 11.52, "sleep_after": "1d"} for vin, name, _, battery in CARS],
        "prices": {"seed": seed + 10, "history_days": 32, "spikes": spikes, "forecast_error": forecast_error},
        "events": events,
    }
    return Quarter(scenario, tuple(sorted(visits, key=lambda v: v.plug)), origin, origin + (days + 1) * 86400)


@dataclass
class Outcome:
    strategy: str
    supply: float = 0.0
    delivery: float = 0.0
    energy_kwh: float = 0.0
    commands: int = 0
    met: dict[tuple[str, int], bool] = field(default_factory=dict)     # (vin, plug) -> target reached
    decision_s: list[float] = field(default_factory=list)
    warned: dict[tuple[str, int], float] = field(default_factory=dict)  # (vin, plug) -> first "target at risk"

    @property
    def cost(self) -> float:
        return self.supply + self.delivery


class Market:
    """What the suite would know at a moment: the 5-minute prices so far (the projection of the hour
    in progress), the day-ahead prices as published (tomorrow's from 16:30), the profile of the
    lookback's billed hours for the rest."""

    def __init__(self, model: Model, q: Quarter) -> None:
        self.tariff = Tariff(CHICAGO, HOURLY_AVERAGE, delivery_per_kwh=DELIVERY)
        self.board = PriceBoard(model, q.start, q.end, self.tariff)
        self.prices = model.prices
        self._profiles: dict[int, dict] = {}

    def hour_in_progress(self, now: float, predicted: float | None) -> float:
        """The hour in progress as the planner prices it: the exporter's projection, the published count
        and the latest price, with the forecast (departure.hour_in_progress)."""
        i = self.board.latest(now)
        end = float(self.board.ends[i])
        # The prices published in the hour the next interval belongs to (as the exporter's
        # electricity_price_hour_published_prices counts them): 0 when the latest one ended the hour before.
        published = round((end - hour_start(end, CHICAGO)) / 300)
        projected = self.board.market(now, "billed").hour_projected
        return hour_in_progress(projected, published, float(self.board.cents[i]), predicted)  # type: ignore[arg-type]

    def forecast(self, now: float, hours: int = 48) -> Forecast:
        local = datetime.fromtimestamp(now, CHICAGO)
        last_day = local.date() + timedelta(days=1 if (local.hour, local.minute) >= (16, 30) else 0)
        published_until = datetime(last_day.year, last_day.month, last_day.day, tzinfo=CHICAGO) + timedelta(days=1)
        first = hour_start(now, CHICAGO)
        day_ahead = {first + 3600 * i: self.prices.day_ahead_hour(int(first + 3600 * i)) for i in range(hours)
                     if first + 3600 * i < published_until.timestamp()}
        day = int(now // 86400)
        if day not in self._profiles:   # the lookback's billed hours, as the price exporter holds them
            ends, cents = self.board.hour_ends, self.board.hour_cents
            keep = (ends <= now) & (ends > now - LOOKBACK_S)
            self._profiles = {day: hour_of_week_profile(list(zip(ends[keep].tolist(), cents[keep].tolist())), CHICAGO)}
        return build_forecast(first, day_ahead, self._profiles[day], CHICAGO, hours)


def car_of(visit: Visit, battery: dict[str, float], soc: float, efficiency: float) -> Car:
    return Car(visit.vin, soc, visit.target, visit.leave, battery[visit.vin], POWER_W, efficiency,
               "shared" if visit.charger in SHARED else visit.charger)


def simulate(q: Quarter, strategy: str, clock_s: Callable[[], float] | None = None) -> Outcome:
    """Run the quarter under one strategy and price every session with the simulator's bill."""
    import time
    clock_s = clock_s or time.perf_counter
    scenario = load_scenario(q.scenario)
    clock = ManualClock(q.start)
    model = Model(scenario, clock)
    market = Market(model, q)
    battery = {vin: kwh for vin, _, _, kwh in CARS}
    outcome = Outcome(strategy)
    if strategy == "optimum":
        return optimum(q, model, market, battery, outcome)
    arrivals = list(q.visits)
    present: dict[str, Visit] = {}
    memories = {vin: Memory() for vin, *_ in CARS}
    params = Params(dry_run=False, min_interval_s=300.0)
    verdicts: dict[str, tuple[bool, str]] = {}
    learned: dict[str, float] = {}     # vin -> efficiency learned from its last session, as the suite learns it
    schedules: dict[str, set[float]] = {}
    last_plan = -REPLAN_S
    now = q.start
    while now < q.end:
        arrived = False
        while arrivals and arrivals[0].plug <= now + STEP_S:
            visit = arrivals.pop(0)
            clock.advance(max(0, visit.plug - 1 - clock.now()))
            model.sync()
            car = model.vehicles[visit.vin]
            car.soc, car.charge_limit = visit.soc, visit.target
            present[visit.vin] = visit
            arrived = True
        clock.advance(now + STEP_S - clock.now())
        now = int(clock.now())
        model.sync()
        for vin, visit in list(present.items()):
            if now >= visit.leave:
                outcome.met[(vin, visit.plug)] = model.vehicles[vin].soc >= visit.target - 0.5
                learn(learned, model, visit, battery)
                del present[vin]
                schedules.pop(vin, None)
        if strategy == "plug_in" or not present:
            continue
        if strategy == "planner" and (arrived or now - last_plan >= REPLAN_S):
            started = clock_s()
            verdicts = planner_verdicts(now, present, model, market, battery, learned)
            outcome.decision_s.append(clock_s() - started)
            for vin, (_, reason) in verdicts.items():
                if reason.endswith("at_risk"):
                    outcome.warned.setdefault((vin, present[vin].plug), now)
            verdicts = {vin: (charge, reason.removesuffix("_at_risk")) for vin, (charge, reason) in verdicts.items()}
            last_plan = now
        if strategy == "greedy" and (arrived or now - last_plan >= REPLAN_S):
            schedules = {vin: greedy_hours(now, visit, model.vehicles[vin].soc, market, battery)
                         for vin, visit in present.items()}
            last_plan = now
        threshold = market.board.market(now, "billed") if strategy == "threshold" else None
        for vin, visit in present.items():
            car = model.vehicles[vin]
            charging = model.current_power(visit.charger) > 100 and car.charger == visit.charger
            vehicle = VehicleNow(vin, plugged=True, charging=charging, unit=visit.charger)
            if threshold is not None:
                decision = decide(threshold, vehicle, memories[vin], params, now)
            elif strategy == "greedy":
                charge = hour_start(now, CHICAGO) in schedules[vin]
                decision = decide_planned(charge, "plan_charge" if charge else "plan_wait", vehicle, memories[vin],
                                          params, now)
            else:
                charge, reason = verdicts.get(vin, (True, "fail_safe_no_plan"))
                decision = decide_planned(charge, reason, vehicle, memories[vin], params, now)
            ok = None
            if decision.action is not None:
                ok, _ = model.command(vin, f"{decision.kind}_charging", {})
                outcome.commands += 1
            memories[vin] = remember(memories[vin], decision, vehicle, ok, now, params)
        for vin in set(memories) - set(present):
            memories[vin] = Memory()
    model.sync()
    return priced(model, outcome)


def learn(learned: dict[str, float], model: Model, visit: Visit, battery: dict[str, float]) -> None:
    """The car's energy added (its state of charge gained) over the wall energy of the visit."""
    wall_wh = sum(s.energy_ws for s in model.truth.sessions if s.vin == visit.vin and s.plug_in >= visit.plug) / 3600
    gained_wh = (model.vehicles[visit.vin].soc - visit.soc) / 100 * battery[visit.vin] * 1000
    if wall_wh >= 2000:
        learned[visit.vin] = gained_wh / wall_wh


def planner_verdicts(now: float, present: dict[str, Visit], model: Model, market: Market,
                     battery: dict[str, float], learned: dict[str, float]) -> dict[str, tuple[bool, str]]:
    cars = tuple(replace(car_of(v, battery, model.vehicles[v.vin].soc, learned.get(v.vin, EFFICIENCY)),
                         charging=model.current_power(v.charger) > 100) for v in present.values())
    forecast = market.forecast(now)
    hours = market_hours(now, max(c.departure for c in cars), market.tariff, forecast,
                         market.hour_in_progress(now, forecast.at(now) if forecast else None))
    if hours is None:
        return {c.vin: (True, "fail_safe_no_forecast") for c in cars}
    plans = plan(Request(now, cars, hours, {"shared": POWER_W}, MARGIN_S))
    return {p.vin: (p.charge_now(now), (("plan_charge" if p.feasible else "plan_must_charge") if p.charge_now(now)
                                        else "plan_wait") + ("" if p.feasible else "_at_risk")) for p in plans}


def greedy_hours(now: float, visit: Visit, soc: float, market: Market, battery: dict[str, float]) -> set[float]:
    """The cheapest forecast hours before departure that cover the need at full power, each hour
    counted for the part of it left (the hour in progress, the departure's hour)."""
    forecast = market.forecast(now)
    need_h = (visit.target - soc) / 100 * battery[visit.vin] * 1000 / EFFICIENCY / POWER_W
    first = hour_start(now, CHICAGO)
    slots = []
    for i, cents in enumerate(forecast.cents):
        start = first + 3600 * i
        usable = (min(start + 3600, visit.leave) - max(start, now)) / 3600
        if usable > 0:
            slots.append((cents, start, usable))
    chosen: set[float] = set()
    covered = 0.0
    for _, start, usable in sorted(slots):
        if covered >= need_h:
            break
        chosen.add(start)
        covered += usable
    return chosen


def optimum(q: Quarter, model: Model, market: Market, battery: dict[str, float], outcome: Outcome) -> Outcome:
    """Perfect foresight, night by night: every car's energy by its departure at the realized billed
    prices, power sharing respected, priced line by line as the bill does."""
    tariff = model.prices
    nights: dict[int, list[Visit]] = {}
    for visit in q.visits:
        nights.setdefault(int(visit.plug - 12 * 3600) // 86400, []).append(visit)
    for visits in nights.values():
        first = hour_start(min(v.plug for v in visits), CHICAGO)
        last = max(v.leave for v in visits)
        hours = tuple(Hour(first + 3600 * i, hour_mean_price(int(first + 3600 * (i + 1)), tariff), 100 * DELIVERY,
                           "realized") for i in range(int((last - first) // 3600) + 1))
        cars = tuple(Car(v.vin, v.soc, v.target, v.leave, battery[v.vin], POWER_W, 0.92,
                         "shared" if v.charger in SHARED else v.charger, plugged_from=v.plug) for v in visits)
        for result in plan(Request(first, cars, hours, {"shared": POWER_W}, margin_s=0.0, usable_power=1.0)):
            for hour in result.hours:
                outcome.supply += hour.energy_wh / 1000 * (hour.cents / 100 - DELIVERY)
                outcome.delivery += hour.energy_wh / 1000 * DELIVERY
                outcome.energy_kwh += hour.energy_wh / 1000
            outcome.met.update({(result.vin, v.plug): result.feasible for v in visits if v.vin == result.vin})
    return outcome


def priced(model: Model, outcome: Outcome) -> Outcome:
    scenario_tariff = model.scenario.tariff.__class__(delivery_per_kwh=DELIVERY)
    for session in model.truth.sessions:
        lines = bill_lines(session.by_interval, model.prices, scenario_tariff, CHICAGO)
        outcome.energy_kwh += sum(line["energy_kwh"] for line in lines)
        outcome.supply += sum(line["supply"] for line in lines)
        outcome.delivery += sum(line["delivery"] for line in lines)
    return outcome


def hour_end_of(interval_end: int) -> int:
    return local_hour_end(interval_end, CHICAGO)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")
