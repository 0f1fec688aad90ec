"""Departure planning inside smart charging's evaluation: read what the plans need from Prometheus
(the forecast, each car's last reading and the wall energy since), plan every plugged-in car that
has a departure set (`planner.plan`), and say per car whether to charge now. Decisions stay pure;
this module fetches, keeps revisions and outcomes, and builds the `PlanningView`.

Fail-safe: when Prometheus, the price or the forecast cannot be trusted, or a car has no reading,
the verdict is "charge now" (reason fail_safe_...), as smart charging's own fail-safe resumes cars.
Cars are never woken: readings are the vehicle exporter's cached ones.
"""
from __future__ import annotations

import logging
import math
from datetime import datetime
from dataclasses import replace
from typing import Any, Mapping

from billing.tariff import Tariff
from servicekit.config import Config
from servicekit.errors import UpstreamError
from billing.forecast import Forecast
from session_store.departure import Departure, estimate_soc, hour_in_progress, market_hours
from session_store.planner import Car, CarPlan, Hour, Request, in_order, plan
from session_store.prometheus import Prometheus, first_value
from session_store.records import PlanOutcome, PlanRevision
from session_store.smart_charging import Market, Params, VehicleNow, unsafe
from session_store.views import PlanningView, PlanStatus
from session_store.storage import Storage

EFFICIENCY_RANGE = (0.6, 1.0)     # outside it a reading belongs to another charge: not learned from
MIN_LEARN_WH = 2000.0
LEARN_WEIGHT = 0.3                # weight of the newest session in the learned efficiency
COST_CHANGE = 0.05
IDLE_REFRESH_S = 300.0            # with no departure set, the priced hours (page, what-if) are this fresh


def _by_label(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    out = {}
    for item in result:
        value = float(item["value"][1])
        if not math.isnan(value) and item["metric"].get(label) is not None:
            out[item["metric"][label]] = value
    return out


def material_change(previous: PlanRevision | None, new: PlanRevision) -> str | None:
    """Why the new plan is worth keeping as a revision, or None."""
    if previous is None or previous.departure != new.departure:
        return "new"
    if previous.target_percent != new.target_percent:
        return "setting"
    if previous.feasible != new.feasible:
        return "feasibility"
    if {h[0] for h in previous.hours} != {h[0] for h in new.hours}:
        return "hours"
    if abs(new.cost - previous.cost) > max(0.05, COST_CHANGE * abs(previous.cost)):
        return "cost"
    return None


class Planning:
    def __init__(self, config: Config, storage: Storage, prometheus: Prometheus, tariff: Tariff,
                 log: logging.Logger) -> None:
        self.settings = config.planner
        self.names = config.vehicles.names
        self.storage = storage
        self.prometheus = prometheus
        self.tariff = tariff
        self.log = log
        self.departures = storage.departures()
        self.last_revision: dict[str, PlanRevision] = {}
        for vin in self.departures:
            found = storage.plan_revisions(vin, limit=1)
            if found:
                self.last_revision[vin] = found[0]
        self.efficiencies = {vin: row[0] for vin, row in storage.efficiencies().items()}
        self._view = PlanningView()
        self._forecast: tuple[float, Forecast] | None = None   # the last good forecast and when it was read
        self.forecast_max_age = config.smart_charging.max_price_age

    def view(self) -> PlanningView:
        return self._view

    def set_departure(self, departure: Departure) -> None:
        self.storage.save_departure(departure)
        self.departures = {**self.departures, departure.vin: departure}

    def clear_departure(self, vin: str) -> bool:
        removed = self.storage.delete_departure(vin)
        self.departures = {k: v for k, v in self.departures.items() if k != vin}
        return removed

    def battery(self, departure: Departure) -> float:
        return departure.battery_kwh or self.settings.battery_kwh

    def car(self, vin: str, soc: float, departure: float, target: float, battery: float) -> Car:
        circuit = "site" if self.settings.circuit_power_kw > 0 else f"unit:{vin}"
        return Car(vin, soc, target, departure, battery, self.settings.charger_power_kw * 1000,
                   self.efficiencies.get(vin, self.settings.efficiency), circuit)

    def request(self, now: float, cars: tuple[Car, ...], hours: tuple[Hour, ...]) -> Request:
        limit = {"site": self.settings.circuit_power_kw * 1000} if self.settings.circuit_power_kw > 0 else {}
        return Request(now, cars, hours, limit, self.settings.margin)

    async def forecast(self) -> Forecast | None:
        cents = _by_label(await self.prometheus.query("max by (hours_ahead) (electricity_price_forecast_cents_per_kwh)"),
                          "hours_ahead")
        start = first_value(await self.prometheus.query("max(electricity_price_forecast_start_timestamp_seconds)"))
        day_ahead = first_value(await self.prometheus.query("max(electricity_price_forecast_day_ahead_prices)"))
        if not cents or start is None:
            return None
        count = max(int(k) for k in cents) + 1
        if any(str(i) not in cents for i in range(count)):
            return None
        return Forecast(start, tuple(cents[str(i)] for i in range(count)), int(day_ahead or 0))

    async def published(self) -> int | None:
        """Prices of the hour in progress published so far."""
        return None if (n := first_value(await self.prometheus.query("max(electricity_price_hour_published_prices)"))) \
            is None else int(n)

    async def readings(self) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
        """Each car's last cached state of charge, its time, and the energy it last reported added (Wh)."""
        soc = _by_label(await self.prometheus.query("max by (vin) (last_over_time(tesla_vehicle_battery_level_percent[2d]))"), "vin")
        at = _by_label(await self.prometheus.query("max by (vin) (last_over_time(tesla_vehicle_data_timestamp_seconds[2d]))"), "vin")
        added = _by_label(await self.prometheus.query(
            "max by (vin) (last_over_time(tesla_vehicle_charge_energy_added_joules[2d]))"), "vin")
        return soc, at, {vin: joules / 3600 for vin, joules in added.items()}

    async def wall_energy_since(self, din: str, since: float, now: float) -> float:
        """Wh the unit delivered since `since` (its power's mean over the span times the span)."""
        span = int(min(now - since, 2 * 86400))
        if span < 60:
            return 0.0
        mean = first_value(await self.prometheus.query(
            f'avg(avg_over_time(tesla_wall_connector_power_watts{{din="{din}"}}[{span}s]))'))
        return max(0.0, (mean or 0.0) * span / 3600)

    async def evaluate(self, now: float, market: Market, vehicles: Mapping[str, VehicleNow], params: Params,
                       names: Mapping[str, str], stop_threshold: float | None = None) -> dict[str, tuple[bool, str]]:
        """Per planned, plugged-in car: (charge now?, reason). Cars without a departure are not in it."""
        if not self.settings.enabled:
            self._view = PlanningView(now)
            return {}
        if not self.departures and self._view.evaluated_at is not None and \
                now - self._view.evaluated_at < IDLE_REFRESH_S and self._view.hours:
            if self._view.cars:   # a departure was just cleared
                self._view = replace(self._view, cars=())
            return {}   # nobody plans: the page's priced hours are refreshed every few minutes only
        horizon = now + self.settings.horizon_hours * 3600
        untrusted, forecast, hours, (soc, at, added) = await self._inputs(now, horizon, market, params)
        statuses: dict[str, PlanStatus] = {}
        cars: list[Car] = []
        for vin, departure in sorted(self.departures.items()):
            nxt = departure.next(now, self.tariff.zone)
            vehicle = vehicles.get(vin)
            status = PlanStatus(vin, names.get(vin) or self.names.get(vin), departure, nxt, bool(vehicle),
                                None, self.efficiencies.get(vin, self.settings.efficiency), self.battery(departure),
                                None, "", True)
            if nxt is None or nxt > horizon:
                statuses[vin] = replace(status, reason="no_departure_ahead")
                continue
            if vehicle is None:
                statuses[vin] = replace(status, reason="not_plugged_in")
                continue
            if untrusted is not None:
                statuses[vin] = replace(status, reason=f"fail_safe_{untrusted}")
                continue
            if vin not in soc or vin not in at:
                statuses[vin] = replace(status, reason="fail_safe_no_state_of_charge")
                continue
            since = await self._energy_since(vehicle, at[vin], now)
            estimate = estimate_soc(soc[vin], at[vin], since, status.efficiency, status.battery_kwh, now,
                                    self.settings.soc_fresh)
            statuses[vin] = replace(status, soc=estimate)
            # a departure past the forecast is planned within the hours priced (it finishes early, never late)
            leave = min(nxt, hours[-1].end + self.settings.margin) if hours else nxt
            cars.append(replace(self.car(vin, estimate.percent, leave, departure.target_percent, status.battery_kwh),
                                charging=vehicle.charging))
        if cars and hours is not None:
            for result in plan(self.request(now, tuple(cars), hours)):
                charge = result.charge_now(now)
                reason = ("plan_charge" if result.feasible else "plan_must_charge") if charge else "plan_wait"
                statuses[result.vin] = replace(statuses[result.vin], plan=result, reason=reason, charge_now=charge,
                                               first_hour=hours[0].start)
        await self._learn(vehicles, added, at)
        revisions = self._revisions(now, statuses.values())
        outcomes = self._outcomes(now, statuses)
        self.storage.save_plans(revisions, outcomes)
        for revision in revisions:
            self.last_revision[revision.vin] = revision
            self.log.info("planner: %s plan %s: %.1f kWh for $%.2f by %s%s", names.get(revision.vin, revision.vin),
                          revision.reason, revision.energy_wh / 1000, revision.cost,
                          "the departure" if revision.feasible else "the departure NOT reachable",
                          "" if revision.feasible else f" (reaches {revision.reachable_percent:.0f} %)")
        self._view = PlanningView(now, hours or (), forecast.day_ahead_hours if forecast else None, untrusted,
                                  tuple(statuses.values()), stop_threshold)
        return {vin: (s.charge_now, s.reason) for vin, s in statuses.items()
                if s.plugged and s.next_departure is not None and s.reason not in ("no_departure_ahead",)}

    async def _inputs(self, now: float, horizon: float, market: Market, params: Params) -> tuple[
            str | None, Forecast | None, tuple[Hour, ...] | None, tuple[dict[str, float], ...]]:
        """(why plans cannot be trusted or None, the forecast, the priced hours, the cars' readings)."""
        untrusted = self._untrusted(market, params)
        nothing: tuple[dict[str, float], ...] = ({}, {}, {})
        if untrusted is not None:
            return untrusted, None, None, nothing
        try:
            forecast = self._last_good(await self.forecast(), now)
            published = await self.published()
            readings = await self.readings()   # also with no departure: efficiencies are learned all along
        except UpstreamError:
            return "prometheus_unreachable", None, None, nothing
        current = market.hour_projected if published is None or market.five_minute_price is None else \
            hour_in_progress(market.hour_projected, published, market.five_minute_price,  # type: ignore[arg-type]
                             forecast.at(now) if forecast else None, self.tariff.expected_prices())
        known_until = min(horizon, forecast.end) if forecast else horizon
        hours = market_hours(now, known_until, self.tariff, forecast, current, self.settings.peak_risk_windows)
        return (None if hours is not None else "no_forecast"), forecast, hours, readings

    def _last_good(self, forecast: Forecast | None, now: float) -> Forecast | None:
        """The forecast, or the last good one while it is younger than max_price_age (a query that
        misses a series for a moment must not turn every plan into "charge now")."""
        if forecast is not None:
            self._forecast = (now, forecast)
            return forecast
        if self._forecast is not None and now - self._forecast[0] <= self.forecast_max_age:
            return self._forecast[1]
        return None

    def _untrusted(self, market: Market, params: Params) -> str | None:
        problem = unsafe(market, params)
        # the planner needs no thresholds nor history; a projection of the hour in progress it does
        if problem in ("no_thresholds", "too_little_history"):
            problem = None
        if problem is None and market.hour_projected is None:
            problem = "no_price"
        return problem

    async def _energy_since(self, vehicle: VehicleNow, reading_at: float, now: float) -> float:
        if vehicle.din is None or now - reading_at <= self.settings.soc_fresh:
            return 0.0
        try:
            return await self.wall_energy_since(vehicle.din, reading_at, now)
        except UpstreamError:
            return 0.0

    def _revisions(self, now: float, statuses: Any) -> list[PlanRevision]:
        kept = []
        for status in statuses:
            result = status.plan
            if result is None or status.soc is None or status.next_departure is None:
                continue
            revision = PlanRevision(now, status.vin, status.next_departure, status.departure.target_percent,
                                    status.soc.percent, status.soc.source, result.need_wh, result.energy_wh,
                                    result.cost, result.finish, result.feasible, result.reachable_percent, "",
                                    tuple((h.start, round(h.energy_wh, 1), round(h.cents, 4)) for h in result.hours))
            reason = material_change(self.last_revision.get(status.vin), revision)
            if reason is not None:
                kept.append(replace(revision, reason=reason))
        return kept

    def _outcomes(self, now: float, statuses: Mapping[str, PlanStatus]) -> list[PlanOutcome]:
        outcomes = []
        for vin, departure, revisions, first in self.storage.open_departures(now):
            planned = self.storage.plan_revisions(vin, departure, limit=10_000)
            last = planned[0]
            sessions = self.storage.vin_sessions(vin, first - 3600, departure)
            energy = sum(s.energy_of_record_wh for s in sessions)
            cost = sum(s.full_cost for s in sessions)
            efficiency = self.efficiencies.get(vin, self.settings.efficiency)
            reached = min(100.0, last.soc_percent + energy_after(sessions, last.t) * efficiency /
                          (self.battery(self.departures.get(vin) or Departure(vin, 0)) * 1000) * 100)
            outcomes.append(PlanOutcome(vin, departure, last.target_percent, planned[-1].cost, revisions,
                                        round(reached, 2), reached >= last.target_percent - 1, energy, cost, now))
            self.log.info("planner: departure of %s %s: target %.0f %% %s, cost $%.2f (planned $%.2f)",
                          self.names.get(vin, vin), hour_text(departure, self.tariff), last.target_percent,
                          "met" if reached >= last.target_percent - 1 else f"MISSED ({reached:.0f} %)", cost,
                          planned[-1].cost)
        return outcomes

    async def _learn(self, vehicles: Mapping[str, VehicleNow], added: Mapping[str, float],
                     at: Mapping[str, float]) -> None:
        """Learn a car's efficiency from its last completed session: the energy the car says it added
        (read after the session ended) over the wall energy."""
        known = self.storage.efficiencies()
        for vin, added_wh in added.items():
            sessions = self.storage.vin_sessions(vin, at.get(vin, 0) - 2 * 86400, at.get(vin, 0))
            last = sessions[-1] if sessions else None
            if last is None or last.end > at.get(vin, 0) or last.energy_of_record_wh < MIN_LEARN_WH:
                continue
            update = next_efficiency(known.get(vin), added_wh / last.energy_of_record_wh, last.start)
            if update is not None:
                self.storage.save_efficiency(vin, *update)
                self.efficiencies[vin] = update[0]

    def what_if(self, vin: str, soc: float, target: float, departure: float, battery: float | None,
                now: float) -> dict[str, CarPlan] | None:
        """Charge now, the plan and the threshold rule, priced over the hours ahead; None without prices."""
        view = self._view
        hours = tuple(h for h in view.hours if h.end > now)
        if not hours or hours[-1].end < departure - self.settings.margin:
            return None
        car = replace(self.car(vin, soc, departure, target, battery or self.settings.battery_kwh), circuit="")
        request = replace(self.request(now, (car,), hours), circuit_power_w={})
        loose = replace(request, margin_s=0.0)
        stop = view.stop_threshold
        return {"charge_now": in_order(loose, car),
                "planned": plan(request)[0],
                "threshold": in_order(loose, car, lambda h: stop is None or h.supply_cents <= stop)}


def next_efficiency(known: tuple[float, int, float] | None, ratio: float,
                    start: float) -> tuple[float, int, float] | None:
    """(efficiency, sessions, last session start) after the session starting at `start` showed `ratio`
    (energy added over wall energy); None when that session was learned from already (whichever learner
    saw it first: the car's state here, its charge history in session_store.charge_import) or the ratio
    belongs to another charge."""
    if (known is not None and known[2] >= start) or not EFFICIENCY_RANGE[0] <= ratio <= EFFICIENCY_RANGE[1]:
        return None
    if known is None or known[1] == 0:
        return ratio, 1, start
    return (1 - LEARN_WEIGHT) * known[0] + LEARN_WEIGHT * ratio, known[1] + 1, start


def energy_after(sessions: Any, t: float) -> float:
    """Wall energy of the sessions after `t` (a session spanning `t` counts in proportion)."""
    total = 0.0
    for s in sessions:
        if s.end <= t:
            continue
        share = 1.0 if s.start >= t or s.end <= s.start else (s.end - t) / (s.end - s.start)
        total += s.energy_of_record_wh * share
    return total


def hour_text(moment: float, tariff: Tariff) -> str:
    return datetime.fromtimestamp(moment, tariff.zone).strftime("%a %d %b %H:%M")
